"""``SelectiveBiasTower``: the bias tower reading only the inputs ``config.bias.inputs`` names (Table 5).

Inputs: "position" (position_index), "page" (position_page) and "neighbors" (the target's category and the
mean of its neighbours' categories: the list context). A left-out input is a zero vector of the same width,
so the tower keeps the full tower's shape and only the information changes.
"""

from __future__ import annotations

from typing import Any

import torch

from t4r_dmt.model.bias import BiasTower
from t4r_dmt.model.config import BIAS_INPUTS
from t4r_dmt.model.inputs import BiasBatch


class SelectiveBiasTower(BiasTower):
    """``BiasTower`` with some inputs zeroed.

    Parameters
    ----------
    inputs: the inputs used, a non-empty subset of ``BIAS_INPUTS``; the others, and the keyword ``options``
        (``kind``, ``form``, ...), as ``BiasTower``.

    Shapes: as ``BiasTower``: ``BiasBatch``, ``category (B,)`` ``-> (B,)``.
    """

    def __init__(self, n_positions: int, n_pages: int, n_categories: int, embedding_dim: int,
                 units: list[int], dropout: float, inputs: list[str], **options: Any) -> None:
        unknown = sorted(set(inputs) - set(BIAS_INPUTS))
        if not inputs or unknown:
            raise ValueError(f"bias inputs must be a non-empty subset of {BIAS_INPUTS}; got {inputs!r}")
        super().__init__(n_positions, n_pages, n_categories, embedding_dim, units, dropout, **options)
        self.inputs = tuple(inputs)

    def forward(self, bias: BiasBatch, category: torch.Tensor) -> torch.Tensor:
        zero = torch.zeros_like(bias.position)
        position = bias.position if "position" in self.inputs else zero
        page = bias.page if "page" in self.inputs else zero
        if "neighbors" in self.inputs:
            neighbors = bias.neighbors
        else:
            neighbors, category = torch.zeros_like(bias.neighbors), torch.zeros_like(category)
        return super().forward(BiasBatch(position, page, neighbors), category)
