"""``t4r-dmt report RUN [RUN ...] [--out DIR]``: compare training runs.

Reads each run's ``metrics.json``, writes ``OUT/plots/<metric>.png`` (the metric per evaluation window,
one line per run) and ``OUT/report.md`` (a markdown table of the average metrics, one row per run, the
best value of each column in bold, followed by the plots), and logs the table.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from t4r_dmt.io_utils import atomic_path
from t4r_dmt.metrics.names import higher_is_better, metric_sort_key
from t4r_dmt.metrics.results import RunResults, metric_file_stem, plot_metric

logger = logging.getLogger(__name__)

REPORT_FILE = "report.md"


@dataclass
class ReportArguments:
    """Arguments of ``t4r-dmt report``."""

    runs: list[str] = field(
        default_factory=list,
        metadata={"help": "Run folders to compare (each holding metrics.json): `--runs RUN1 RUN2` or positionally."},
    )
    out: str = field(default="report", metadata={"help": "Folder for report.md and plots/ (created if needed)."})

    def __post_init__(self) -> None:
        if not self.runs:
            raise ValueError("report: give at least one run folder (t4r-dmt report RUN [RUN ...] --out DIR)")
        if not self.out:
            raise ValueError("report: --out must not be empty")


ARGUMENTS = (ReportArguments,)


def rewrite_argv(argv: Sequence[str]) -> list[str]:
    """Turn the positional form ``RUN1 RUN2 [--out DIR]`` into ``--runs RUN1 RUN2 [--out DIR]``.

    HfArgumentParser has no positional arguments; this lets ``t4r-dmt report RUN1 RUN2`` work. Leading
    bare words (before the first ``-``/``--`` flag) are the runs. A single ``*.json`` argument file and
    an argv starting with a flag are returned unchanged.
    """
    argv = list(argv)
    if not argv or argv[0].startswith("-") or (len(argv) == 1 and argv[0].endswith(".json")):
        return argv
    return ["--runs", *argv]


def _label_runs(paths: Sequence[Path]) -> list[str]:
    """Short labels: the folder names, or the paths as given where two folders share a name."""
    names = [path.name or str(path) for path in paths]
    return [name if names.count(name) == 1 else str(path) for name, path in zip(names, paths, strict=True)]


def _format(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:.4f}"


def markdown_table(labels: Sequence[str], results: Sequence[RunResults]) -> str:
    """Markdown table of average metrics: one row per run, one column per metric, best value in bold.

    Parameters
    ----------
    labels: one label per run.
    results: the runs, in the same order.
    """
    metrics = sorted({name for result in results for name in result.metric_names}, key=metric_sort_key)
    averages = [result.average for result in results]
    header = ["run", "model", "windows", *metrics]
    rows = [[label, result.model, str(len(result.windows))] for label, result in zip(labels, results, strict=True)]
    for metric in metrics:
        values = [average.get(metric, float("nan")) for average in averages]
        finite = [v for v in values if not math.isnan(v)]
        best = (max(finite) if higher_is_better(metric) else min(finite)) if len(results) > 1 and finite else None
        for row, value in zip(rows, values, strict=True):
            text = _format(value)
            row.append(f"**{text}**" if best is not None and value == best else text)
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] * 3 + ["---:"] * len(metrics)) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def run(args: ReportArguments) -> dict[str, Any]:
    """Load the runs, write the comparison plots and ``report.md``; return the table and the paths.

    Raises
    ------
    FileNotFoundError: a run folder or its metrics.json is missing.
    ValueError: a metrics.json is invalid, or the runs mix tasks (ranking with next-item).
    """
    paths = [Path(run_dir) for run_dir in args.runs]
    results = [RunResults.load(path) for path in paths]
    tasks = sorted({result.task for result in results})
    if len(tasks) > 1:
        listed = ", ".join(f"{path} ({result.task})" for path, result in zip(paths, results, strict=True))
        raise ValueError(f"report: runs mix tasks {tasks}; compare runs of one task: {listed}")
    labels = _label_runs(paths)
    out = Path(args.out)
    table = markdown_table(labels, results)

    metrics = sorted({name for result in results for name in result.metric_names}, key=metric_sort_key)
    plots = []
    for metric in metrics:
        lines = {}
        averages = {}
        for label, result in zip(labels, results, strict=True):
            if metric not in result.metric_names:
                continue
            lines[label] = ([int(w["eval_window"]) for w in result.windows],
                            [float(w.get(metric, float("nan"))) for w in result.windows])
            averages[label] = result.average[metric]
        plots.append(plot_metric(metric, lines, out / "plots" / f"{metric_file_stem(metric)}.png", averages))

    report = _report_markdown(table, results[0].task, [os.path.relpath(p, out) for p in plots])
    with atomic_path(out / REPORT_FILE) as tmp:
        tmp.write_text(report)
    logger.info("average metrics over evaluation windows:\n%s", table)
    logger.info("wrote %s and %d plots", out / REPORT_FILE, len(plots))
    return {"report": str(out / REPORT_FILE), "table": table, "runs": labels,
            "plots": [str(path) for path in plots]}


def _report_markdown(table: str, task: str, plots: Sequence[str]) -> str:
    parts = [f"# Run comparison ({task})", "", "Average of each metric over the evaluation windows "
             "(NaN windows ignored; best in bold).", "", table, ""]
    for plot in plots:
        parts += [f"![{Path(plot).stem}]({plot})", ""]
    return "\n".join(parts)
