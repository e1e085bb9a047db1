"""The Table 1 torch baselines (DNN, DIN, DIEN) as one network, trained exactly like DMT.

``BaselineNetwork`` mirrors ``DMTNetwork`` with the per-behaviour transformer replaced by the extractor that
``config.interest.kind`` names (``sequence_interest.py``, ``dien.py``); the multi-task block and the
optional bias tower are DMT's. Its output adds DIEN's auxiliary loss, which ``BaselineRankingTask`` adds to
the training loss with weight ``config.interest.aux_loss_weight``.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import torch
from torch import nn

from t4r_dmt.model.bias import BiasTower
from t4r_dmt.model.config import DMTConfig
from t4r_dmt.model.dien import InterestEvolution
from t4r_dmt.model.features import FeatureSpec
from t4r_dmt.model.inputs import RankingBatch, read_batch
from t4r_dmt.model.loss import MultiTaskLoss
from t4r_dmt.model.multi_behavior import ItemEmbedding
from t4r_dmt.model.multitask import build_multitask
from t4r_dmt.model.sequence_interest import MeanPoolInterest, TargetAttentionInterest
from t4r_dmt.model.t4r import RankingTask


class BaselineOutput(NamedTuple):
    """``task_logits (B, K)``, ``bias_logit (B,)`` or None, ``aux_loss ()`` (0 unless DIEN)."""

    task_logits: torch.Tensor
    bias_logit: torch.Tensor | None
    aux_loss: torch.Tensor


def build_interest(kind: str, dim: int, units: list[int]) -> nn.Module:
    """The extractor named by ``kind`` ("mean", "din", "dien") for tokens of width ``dim``."""
    if kind == "mean":
        return MeanPoolInterest()
    if kind == "din":
        return TargetAttentionInterest(dim, units)
    if kind == "dien":
        return InterestEvolution(dim, units)
    raise ValueError(f"interest.kind {kind!r} has no baseline extractor; choose mean, din, dien")


class BaselineEncoder(nn.Module):
    """Target item ⊕ one interest vector per behaviour ⊕ dense features ⊕ user embeddings.

    Shapes: ``RankingBatch -> ((B, out_size), aux_loss ())`` with
    ``out_size = (n_behaviors + 1) * token_dim + n_dense + n_users * user_dim``.
    """

    def __init__(self, spec: FeatureSpec, config: DMTConfig) -> None:
        super().__init__()
        emb = config.embeddings
        dim = emb.token_dim
        self.embedding = ItemEmbedding(spec.n_items, spec.n_categories, spec.n_brands,
                                       (emb.item_dim, emb.category_dim, emb.brand_dim),
                                       emb.init_std if emb.init_std is not None else dim ** -0.5)
        self.behaviors = tuple(b.name for b in spec.behaviors)
        self.interests = nn.ModuleDict({
            name: build_interest(config.interest.kind, dim, config.interest.attention_units)
            for name in self.behaviors
        })
        self.users = nn.ModuleList(nn.Embedding(n, emb.user_dim) for _, n in spec.users)
        self.out_size = (len(self.behaviors) + 1) * dim + len(spec.dense) + len(spec.users) * emb.user_dim

    def forward(self, batch: RankingBatch) -> tuple[torch.Tensor, torch.Tensor]:
        target = self.embedding(batch.item, batch.category, batch.brand)  # (B, D)
        parts = [target]
        aux = target.new_zeros(())
        for name, seq in zip(self.behaviors, batch.sequences, strict=True):
            tokens = self.embedding(seq.items, seq.categories, seq.brands)  # (B, L, D)
            interest, loss = self.interests[name](tokens, seq.items != 0, target)
            parts.append(interest)
            aux = aux + loss
        parts.append(batch.dense)
        parts += [table(batch.users[:, i]) for i, table in enumerate(self.users)]
        return torch.cat(parts, dim=1), aux


class BaselineNetwork(nn.Module):
    """DNN / DIN / DIEN: ``dict[str, Tensor] -> BaselineOutput``. ``spec`` and ``num_tasks`` as DMTNetwork's."""

    def __init__(self, spec: FeatureSpec, config: DMTConfig) -> None:
        super().__init__()
        if config.multitask.kind == "single_task":
            raise ValueError("the baselines share one network between the tasks: multitask.kind 'single_task' "
                             "is a DMT ablation only")
        self.spec = spec
        self.num_tasks = len(spec.targets)
        self.encoder = BaselineEncoder(spec, config)
        self.shared_size = self.encoder.out_size
        self.multitask = build_multitask(config.multitask, self.shared_size, self.num_tasks)
        self.bias_tower: BiasTower | None = None
        if spec.bias is not None:
            b = config.bias
            self.bias_tower = BiasTower(spec.bias.n_positions, spec.bias.n_pages, spec.n_categories,
                                        b.embedding_dim, b.units, b.dropout)

    def forward(self, inputs: dict[str, torch.Tensor]) -> BaselineOutput:
        batch = read_batch(inputs, self.spec)
        shared, aux = self.encoder(batch)
        bias_logit = None
        if self.bias_tower is not None and batch.bias is not None:
            bias_logit = self.bias_tower(batch.bias, batch.category)
        return BaselineOutput(self.multitask(shared), bias_logit, aux)


class BaselineRankingTask(RankingTask):
    """``RankingTask`` whose training loss adds ``aux_weight * aux_loss`` (DIEN's auxiliary loss)."""

    def __init__(self, loss: MultiTaskLoss, score_weights: list[float], targets: tuple[str, ...],
                 aux_weight: float) -> None:
        super().__init__(loss, score_weights, targets)
        self.aux_weight = float(aux_weight)

    def forward(
        self, inputs: Any, targets: Any = None, training: bool = False, testing: bool = False
    ) -> dict[str, Any]:
        result = super().forward(inputs, targets=targets, training=training, testing=testing)
        if training and isinstance(inputs, BaselineOutput) and self.aux_weight > 0:
            result["loss"] = result["loss"] + self.aux_weight * inputs.aux_loss
        return result
