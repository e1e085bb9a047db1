"""DeepInterestTransformer: one behaviour sequence and the target item -> one interest vector."""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from t4r_dmt.model.config import TransformerConfig
from t4r_dmt.model.decoder import TargetAttentionDecoder
from t4r_dmt.model.encoders import SequenceEncoder

# Rows per encoder call when rows are bucketed by length (see ``DeepInterestTransformer._encode``).
BUCKET_ROWS = 64


class DeepInterestTransformer(nn.Module):
    """Encoder over the behaviour sequence, decoder with the target item as query (Gu et al., 2020, §4.2).

    Parameters
    ----------
    cfg: the transformer settings (encoder name, d_model, d_ff, heads, layers, dropout, positions).
    token_dim: width of an embedded token (item ⊕ category ⊕ brand); projected to ``d_model`` if different.
    max_length: the behaviour's length N (the size of the learned position table).

    Shapes: ``tokens (B, L, token_dim)`` with ``L <= N``, ``mask (B, L)`` bool (True = real event),
    ``target (B, token_dim)`` ``-> (B, d_model)``.
    """

    def __init__(self, cfg: TransformerConfig, token_dim: int, max_length: int) -> None:
        super().__init__()
        self.d_model = cfg.d_model
        self.max_length = max_length
        self.project = nn.Linear(token_dim, cfg.d_model) if token_dim != cfg.d_model else nn.Identity()
        self.positions = nn.Embedding(max_length, cfg.d_model) if cfg.position_encoding == "learned" else None
        if self.positions is not None:
            nn.init.normal_(self.positions.weight, std=0.02)
        self.encoder = SequenceEncoder(cfg, max_length)
        self.decoder = TargetAttentionDecoder(cfg.d_model, cfg.n_heads, cfg.d_ff, cfg.n_decoder_layers,
                                              cfg.dropout, cfg.layer_norm_eps, cfg.hidden_act)
        # The paper's code scales embeddings by sqrt(d_model) before adding positions.
        self.scale = math.sqrt(cfg.d_model)

    def forward(self, tokens: torch.Tensor, mask: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        # A traced graph (export) must not bake in one batch's lengths: it takes the plain path.
        tracing = torch.jit.is_tracing()
        if not tracing:
            tokens, mask = trim_padding(tokens, mask)
        x = self.project(tokens) * self.scale
        if self.positions is not None:
            x = x + self.positions.weight[: x.shape[1]].unsqueeze(0)
        query = self.project(target) * self.scale
        memory = self.encoder(x, mask) if tracing else self._encode(x, mask)
        return self.decoder(query, memory, mask)

    def _encode(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """The encoder over the rows that have events, in buckets of similar length: ``(B, L, d), (B, L) ->
        (B, L, d)``.

        Each row is encoded on its own (attention never crosses rows), so the result does not depend on how
        rows are grouped. A row without events is skipped: the decoder reads nothing from its memory (left at
        zero), and most users have no cart or order. The other rows are sorted by length and encoded
        ``BUCKET_ROWS`` at a time, each bucket cut to its longest row: lengths are skewed (the click sequence
        averages 8 events of 50 on the synthetic data), so this skips most of the padding. Padded positions of
        the memory are zero; the decoder masks them.
        """
        lengths = mask.sum(dim=1)
        rows = lengths.nonzero().squeeze(1)
        memory = x.new_zeros(x.shape)
        if rows.numel() == 0:
            return memory
        rows = rows[lengths[rows].argsort()]
        pieces = []
        for bucket in rows.split(BUCKET_ROWS):
            longest = int(lengths[bucket[-1]])
            encoded = self.encoder(x[bucket, :longest], mask[bucket, :longest])
            pieces.append(F.pad(encoded, (0, 0, 0, x.shape[1] - longest)))
        return memory.index_copy(0, rows, torch.cat(pieces))


def trim_padding(tokens: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Drop the trailing positions that are padding in every row: ``(B, L, D), (B, L) -> (B, L', D), (B, L')``
    with ``L' = max(1, longest row)``. Lists are right-padded, so real events stay where they were (and keep
    their positions); padded keys are masked in every attention, so the outputs are unchanged."""
    longest = max(int(mask.sum(dim=1).max()) if mask.numel() else 0, 1)
    if longest >= mask.shape[1]:
        return tokens, mask
    return tokens[:, :longest], mask[:, :longest]
