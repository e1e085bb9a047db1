"""``t4r-dmt report RUN [RUN ...] [--out DIR] [--truth DIR] [--position_curves] [--data DIR]``: compare training runs.

Reads each run's ``metrics.json``, writes ``OUT/plots/<metric>.png`` (the metric per evaluation window,
one line per run) and ``OUT/report.md`` (a markdown table of the average metrics, one row per run, the
best value of each column in bold, followed by the plots), and logs the table.

With ``--truth`` (the ``truth/`` folder of ``t4r-dmt synth``) every ranking run with model checkpoints is
validated against the planted truth (:func:`t4r_dmt.analysis.bias_validation.validate_run`, on the data
the run names in its ``config.json`` or on ``--data``): ``OUT/bias_validation.json`` holds each run's
validation and the comparison of every run with a bias tower against every run without one on the same
data; ``OUT/bias_curves.png`` draws the learned curves against the planted one; ``report.md`` gains a table.

With ``--position_curves`` (ranking runs on one data folder with real list positions, e.g. Trivago; no truth
needed) the data's raw click rate per position, its adjacent-swap examination curve and each run's learned bias
curve (:mod:`t4r_dmt.analysis.position_curves`) go to ``OUT/position_curves.json`` and ``OUT/position_curves.png``,
with the Spearman correlations between them; ``report.md`` gains a table.
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from t4r_dmt.analysis.bias_plot import plot_bias_curves
from t4r_dmt.analysis.bias_validation import (
    BiasValidation,
    comparison,
    load_bias_curve,
    run_position_curve,
    validate_run,
)
from t4r_dmt.analysis.position_curves import (
    MIN_PAIRS,
    POSITION_CURVES_FILE,
    POSITION_PLOT_FILE,
    PositionCurves,
    position_curves,
    read_ranking_impressions,
    write_position_curves,
)
from t4r_dmt.io_utils import atomic_path, nan_to_none, write_json
from t4r_dmt.metrics.names import higher_is_better, metric_sort_key
from t4r_dmt.metrics.results import RunResults, metric_file_stem, plot_metric

logger = logging.getLogger(__name__)

REPORT_FILE = "report.md"
BIAS_VALIDATION_FILE = "bias_validation.json"
BIAS_PLOT_FILE = "bias_curves.png"


@dataclass
class ReportArguments:
    """Arguments of ``t4r-dmt report``."""

    runs: list[str] = field(
        default_factory=list,
        metadata={"help": "Run folders to compare (each holding metrics.json): `--runs RUN1 RUN2` or positionally."},
    )
    out: str = field(default="report", metadata={"help": "Folder for report.md and plots/ (created if needed)."})
    truth: str | None = field(default=None, metadata={
        "help": "The truth/ folder of the `t4r-dmt synth` data the runs were trained on: validate each ranking "
                f"run's bias against it ({BIAS_VALIDATION_FILE}, {BIAS_PLOT_FILE} in --out)."})
    position_curves: bool = field(default=False, metadata={
        "help": "Ranking runs on data with real list positions (e.g. --format trivago): the raw click rate per "
                "position, the examination curve from adjacent swaps and each run's learned bias curve, with "
                f"their Spearman correlations ({POSITION_CURVES_FILE}, {POSITION_PLOT_FILE} in --out)."})
    min_pairs: int = field(default=MIN_PAIRS, metadata={
        "help": "With --position_curves: the items a pair of adjacent positions needs (shown at both, clicked at "
                "either) for its swap ratio; fewer leave the swap curve undefined (null) from there on."})
    data: str | None = field(default=None, metadata={
        "help": "With --truth or --position_curves: the `t4r-dmt preprocess` output the runs were trained on "
                "(default: the one each run's config.json names)."})

    def __post_init__(self) -> None:
        if not self.runs:
            raise ValueError("report: give at least one run folder (t4r-dmt report RUN [RUN ...] --out DIR)")
        if not self.out:
            raise ValueError("report: --out must not be empty")
        if self.data is not None and self.truth is None and not self.position_curves:
            raise ValueError("report: --data only applies with --truth or --position_curves (the data they read)")
        if self.min_pairs < 1:
            raise ValueError(f"report: --min_pairs must be >= 1; got {self.min_pairs}")


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
    if args.truth is not None:
        if tasks != ["ranking"]:
            raise ValueError(f"report: --truth validates ranking runs; these are {tasks[0]} runs")
        load_bias_curve(args.truth)  # a wrong --truth fails before anything is written
    if args.position_curves and tasks != ["ranking"]:
        raise ValueError(f"report: --position_curves reads ranking runs; these are {tasks[0]} runs")
    labels = _label_runs(paths)
    out = Path(args.out)
    table = markdown_table(labels, results)

    # Read and compute everything first: an error (a wrong --data, runs on two data folders) leaves OUT as it was.
    validations = validate_runs(paths, labels, args.truth, args.data) if args.truth is not None else None
    position = runs_position_curves(paths, labels, args.data, args.min_pairs) if args.position_curves else None

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

    summary: dict[str, Any] = {"report": str(out / REPORT_FILE), "table": table, "runs": labels,
                               "plots": [str(path) for path in plots]}
    bias_section: list[str] = []
    if validations is not None and args.truth is not None:
        write_json(out / BIAS_VALIDATION_FILE, nan_to_none(bias_validation_json(validations, args.truth)))
        planted = load_bias_curve(args.truth)
        plot_bias_curves({label: v.learned_curve for label, (v, _) in validations.items() if v is not None}, planted,
                         out / BIAS_PLOT_FILE)
        bias_section = _bias_markdown(labels, validations, args.truth)
        summary |= {"bias_validation": str(out / BIAS_VALIDATION_FILE), "bias_plot": str(out / BIAS_PLOT_FILE)}
        logger.info("bias validation against %s:\n%s", args.truth, "\n".join(bias_section[2:-3]))
    if position is not None:
        curves, data_dir = position
        json_path, plot_path = write_position_curves(curves, out, {"data": str(data_dir)})
        section = _position_markdown(curves, data_dir)
        bias_section += section
        summary |= {"position_curves": str(json_path), "position_plot": str(plot_path)}
        logger.info("position curves of %s:\n%s", data_dir, "\n".join(section[2:-3]))
    report = _report_markdown(table, results[0].task, [os.path.relpath(p, out) for p in plots], bias_section)
    with atomic_path(out / REPORT_FILE) as tmp:
        tmp.write_text(report)
    logger.info("average metrics over evaluation windows:\n%s", table)
    logger.info("wrote %s and %d plots", out / REPORT_FILE, len(plots))
    return summary


def _report_markdown(table: str, task: str, plots: Sequence[str], bias_section: Sequence[str] = ()) -> str:
    parts = [f"# Run comparison ({task})", "", "Average of each metric over the evaluation windows "
             "(NaN windows ignored; best in bold).", "", table, ""]
    for plot in plots:
        parts += [f"![{Path(plot).stem}]({plot})", ""]
    parts += bias_section
    return "\n".join(parts)


# --------------------------------------------------------------------------------------------------
# Bias validation against the planted truth (--truth)
# --------------------------------------------------------------------------------------------------
def run_data_dir(run_dir: Path) -> Path:
    """The preprocess output a run was trained on, as its ``config.json`` names it (``data.data``)."""
    config = run_dir / "config.json"
    if not config.is_file():
        raise FileNotFoundError(f"report: {config} is missing; pass --data with --truth")
    data = json.loads(config.read_text()).get("data", {}).get("data")
    if not data:
        raise ValueError(f"report: {config} names no data folder; pass --data with --truth")
    if not (Path(data) / "ranking").is_dir():
        raise FileNotFoundError(f"report: the data folder {data} that {config} names has no ranking/ folder; "
                                "pass --data with --truth")
    return Path(data)


def validate_runs(paths: Sequence[Path], labels: Sequence[str], truth: str,
                  data: str | None) -> dict[str, tuple[BiasValidation | None, Path | None]]:
    """label -> (validation, data folder) of each run; (None, None) for a run without model checkpoints (a
    GBDT run: nothing to re-score)."""
    validations: dict[str, tuple[BiasValidation | None, Path | None]] = {}
    for label, path in zip(labels, paths, strict=True):
        if not any((path / "checkpoints").glob("window_*/model.pt")):
            logger.info("bias validation: %s has no model checkpoints; skipped", path)
            validations[label] = (None, None)
            continue
        data_dir = Path(data) if data is not None else run_data_dir(path)
        validations[label] = (validate_run(path, data_dir, truth), data_dir)
    return validations


def _has_tower(validation: BiasValidation) -> bool:
    return not any(math.isnan(v) for v in validation.learned_curve)


def bias_validation_json(validations: dict[str, tuple[BiasValidation | None, Path | None]],
                         truth: str) -> dict[str, Any]:
    """The content of ``bias_validation.json``: the truth folder, every run's validation (or why it was
    skipped) and ``comparisons``: each run with a bias tower against each run without one on the same data
    (:func:`t4r_dmt.analysis.bias_validation.comparison`'s differences, run minus no-bias run)."""
    runs: dict[str, Any] = {}
    for label, (validation, data_dir) in validations.items():
        runs[label] = ({"skipped": "no model checkpoints (a GBDT run?)"} if validation is None
                       else {"data": str(data_dir), "bias_tower": _has_tower(validation), **validation.to_dict()})
    comparisons = []
    for label, (validation, data_dir) in validations.items():
        if validation is None or not _has_tower(validation):
            continue
        for other, (baseline, other_data) in validations.items():
            if baseline is not None and not _has_tower(baseline) and other_data == data_dir:
                comparisons.append({"run": label, "no_bias_run": other,
                                    "difference": comparison(validation, baseline)["difference"]})
    return {"truth": str(truth), "runs": runs, "comparisons": comparisons}


def _bias_markdown(labels: Sequence[str], validations: dict[str, tuple[BiasValidation | None, Path | None]],
                   truth: str) -> list[str]:
    k = next((v.k for v, _ in validations.values() if v is not None), 10)
    lines = [f"## Bias validation against {truth}", "",
             f"| run | spearman | max_log_ratio | relevance_ndcg@{k} | relevance_auc | promoted_overrating@{k} |",
             "|---|---:|---:|---:|---:|---:|"]
    for label in labels:
        validation = validations[label][0]
        if validation is None:
            lines.append(f"| {label} | skipped | | | | |")
            continue
        values = (validation.spearman, validation.max_log_ratio, validation.relevance_ndcg,
                  validation.relevance_auc, validation.promoted_overrating)
        lines.append(f"| {label} | " + " | ".join(_format(v) for v in values) + " |")
    return [*lines, "", f"![bias_curves]({BIAS_PLOT_FILE})", ""]


# --------------------------------------------------------------------------------------------------
# Position curves of data with real list positions (--position_curves)
# --------------------------------------------------------------------------------------------------
def runs_position_curves(paths: Sequence[Path], labels: Sequence[str], data: str | None,
                         min_pairs: int) -> tuple[PositionCurves, Path]:
    """``position_curves`` of the runs' one data folder (``data``, else the one every run's ``config.json``
    names), with the learned curve of each run with model checkpoints and a bias tower, over the positions
    the data shows."""
    folders = sorted({Path(data)} if data is not None else {run_data_dir(path) for path in paths})
    if len(folders) > 1:
        raise ValueError(f"report: --position_curves reads one data folder; the runs name {[str(f) for f in folders]}"
                         " (pass --data, or report them separately)")
    data_dir = folders[0]
    impressions = read_ranking_impressions(data_dir)
    if len(impressions) == 0:
        raise ValueError(f"report: {data_dir} has no ranking rows")
    n_positions = int(impressions["position"].max()) + 1
    learned = {}
    for label, path in zip(labels, paths, strict=True):
        if not any((path / "checkpoints").glob("window_*/model.pt")):
            logger.info("position curves: %s has no model checkpoints; skipped", path)
            continue
        learned[label] = run_position_curve(path, data_dir, n_positions)
    return position_curves(impressions, n_positions, learned, min_pairs), data_dir


def _position_markdown(curves: PositionCurves, data_dir: Path) -> list[str]:
    correlations = curves.spearman()
    lines = [f"## Position curves of {data_dir}", "",
             "| curves | spearman |", "|---|---:|",
             f"| raw click rate vs adjacent swaps | {_format(correlations['click_rate_vs_swap'])} |"]
    for label, values in correlations["runs"].items():
        lines += [f"| {label} (learned) vs adjacent swaps | {_format(values['learned_vs_swap'])} |",
                  f"| {label} (learned) vs raw click rate | {_format(values['learned_vs_click_rate'])} |"]
    return [*lines, "", f"![position_curves]({POSITION_PLOT_FILE})", ""]
