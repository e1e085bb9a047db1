"""Position curves of a logged ranking with real positions (e.g. Trivago): the raw click rate, the examination
curve harvested from adjacent swaps, and a trained bias tower's learned curve, side by side.

* ``click_rate_by_position``: clicks / impressions at each position. It mixes examination with relevance: a
  logging policy that puts the relevant items on top makes it fall faster than the examination does.
* ``swap_curve``: the relative examination p(k+1) / p(k) of each pair of adjacent positions, estimated from the
  items the log shows at both k and k+1 (in different lists), chained from position 0 (see its docstring).
* ``position_curves``: both and the learned curves of runs (``bias_validation.position_curve`` of each run's
  bias tower, read through ``run_position_curve``), every curve as a log curve aligned at position 0, with the
  Spearman correlations between them; ``write_position_curves`` writes the JSON and the PNG.

Input: impressions in the impressions contract (``product_id``, ``position`` 0 = top, ``click`` 0/1), or the
ranking rows of a ``t4r-dmt preprocess`` output (``read_ranking_impressions``: ``position = position_index - 1``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from t4r_dmt.analysis.bias_plot import aligned_log_curve, plot_position_curves
from t4r_dmt.analysis.bias_validation import spearman
from t4r_dmt.io_utils import nan_to_none, write_json

IMPRESSION_COLUMNS = ("product_id", "position", "click")
MIN_PAIRS = 20
"""Default of ``min_pairs``: the informative items (see ``swap_curve``) a pair of adjacent positions needs."""
MIN_SPEARMAN_POSITIONS = 3
POSITION_CURVES_FILE = "position_curves.json"
POSITION_PLOT_FILE = "position_curves.png"


def _check_impressions(impressions: pd.DataFrame) -> None:
    missing = [c for c in IMPRESSION_COLUMNS if c not in impressions.columns]
    if missing:
        raise ValueError(f"position curves: the impressions have no {missing[0]!r} column (need "
                         f"{', '.join(IMPRESSION_COLUMNS)}; position 0 = top of the list)")
    if len(impressions) and int(impressions["position"].min()) < 0:
        raise ValueError("position curves: 'position' must be >= 0 (0 = top of the list)")


def _counts(impressions: pd.DataFrame, n_positions: int) -> tuple[np.ndarray, np.ndarray]:
    """Impressions and clicks per position 0..P-1: (P,), (P,) float64 (deeper positions are left out)."""
    position = impressions["position"].to_numpy(dtype=np.int64)
    keep = position < n_positions
    shown = np.bincount(position[keep], minlength=n_positions).astype(np.float64)
    clicks = np.bincount(position[keep], weights=impressions["click"].to_numpy(dtype=np.float64)[keep],
                         minlength=n_positions)
    return shown, clicks


def click_rate_by_position(impressions: pd.DataFrame, n_positions: int) -> tuple[np.ndarray, np.ndarray]:
    """Clicks / impressions at each position 0..P-1, and the impressions: (P,) float64, (P,) int64.

    A position never shown has rate NaN (no division by zero).

    Raises
    ------
    ValueError: a column of ``IMPRESSION_COLUMNS`` is missing (named), or a position is negative.
    """
    _check_impressions(impressions)
    shown, clicks = _counts(impressions, n_positions)
    rate = np.full(n_positions, np.nan)
    np.divide(clicks, shown, out=rate, where=shown > 0)
    return rate, shown.astype(np.int64)


@dataclass(frozen=True)
class SwapCurve:
    """The examination curve harvested from adjacent swaps.

    ``log_curve`` (P,): log p(k) - log p(0), NaN from the first pair without enough evidence on;
    ``ratio`` (P-1,): p(k+1) / p(k), NaN where not estimated; ``pairs`` (P-1,): the informative items of each
    pair of adjacent positions (shown at both, clicked at either).
    """

    log_curve: np.ndarray
    ratio: np.ndarray
    pairs: np.ndarray


def swap_curve(impressions: pd.DataFrame, n_positions: int, min_pairs: int = MIN_PAIRS) -> SwapCurve:
    """Relative examination per position from the items shown at adjacent positions in different lists.

    Intervention harvesting (Agarwal, Zaitsev, Wang, Li, Najork, Joachims, "Estimating Position Bias without
    Intrusive Interventions", WSDM 2019): when the logged lists change order between requests, one item shown
    at position k in some lists and at k+1 in others is a natural swap intervention (Joachims, Swaminathan,
    Schnabel, "Unbiased Learning-to-Rank with Biased Feedback", WSDM 2017) with its relevance held fixed. Under
    the examination hypothesis P(click | item d, position k) = p(k) r(d), the click rate of d at k+1 over that
    at k is p(k+1) / p(k) whatever r(d). The per-item rates rest on one or two impressions each, so they are
    pooled with the Mantel-Haenszel estimator of a common risk ratio over the item strata (Mantel and Haenszel,
    JNCI 1959; Greenland and Robins, Biometrics 1985), consistent when the strata stay small::

        p(k+1) / p(k) = sum_d c1(d) n0(d) / (n0(d) + n1(d))  /  sum_d c0(d) n1(d) / (n0(d) + n1(d))

    over the items d shown at both k (n0 impressions, c0 clicks) and k+1 (n1, c1). The chained log ratios
    give ``log p(k) - log p(0)``. It assumes an item's relevance does not depend on which of the two positions a
    list gave it; a policy that moves an item up for the users who like it (a sort order, a filter) breaks that,
    and the ratio then mixes in relevance, as the raw click rate does, though far less.

    Parameters
    ----------
    impressions: ``product_id``, ``position`` (0 = top), ``click`` (N rows).
    n_positions: P, the positions 0..P-1 of the curve.
    min_pairs: a pair (k, k+1) is estimated only from at least this many informative items (shown at both
        positions and clicked at least once at either); else its ratio is NaN, as is one with no click at k or
        k+1, and the curve is NaN from k+1 on.

    Raises
    ------
    ValueError: a column is missing (named), a position is negative, ``n_positions < 1`` or ``min_pairs < 1``.
    """
    _check_impressions(impressions)
    if n_positions < 1 or min_pairs < 1:
        raise ValueError(f"swap_curve needs n_positions >= 1 and min_pairs >= 1; got {n_positions}, {min_pairs}")
    frame = impressions.loc[impressions["position"] < n_positions, list(IMPRESSION_COLUMNS)]
    counts = frame.groupby(["product_id", "position"])["click"].agg(["size", "sum"])
    shown = counts["size"].unstack(fill_value=0).reindex(columns=range(n_positions), fill_value=0)
    clicks = counts["sum"].unstack(fill_value=0).reindex(columns=range(n_positions), fill_value=0)
    n, c = shown.to_numpy(dtype=np.float64), clicks.to_numpy(dtype=np.float64)  # (D, P) items x positions
    ratio = np.full(max(n_positions - 1, 0), np.nan)
    pairs = np.zeros(max(n_positions - 1, 0), dtype=np.int64)
    for k in range(n_positions - 1):
        n0, n1, c0, c1 = n[:, k], n[:, k + 1], c[:, k], c[:, k + 1]
        both = (n0 > 0) & (n1 > 0)
        pairs[k] = int(np.count_nonzero(both & (c0 + c1 > 0)))
        total = np.where(both, n0 + n1, 1.0)
        numerator = float(np.sum(np.where(both, c1 * n0 / total, 0.0)))
        denominator = float(np.sum(np.where(both, c0 * n1 / total, 0.0)))
        if pairs[k] >= min_pairs and numerator > 0 and denominator > 0:
            ratio[k] = numerator / denominator
    log_curve = np.concatenate([[0.0], np.cumsum(np.log(ratio))]) if n_positions > 1 else np.zeros(1)
    return SwapCurve(log_curve=log_curve, ratio=ratio, pairs=pairs)


def finite_spearman(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray) -> float:
    """``spearman`` of two (P,) curves over the positions where both are finite; NaN with fewer than 3."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    both = np.isfinite(a) & np.isfinite(b)
    if np.count_nonzero(both) < MIN_SPEARMAN_POSITIONS:
        return float("nan")
    return spearman(a[both], b[both])


def _log_aligned(curve: np.ndarray) -> np.ndarray:
    """log(curve) - log(curve[0]) with NaN where a rate is 0 or unknown (no log of 0); (P,) -> (P,)."""
    values = np.asarray(curve, dtype=np.float64)
    positive = np.where(values > 0, values, np.nan)
    if not np.isfinite(positive[0]):
        return np.full(len(values), np.nan)
    return aligned_log_curve(positive, log=True)


@dataclass
class PositionCurves:
    """The three curves of one logged ranking, each as log examination aligned at position 0 (P,).

    ``click_rate``: raw clicks / impressions per position; ``impressions``: per position; ``swap``:
    ``SwapCurve``; ``learned``: run label -> the bias tower's curve (runs without a tower left out);
    ``min_pairs``: as in ``swap_curve``.
    """

    click_rate: np.ndarray
    impressions: np.ndarray
    swap: SwapCurve
    min_pairs: int
    learned: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def click_rate_log(self) -> np.ndarray:
        return _log_aligned(self.click_rate)

    def spearman(self) -> dict[str, Any]:
        """Spearman between the curves over the positions where both are finite: ``click_rate_vs_swap`` and,
        per run, ``learned_vs_swap`` / ``learned_vs_click_rate``."""
        runs = {label: {"learned_vs_swap": finite_spearman(curve, self.swap.log_curve),
                        "learned_vs_click_rate": finite_spearman(curve, self.click_rate_log)}
                for label, curve in self.learned.items()}
        return {"click_rate_vs_swap": finite_spearman(self.click_rate_log, self.swap.log_curve), "runs": runs}

    def to_dict(self) -> dict[str, Any]:
        return {
            "positions": list(range(len(self.click_rate))), "min_pairs": self.min_pairs,
            "impressions": [int(v) for v in self.impressions], "click_rate": _floats(self.click_rate),
            "click_rate_log": _floats(self.click_rate_log), "swap_log": _floats(self.swap.log_curve),
            "swap_ratio": _floats(self.swap.ratio), "swap_pairs": [int(v) for v in self.swap.pairs],
            "learned_log": {label: _floats(curve) for label, curve in self.learned.items()},
            "spearman": self.spearman(),
        }


def _floats(values: np.ndarray) -> list[float]:
    return [float(v) for v in values]


def position_curves(impressions: pd.DataFrame, n_positions: int, learned: Mapping[str, np.ndarray] | None = None,
                    min_pairs: int = MIN_PAIRS) -> PositionCurves:
    """The raw click rate, the swap curve and the learned curves (each (P,) log examination, aligned at 0 here;
    one with a NaN, from a run without a bias tower, is left out)."""
    rate, shown = click_rate_by_position(impressions, n_positions)
    curves = {}
    for label, curve in (learned or {}).items():
        values = np.asarray(curve, dtype=np.float64)
        if len(values) != n_positions:
            raise ValueError(f"{label}: learned curve has {len(values)} positions, expected {n_positions}")
        if not np.isnan(values).any():
            curves[label] = aligned_log_curve(values)
    return PositionCurves(click_rate=rate, impressions=shown, swap=swap_curve(impressions, n_positions, min_pairs),
                          min_pairs=min_pairs, learned=curves)


def read_ranking_impressions(data_dir: str | os.PathLike[str]) -> pd.DataFrame:
    """``product_id``, ``position``, ``click`` of every ranking row of a ``t4r-dmt preprocess`` output (each
    window's ``train.parquet``, which holds all its rows); ``position = position_index - 1``.

    Raises
    ------
    ValueError: the rows have no ``position_index`` (data without list positions: sampled negatives).
    """
    import pyarrow.parquet as pq

    from t4r_dmt.schema import POSITION_INDEX
    from t4r_dmt.windows import list_windows, window_path

    task_dir = Path(data_dir) / "ranking"
    frames = []
    for window in list_windows(task_dir):
        path = window_path(task_dir, window, "train")
        names = pq.read_schema(path).names
        missing = [c for c in ("product_id", POSITION_INDEX, "click") if c not in names]
        if missing:
            raise ValueError(f"position curves: {path} has no {missing[0]!r} column (position curves need an "
                             "impression log with list positions, not sampled negatives)")
        frames.append(pd.read_parquet(path, columns=["product_id", POSITION_INDEX, "click"]))
    rows = pd.concat(frames, ignore_index=True)
    return pd.DataFrame({"product_id": rows["product_id"], "position": rows[POSITION_INDEX] - 1,
                         "click": rows["click"]})


def write_position_curves(curves: PositionCurves, out_dir: str | os.PathLike[str],
                          extra: Mapping[str, Any] | None = None) -> tuple[Path, Path]:
    """``out_dir/position_curves.json`` (``PositionCurves.to_dict`` and ``extra``; NaN as null) and
    ``out_dir/position_curves.png``, both written atomically; returns their paths."""
    out = Path(out_dir)
    write_json(out / POSITION_CURVES_FILE, nan_to_none({**(extra or {}), **curves.to_dict()}))
    reference = {"raw click rate": curves.click_rate_log,
                 f"adjacent swaps (>= {curves.min_pairs} items a pair)": curves.swap.log_curve}
    plot = plot_position_curves(reference, {f"learned: {label}": c for label, c in curves.learned.items()},
                                out / POSITION_PLOT_FILE)
    return out / POSITION_CURVES_FILE, plot
