"""Analyses of trained runs against the planted truth of synthetic data (``t4r-dmt synth``'s ``truth/``)."""

from __future__ import annotations

from t4r_dmt.analysis.bias_validation import (
    BiasValidation,
    load_bias_curve,
    position_curve,
    relevance_ndcg,
    spearman,
    validate_run,
)

__all__ = ["BiasValidation", "load_bias_curve", "position_curve", "relevance_ndcg", "spearman", "validate_run"]
