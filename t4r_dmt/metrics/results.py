"""The results of a training run: ``RUN/metrics.json``, ``RUN/metrics.csv`` and ``RUN/plots/*.png``.

``metrics.json`` (DESIGN.md)::

    {"task": "ranking" | "next-item", "model": "<preset>", "config": {...},
     "windows": [{"train_window": 1, "eval_window": 2, "n_rows": ..., ["epochs": ...,] "<metric>": ...}, ...],
     "average": {"<metric>": ...}}

``epochs`` (only in runs with ``--early_stopping_tail``) is a fact of the window's training, not a metric: the
epochs the held-out tail of the training window chose; it is not averaged or plotted.

A metric that is undefined on a window (NaN in memory, e.g. AUC of a window without an order) is
written as JSON ``null`` (NaN is not valid JSON) and read back as NaN. ``average`` is the mean over
windows ignoring NaN (NaN when every window is NaN). ``metrics.csv`` has one row per window: the three
window keys, the training facts of the run (``epochs``), then the metrics; undefined values are empty cells.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from t4r_dmt.errors import InputError
from t4r_dmt.io_utils import atomic_path, write_json
from t4r_dmt.metrics.names import TASKS, higher_is_better, is_known_metric, metric_sort_key

__all__ = [
    "METRICS_CSV",
    "METRICS_JSON",
    "RunResults",
    "metric_file_stem",
    "plot_metric",
    "plot_windows",
    "validate_metrics_json",
]

METRICS_JSON = "metrics.json"
METRICS_CSV = "metrics.csv"
WINDOW_KEYS: tuple[str, ...] = ("train_window", "eval_window", "n_rows")
#: Optional integer facts of a window's training (>= 1), recorded beside the metrics but never averaged.
FACT_KEYS: tuple[str, ...] = ("epochs",)
TOP_KEYS: tuple[str, ...] = ("task", "model", "config", "windows", "average")


def _is_int(value: Any) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool | np.bool_)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float | np.integer | np.floating) and not isinstance(value, bool | np.bool_)


def _nan_mean(values: Sequence[float]) -> float:
    finite = [v for v in values if not math.isnan(v)]
    return float(np.mean(finite)) if finite else float("nan")


def _check_window(window: Mapping[str, Any], task: str, index: int, source: str) -> None:
    """Raise InputError unless ``window`` is one valid entry of ``windows`` (JSON null or NaN allowed)."""
    if not isinstance(window, Mapping):
        raise InputError(source, "each entry of 'windows' must be an object", column="windows", row=index,
                         value=window)
    for key in WINDOW_KEYS:
        if key not in window:
            raise InputError(source, f"missing key '{key}'", column="windows", row=index)
        value = window[key]
        minimum = 0 if key == "n_rows" else 1
        if not _is_int(value) or value < minimum:
            raise InputError(source, f"must be an integer >= {minimum}", column=key, row=index, value=value)
    for key in FACT_KEYS:
        if key in window and (not _is_int(window[key]) or window[key] < 1):
            raise InputError(source, "must be an integer >= 1", column=key, row=index, value=window[key])
    for name, value in window.items():
        if name in WINDOW_KEYS or name in FACT_KEYS:
            continue
        if not is_known_metric(name, task):
            raise InputError(source, f"unknown metric name for task '{task}'", column=name, row=index)
        if value is not None and not _is_number(value):
            raise InputError(source, "a metric must be a number or null", column=name, row=index, value=value)


def validate_metrics_json(obj: Any, source: str = METRICS_JSON) -> None:
    """Check a parsed ``metrics.json`` against the contract; raise ``InputError`` (a ValueError) if not.

    Checks: the five top-level keys and no other; ``task`` one of the tasks; ``model`` a non-empty string;
    ``config`` an object; every window has integer ``train_window``, ``eval_window`` (>= 1) and ``n_rows``
    (>= 0), an optional integer ``epochs`` (>= 1), and only known metric names for the task, with numbers or
    null; ``average`` names exactly the
    metrics of the windows, each equal to their mean ignoring null.

    Parameters
    ----------
    obj: the object ``json.load`` returned.
    source: the file name to put in error messages.
    """
    if not isinstance(obj, Mapping):
        raise InputError(source, "must hold a JSON object", value=type(obj).__name__)
    missing = [key for key in TOP_KEYS if key not in obj]
    if missing:
        raise InputError(source, f"missing key(s) {missing}")
    unknown = sorted(set(obj) - set(TOP_KEYS))
    if unknown:
        raise InputError(source, f"unknown key(s) {unknown}; allowed: {list(TOP_KEYS)}")
    task = obj["task"]
    if task not in TASKS:
        raise InputError(source, f"'task' must be one of {list(TASKS)}", column="task", value=task)
    if not isinstance(obj["model"], str) or not obj["model"]:
        raise InputError(source, "'model' must be a non-empty string", column="model", value=obj["model"])
    if not isinstance(obj["config"], Mapping):
        raise InputError(source, "'config' must be an object", column="config", value=obj["config"])
    windows = obj["windows"]
    if not isinstance(windows, list):
        raise InputError(source, "'windows' must be a list", column="windows", value=type(windows).__name__)
    for index, window in enumerate(windows):
        _check_window(window, task, index, source)
    average = obj["average"]
    if not isinstance(average, Mapping):
        raise InputError(source, "'average' must be an object", column="average", value=average)
    names = {name for window in windows for name in window if name not in WINDOW_KEYS + FACT_KEYS}
    if set(average) != names:
        raise InputError(source, f"'average' must name exactly the window metrics {sorted(names)}",
                         column="average", value=sorted(average))
    for name in sorted(names):
        value = average[name]
        if value is not None and not _is_number(value):
            raise InputError(source, "a metric must be a number or null", column=f"average.{name}", value=value)
        expected = _nan_mean([_to_float(window.get(name)) for window in windows])
        got = _to_float(value)
        if not (math.isnan(expected) and math.isnan(got)) and not math.isclose(got, expected, rel_tol=1e-9,
                                                                                 abs_tol=1e-12):
            raise InputError(source, f"average does not match the windows' mean {expected!r}",
                             column=f"average.{name}", value=value)


def _to_float(value: Any) -> float:
    return float("nan") if value is None else float(value)


def _to_json_value(value: float) -> float | None:
    return None if math.isnan(value) else value


@dataclass
class RunResults:
    """Metrics of one run, window by window.

    Attributes
    ----------
    task: "ranking" or "next-item".
    model: preset name (e.g. "dmt").
    config: the run's configuration (JSON-serialisable).
    windows: one dict per evaluated window: ``train_window``, ``eval_window``, ``n_rows`` and one float
        per metric (NaN when undefined). Append with ``add_window``.
    """

    task: str
    model: str
    config: dict[str, Any] = field(default_factory=dict)
    windows: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise ValueError(f"task must be one of {list(TASKS)}, got {self.task!r}")
        if not isinstance(self.model, str) or not self.model:
            raise ValueError(f"model must be a non-empty string, got {self.model!r}")
        if not isinstance(self.config, dict):
            raise ValueError(f"config must be a dict, got {type(self.config).__name__}")
        for index, window in enumerate(self.windows):
            _check_window(window, self.task, index, "RunResults")

    def add_window(self, train_window: int, eval_window: int, n_rows: int,
                   metrics: Mapping[str, float]) -> dict[str, Any]:
        """Validate and append the metrics of one evaluation window; return the stored entry."""
        window: dict[str, Any] = {"train_window": train_window, "eval_window": eval_window, "n_rows": n_rows}
        clash = sorted(set(metrics) & set(WINDOW_KEYS + FACT_KEYS))
        if clash:
            raise ValueError(f"metric names clash with window keys: {clash}")
        window.update({name: float(value) for name, value in metrics.items()})
        _check_window(window, self.task, len(self.windows), "RunResults")
        self.windows.append(window)
        return window

    @property
    def metric_names(self) -> list[str]:
        """Every metric of any window, in the contract's order."""
        names = {name for window in self.windows for name in window if name not in WINDOW_KEYS + FACT_KEYS}
        return sorted(names, key=metric_sort_key)

    @property
    def fact_names(self) -> list[str]:
        """The training facts (``FACT_KEYS``) any window records, in that order."""
        return [key for key in FACT_KEYS if any(key in window for window in self.windows)]

    @property
    def average(self) -> dict[str, float]:
        """Mean of each metric over the windows, ignoring NaN (NaN if no window has a value)."""
        return {name: _nan_mean([float(w.get(name, float("nan"))) for w in self.windows])
                for name in self.metric_names}

    def to_json(self) -> dict[str, Any]:
        """The ``metrics.json`` object (NaN written as None)."""
        windows = [{key: (int(value) if key in WINDOW_KEYS + FACT_KEYS else _to_json_value(float(value)))
                    for key, value in window.items()} for window in self.windows]
        average = {name: _to_json_value(value) for name, value in self.average.items()}
        return {"task": self.task, "model": self.model, "config": self.config, "windows": windows,
                "average": average}

    @classmethod
    def from_json(cls, obj: Any, source: str = METRICS_JSON) -> RunResults:
        """Build from a parsed ``metrics.json`` after ``validate_metrics_json`` (None read as NaN)."""
        validate_metrics_json(obj, source)
        windows = [{key: (value if key in WINDOW_KEYS + FACT_KEYS else _to_float(value))
                    for key, value in window.items()} for window in obj["windows"]]
        return cls(task=obj["task"], model=obj["model"], config=dict(obj["config"]), windows=windows)

    def to_frame(self) -> pd.DataFrame:
        """One row per window: ``train_window``, ``eval_window``, ``n_rows``, the facts, then the metrics."""
        columns = [*WINDOW_KEYS, *self.fact_names, *self.metric_names]
        return pd.DataFrame(self.windows, columns=columns)

    def write(self, run_dir: str | os.PathLike[str]) -> dict[str, Path]:
        """Write ``run_dir/metrics.json`` and ``run_dir/metrics.csv``, each atomically; return their paths."""
        run = Path(run_dir)
        obj = self.to_json()
        validate_metrics_json(obj, str(run / METRICS_JSON))
        write_json(run / METRICS_JSON, obj)
        with atomic_path(run / METRICS_CSV) as tmp:
            self.to_frame().to_csv(tmp, index=False, na_rep="")
        return {"json": run / METRICS_JSON, "csv": run / METRICS_CSV}

    @classmethod
    def load(cls, run_dir: str | os.PathLike[str]) -> RunResults:
        """Read and validate ``run_dir/metrics.json``.

        Raises
        ------
        FileNotFoundError: the run folder or its metrics.json does not exist.
        InputError (a ValueError): the file is not JSON or breaks the contract.
        """
        run = Path(run_dir)
        if not run.is_dir():
            raise FileNotFoundError(f"run folder {run} does not exist")
        path = run / METRICS_JSON
        if not path.is_file():
            raise FileNotFoundError(f"run folder {run} has no {METRICS_JSON} (did its training finish?)")
        try:
            obj = json.loads(path.read_text())
        except json.JSONDecodeError as err:
            raise InputError(str(path), f"not valid JSON: {err.msg}", row=err.lineno) from err
        return cls.from_json(obj, str(path))


