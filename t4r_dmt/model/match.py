"""MatchMagnitude: how strongly a behaviour sequence matches the target, as the decoder's softmax cannot say.

The DMT decoder's target attention is a softmax over the events followed by a LayerNorm: its output says which
events resemble the target item, but not how many or how much. One matching click among unrelated ones and
twenty matching clicks give nearly the same vector, because the softmax weights sum to one whatever the scores
are. These two scalars keep the magnitude, over the real events of a row, of the decoder's query . key scores
(``TargetAttentionBlock.attention_scores``):

* ``max_l s_l``: how well the best event matches;
* ``log Σ_l exp(s_l)``: the softmax's normaliser, which grows with every matching event (``k`` equal events add
  ``log k`` to one of them).

A row without events has no scores: it gets a learned "empty" pair instead (initially 0).
"""

from __future__ import annotations

import torch
from torch import nn

#: Scalars per behaviour: the max and the log-sum-exp of the scores.
MATCH_FEATURES = 2


class MatchMagnitude(nn.Module):
    """Shapes: ``scores (B, L)`` float, ``mask (B, L)`` bool (True = a real event) ``-> (B, 2)``: column 0 the
    max, column 1 the log-sum-exp of each row's scores over its real events; ``empty (2,)`` where a row has none.
    Padded positions never count, whatever their scores.
    """

    out_size = MATCH_FEATURES

    def __init__(self) -> None:
        super().__init__()
        self.empty = nn.Parameter(torch.zeros(MATCH_FEATURES))

    def forward(self, scores: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        has_events = mask.any(dim=1, keepdim=True)  # (B, 1)
        # A row without events reduces over all its (finite, unused) scores instead of over nothing: -inf rows
        # would give NaN gradients through logsumexp even where ``torch.where`` discards them.
        visible = mask | ~has_events
        masked = scores.masked_fill(~visible, float("-inf"))
        stats = torch.stack([masked.amax(dim=1), torch.logsumexp(masked, dim=1)], dim=1)  # (B, 2)
        return torch.where(has_events, stats, self.empty.to(stats.dtype).expand_as(stats))
