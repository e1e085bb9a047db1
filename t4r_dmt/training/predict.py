"""``t4r-dmt predict``: score impressions with a trained run.

Two sources of impressions:

* ``--window K``: every row of a window that ``t4r-dmt preprocess`` already wrote (``DIR/ranking/000K``);
* ``--impressions P [--events P]``: a raw impression log (REES46 contract; ``click`` / ``order`` optional),
  turned into ranking rows by the *saved* workflow of ``DIR`` (:mod:`t4r_dmt.preprocess.serving`): the
  same vocabularies, normalisation and as-of features as in training, from the bundled event history or
  from ``--events`` (read with ``--format``).

Writes ``request_id, product_id (raw), p_click, p_order, score`` to ``--out`` (parquet, or CSV when the name
ends in ``.csv``), atomically. Both ids are the input's: ``request_id`` is kept raw in the ranking rows, and text
product ids, held as int64 surrogates inside ``DIR``, are decoded with ``DIR/ids`` and the texts of
``--impressions`` / ``--events`` (:mod:`t4r_dmt.data.ids`); a column with text ids is written as text.
The model is rebuilt from ``RUN/config.json`` and the weights of the last finished window (or ``--checkpoint_window``). ``--data`` must be the data the run was trained on: its
fingerprint (schema, vocabulary sizes, a hash of the vocabularies; :mod:`t4r_dmt.fingerprint`)
is checked against the one the run recorded, and a mismatch is refused before any model is built.
"""

from __future__ import annotations

import json
import logging
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from t4r_dmt.data.ids import IDS_DIR, IdTexts
from t4r_dmt.data.validate import DEFAULT_MAX_TIME_GAP, parse_time_gap
from t4r_dmt.io_utils import atomic_path

logger = logging.getLogger(__name__)


@dataclass
class PredictArguments:
    run: str = field(metadata={"help": "Run folder written by `t4r-dmt train`."})
    data: str = field(metadata={"help": "Output folder of `t4r-dmt preprocess`."})
    out: str = field(metadata={"help": "Output file (.parquet or .csv)."})
    window: int = field(default=0, metadata={"help": "Preprocessed window to score (1-based); or give --impressions."})
    impressions: str | None = field(
        default=None, metadata={"help": "Raw impression log to score through DIR's saved workflow (instead of --window)."}
    )
    events: str | None = field(
        default=None,
        metadata={"help": "Raw events for the as-of features of --impressions (default: the history saved in DIR)."},
    )
    format: str = field(default="rees46", metadata={"help": "Format of --events (rees46, yoochoose, ...)."})
    on_bad_rows: str = field(default="raise", metadata={"help": "raise or drop invalid rows of the raw logs."})
    max_time_gap: str = field(
        default=DEFAULT_MAX_TIME_GAP,
        metadata={"help": "Rows of the raw logs this far apart from the rest of their log are bad rows."},
    )
    page_size: int = field(default=10, metadata={"help": "Page size when --impressions has no page column."})
    split: str = field(default="train", metadata={"help": "File of the window: train (all rows), valid or test."})
    checkpoint_window: int = field(default=0, metadata={"help": "Weights after this window (0: the last one)."})
    batch_size: int = field(default=1024, metadata={"help": "Scoring batch size."})

    def __post_init__(self) -> None:
        if (self.window != 0) == (self.impressions is not None):
            raise ValueError("give either --window K (a preprocessed window) or --impressions P (raw), not both")
        if self.window < 0:
            raise ValueError(f"--window must be >= 1, got {self.window}")
        if self.events is not None and self.impressions is None:
            raise ValueError("--events only applies to --impressions")
        if self.batch_size < 1:
            raise ValueError(f"--batch_size must be >= 1, got {self.batch_size}")
        if not self.out.endswith((".parquet", ".csv")):
            raise ValueError(f"--out must end in .parquet or .csv, got {self.out!r}")
        parse_time_gap(self.max_time_gap)


ARGUMENTS = (PredictArguments,)

OUTPUT_COLUMNS = ["request_id", "product_id", "p_click", "p_order", "score"]


def last_checkpoint(run_dir: Path) -> int:
    """The last window with saved weights under ``run_dir/checkpoints``."""
    folder = run_dir / "checkpoints"
    found = sorted(
        int(m.group(1)) for p in folder.glob("window_*/model.pt") if (m := re.match(r"window_(\d+)", p.parent.name))
    ) if folder.exists() else []
    if not found:
        raise FileNotFoundError(f"{folder} holds no checkpoint: train the run first")
    return found[-1]


