"""The planted ground truth: bias curve, per-impression probabilities and the reference AUCs.

``oracle`` scores the last day (the evaluation day of a time-window protocol) with the planted
probabilities and with a popularity baseline (item click-through rate over the earlier days), so a
trained model's ``auc_click`` can be placed between "popularity" and "knows the truth".
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from t4r_dmt.io_utils import nan_to_none

POPULARITY_PRIOR = 20.0  # impressions of smoothing towards the global click rate


@dataclass(frozen=True)
class Truth:
    """bias_curve (list_length,); impressions: one row per impression (see ``truth_frame``); oracle: AUCs;
    item_latent: the items' latent vectors (see ``item_latent_frame``), only when ``w_latent > 0``;
    promoted_items: the promoted items' product_id (see ``promoted_frame``), only under policy "promotion"."""

    bias_curve: np.ndarray
    impressions: pd.DataFrame
    oracle: dict[str, Any]
    item_latent: pd.DataFrame | None = None
    promoted_items: pd.DataFrame | None = None


def auc(label: np.ndarray, score: np.ndarray) -> float:
    """ROC AUC (``sklearn.metrics.roc_auc_score``; ties count one half): (N,) 0/1, (N,) -> float; NaN if one
    class only (where sklearn raises)."""
    from sklearn.metrics import roc_auc_score

    label = np.asarray(label).astype(bool)
    if label.all() or not label.any():
        return math.nan
    return float(roc_auc_score(label, score))


def popularity_scores(train_item: np.ndarray, train_click: np.ndarray, eval_item: np.ndarray,
                      n_items: int) -> np.ndarray:
    """Smoothed item click-through rate of the training impressions for each eval impression: (M,)."""
    shown = np.bincount(train_item, minlength=n_items)
    clicked = np.bincount(train_item, weights=train_click.astype(np.float64), minlength=n_items)
    prior = train_click.mean() if len(train_click) else 0.0
    return np.asarray(((clicked + POPULARITY_PRIOR * prior) / (shown + POPULARITY_PRIOR))[eval_item])


def oracle_summary(day: np.ndarray, item: np.ndarray, position: np.ndarray, click: np.ndarray,
                   order: np.ndarray, p_click: np.ndarray, p_click_relevance: np.ndarray,
                   p_order: np.ndarray, p_order_given_click: np.ndarray, n_items: int,
                   n_days: int) -> dict[str, Any]:
    """Realised rates and reference AUCs; every argument is per impression (N,) except the counts.

    The ``auc_*`` keys are measured on the last day; ``all_days`` repeats the planted ones on all days.
    ``auc_click_popularity`` is NaN (written as null) when there is a single day. The relevance oracles score
    without the position effect, as a served (position-blind) score must: ``p_click_relevance`` for clicks and
    ``p_click_relevance * p_order_given_click`` (the order probability of an examined item) for orders.
    """
    p_order_relevance = p_click_relevance * p_order_given_click
    last = day == n_days - 1
    earlier = day < n_days - 1
    popularity = popularity_scores(item[earlier], click[earlier], item[last], n_items)
    summary: dict[str, Any] = {
        "eval_day_index": n_days - 1,
        "n_impressions": len(click),
        "n_eval_impressions": int(last.sum()),
        "click_rate": float(click.mean()),
        "order_rate": float(order.mean()),
        "order_per_click": float(order.sum() / max(click.sum(), 1)),
        "auc_click_oracle": auc(click[last], p_click[last]),
        "auc_click_relevance_oracle": auc(click[last], p_click_relevance[last]),
        "auc_click_popularity": auc(click[last], popularity) if earlier.any() else math.nan,
        "auc_click_position": auc(click[last], -position[last]),
        "auc_order_oracle": auc(order[last], p_order[last]),
        "auc_order_relevance_oracle": auc(order[last], p_order_relevance[last]),
        "all_days": {
            "auc_click_oracle": auc(click, p_click),
            "auc_click_relevance_oracle": auc(click, p_click_relevance),
            "auc_order_oracle": auc(order, p_order),
            "auc_order_relevance_oracle": auc(order, p_order_relevance),
        },
    }
    return nan_to_none(summary)


