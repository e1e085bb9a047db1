"""``plot_bias_curves``: learned log-examination curves against the planted one; ``plot_position_curves``: against
the curves measured from a log (raw click rate, adjacent swaps). Every curve aligned at position 0."""

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


def plot_position_curves(reference: Mapping[str, Sequence[float] | np.ndarray],
                         learned: Mapping[str, Sequence[float] | np.ndarray], path: str | os.PathLike[str]) -> Path:
    """Draw log-examination curves of one logged ranking per position; save it atomically as PNG.

    Parameters
    ----------
    reference: label -> (P,) a curve measured from the log (the raw click rate, the swap estimate), already in
        log space and aligned at position 0; drawn dashed. A NaN leaves a gap (a position not estimated).
    learned: run label -> (P,) a bias tower's learned curve, aligned at position 0; drawn solid.
    path: the PNG file to write.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    lengths = {len(curve) for curve in (*reference.values(), *learned.values())}
    if len(lengths) != 1:
        raise ValueError(f"position curves must have one length; got lengths {sorted(lengths)}")
    figure = Figure(figsize=(6.4, 4.0), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    positions = np.arange(lengths.pop())
    for label, curve in reference.items():
        axes.plot(positions, np.asarray(curve, dtype=np.float64), linestyle="--", marker="o", label=label)
    for label, curve in learned.items():
        axes.plot(positions, np.asarray(curve, dtype=np.float64), marker="s", label=label)
    axes.set_title("log examination per position, aligned at position 0")
    axes.set_xlabel("position (0 = top)")
    axes.set_ylabel("log examination - its value at position 0")
    return save_line_figure(figure, axes, path)
