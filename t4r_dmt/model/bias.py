"""BiasTower: models position bias; its logit is added to every task logit during training only."""

from __future__ import annotations

import torch
from torch import nn

from t4r_dmt.model.inputs import BiasBatch
from t4r_dmt.model.mlp import Tower


class BiasTower(nn.Module):
    """Embeddings of position, page, target category and the mean of the neighbours' categories -> MLP -> y_b.

    Parameters
    ----------
    n_positions, n_pages, n_categories: table sizes (code 0 = padding).
    embedding_dim: width of each embedding (4 are concatenated).
    units: hidden widths (paper: 32, 16); dropout: after each hidden layer (paper: 0.5).

    Shapes: ``BiasBatch`` (``position``, ``page`` ``(B,)``, ``neighbors`` ``(B, 6)``) and
    ``category (B,)`` ``-> (B,)``.
    """

    def __init__(self, n_positions: int, n_pages: int, n_categories: int, embedding_dim: int,
                 units: list[int], dropout: float) -> None:
        super().__init__()
        self.positions = nn.Embedding(n_positions, embedding_dim)
        self.pages = nn.Embedding(n_pages, embedding_dim)
        self.categories = nn.Embedding(n_categories, embedding_dim, padding_idx=0)
        self.tower = Tower(4 * embedding_dim, units, dropout)

    def reset_parameters(self) -> None:
        """Draw every parameter again, in construction order: the values (and the random numbers used) of a
        freshly built tower."""
        for module in self.modules():
            if module is not self and isinstance(module, (nn.Embedding, nn.Linear)):
                module.reset_parameters()

    def forward(self, bias: BiasBatch, category: torch.Tensor) -> torch.Tensor:
        valid = (bias.neighbors != 0).unsqueeze(-1).to(self.categories.weight.dtype)  # (B, 6, 1)
        neighbors = (self.categories(bias.neighbors) * valid).sum(1) / valid.sum(1).clamp(min=1.0)
        # Positions deeper than any seen when the schema was written share the last row.
        position = bias.position.clamp(max=self.positions.num_embeddings - 1)
        page = bias.page.clamp(max=self.pages.num_embeddings - 1)
        x = torch.cat([self.positions(position), self.pages(page), self.categories(category), neighbors], dim=1)
        return self.tower(x)
