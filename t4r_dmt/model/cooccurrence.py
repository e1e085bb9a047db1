"""CooccurrenceLoss: entity embeddings that learn the catalogue from the event log itself.

A window holds far more behaviour events than impressions, and each event sequence says which items users take
one after another. The ranking loss alone teaches an item's embedding only through that item's impressions; this
auxiliary loss (item2vec-style, Barkan and Koenigstein 2016, trained jointly as DIEN trains its auxiliary loss)
pulls the tokens of consecutive events of the same behaviour sequence together, against the other pairs of the
batch (in-batch negatives, an InfoNCE / sampled-softmax loss), so items taken in the same sessions get close
tokens before they have been shown often. Because the sequences of every window are read as the model continues
window by window, the embeddings follow the catalogue as it changes.

``loss = mean_i CE(softmax_j(cos(a_i, b_j) / temperature), i)`` over up to ``max_pairs`` pairs ``(a_i, b_i)`` of
consecutive real events with different items, drawn from every behaviour sequence of the batch; a pair ``j`` whose
next item equals ``b_i``'s is no negative for ``i`` (masked), since the same pair repeats across a user's
impressions.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class CooccurrenceLoss(nn.Module):
    """Parameters
    ----------
    temperature: divides the cosines (> 0); smaller = sharper.
    max_pairs: at most this many pairs per batch (drawn uniformly without replacement when there are more; the
        cost is ``max_pairs ** 2`` dot products).

    Shapes: ``[(tokens (B, L, D), items (B, L) int64 codes, 0 = padding), ...]`` one per behaviour ``-> ()``; 0
    (with a gradient path) when the batch has fewer than two pairs.
    """

    def __init__(self, temperature: float, max_pairs: int) -> None:
        super().__init__()
        if not temperature > 0:
            raise ValueError(f"temperature must be > 0; got {temperature!r}")
        if max_pairs < 2:
            raise ValueError(f"max_pairs must be >= 2; got {max_pairs!r}")
        self.temperature = float(temperature)
        self.max_pairs = int(max_pairs)

    def forward(self, sequences: list[tuple[torch.Tensor, torch.Tensor]]) -> torch.Tensor:
        heads, tails, tail_items = [], [], []
        for tokens, items in sequences:
            keep = (items[:, :-1] != 0) & (items[:, 1:] != 0) & (items[:, :-1] != items[:, 1:])  # (B, L-1)
            heads.append(tokens[:, :-1][keep])  # (P_b, D)
            tails.append(tokens[:, 1:][keep])
            tail_items.append(items[:, 1:][keep])
        a, b, next_items = torch.cat(heads), torch.cat(tails), torch.cat(tail_items)
        if len(a) < 2:
            return sum((t.sum() for t, _ in sequences), start=a.new_zeros(())) * 0.0
        if len(a) > self.max_pairs:
            pick = torch.randperm(len(a), device=a.device)[: self.max_pairs]
            a, b, next_items = a[pick], b[pick], next_items[pick]
        logits = F.normalize(a, dim=1) @ F.normalize(b, dim=1).T / self.temperature  # (P, P)
        same = next_items.unsqueeze(0) == next_items.unsqueeze(1)
        same.fill_diagonal_(False)
        logits = logits.masked_fill(same, float("-inf"))
        return F.cross_entropy(logits, torch.arange(len(a), device=a.device))
