"""Summaries over seeds for the results tables: mean ± sample std, and the DMT paper's RelaImpr."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample std (n - 1) of the non-NaN values: std 0 for one value; ``(nan, nan)`` for none."""
    finite = [float(v) for v in values if not math.isnan(v)]
    if not finite:
        return math.nan, math.nan
    return statistics.fmean(finite), (statistics.stdev(finite) if len(finite) > 1 else 0.0)


def relaimpr(auc: float, base: float) -> float:
    """RelaImpr in percent (Yan et al. 2014, as the DMT paper reports it): ``((auc - 0.5) / (base - 0.5) - 1) * 100``;
    NaN when either AUC is NaN or the base is 0.5 (no lift to compare against)."""
    if math.isnan(auc) or math.isnan(base) or base == 0.5:
        return math.nan
    return ((auc - 0.5) / (base - 0.5) - 1.0) * 100.0
