"""The multi-task loss: ``Σ_k λ_k · BCE(p_k, y_k)``, with ``p_k`` the click probability the bias form gives.

* During training the bias logit ``y_b`` enters every task's probability as ``bias_form`` says: "additive"
  ``p_k = σ(u_k + y_b)`` (the paper's "two_head_add"), "multiplicative" ``p_k = σ(u_k) · σ(y_b)`` (PAL,
  Guo et al. 2019: P(examined) · P(relevant); the code's "two_head_multiply"), "pbm" ``p_k = σ(u_k) · e`` with
  ``log e = min(y_b, 0)`` (the position-based model, y_b the log examination itself). In evaluation it is left
  out, so eval losses and outputs depend on ``σ(u_k)`` only, in every form.
* Every form treats the order task as the click task: with ``order_label`` "ctcvr" the examination factor
  multiplies P(click and order) as it multiplies P(click) (an impression not examined is neither clicked nor
  ordered); with "cvr" it is applied to the post-click order probability too, as the additive form always did.
* ``observation_dropout``: in training, each row's bias is dropped with this probability (Zhang et al., KDD 2023):
  the row is trained as if examined, ``p_k = σ(u_k)``, what serving reads: ``y_b -> 0`` ("additive"),
  ``σ(y_b) -> 1`` ("multiplicative"), ``e -> 1`` ("pbm"). 0 (the default) draws no random numbers.
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

from t4r_dmt.model.config import BIAS_FORMS


class MultiTaskLoss(nn.Module):
    """Parameters
    ----------
    task_weights: λ_k, one per task (order: click, order).
    pos_weights: optional positive-class weight per task (``BCEWithLogits(pos_weight=...)``).
    order_label: "ctcvr" or "cvr".
    unbiased_term: add ``BCE(u_k)`` to the training loss when a bias logit is given.
    bias_form: "additive", "multiplicative" or "pbm" (``BIAS_FORMS``).
    observation_dropout: share of training rows whose bias is dropped, in [0, 1).

    Shapes: ``logits (B, K)``, ``bias_logit (B,)`` or None, ``labels (B, K)`` float 0/1 ``-> ()``.
    """

    task_weights: torch.Tensor
    pos_weights: torch.Tensor

    def __init__(self, task_weights: list[float], pos_weights: list[float] | None = None,
                 order_label: str = "ctcvr", unbiased_term: bool = False, bias_form: str = "additive",
                 observation_dropout: float = 0.0) -> None:
        super().__init__()
        if order_label not in ("ctcvr", "cvr"):
            raise ValueError(f"order_label must be 'ctcvr' or 'cvr'; got {order_label!r}")
        if bias_form not in BIAS_FORMS:
            raise ValueError(f"bias_form must be one of {BIAS_FORMS}; got {bias_form!r}")
        if not 0.0 <= observation_dropout < 1.0:
            raise ValueError(f"observation_dropout must be in [0, 1); got {observation_dropout!r}")
        self.register_buffer("task_weights", torch.tensor(task_weights, dtype=torch.float32))
        pos = pos_weights if pos_weights is not None else [1.0] * len(task_weights)
        self.register_buffer("pos_weights", torch.tensor(pos, dtype=torch.float32))
        self.order_label = order_label
        self.unbiased_term = unbiased_term
        self.bias_form = bias_form
        self.observation_dropout = float(observation_dropout)

    def row_mask(self, labels: torch.Tensor) -> torch.Tensor:
        """``(B, K)`` 1 where a row counts towards task k: all rows, except non-clicks for "cvr" orders."""
        mask = torch.ones_like(labels)
        if self.order_label == "cvr":
            mask[:, 1] = labels[:, 0]
        return mask

    def masked_mean(self, bce: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Per-task mean of ``bce`` over unmasked rows: ``(B, K), (B, K) -> (K,)``."""
        mask = self.row_mask(labels)
        return (bce * mask).sum(0) / mask.sum(0).clamp(min=1.0)

    def task_losses(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Per-task mean BCE of ``σ(logits)`` over unmasked rows: ``(B, K), (B, K) -> (K,)``."""
        bce = F.binary_cross_entropy_with_logits(
            logits, labels, pos_weight=self.pos_weights.to(logits.dtype), reduction="none"
        )
        return self.masked_mean(bce, labels)

    def product_losses(self, u: torch.Tensor, log_p: torch.Tensor, log_q: torch.Tensor, labels: torch.Tensor,
                       dropped: torch.Tensor | None) -> torch.Tensor:
        """Per-task mean BCE from ``log p`` and ``log(1 - p)`` of a product form, ``σ(u)`` alone on ``dropped``
        rows: ``(B, K) x 3, (B, K), (B,) bool or None -> (K,)``."""
        if dropped is not None:
            examined = dropped.unsqueeze(1)
            log_p = torch.where(examined, F.logsigmoid(u), log_p)
            log_q = torch.where(examined, F.logsigmoid(-u), log_q)
        bce = -(self.pos_weights * labels * log_p + (1.0 - labels) * log_q)
        return self.masked_mean(bce, labels.float())

    def multiplicative_losses(self, logits: torch.Tensor, bias_logit: torch.Tensor, labels: torch.Tensor,
                              dropped: torch.Tensor | None) -> torch.Tensor:
        """Per-task mean BCE of ``p = σ(u) σ(y_b)`` (``σ(u)`` on ``dropped`` rows): ``(B, K), (B,), (B, K),
        (B,) bool or None -> (K,)``, in float32.

        In log space without clamping: ``log p = logσ(u) + logσ(y_b)`` and, as
        ``1 - σ(u) σ(y_b) = (e^-u + e^-y + e^-u-y) σ(u) σ(y_b)``,
        ``log(1 - p) = logsumexp(-u, -y_b, -u - y_b) + log p``.
        """
        u, y = logits.float(), bias_logit.float().unsqueeze(1).expand_as(logits)
        log_p = F.logsigmoid(u) + F.logsigmoid(y)
        log_q = torch.logsumexp(torch.stack([-u, -y, -u - y]), dim=0) + log_p
        return self.product_losses(u, log_p, log_q, labels, dropped)

    def pbm_losses(self, logits: torch.Tensor, bias_logit: torch.Tensor, labels: torch.Tensor,
                   dropped: torch.Tensor | None) -> torch.Tensor:
        """Per-task mean BCE of ``p = σ(u) e``, ``log e = min(y_b, 0)`` (``σ(u)`` on ``dropped`` rows):
        ``(B, K), (B,), (B, K), (B,) bool or None -> (K,)``, in float32.

        In log space: ``log p = logσ(u) + log e`` and, as ``1 - σ(u) e = (1 - e) + e σ(-u)``,
        ``log(1 - p) = logaddexp(log(1 - e), log e + logσ(-u))``, with ``log(1 - e) = -inf`` where e = 1 exactly
        (computed on a placeholder there, so no NaN gradient).
        """
        u = logits.float()
        log_e = examination_log(bias_logit.float(), "pbm").unsqueeze(1).expand_as(u)
        log_p = F.logsigmoid(u) + log_e
        below = log_e < 0
        log_not_e = torch.where(below, _log1mexp(torch.where(below, log_e, torch.full_like(log_e, -1.0))),
                                torch.full_like(log_e, float("-inf")))
        log_q = torch.logaddexp(log_not_e, log_e + F.logsigmoid(-u))
        return self.product_losses(u, log_p, log_q, labels, dropped)

    def logged_probabilities(self, logits: torch.Tensor, bias_logit: torch.Tensor) -> torch.Tensor:
        """The click probability the training loss fits, with the bias in ``bias_form`` and no observation
        dropout: σ(u + y_b), σ(u) σ(y_b) or σ(u) exp(min(y_b, 0)). ``(B, K), (B,) -> (B, K)``."""
        y = bias_logit.unsqueeze(1)
        if self.bias_form == "additive":
            return torch.sigmoid(logits + y)
        examined = torch.sigmoid(y) if self.bias_form == "multiplicative" else y.clamp(max=0.0).exp()
        return torch.sigmoid(logits) * examined

    def biased_losses(self, logits: torch.Tensor, bias_logit: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Per-task training losses with the bias in ``bias_form``, after observation dropout:
        ``(B, K), (B,), (B, K) -> (K,)``."""
        dropped = None
        if self.observation_dropout > 0:
            dropped = torch.rand(bias_logit.shape, device=bias_logit.device) < self.observation_dropout  # (B,)
        if self.bias_form == "multiplicative":
            return self.multiplicative_losses(logits, bias_logit, labels, dropped)
        if self.bias_form == "pbm":
            return self.pbm_losses(logits, bias_logit, labels, dropped)
        if dropped is not None:
            bias_logit = bias_logit.masked_fill(dropped, 0.0)
        return self.task_losses(logits + bias_logit.unsqueeze(1), labels)

    def forward(self, logits: torch.Tensor, bias_logit: torch.Tensor | None, labels: torch.Tensor,
                training: bool) -> torch.Tensor:
        if training and bias_logit is not None:
            losses = self.biased_losses(logits, bias_logit, labels)
            if self.unbiased_term:
                losses = losses + self.task_losses(logits, labels)
        else:
            losses = self.task_losses(logits, labels)
        return (losses * self.task_weights.to(losses.dtype)).sum()


def examination_log(bias_logit: torch.Tensor, form: str) -> torch.Tensor:
    """The bias logit y_b in ``form``'s own scale, elementwise: the log examination probability log σ(y_b)
    ("multiplicative") or min(y_b, 0) ("pbm"); the logit y_b itself ("additive")."""
    if form == "multiplicative":
        return F.logsigmoid(bias_logit)
    return bias_logit.clamp(max=0.0) if form == "pbm" else bias_logit


def _log1mexp(x: torch.Tensor) -> torch.Tensor:
    """``log(1 - e^x)`` for ``x < 0``, elementwise, accurate at both ends (Mächler 2012): ``log(-expm1(x))`` above
    ``-log 2``, ``log1p(-e^x)`` below; the second branch reads -1 where the first is taken (``log1p(-e^x)`` is
    -inf where e^x rounds to 1), so ``torch.where`` passes no NaN gradient."""
    near = x > -0.6931471805599453
    return torch.where(near, torch.log(-torch.expm1(x)), torch.log1p(-torch.exp(torch.where(near, -1.0, x))))
