"""Analyses of trained runs: against the planted truth of synthetic data (``t4r-dmt synth``'s ``truth/``), and
the position curves of a log with real positions (raw click rate, adjacent swaps, the learned curve)."""

from __future__ import annotations

from t4r_dmt.analysis.bias_plot import plot_bias_curves, plot_position_curves
from t4r_dmt.analysis.bias_validation import (
    BiasValidation,
    compare_runs,
    comparison,
    fitted_curve,
    load_bias_curve,
    max_log_ratio,
    position_curve,
    promoted_overrating,
    relevance_auc,
    relevance_ndcg,
    run_position_curve,
    spearman,
    validate_run,
)
from t4r_dmt.analysis.position_curves import (
    PositionCurves,
    SwapCurve,
    click_rate_by_position,
    position_curves,
    swap_curve,
)

__all__ = ["BiasValidation", "PositionCurves", "SwapCurve", "click_rate_by_position", "compare_runs", "comparison",
           "fitted_curve", "load_bias_curve", "max_log_ratio", "plot_bias_curves", "plot_position_curves",
           "position_curve", "position_curves", "promoted_overrating", "relevance_auc", "relevance_ndcg",
           "run_position_curve", "spearman", "swap_curve", "validate_run"]
