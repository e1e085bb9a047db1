"""DeepInterestTransformer: one behaviour sequence and the target item -> one interest vector."""

from __future__ import annotations

import math

import torch
from torch import nn

from t4r_dmt.model.config import TransformerConfig
from t4r_dmt.model.decoder import TargetAttentionDecoder
from t4r_dmt.model.encoders import SequenceEncoder


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
        x = self.project(tokens) * self.scale
        if self.positions is not None:
            x = x + self.positions.weight[: x.shape[1]].unsqueeze(0)
        memory = self.encoder(x, mask)
        query = self.project(target) * self.scale
        return self.decoder(query, memory, mask)
