"""``plot_bias_curves``: learned log-examination curves against the planted one, aligned at position 0."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from t4r_dmt.metrics.results import save_line_figure


def aligned_log_curve(curve: Sequence[float] | np.ndarray, log: bool = False) -> np.ndarray:
    """A curve in log space minus its value at position 0: (P,) -> (P,); ``log`` takes the log first."""
    values = np.asarray(curve, dtype=np.float64)
    if log:
        values = np.log(values)
    return np.asarray(values - values[0])


def plot_bias_curves(learned: Mapping[str, Sequence[float]], planted: Sequence[float] | np.ndarray,
                     path: str | os.PathLike[str]) -> Path:
    """Draw each run's learned log examination and the planted one per position; save it atomically as PNG.

    Parameters
    ----------
    learned: run label -> (P,) learned log examination per position (``BiasValidation.learned_curve``); a
        curve with a NaN (a run without a bias tower) is left out.
    planted: (P,) the planted examination probability (``truth/bias_curve.json``), drawn as its log.
    path: the PNG file to write.

    Every curve is shifted to 0 at position 0: the tower's level is not identifiable from the relevance's.
    """
    # The object-oriented API with an explicit Agg canvas, as t4r_dmt.metrics.results.plot_metric.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(6.4, 4.0), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    positions = np.arange(len(planted))
    axes.plot(positions, aligned_log_curve(planted, log=True), color="black", linestyle="--", marker="o",
              label="planted")
    for label, curve in learned.items():
        values = np.asarray(curve, dtype=np.float64)
        if len(values) != len(positions):
            raise ValueError(f"{label}: learned curve has {len(values)} positions, the planted one {len(positions)}")
        if np.isnan(values).any():
            continue
        axes.plot(positions, aligned_log_curve(values), marker="o", label=label)
    axes.set_title("log examination per position, aligned at position 0")
    axes.set_xlabel("position (0 = top)")
    axes.set_ylabel("log examination - its value at position 0")
    return save_line_figure(figure, axes, path)