def load_run_model(run_dir: Path, schema: Any, checkpoint_window: int = 0) -> tuple[Any, int]:
    """Rebuild the ranking model of a run and load its weights; returns (model, checkpoint window)."""
    from t4r_dmt.model import DMTConfig, build_model
    from t4r_dmt.training.loop import load_checkpoint

    config_path = run_dir / "config.json"
    if not config_path.exists():
        raise FileNotFoundError(f"{config_path} is missing: is {run_dir} a `t4r-dmt train` run?")
    saved = json.loads(config_path.read_text())
    if saved.get("data", {}).get("task", "ranking") != "ranking":
        raise ValueError(f"{run_dir} is a next-item run; predict scores ranking impressions")
    model = build_model(schema, DMTConfig.from_dict(saved["config"]))
    window = checkpoint_window or last_checkpoint(run_dir)
    load_checkpoint(model, run_dir, window)
    return model, window


def run(args: PredictArguments) -> dict[str, Any]:
    import transformers4rec.torch as tr

    from t4r_dmt.fingerprint import check_run_data
    from t4r_dmt.preprocess.serving import SavedPreprocess
    from t4r_dmt.run_folder import load_schema
    from t4r_dmt.training.arguments import RunTrainingArguments
    from t4r_dmt.training.loop import max_list_length, predict_frame
    from t4r_dmt.windows import window_path

    saved = SavedPreprocess.load(args.data) if args.impressions else None  # fail before loading a model
    check_run_data(args.run, args.data)  # the data the run was trained on, or a one-line refusal
    task_dir = Path(args.data) / "ranking"
    schema = load_schema(task_dir)
    model, ckpt = load_run_model(Path(args.run), schema, args.checkpoint_window)
    ids = IdTexts.load(Path(args.data) / IDS_DIR)  # texts of the text ids of --data (none for integer ids)
    with tempfile.TemporaryDirectory() as tmp:
        if saved is not None and args.impressions is not None:
            path = _raw_rows(args, args.impressions, saved, Path(tmp) / "rows", ids)
        else:
            path = window_path(task_dir, args.window, args.split)
        targs = RunTrainingArguments(output_dir=tmp, report_to=[], per_device_eval_batch_size=args.batch_size,
                                     max_sequence_length=max_list_length(schema), disable_tqdm=True)
        trainer = tr.Trainer(model=model, args=targs, schema=schema, compute_metrics=False)
        frame = predict_frame(trainer, path)
        frame["product_id"] = ids.decode("product_id", pd.read_parquet(path, columns=["product_id"])["product_id"]
                                         .to_numpy())
    frame = frame[OUTPUT_COLUMNS]
    with atomic_path(args.out) as tmp_out:
        if args.out.endswith(".csv"):
            frame.to_csv(tmp_out, index=False)
        else:
            frame.to_parquet(tmp_out, index=False)
    logger.info("scored %d impressions of %s with the weights after window %d -> %s",
                len(frame), args.impressions or f"window {args.window}", ckpt, args.out)
    return {"rows": len(frame), "out": args.out, "checkpoint_window": ckpt}


def _raw_rows(args: PredictArguments, impressions_path: str, saved: Any, work: Path, ids: IdTexts) -> Path:
    """Ranking rows of ``--impressions`` (and ``--events``) made by the saved workflow of ``--data``; the texts
    of their text ids are added to ``ids`` (InputError if one clashes with ``--data``'s)."""
    from t4r_dmt import data as readers
    from t4r_dmt.data.sources import check_inputs_given
    from t4r_dmt.preprocess.serving import transform_impressions

    check_inputs_given({"--impressions": impressions_path, "--events": args.events})
    impressions, _ = readers.read_impressions(impressions_path, on_bad_rows=args.on_bad_rows,
                                              page_size=args.page_size, labels=False,
                                              max_time_gap=args.max_time_gap, ids=ids)
    events = None
    if args.events is not None:
        logs = readers.load_logs(args.events, args.format, args.on_bad_rows, max_time_gap=args.max_time_gap)
        ids.update(logs.ids, args.events)
        events = logs.events
    return transform_impressions(saved, impressions, work, events=events, source=impressions_path)
