"""Workaround: T4R's ``RecallAt`` crashes on a batch with one relevant row.

Applies to transformers4rec 23.12 (``torch/ranking_metric.py:137``); docs/STACK_NOTES.md, "Transformers4Rec 23.12".

The T4R bug (transformers4rec 23.12, ``torch/ranking_metric.py:137``)
---------------------------------------------------------------------
``RecallAt._metric`` selects the rows having a relevant label with
``(num_relevant != 0).nonzero().squeeze()``. When exactly one row of an evaluation batch has a relevant
label (with ``labels_onehot=True``: a batch holding one prediction) ``squeeze()`` also drops the row
dimension, ``rel_indices`` becomes a 0-d tensor and ``rel_indices.shape[0]`` raises ``IndexError``.
Squeezing only dimension 1 keeps a 1-D index and fixes it; nothing else changes. ``NDCGAt``,
``AvgPrecisionAt`` and ``MeanReciprocalRankAt`` have no such ``squeeze`` and are not affected.

Two ways to use the fix, pick one:

* ``apply_ranking_metric_fix()`` replaces ``transformers4rec.torch.ranking_metric.RecallAt._metric``
  by the fixed function. It is idempotent and also fixes instances created before it ran, such as the
  ``RecallAt`` in ``NextItemPredictionTask.DEFAULT_METRICS``.
* ``next_item_task_metrics()`` returns metric objects, including the fixed ``RecallAt`` subclass here
  (same class name, so T4R still reports ``recall_at_20``), to pass as
  ``NextItemPredictionTask(metrics=...)``; T4R stays untouched.
"""

from __future__ import annotations

from typing import Any

import torch
from transformers4rec.torch import ranking_metric
from transformers4rec.torch.utils import torch_utils

__all__ = ["RecallAt", "apply_ranking_metric_fix"]

_ORIGINAL_RECALL_METRIC = ranking_metric.RecallAt._metric


def _fixed_recall_metric(
    self: ranking_metric.RankingMetric, ks: Any, scores: torch.Tensor, labels: torch.Tensor
) -> torch.Tensor:
    """``RecallAt._metric`` of T4R 23.12 with ``squeeze(1)`` instead of ``squeeze()`` (see module doc).

    Parameters
    ----------
    ks: list of cut-offs (T4R annotates it as a tensor but passes a list).
    scores: (B, V) predicted item scores.
    labels: (B, V) 0/1 relevance of each item.

    Returns
    -------
    torch.Tensor: (B, len(ks)) recall of each row at each cut-off; 0 for rows without a relevant item.
    """
    ks, scores, labels = torch_utils.check_inputs(ks, scores, labels)
    _, _, topk_labels = torch_utils.extract_topk(ks, scores, labels)
    recalls = torch_utils.create_output_placeholder(scores, ks)
    num_relevant = torch.sum(labels, dim=-1)
    rel_indices = (num_relevant != 0).nonzero().squeeze(1)  # the fix: keep the row dimension
    rel_count = num_relevant[rel_indices]
    if rel_indices.shape[0] > 0:
        for index, k in enumerate(ks):
            rel_labels = topk_labels[rel_indices, : int(k)]
            # float32 as in T4R, whatever the precision of the inputs (fp16 training).
            recalls[rel_indices, index] = torch.div(torch.sum(rel_labels, dim=-1), rel_count).to(
                dtype=torch.float32
            )
    return recalls


class RecallAt(ranking_metric.RecallAt):
    """T4R's ``RecallAt`` without the single-relevant-row crash.

    The class keeps T4R's name on purpose: ``PredictionTask.metric_name`` derives the reported key
    (``recall_at_<k>``) from the class name.
    """

    def _metric(self, ks: Any, scores: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return _fixed_recall_metric(self, ks, scores, labels)


def apply_ranking_metric_fix() -> None:
    """Patch ``transformers4rec.torch.ranking_metric.RecallAt`` in place; calling it again is a no-op."""
    ranking_metric.RecallAt._metric = _fixed_recall_metric  # type: ignore[method-assign]