# --------------------------------------------------------------------------------------------------
# Plots
# --------------------------------------------------------------------------------------------------
def metric_file_stem(name: str) -> str:
    """A file-name-safe form of a metric name: ``"ndcg@10"`` -> ``"ndcg_at_10"``."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name.replace("@", "_at_"))


def plot_metric(metric: str, lines: Mapping[str, tuple[Sequence[int], Sequence[float]]], path: str | os.PathLike[str],
                averages: Mapping[str, float] | None = None) -> Path:
    """Draw one metric per evaluation window, one line per series, and save it atomically as PNG.

    Parameters
    ----------
    metric: the metric name (title and y label).
    lines: label -> (eval windows, values); NaN values leave a gap.
    path: the PNG file to write.
    averages: label -> average, drawn as a dashed horizontal line in the series' colour (skipped if NaN).
    """
    # The object-oriented API with an explicit Agg canvas: no pyplot global state, no display needed.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(6.4, 4.0), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    for label, (x, y) in lines.items():
        (line,) = axes.plot(list(x), [float(v) for v in y], marker="o", label=label)
        average = (averages or {}).get(label, float("nan"))
        if not math.isnan(average):
            axes.axhline(average, linestyle="--", color=line.get_color(), label=f"{label} average {average:.4f}")
    direction = "higher is better" if higher_is_better(metric) else "lower is better"
    axes.set_title(f"{metric} per evaluation window ({direction})")
    axes.set_xlabel("evaluation window")
    axes.set_ylabel(metric)
    return save_line_figure(figure, axes, path)


def save_line_figure(figure: Any, axes: Any, path: str | os.PathLike[str]) -> Path:
    """Finish a line plot (grid, integer x ticks, legend, tight layout) and write it as a PNG, atomically."""
    from matplotlib.ticker import MaxNLocator

    axes.grid(alpha=0.3)
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes.legend(fontsize="small")
    figure.tight_layout()
    target = Path(path)
    with atomic_path(target) as tmp:
        figure.savefig(tmp, format="png")
    return target


def plot_windows(results: RunResults, out_dir: str | os.PathLike[str]) -> list[Path]:
    """Write ``out_dir/<metric>.png`` for every metric of one run (the run writes them to ``RUN/plots``).

    Each plot shows the metric per evaluation window and its average as a dashed line. File names go
    through ``metric_file_stem`` (``ndcg@10`` -> ``ndcg_at_10.png``). Returns the written paths.
    """
    out = Path(out_dir)
    x = [int(window["eval_window"]) for window in results.windows]
    average = results.average
    paths = []
    for metric in results.metric_names:
        y = [float(window.get(metric, float("nan"))) for window in results.windows]
        paths.append(plot_metric(metric, {results.model: (x, y)}, out / f"{metric_file_stem(metric)}.png",
                                 averages={results.model: average[metric]}))
    return paths
