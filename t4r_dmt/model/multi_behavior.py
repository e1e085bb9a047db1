"""MultiBehaviorEncoder: the shared input of the multi-task part.

One interest vector per behaviour sequence, from the extractor ``config.interest.kind`` names (chosen once, at
construction, by ``build_interest``), concatenated with the target item, the dense features and the optional
user embeddings; for the transformer with ``transformer.pooled_sequences``, also each sequence's mean token.
The transformer also takes each event's time-gap bucket when the spec reads them.
"""

from __future__ import annotations

from typing import cast

import torch
from torch import nn

from t4r_dmt.model.config import INTEREST_KINDS, DMTConfig
from t4r_dmt.model.dien import InterestEvolution
from t4r_dmt.model.features import FeatureSpec
from t4r_dmt.model.inputs import RankingBatch
from t4r_dmt.model.interest import DeepInterestTransformer
from t4r_dmt.model.match import MATCH_FEATURES
from t4r_dmt.model.sequence_interest import MeanPoolInterest, TargetAttentionInterest
from t4r_dmt.schema import OOV_CODE


class ItemEmbedding(nn.Module):
    """The three entity tables (code 0 = padding, a zero vector): ``(...,) x3 -> (..., token_dim)``.

    With ``zero_unknown`` the null and out-of-vocabulary rows (codes 1, 2) also start at zero; unlike padding
    they are trained once rows carry them."""

    def __init__(self, n_items: int, n_categories: int, n_brands: int, dims: tuple[int, int, int],
                 init_std: float, zero_unknown: bool = True) -> None:
        super().__init__()
        self.items = nn.Embedding(n_items, dims[0], padding_idx=0)
        self.categories = nn.Embedding(n_categories, dims[1], padding_idx=0)
        self.brands = nn.Embedding(n_brands, dims[2], padding_idx=0)
        zeroed = OOV_CODE + 1 if zero_unknown else 1
        for table in (self.items, self.categories, self.brands):
            nn.init.normal_(table.weight, std=init_std)
            with torch.no_grad():
                table.weight[:zeroed].zero_()
        self.out_size = sum(dims)

    def forward(self, items: torch.Tensor, categories: torch.Tensor, brands: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.items(items), self.categories(categories), self.brands(brands)], dim=-1)


def build_interest(config: DMTConfig, max_length: int, n_time_gap_buckets: int = 0) -> nn.Module:
    """The extractor ``config.interest.kind`` names, for one behaviour of length ``max_length``.

    "transformer" (DMT): ``DeepInterestTransformer`` (with a time-gap table of ``n_time_gap_buckets`` rows when
    ``transformer.time_encoding`` asks for one and the data has them); "mean" (DNN): ``MeanPoolInterest``; "din":
    ``TargetAttentionInterest``; "dien": ``InterestEvolution``. Every extractor maps ``tokens (B, L, token_dim)``,
    ``mask (B, L)``, ``target (B, token_dim)`` to ``(interest (B, interest_size(config)), aux_loss ())``.
    """
    kind, dim = config.interest.kind, config.embeddings.token_dim
    if kind == "transformer":
        return DeepInterestTransformer(config.transformer, dim, max_length, n_time_gap_buckets)
    if kind == "mean":
        return MeanPoolInterest()
    if kind == "din":
        return TargetAttentionInterest(dim, config.interest.attention_units)
    if kind == "dien":
        return InterestEvolution(dim, config.interest.attention_units)
    raise ValueError(f"unknown interest.kind {kind!r}; choose one of {', '.join(INTEREST_KINDS)}")


def interest_size(config: DMTConfig) -> int:
    """Width of one interest vector: for the transformer ``d_model``, plus the ``MATCH_FEATURES`` (2) match
    magnitudes with ``transformer.match_features``; the token width for the others."""
    if config.interest.kind != "transformer":
        return config.embeddings.token_dim
    return config.transformer.d_model + (MATCH_FEATURES if config.transformer.match_features else 0)


