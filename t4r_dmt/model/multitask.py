"""The multi-task part above the shared input: MMoE and the paper's ablations.

Every block maps the shared input ``(B, D)`` to one logit per task ``(B, K)``:

* ``MMoE``: N expert MLPs, one softmax gate per task over the shared input, one tower per task;
* ``SharedBottom``: one MLP shared by all tasks, one tower per task;
* ``TaskTowers`` ("DMT_trans", no MMoE): one full MLP tower per task on the shared input.

("single_task", one whole network per task, is assembled in ``network.py`` from ``SharedBottom`` with K=1.)
"""

from __future__ import annotations

from typing import cast

import torch
from torch import nn
from torch.nn import functional as F

from t4r_dmt.model.config import MultiTaskConfig
from t4r_dmt.model.mlp import MLP, Tower


class MMoE(nn.Module):
    """Multi-gate Mixture-of-Experts (Ma et al., 2018).

    Parameters
    ----------
    in_size: D; num_tasks: K; num_experts: E; expert_units: each expert's MLP widths;
    tower_units: each task tower's hidden widths (then one logit).

    Shapes: ``(B, D) -> (B, K)``; ``gate_weights``: ``(B, D) -> (B, K, E)``, rows summing to 1.
    """

    def __init__(self, in_size: int, num_tasks: int, num_experts: int, expert_units: list[int],
                 tower_units: list[int], dropout: float = 0.0) -> None:
        super().__init__()
        self.experts = nn.ModuleList(MLP(in_size, expert_units, dropout) for _ in range(num_experts))
        self.gates = nn.ModuleList(nn.Linear(in_size, num_experts) for _ in range(num_tasks))
        self.towers = nn.ModuleList(Tower(expert_units[-1], tower_units) for _ in range(num_tasks))

    def gate_weights(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stack([torch.softmax(gate(x), dim=-1) for gate in self.gates], dim=1)

    def expert_outputs(self, x: torch.Tensor) -> torch.Tensor:
        """All experts at once: ``(B, D) -> (B, E, H)``.

        Same parameters and result as running each expert's MLP in turn, but the first layers of all experts
        are one matrix product (``(B, D) @ (D, E·H1)``) and each later layer one batched product over the
        experts: a few large kernels instead of E small ones per layer (the MMoE's share of a CPU step).
        """
        experts = [cast(MLP, expert) for expert in self.experts]
        layers = [[m for m in expert.layers if isinstance(m, nn.Linear)] for expert in experts]
        dropout = experts[0].dropout
        first = [expert[0] for expert in layers]
        h = F.linear(x, torch.cat([f.weight for f in first]), torch.cat([f.bias for f in first]))  # (B, E·H1)
        h = F.relu(h).view(x.shape[0], len(layers), -1).transpose(0, 1)  # (E, B, H1)
        h = F.dropout(h, dropout, self.training) if dropout > 0 else h
        for depth in range(1, len(layers[0])):
            weight = torch.stack([expert[depth].weight for expert in layers])  # (E, H_out, H_in)
            bias = torch.stack([expert[depth].bias for expert in layers]).unsqueeze(1)  # (E, 1, H_out)
            h = F.relu(torch.baddbmm(bias, h, weight.transpose(1, 2)))
            h = F.dropout(h, dropout, self.training) if dropout > 0 else h
        return h.transpose(0, 1)  # (B, E, H)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        experts = self.expert_outputs(x)  # (B, E, H)
        gates = self.gate_weights(x)  # (B, K, E)
        mixed = torch.bmm(gates, experts)  # (B, K, H)
        return torch.stack([tower(mixed[:, k]) for k, tower in enumerate(self.towers)], dim=1)


class SharedBottom(nn.Module):
    """One shared MLP, one tower per task: ``(B, D) -> (B, K)``."""

    def __init__(self, in_size: int, num_tasks: int, bottom_units: list[int], tower_units: list[int],
                 dropout: float = 0.0) -> None:
        super().__init__()
        self.bottom = MLP(in_size, bottom_units, dropout)
        self.towers = nn.ModuleList(Tower(self.bottom.out_size, tower_units) for _ in range(num_tasks))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.bottom(x)
        return torch.stack([tower(h) for tower in self.towers], dim=1)


class TaskTowers(nn.Module):
    """One independent MLP tower (``bottom_units + tower_units``) per task: ``(B, D) -> (B, K)``."""

    def __init__(self, in_size: int, num_tasks: int, bottom_units: list[int], tower_units: list[int],
                 dropout: float = 0.0) -> None:
        super().__init__()
        self.towers = nn.ModuleList(
            Tower(in_size, [*bottom_units, *tower_units], dropout) for _ in range(num_tasks)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stack([tower(x) for tower in self.towers], dim=1)


def build_multitask(cfg: MultiTaskConfig, in_size: int, num_tasks: int) -> nn.Module:
    """The block named by ``cfg.kind`` ("single_task" uses a one-task SharedBottom per network)."""
    if cfg.kind == "mmoe":
        return MMoE(in_size, num_tasks, cfg.num_experts, cfg.expert_units, cfg.tower_units, cfg.dropout)
    if cfg.kind in ("shared_bottom", "single_task"):
        return SharedBottom(in_size, num_tasks, cfg.expert_units, cfg.tower_units, cfg.dropout)
    if cfg.kind == "towers":
        return TaskTowers(in_size, num_tasks, cfg.expert_units, cfg.tower_units, cfg.dropout)
    raise ValueError(f"unknown multitask.kind {cfg.kind!r}; choose mmoe, shared_bottom, towers, single_task")
