"""Metric names of the ``metrics.json`` contract (DESIGN.md) and which way each one improves."""

from __future__ import annotations

import re

from t4r_dmt.schema import TASKS

# The default names, in the order tables and plots show them.
RANKING_METRICS: tuple[str, ...] = (
    "auc_click",
    "auc_order",
    "gauc_click",
    "gauc_order",
    "logloss_click",
    "logloss_order",
    "ndcg@10",
    "recall@10",
)
NEXT_ITEM_METRICS: tuple[str, ...] = ("ndcg@20", "recall@20", "mrr@20")

# The cut-off of the @K metrics is a parameter, so any K is a known name.
_FIXED_RANKING = frozenset(RANKING_METRICS[:6])
_AT_K = {
    "ranking": re.compile(r"^(ndcg|recall)@[1-9][0-9]*$"),
    "next-item": re.compile(r"^(ndcg|recall|mrr)@[1-9][0-9]*$"),
}


def is_known_metric(name: str, task: str) -> bool:
    """Whether ``name`` is a metric of ``task`` ("ranking" or "next-item") in the contract."""
    if task not in _AT_K:
        raise ValueError(f"unknown task {task!r}; choose one of {', '.join(TASKS)}")
    if task == "ranking" and name in _FIXED_RANKING:
        return True
    return bool(_AT_K[task].match(name))


def higher_is_better(name: str) -> bool:
    """False for the losses (``logloss_*``), True for every other metric."""
    return not name.startswith("logloss")


def metric_sort_key(name: str) -> tuple[int, str]:
    """Sort key putting metrics in the contract's order, unknown cut-offs after, by name."""
    order = RANKING_METRICS + NEXT_ITEM_METRICS
    return (order.index(name) if name in order else len(order), name)
