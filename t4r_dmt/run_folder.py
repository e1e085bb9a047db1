"""The run folder of ``t4r-dmt train``: the arguments that name the data and the run, claiming the folder,
and reading the data's Merlin schema. Shared by every runner (T4R models, GBDT), which are siblings.

A run folder holds ``config.json``, ``metrics.json`` / ``metrics.csv`` (:mod:`t4r_dmt.metrics.results`),
``plots/`` and ``checkpoints/window_NNNN/`` (DESIGN.md).
"""

from __future__ import annotations

import contextlib
import logging
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from t4r_dmt.output_lock import claim_output
from t4r_dmt.schema import TASKS
from t4r_dmt.windows import EVAL_SPLITS, parse_windows

logger = logging.getLogger(__name__)


@dataclass
class DataArguments:
    """Where the data and the run live, and which windows the loop walks."""

    data: str = field(metadata={"help": "Output folder of `t4r-dmt preprocess` (has ranking/ and sessions/)."})
    out: str = field(metadata={"help": "Run folder: metrics.json, metrics.csv, plots/, checkpoints/, config.json."})
    config: str = field(
        default="dmt",
        metadata={"help": "Preset name (t4r_dmt/configs/<name>.json) or a path to a preset JSON file."},
    )
    windows: str = field(
        default="",
        metadata={"help": "A:B (inclusive): train on t and evaluate on t+1 for t in A..B-1. Default: all windows."},
    )
    task: str = field(default="ranking", metadata={"help": f"One of {TASKS}."})
    eval_split: str = field(
        default="valid", metadata={"help": f"File of window t+1 to evaluate on, one of {EVAL_SPLITS}."}
    )
    resume: bool = field(default=False, metadata={"help": "Continue after the last finished window of --out."})
    overwrite: bool = field(default=False, metadata={"help": "Replace an existing run folder."})

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise ValueError(f"--task must be one of {TASKS}, got {self.task!r}")
        if self.eval_split not in EVAL_SPLITS:
            raise ValueError(f"--eval_split must be one of {EVAL_SPLITS}, got {self.eval_split!r}")
        if self.resume and self.overwrite:
            raise ValueError("--resume and --overwrite exclude each other")
        if self.windows:
            parse_windows(self.windows)  # fail fast on a malformed range

    @property
    def task_dir(self) -> Path:
        return Path(self.data) / ("ranking" if self.task == "ranking" else "sessions")


def load_schema(task_dir: Path) -> Any:
    """Read ``task_dir/schema.pbtxt`` into a Merlin schema."""
    from merlin.schema.io.tensorflow_metadata import TensorflowMetadata

    if not (Path(task_dir) / "schema.pbtxt").exists():
        raise FileNotFoundError(f"{Path(task_dir) / 'schema.pbtxt'} is missing: run `t4r-dmt preprocess` first")
    return TensorflowMetadata.from_proto_text_file(str(task_dir)).to_merlin_schema()


def prepare_run_dir(data_args: DataArguments) -> list[dict[str, Any]]:
    """Create the run folder; return the window records already finished (with ``--resume``)."""
    from t4r_dmt.metrics.results import RunResults

    run_dir = Path(data_args.out)
    exists = run_dir.exists() and any(run_dir.iterdir())
    if data_args.resume:
        if not (run_dir / "metrics.json").exists():
            logger.info("--resume: %s has no finished window yet; starting from the first", run_dir)
            return []
        return list(RunResults.load(run_dir).windows)
    if exists and not data_args.overwrite:
        raise FileExistsError(f"run folder {run_dir} already exists; pass --overwrite or --resume")
    if exists:
        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)  # an existing empty folder is used as it is
    return []


@contextlib.contextmanager
def run_folder(data_args: DataArguments, owner: bool = True) -> Iterator[list[dict[str, Any]]]:
    """Claim ``--out`` (:func:`t4r_dmt.output_lock.claim_output`) and set it up (:func:`prepare_run_dir`, whose
    finished windows it yields) for the duration of a run.

    If the block fails before the run saved a checkpoint or a metric, what the run created is removed (a
    folder that existed empty is left empty), so the corrected command can be run again as it is. Only
    the ``owner`` process (rank 0 under torchrun) claims and prepares; the others yield nothing.
    """
    if not owner:
        yield []
        return
    run_dir = Path(data_args.out)
    with claim_output(run_dir):
        existed = run_dir.is_dir()
        done = prepare_run_dir(data_args)
        try:
            yield done
        except BaseException:
            if not has_results(run_dir):
                shutil.rmtree(run_dir, ignore_errors=True)
                if existed:
                    run_dir.mkdir()
                logger.info("the run failed before saving anything: %s is as it was", run_dir)
            raise


def has_results(run_dir: Path) -> bool:
    """True once a run folder holds a checkpoint or metrics (something a failure must not delete)."""
    return (run_dir / "metrics.json").exists() or any((run_dir / "checkpoints").glob("window_*/model.pt"))
