"""DeepInterestTransformer: one behaviour sequence and the target item -> one interest vector."""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from t4r_dmt.model.buckets import CALL_COST_TOKENS, DEFAULT_CALL_COST_TOKENS, length_buckets
from t4r_dmt.model.config import TransformerConfig
from t4r_dmt.model.decoder import TargetAttentionDecoder
from t4r_dmt.model.encoders import SequenceEncoder
from t4r_dmt.model.match import MATCH_FEATURES, MatchMagnitude


class DeepInterestTransformer(nn.Module):
    """Encoder over the behaviour sequence, decoder with the target item as query (Gu et al., 2020, §4.2).

    Parameters
    ----------
    cfg: the transformer settings (encoder name, d_model, d_ff, heads, layers, dropout, positions, time
        encoding, match features).
    token_dim: width of an embedded token (item ⊕ category ⊕ brand); projected to ``d_model`` if different.
    max_length: the behaviour's length N (the size of the learned position table).
    n_time_gap_buckets: size of the time-gap bucket table (the column's ``int_domain.max + 1``); with
        ``cfg.time_encoding = "log2_buckets"`` and a positive size, a learned ``(n, d_model)`` table (code 0,
        padding, a zero vector) whose rows are added to the tokens as the positions are. 0: no time gaps (data
        without them).

    Shapes: ``tokens (B, L, token_dim)`` with ``L <= N``, ``mask (B, L)`` bool (True = real event),
    ``target (B, token_dim)``, ``time_gaps (B, L)`` int64 bucket codes (only when the table exists)
    ``-> (interest (B, out_size), aux_loss ())``; ``out_size = d_model``, plus ``MATCH_FEATURES`` (2) with
    ``cfg.match_features``: ``[decoder output (B, d_model), max score (B, 1), log-sum-exp of the scores (B, 1)]``
    (``MatchMagnitude``); with ``cfg.gate`` all of it times the learned ``gate`` (initially 0). The auxiliary
    loss is always 0 (the interface of every interest extractor, see
    ``multi_behavior.build_interest``).
    """

    def __init__(self, cfg: TransformerConfig, token_dim: int, max_length: int,
                 n_time_gap_buckets: int = 0) -> None:
        super().__init__()
        if n_time_gap_buckets < 0:
            raise ValueError(f"n_time_gap_buckets must be >= 0; got {n_time_gap_buckets!r}")
        self.d_model = cfg.d_model
        self.max_length = max_length
        self.project = nn.Linear(token_dim, cfg.d_model) if token_dim != cfg.d_model else nn.Identity()
        learned = cfg.position_encoding in ("learned", "learned_recent")
        self.positions = nn.Embedding(max_length, cfg.d_model) if learned else None
        self.from_recent = cfg.position_encoding == "learned_recent"
        if self.positions is not None:
            nn.init.normal_(self.positions.weight, std=0.02)
        self.time_gaps: nn.Embedding | None = None
        if cfg.time_encoding == "log2_buckets" and n_time_gap_buckets > 0:
            self.time_gaps = nn.Embedding(n_time_gap_buckets, cfg.d_model, padding_idx=0)
            nn.init.normal_(self.time_gaps.weight, std=0.02)
            with torch.no_grad():
                self.time_gaps.weight[0].zero_()
        self.encoder = SequenceEncoder(cfg, max_length)
        self.decoder = TargetAttentionDecoder(cfg.d_model, cfg.n_heads, cfg.d_ff, cfg.n_decoder_layers,
                                              cfg.dropout, cfg.layer_norm_eps, cfg.hidden_act)
        self.match = MatchMagnitude() if cfg.match_features else None
        self.out_size = cfg.d_model + (MATCH_FEATURES if self.match is not None else 0)
        # transformer.empty_sequence "learned": rows without events get this vector (the decoder output part;
        # the match part keeps MatchMagnitude's own learned pair), not a transform of the target.
        self.empty = nn.Parameter(torch.zeros(cfg.d_model)) if cfg.empty_sequence == "learned" else None
        # transformer.gate: a learned scale of the whole interest, 0 at first (ReZero).
        self.gate = nn.Parameter(torch.zeros(1)) if cfg.gate else None
        # The paper's code scales embeddings by sqrt(d_model) before adding positions.
        self.scale = math.sqrt(cfg.d_model)

    def forward(self, tokens: torch.Tensor, mask: torch.Tensor, target: torch.Tensor,
                time_gaps: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        if (time_gaps is None) != (self.time_gaps is None):
            raise ValueError("time_gaps must be given exactly when the block has a time-gap table "
                             f"(it has {'one' if self.time_gaps is not None else 'none'})")
        # A traced graph (export) must not bake in one batch's lengths: it takes the plain path.
        tracing = torch.jit.is_tracing()
        if not tracing:
            tokens, mask = trim_padding(tokens, mask)
        x = self.project(tokens) * self.scale
        if self.positions is not None and self.from_recent:
            x = x + self.positions(recency_slots(mask))
        elif self.positions is not None:
            x = x + self.positions.weight[: x.shape[1]].unsqueeze(0)
        if self.time_gaps is not None and time_gaps is not None:
            x = x + self.time_gaps(time_gaps[:, : x.shape[1]])
        query = self.project(target) * self.scale
        if tracing:
            interest = self._decode(query, self.encoder(x, mask), mask)
        else:
            interest = self._bucketed(x, mask, query)
        if self.gate is not None:
            interest = interest * self.gate
        return interest, interest.new_zeros(())

    def _decode(self, query: torch.Tensor, memory: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """The decoder output, then the match features if any: ``(B, d), (B, L, d), (B, L) -> (B, out_size)``."""
        decoded = self.decoder(query, memory, mask)
        if self.empty is not None:
            decoded = torch.where(mask.any(dim=1, keepdim=True), decoded, self.empty.to(decoded.dtype))
        if self.match is None:
            return decoded
        scores = self.decoder.attention_scores(query, memory)  # (B, L), the first block's
        return torch.cat([decoded, self.match(scores, mask)], dim=1)

    def _bucketed(self, x: torch.Tensor, mask: torch.Tensor, query: torch.Tensor) -> torch.Tensor:
        """Encoder and decoder over buckets of rows of similar length:
        ``(B, L, d), (B, L), (B, d) -> (B, out_size)``.

        Each row is computed on its own (attention never crosses rows, layer norms are per row), so the result
        does not depend on how rows are grouped. Rows are sorted by length and split where ``length_buckets``
        finds the least padded work for the calls it costs; each bucket is cut to its longest row. Lengths are
        skewed (most users have no cart or order; the click sequence averages 20 events of 50 on the default
        data), so the encoder, the decoder's key / value projections and the dropout masks skip most of the
        padding. Rows without events skip the encoder: the decoder reads nothing from their memory (one masked
        slot).
        """
        lengths = mask.sum(dim=1)
        order = lengths.argsort(stable=True)
        sorted_lengths = lengths[order].cpu().numpy()  # one device sync for every bucket
        sizes = length_buckets(sorted_lengths, CALL_COST_TOKENS.get(x.device.type, DEFAULT_CALL_COST_TOKENS))
        longest = sorted_lengths[np.cumsum(sizes) - 1].tolist()
        # One gather, then contiguous pieces: the backward writes each gradient once (a gather per bucket would
        # zero-fill a (B, L, d) gradient per bucket).
        buckets = zip(longest, x[order].split(sizes), mask[order].split(sizes), query[order].split(sizes),
                      strict=True)
        pieces = []
        for n_events, rows, rows_mask, rows_query in buckets:
            if n_events == 0:  # the rows without events: one masked slot
                memory, rows_mask = x.new_zeros(len(rows), 1, x.shape[2]), mask.new_zeros(len(rows), 1)
            else:
                rows_mask = rows_mask[:, :n_events]
                memory = self.encoder(rows[:, :n_events], rows_mask)
            pieces.append(self._decode(rows_query, memory, rows_mask))
        return torch.cat(pieces)[order.argsort()]


def recency_slots(mask: torch.Tensor) -> torch.Tensor:
    """Position of each event counted from its row's most recent one: ``mask (B, L) bool -> (B, L) int64``.

    Lists are oldest first and right-padded, so event ``j`` of a row with ``n`` events gets ``n - 1 - j`` (the last
    event 0); padded slots get 0 (they are masked in every attention).
    """
    lengths = mask.sum(dim=1, keepdim=True)
    slots = lengths - 1 - torch.arange(mask.shape[1], device=mask.device).unsqueeze(0)
    return slots.clamp(min=0)


def trim_padding(tokens: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Drop the trailing positions that are padding in every row: ``(B, L, D), (B, L) -> (B, L', D), (B, L')``
    with ``L' = max(1, longest row)``. Lists are right-padded, so real events stay where they were (and keep
    their positions); padded keys are masked in every attention, so the outputs are unchanged."""
    longest = max(int(mask.sum(dim=1).max()) if mask.numel() else 0, 1)
    if longest >= mask.shape[1]:
        return tokens, mask
    return tokens[:, :longest], mask[:, :longest]