class MultiBehaviorEncoder(nn.Module):
    """Embeds the target item, extracts one interest per behaviour, concatenates.

    Each behaviour has its own extractor (own weights, own length N); the entity tables are shared by the
    target item and every sequence. The target item comes after the interests for DMT and before them for the
    baselines: the column order each was first trained with, kept so trained weights and published results
    stay valid.

    With ``transformer.pooled_sequences`` (DMT only) each behaviour's masked mean token (``MeanPoolInterest``, the
    DNN's interest) follows the interests: the official code's MLP input holds the mean-pooled embedding of every
    sequence feature beside the transformer states. ``transformer.behaviors`` (DMT only; None = every behaviour
    read) names the behaviours that get a transformer; the others are read through their mean token only.

    Shapes: ``RankingBatch -> (shared (B, out_size), aux_loss ())`` with
    ``out_size = n_extracted * interest_size + n_pooled * token_dim + token_dim + n_dense + n_users * user_dim``
    (``interest_size`` = d_model + 2 for DMT with match features; ``n_extracted`` the behaviours with an
    extractor, every one but for ``transformer.behaviors``; ``n_pooled`` = n_behaviors with ``pooled_sequences``,
    else 0); ``aux_loss`` is the sum of the extractors' auxiliary losses (0 except for DIEN).
    """

    def __init__(self, spec: FeatureSpec, config: DMTConfig) -> None:
        super().__init__()
        emb = config.embeddings
        self.embedding = ItemEmbedding(spec.n_items, spec.n_categories, spec.n_brands,
                                       (emb.item_dim, emb.category_dim, emb.brand_dim),
                                       emb.init_std if emb.init_std is not None else emb.token_dim ** -0.5,
                                       emb.zero_unknown)
        self.unknown_dropout = emb.unknown_dropout
        self.target_first = config.interest.kind != "transformer"
        extracted = spec.behaviors
        if not self.target_first and config.transformer.behaviors is not None:
            extracted = tuple(b for b in spec.behaviors if b.name in config.transformer.behaviors)
        self.interests = nn.ModuleDict({
            b.name: build_interest(config, b.max_length, spec.n_time_gap_buckets if b.time_gap else 0)
            for b in extracted
        })
        self.behaviors = tuple(b.name for b in spec.behaviors)
        self.users = nn.ModuleList(nn.Embedding(n, emb.user_dim) for _, n in spec.users)
        self.pooled = MeanPoolInterest() if not self.target_first and config.transformer.pooled_sequences else None
        n_pooled = len(spec.behaviors) if self.pooled is not None else 0
        self.out_size = (len(extracted) * interest_size(config) + n_pooled * emb.token_dim + emb.token_dim
                         + len(spec.dense) + len(spec.users) * emb.user_dim)

    def embedding_norm(self, batch: RankingBatch) -> torch.Tensor:
        """``Σ_t Σ_{r ∈ U_t} ||E_t[r]||²``: the squared norms of the embedding rows ``batch`` reads, each row
        once, over the item, category, brand and user tables (U_t: the distinct codes of table t in the target
        item and every behaviour sequence, padding code 0 left out). ``RankingBatch -> ()``."""
        tables: list[tuple[torch.Tensor, list[torch.Tensor]]] = [
            (self.embedding.items.weight, [batch.item, *(seq.items for seq in batch.sequences)]),
            (self.embedding.categories.weight, [batch.category, *(seq.categories for seq in batch.sequences)]),
            (self.embedding.brands.weight, [batch.brand, *(seq.brands for seq in batch.sequences)]),
        ]
        tables += [(cast(nn.Embedding, table).weight, [batch.users[:, i]]) for i, table in enumerate(self.users)]
        total = self.embedding.items.weight.new_zeros(())
        for weight, parts in tables:
            used = torch.unique(torch.cat([part.reshape(-1) for part in parts]))  # sorted, distinct
            total = total + weight[used[used != 0]].square().sum()
        return total

    def sequence_tokens(self, batch: RankingBatch) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Each behaviour's embedded events and item codes: ``RankingBatch -> [(tokens (B, L, token_dim),
        items (B, L)), ...]`` (what ``CooccurrenceLoss`` reads)."""
        return [(self.embedding(seq.items, seq.categories, seq.brands), seq.items) for seq in batch.sequences]

    def read_items(self, codes: torch.Tensor) -> torch.Tensor:
        """Item codes as the network reads them: while training with ``embeddings.unknown_dropout`` p, each known
        code (> OOV_CODE) becomes OOV_CODE with probability p; padding, null and OOV codes stay. Any shape."""
        if not self.training or self.unknown_dropout == 0:
            return codes
        dropped = (torch.rand(codes.shape, device=codes.device) < self.unknown_dropout) & (codes > OOV_CODE)
        return codes.masked_fill(dropped, OOV_CODE)

    def forward(self, batch: RankingBatch) -> tuple[torch.Tensor, torch.Tensor]:
        target = self.embedding(self.read_items(batch.item), batch.category, batch.brand)  # (B, token_dim)
        interests, pooled = [], []
        aux = target.new_zeros(())
        for name, seq in zip(self.behaviors, batch.sequences, strict=True):
            tokens = self.embedding(self.read_items(seq.items), seq.categories, seq.brands)  # (B, L, token_dim)
            mask = seq.items != 0  # (B, L)
            if name in self.interests:
                extra = () if seq.time_gaps is None else (seq.time_gaps,)  # (B, L) codes, for the transformer
                interest, loss = self.interests[name](tokens, mask, target, *extra)  # (B, size), ()
                interests.append(interest)
                aux = aux + loss
            if self.pooled is not None:
                pooled.append(self.pooled(tokens, mask, target)[0])  # (B, token_dim)
        parts = [target, *interests] if self.target_first else [*interests, *pooled, target]
        parts.append(batch.dense)
        parts += [table(batch.users[:, i]) for i, table in enumerate(self.users)]
        return torch.cat(parts, dim=1), aux
