"""Analyses of trained runs against the planted truth of synthetic data (``t4r-dmt synth``'s ``truth/``)."""

from __future__ import annotations

from t4r_dmt.analysis.bias_plot import plot_bias_curves
from t4r_dmt.analysis.bias_validation import (
    BiasValidation,
    compare_runs,
    comparison,
    load_bias_curve,
    max_log_ratio,
    position_curve,
    promoted_overrating,
    relevance_ndcg,
    spearman,
    validate_run,
)

__all__ = ["BiasValidation", "compare_runs", "comparison", "load_bias_curve", "max_log_ratio", "plot_bias_curves",
           "position_curve", "promoted_overrating", "relevance_ndcg", "spearman", "validate_run"]
