"""A plain multi-layer perceptron with explicit sizes (TorchRec's ``MLP(in_size, layer_sizes)``)."""

from __future__ import annotations

import torch
from torch import nn


class MLP(nn.Module):
    """``Linear → ReLU → Dropout`` per layer.

    Parameters
    ----------
    in_size: input width D.
    units: layer widths; ``[]`` is the identity.
    dropout: dropout after each activation.

    Shapes: ``(B, D) -> (B, units[-1])`` (``(B, D)`` when ``units`` is empty).
    """

    def __init__(self, in_size: int, units: list[int], dropout: float = 0.0) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        size = in_size
        for width in units:
            layers += [nn.Linear(size, width), nn.ReLU()]
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            size = width
        self.layers = nn.Sequential(*layers)
        self.dropout = dropout
        self.in_size = in_size
        self.out_size = size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


class Tower(nn.Module):
    """An MLP ending in one logit: ``(B, D) -> (B,)``."""

    def __init__(self, in_size: int, units: list[int], dropout: float = 0.0) -> None:
        super().__init__()
        self.mlp = MLP(in_size, units, dropout)
        self.logit = nn.Linear(self.mlp.out_size, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.logit(self.mlp(x)).squeeze(-1)
