"""``t4r-dmt demo`` (what ``make demo`` runs): the main job on the embedded default data.

synth (planted truth) -> preprocess (NVTabular, day windows) -> train the ``dmt`` preset with the incremental
time-window loop -> a report of the average metrics next to the synthetic oracles, with the bias tower's
learned position curve against the planted one.
"""

from __future__ import annotations

import json
import logging
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from t4r_dmt.output_lock import claim_output

logger = logging.getLogger(__name__)


@dataclass
class DemoArguments:
    out: str = field(default="runs/demo", metadata={"help": "Folder for the data, the run and the report."})
    config: str = field(default="dmt", metadata={"help": "Model preset to train."})
    users: int = field(default=2000, metadata={"help": "Synthetic users."})
    items: int = field(default=1000, metadata={"help": "Synthetic items."})
    days: int = field(default=4, metadata={"help": "Synthetic days (= time windows)."})
    requests_per_day: int = field(default=1500, metadata={"help": "Synthetic ranking requests per day."})
    seed: int = field(default=42, metadata={"help": "Seed of the data and of training."})
    epochs: float = field(default=1.0, metadata={"help": "Training epochs per window."})
    batch_size: int = field(default=256, metadata={"help": "Training batch size."})

    def __post_init__(self) -> None:
        if self.days < 2:
            raise ValueError(f"--days must be >= 2 (train on one day, evaluate on the next), got {self.days}")
        if self.epochs <= 0 or self.batch_size < 1:
            raise ValueError("--epochs must be > 0 and --batch_size >= 1")


ARGUMENTS = (DemoArguments,)


def run(args: DemoArguments) -> dict[str, Any]:
    """Run the whole chain into ``args.out`` (replacing an earlier demo there)."""
    out = Path(args.out)
    with claim_output(out):  # a second demo into the same folder must not delete this one's files
        return _run(args, out)


def _run(args: DemoArguments, out: Path) -> dict[str, Any]:
    from t4r_dmt.analysis.report import ReportArguments
    from t4r_dmt.analysis.report import run as report
    from t4r_dmt.commands.train import run as train
    from t4r_dmt.preprocess.arguments import PreprocessArguments
    from t4r_dmt.preprocess.command import run as preprocess
    from t4r_dmt.synth.command import SynthArguments
    from t4r_dmt.synth.command import run as synth
    from t4r_dmt.training.arguments import DataArguments, RunTrainingArguments

    if out.exists():
        shutil.rmtree(out)
    raw, data, run_dir = out / "raw", out / "data", out / "runs" / args.config
    logger.info("[1/4] synth -> %s", raw)
    synth(SynthArguments(out=str(raw), users=args.users, items=args.items, days=args.days,
                         requests_per_day=args.requests_per_day, seed=args.seed))
    logger.info("[2/4] preprocess -> %s", data)
    preprocess(PreprocessArguments(events=str(raw / "events.parquet"),
                                   impressions=str(raw / "impressions.parquet"),
                                   items=str(raw / "items.parquet"), out=str(data), window="1d"))
    logger.info("[3/4] train %s over %d windows -> %s", args.config, args.days, run_dir)
    result = train(
        DataArguments(data=str(data), out=str(run_dir), config=args.config),
        RunTrainingArguments(output_dir=str(run_dir / "trainer"), seed=args.seed, num_train_epochs=args.epochs,
                             per_device_train_batch_size=args.batch_size, report_to=[], disable_tqdm=False),
    )
    logger.info("[4/4] report -> %s", out / "report")
    # The truth is right there: the report also validates the bias tower (bias_validation.json, bias_curves.png).
    rep = report(ReportArguments(runs=[str(run_dir)], out=str(out / "report"), truth=str(raw / "truth")))
    oracle = json.loads((raw / "truth" / "oracle.json").read_text())
    summary = _summary_table(result["average"], oracle)
    print(summary)
    print(f"\nresults: {run_dir / 'metrics.json'}  plots: {run_dir / 'plots'}  report: {rep['report']}")
    return {"run_dir": str(run_dir), "average": result["average"], "oracle": oracle, "summary": summary}


def _summary_table(average: dict[str, float], oracle: dict[str, Any]) -> str:
    rows = ["| metric | model | oracle (truth/oracle.json) |", "|---|---|---|"]
    oracles = {"auc_click": oracle.get("auc_click_relevance_oracle"),
               "auc_order": oracle.get("auc_order_relevance_oracle")}
    for name, value in average.items():
        ref = oracles.get(name)
        rows.append(f"| {name} | {value:.4f} | {'' if ref is None else f'{ref:.4f}'} |")
    return "\n".join(rows)
