"""DMTNetwork: the whole DMT as one plain ``nn.Module`` (no T4R in here; ``t4r.py`` adapts it).

``inputs dict -> RankingBatch -> MultiBehaviorEncoder -> multi-task block -> task logits u (B, K)``, plus the
bias tower's logit ``y_b (B,)`` when the schema has bias features. Variant "single_task" builds one whole
network (embeddings, transformers, bottom, tower) per task.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from t4r_dmt.model.bias import BiasTower
from t4r_dmt.model.config import DMTConfig
from t4r_dmt.model.features import FeatureSpec
from t4r_dmt.model.inputs import read_batch
from t4r_dmt.model.multi_behavior import MultiBehaviorEncoder
from t4r_dmt.model.multitask import build_multitask


class DMTOutput(NamedTuple):
    """``task_logits (B, K)`` relevance logits u_k; ``bias_logit (B,)`` y_b, or None without a bias tower."""

    task_logits: torch.Tensor
    bias_logit: torch.Tensor | None


class DMTNetwork(nn.Module):
    """Parameters
    ----------
    spec: column names and sizes read from the schema.
    config: the model configuration.

    Shapes: ``dict[str, Tensor]`` (T4R's padded inputs) ``-> DMTOutput``.
    """

    def __init__(self, spec: FeatureSpec, config: DMTConfig) -> None:
        super().__init__()
        self.spec = spec
        self.num_tasks = len(spec.targets)
        single = config.multitask.kind == "single_task"
        n_networks = self.num_tasks if single else 1
        tasks_per_network = 1 if single else self.num_tasks
        encoders = [MultiBehaviorEncoder(spec, config) for _ in range(n_networks)]
        self.shared_size: int = encoders[0].out_size  # width D of the multi-task block's input
        self.encoders = nn.ModuleList(encoders)
        self.multitask = nn.ModuleList(
            build_multitask(config.multitask, self.shared_size, tasks_per_network) for _ in encoders
        )
        self.bias_tower: BiasTower | None = None
        if spec.bias is not None:
            b = config.bias
            self.bias_tower = BiasTower(spec.bias.n_positions, spec.bias.n_pages, spec.n_categories,
                                        b.embedding_dim, b.units, b.dropout)

    def forward(self, inputs: dict[str, torch.Tensor]) -> DMTOutput:
        batch = read_batch(inputs, self.spec)
        logits = torch.cat(
            [block(encoder(batch)) for encoder, block in zip(self.encoders, self.multitask, strict=True)], dim=1
        )
        bias_logit = None
        if self.bias_tower is not None and batch.bias is not None:
            bias_logit = self.bias_tower(batch.bias, batch.category)
        return DMTOutput(logits, bias_logit)
