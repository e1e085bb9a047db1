"""MultiBehaviorEncoder: the shared input of the multi-task part.

``[interest_click ⊕ interest_cart ⊕ interest_order] ⊕ target item ⊕ dense features (⊕ user embeddings)``.
"""

from __future__ import annotations

import torch
from torch import nn

from t4r_dmt.model.config import DMTConfig
from t4r_dmt.model.features import FeatureSpec
from t4r_dmt.model.inputs import RankingBatch
from t4r_dmt.model.interest import DeepInterestTransformer


class ItemEmbedding(nn.Module):
    """The three entity tables (code 0 = padding, a zero vector): ``(...,) x3 -> (..., token_dim)``."""

    def __init__(self, n_items: int, n_categories: int, n_brands: int, dims: tuple[int, int, int],
                 init_std: float) -> None:
        super().__init__()
        self.items = nn.Embedding(n_items, dims[0], padding_idx=0)
        self.categories = nn.Embedding(n_categories, dims[1], padding_idx=0)
        self.brands = nn.Embedding(n_brands, dims[2], padding_idx=0)
        for table in (self.items, self.categories, self.brands):
            nn.init.normal_(table.weight, std=init_std)
            with torch.no_grad():
                table.weight[0].zero_()
        self.out_size = sum(dims)

    def forward(self, items: torch.Tensor, categories: torch.Tensor, brands: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.items(items), self.categories(categories), self.brands(brands)], dim=-1)


class MultiBehaviorEncoder(nn.Module):
    """Embeds the target item, runs one DeepInterestTransformer per behaviour, concatenates.

    Each behaviour has its own transformer (own weights, own length N); the entity tables are shared by the
    target item and every sequence.

    Shapes: ``RankingBatch -> (B, out_size)`` with
    ``out_size = n_behaviors * d_model + token_dim + n_dense + n_users * user_dim``.
    """

    def __init__(self, spec: FeatureSpec, config: DMTConfig) -> None:
        super().__init__()
        emb = config.embeddings
        self.embedding = ItemEmbedding(spec.n_items, spec.n_categories, spec.n_brands,
                                       (emb.item_dim, emb.category_dim, emb.brand_dim),
                                       emb.init_std if emb.init_std is not None else emb.token_dim ** -0.5)
        self.interests = nn.ModuleDict({
            b.name: DeepInterestTransformer(config.transformer, emb.token_dim, b.max_length)
            for b in spec.behaviors
        })
        self.behaviors = tuple(b.name for b in spec.behaviors)
        self.users = nn.ModuleList(nn.Embedding(n, emb.user_dim) for _, n in spec.users)
        self.out_size = (len(spec.behaviors) * config.transformer.d_model + emb.token_dim + len(spec.dense)
                         + len(spec.users) * emb.user_dim)

    def forward(self, batch: RankingBatch) -> torch.Tensor:
        target = self.embedding(batch.item, batch.category, batch.brand)  # (B, token_dim)
        parts = []
        for name, seq in zip(self.behaviors, batch.sequences, strict=True):
            tokens = self.embedding(seq.items, seq.categories, seq.brands)  # (B, L, token_dim)
            parts.append(self.interests[name](tokens, seq.items != 0, target))  # (B, d_model)
        parts += [target, batch.dense]
        parts += [table(batch.users[:, i]) for i, table in enumerate(self.users)]
        return torch.cat(parts, dim=1)
