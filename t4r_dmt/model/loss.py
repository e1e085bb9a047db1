"""The multi-task loss: ``Σ_k λ_k · BCE-with-logits(u_k [+ y_b], y_k)``.

* During training the bias logit ``y_b`` is added to every task logit (the paper's "two_head_add"); in
  evaluation it is left out, so eval losses and outputs depend on ``σ(u_k)`` only.
* ``unbiased_term`` adds the public code's extra ``BCE(u_k, y_k)`` (its ``loss_ctr_rel_method = ctr_rel``)
  during training.
* ``order_label``: "ctcvr" (default) trains the order task on every impression with label ``order`` (ordered
  after clicking); "cvr" masks the order loss to clicked impressions (post-click conversion).
* Each task's loss is the (optionally positive-weighted) mean over its unmasked rows; a batch without any
  unmasked row contributes 0.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


class MultiTaskLoss(nn.Module):
    """Parameters
    ----------
    task_weights: λ_k, one per task (order: click, order).
    pos_weights: optional positive-class weight per task (``BCEWithLogits(pos_weight=...)``).
    order_label: "ctcvr" or "cvr".
    unbiased_term: add ``BCE(u_k)`` to the training loss when a bias logit is given.

    Shapes: ``logits (B, K)``, ``bias_logit (B,)`` or None, ``labels (B, K)`` float 0/1 ``-> ()``.
    """

    task_weights: torch.Tensor
    pos_weights: torch.Tensor

    def __init__(self, task_weights: list[float], pos_weights: list[float] | None = None,
                 order_label: str = "ctcvr", unbiased_term: bool = False) -> None:
        super().__init__()
        if order_label not in ("ctcvr", "cvr"):
            raise ValueError(f"order_label must be 'ctcvr' or 'cvr'; got {order_label!r}")
        self.register_buffer("task_weights", torch.tensor(task_weights, dtype=torch.float32))
        pos = pos_weights if pos_weights is not None else [1.0] * len(task_weights)
        self.register_buffer("pos_weights", torch.tensor(pos, dtype=torch.float32))
        self.order_label = order_label
        self.unbiased_term = unbiased_term

    def row_mask(self, labels: torch.Tensor) -> torch.Tensor:
        """``(B, K)`` 1 where a row counts towards task k: all rows, except non-clicks for "cvr" orders."""
        mask = torch.ones_like(labels)
        if self.order_label == "cvr":
            mask[:, 1] = labels[:, 0]
        return mask

    def task_losses(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Per-task mean BCE over unmasked rows: ``(B, K), (B, K) -> (K,)``."""
        bce = F.binary_cross_entropy_with_logits(
            logits, labels, pos_weight=self.pos_weights.to(logits.dtype), reduction="none"
        )
        mask = self.row_mask(labels)
        return (bce * mask).sum(0) / mask.sum(0).clamp(min=1.0)

    def forward(self, logits: torch.Tensor, bias_logit: torch.Tensor | None, labels: torch.Tensor,
                training: bool) -> torch.Tensor:
        if training and bias_logit is not None:
            losses = self.task_losses(logits + bias_logit.unsqueeze(1), labels)
            if self.unbiased_term:
                losses = losses + self.task_losses(logits, labels)
        else:
            losses = self.task_losses(logits, labels)
        return (losses * self.task_weights.to(losses.dtype)).sum()
