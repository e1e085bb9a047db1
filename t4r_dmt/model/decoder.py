"""The DMT decoder: the target item attends over the encoded behaviour sequence."""

from __future__ import annotations

import math
from typing import cast

import torch
from torch import nn
from torch.nn import functional as F


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

    def attention_scores(self, query: torch.Tensor, memory: torch.Tensor) -> torch.Tensor:
        """The cross-attention's scaled dot products before the softmax, averaged over the heads:
        ``query (B, d), memory (B, L, d) -> (B, L)``, ``mean_h (W_q^h q) . (W_k^h m_l) / sqrt(d / n_heads)``.

        What ``forward``'s softmax normalises; nothing is masked here (``MatchMagnitude`` masks).
        """
        attention = self.attention
        d = attention.embed_dim
        weight, bias = attention.in_proj_weight, attention.in_proj_bias
        q = F.linear(query, weight[:d], None if bias is None else bias[:d])  # (B, d)
        k = F.linear(memory, weight[d: 2 * d], None if bias is None else bias[d: 2 * d])  # (B, L, d)
        heads, head_dim = attention.num_heads, attention.head_dim
        q = q.reshape(q.shape[0], 1, heads, head_dim)
        k = k.reshape(k.shape[0], k.shape[1], heads, head_dim)
        return (q * k).sum(-1).mean(-1) / math.sqrt(head_dim)


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

    def attention_scores(self, query: torch.Tensor, memory: torch.Tensor) -> torch.Tensor:
        """The first block's pre-softmax scores (its query is the target itself, not yet mixed with the sequence):
        ``(B, d), (B, L, d) -> (B, L)``; see ``TargetAttentionBlock.attention_scores``."""
        return cast(TargetAttentionBlock, self.blocks[0]).attention_scores(query, memory)
