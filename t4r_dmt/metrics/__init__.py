"""Evaluation metrics computed over whole evaluation windows.

``ranking`` (numpy / scikit-learn only) is imported here; ``next_item`` imports torch and
Transformers4Rec, so import it explicitly: ``from t4r_dmt.metrics.next_item import next_item_metrics``.
"""

from __future__ import annotations

from t4r_dmt.metrics.names import NEXT_ITEM_METRICS, RANKING_METRICS, higher_is_better, is_known_metric
from t4r_dmt.metrics.ranking import auc, gauc, logloss, ndcg_at_k, ranking_metrics, recall_at_k

__all__ = [
    "NEXT_ITEM_METRICS",
    "RANKING_METRICS",
    "auc",
    "gauc",
    "higher_is_better",
    "is_known_metric",
    "logloss",
    "ndcg_at_k",
    "ranking_metrics",
    "recall_at_k",
]
