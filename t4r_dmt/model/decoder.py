"""The DMT decoder: the target item attends over the encoded behaviour sequence."""

from __future__ import annotations

import torch
from torch import nn


class TargetAttentionBlock(nn.Module):
    """One post-LN decoder block: cross-attention (query = target, keys/values = encoder outputs) and a
    feed-forward layer, each with a residual connection, as in the paper's TF code.

    Shapes: ``query (B, d)``, ``memory (B, L, d)``, ``mask (B, L)`` bool (True = real event) ``-> (B, d)``.
    A row without any real event (a new user) gets no attention output (zero), so its result is defined
    and depends only on the query.
    """

    def __init__(self, d_model: int, n_heads: int, d_ff: int, dropout: float, eps: float, act: str) -> None:
        super().__init__()
        self.attention = nn.MultiheadAttention(d_model, n_heads, dropout=dropout, batch_first=True)
        self.norm1 = nn.LayerNorm(d_model, eps=eps)
        self.ff = nn.Sequential(
            nn.Linear(d_model, d_ff), nn.GELU() if act == "gelu" else nn.ReLU(), nn.Linear(d_ff, d_model)
        )
        self.norm2 = nn.LayerNorm(d_model, eps=eps)
        self.dropout = nn.Dropout(dropout)

    def forward(self, query: torch.Tensor, memory: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        has_events = mask.any(dim=1, keepdim=True)  # (B, 1)
        # An all-padding row would make softmax over nothing (NaN): let it see slot 0, then drop the result.
        first = torch.zeros_like(mask)
        first[:, 0] = True
        visible = mask | (first & ~has_events)
        attended, _ = self.attention(query.unsqueeze(1), memory, memory, key_padding_mask=~visible,
                                     need_weights=False)
        attended = attended.squeeze(1) * has_events.to(attended.dtype)
        x = self.norm1(query + self.dropout(attended))
        return self.norm2(x + self.dropout(self.ff(x)))


class TargetAttentionDecoder(nn.Module):
    """``n_layers`` stacked ``TargetAttentionBlock``s: ``(B, d), (B, L, d), (B, L) -> (B, d)``."""

    def __init__(self, d_model: int, n_heads: int, d_ff: int, n_layers: int, dropout: float, eps: float,
                 act: str) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(
            TargetAttentionBlock(d_model, n_heads, d_ff, dropout, eps, act) for _ in range(n_layers)
        )

    def forward(self, query: torch.Tensor, memory: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        x = query
        for block in self.blocks:
            x = block(x, memory, mask)
        return x
