"""Per-behaviour interest extractors of the paper's Table 1 baselines (DMT's own is ``interest.py``).

Every extractor maps one behaviour sequence and the target item to one interest vector and an auxiliary loss
(zero except for DIEN): ``tokens (B, L, D)``, ``mask (B, L)`` bool (True = a real event), ``target (B, D)``
``-> (interest (B, D), aux_loss ())``.

* ``MeanPoolInterest`` (DNN): the masked mean of the tokens.
* ``TargetAttentionInterest`` (DIN, Zhou et al. KDD 2018): an MLP scores each event against the target from
  ``[e, t, e - t, e * t]``; the interest is the attention-weighted sum (softmax over the real events).
* ``InterestEvolution`` (DIEN, Zhou et al. AAAI 2019) lives in ``dien.py``.
"""

from __future__ import annotations

import torch
from torch import nn

from t4r_dmt.model.mlp import Tower


def masked_softmax(scores: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Softmax of ``scores (B, L)`` over the True entries of ``mask (B, L)``; all-False rows give zeros."""
    scores = scores.masked_fill(~mask, float("-inf"))
    weights = torch.softmax(scores, dim=1)
    return torch.nan_to_num(weights, nan=0.0) * mask.to(weights.dtype)


class MeanPoolInterest(nn.Module):
    """DNN: masked mean pooling. Shapes: ``(B, L, D), (B, L), (B, D) -> ((B, D), ())``."""

    def forward(self, tokens: torch.Tensor, mask: torch.Tensor,
                target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        weight = mask.unsqueeze(-1).to(tokens.dtype)
        pooled = (tokens * weight).sum(1) / weight.sum(1).clamp(min=1.0)
        return pooled, tokens.new_zeros(())


class AttentionScorer(nn.Module):
    """DIN's activation unit: ``[h, t, h - t, h * t] -> MLP -> score``.

    Parameters
    ----------
    dim: width D of the events and the target; units: hidden widths of the MLP.

    Shapes: ``(B, L, D), (B, D) -> (B, L)``.
    """

    def __init__(self, dim: int, units: list[int]) -> None:
        super().__init__()
        self.mlp = Tower(4 * dim, units)

    def forward(self, events: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        t = target.unsqueeze(1).expand_as(events)
        return self.mlp(torch.cat([events, t, events - t, events * t], dim=-1))


class TargetAttentionInterest(nn.Module):
    """DIN: target attention over the sequence. Shapes: ``(B, L, D), (B, L), (B, D) -> ((B, D), ())``."""

    def __init__(self, dim: int, units: list[int]) -> None:
        super().__init__()
        self.scorer = AttentionScorer(dim, units)

    def forward(self, tokens: torch.Tensor, mask: torch.Tensor,
                target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        weights = masked_softmax(self.scorer(tokens, target), mask)  # (B, L)
        return (weights.unsqueeze(-1) * tokens).sum(1), tokens.new_zeros(())
