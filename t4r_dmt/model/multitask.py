"""The multi-task part above the shared input: MMoE and the paper's ablations.

Every block maps the shared input ``(B, D)`` to one logit per task ``(B, K)``:

* ``MMoE``: N expert MLPs, one softmax gate per task over the shared input, one tower per task;
* ``SharedBottom``: one MLP shared by all tasks, one tower per task;
* ``TaskTowers`` ("DMT_trans", no MMoE): one full MLP tower per task on the shared input.

("single_task", one whole network per task, is assembled in ``network.py`` from ``SharedBottom`` with K=1.)
"""

from __future__ import annotations

import torch
from torch import nn

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

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        experts = torch.stack([expert(x) for expert in self.experts], dim=1)  # (B, E, H)
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
