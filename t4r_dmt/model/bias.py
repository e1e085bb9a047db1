"""BiasTower: models position bias; its logit y_b enters every task's click probability during training only.

How y_b enters the loss (``config.bias.form``) is ``MultiTaskLoss``'s; the tower knows its form only to report
its examination term in the form's own scale (``examination_log``, ``examination_curve``).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from t4r_dmt.model.config import BIAS_FORMS, BIAS_KINDS
from t4r_dmt.model.inputs import BiasBatch
from t4r_dmt.model.loss import examination_log
from t4r_dmt.model.mlp import Tower

#: The first steps of a "monotone" curve: each position's log examination starts this far below the one
#: above it (a nearly flat start; the steps are δ², so δ starts at the square root of this).
MONOTONE_STEP_START = 0.02


class BiasTower(nn.Module):
    """Position, page, target category and the mean of the neighbours' categories -> y_b.

    ``kind`` "mlp" (the paper's): the four embeddings are concatenated and go through an MLP to y_b. ``kind``
    "scalar": y_b = s_pos[position] + s_page[page] + MLP(category ⊕ neighbours), with one scalar per position and
    per page (tables of width 1, zeros at start, no dropout) and the MLP reading the category part only.
    ``kind`` "monotone": y_b = c[position] + MLP(category ⊕ neighbours), c non-increasing down the list
    (``monotone_curve``); no page table (``pages`` is None): the page is not read. With ``form`` "pbm" the curve
    is the log examination itself and the top position's is 0 (examined for sure, the position-based model's
    normalisation), so only the steps down the list are learned; the MLP then has no bias terms, so a context
    of zeros (an input left out, ``SelectiveBiasTower``) adds exactly 0.

    Parameters
    ----------
    n_positions, n_pages, n_categories: table sizes (code 0 = padding).
    embedding_dim: width of each category embedding, and of the position and page ones for "mlp".
    units: hidden widths (paper: 32, 16); dropout: after each hidden layer (paper: 0.5).
    kind: "mlp", "scalar" or "monotone" (``BIAS_KINDS``).
    form: "additive", "multiplicative" or "pbm" (``BIAS_FORMS``): the scale of ``examination_log``.
    zero_init: y_b starts at exactly 0: the position and page tables and the MLP's last layer are zeros ("monotone":
        the MLP's last layer only; its curve starts as above).
    target_features: read the target's own category; False: the neighbours' only (``category`` is ignored).
    lr_multiplier: the tower's parameters train with the learning rate times this (``DMTTrainer`` reads it).

    Shapes: ``BiasBatch`` (``position``, ``page`` ``(B,)``, ``neighbors`` ``(B, 6)``) and
    ``category (B,)`` ``-> (B,)``.
    """

    def __init__(self, n_positions: int, n_pages: int, n_categories: int, embedding_dim: int,
                 units: list[int], dropout: float, kind: str = "mlp", form: str = "additive",
                 zero_init: bool = False, target_features: bool = True, lr_multiplier: float = 1.0) -> None:
        super().__init__()
        if kind not in BIAS_KINDS:
            raise ValueError(f"kind must be one of {BIAS_KINDS}; got {kind!r}")
        if form not in BIAS_FORMS:
            raise ValueError(f"form must be one of {BIAS_FORMS}; got {form!r}")
        self.kind, self.form = kind, form
        self.zero_init, self.target_features = zero_init, target_features
        self.lr_multiplier = float(lr_multiplier)
        # "scalar", "monotone": one number per position (and page); "mlp": an embedding each, read by the MLP.
        # "monotone" has no page term (its curve over the positions already holds any page step).
        position_dim = embedding_dim if kind == "mlp" else 1
        self.positions = nn.Embedding(n_positions, position_dim)
        self.pages = nn.Embedding(n_pages, position_dim) if kind != "monotone" else None
        self.categories = nn.Embedding(n_categories, embedding_dim, padding_idx=0)
        n_category_parts = 2 if target_features else 1  # the target's category, the neighbours' mean
        in_size = n_category_parts * embedding_dim + (2 * embedding_dim if kind == "mlp" else 0)
        self.tower = Tower(in_size, units, dropout)
        if form == "pbm":  # no bias terms: an empty context adds exactly 0 (the top stays examined for sure)
            for layer in self.tower.modules():
                if isinstance(layer, nn.Linear):
                    layer.register_parameter("bias", None)
        self._zero_start()

    def _zero_start(self) -> None:
        """Zero what ``kind`` and ``zero_init`` start at 0 (after the draws, so the random stream does not
        depend on them)."""
        with torch.no_grad():
            if self.kind != "mlp" or self.zero_init:
                self.positions.weight.zero_()
                if self.pages is not None:
                    self.pages.weight.zero_()
            if self.kind == "monotone":
                self.positions.weight[2:] = math.sqrt(MONOTONE_STEP_START)
            if self.zero_init:
                self.tower.logit.weight.zero_()
                if self.tower.logit.bias is not None:
                    self.tower.logit.bias.zero_()

    def reset_parameters(self) -> None:
        """Draw every parameter again, in construction order: the values (and the random numbers used) of a
        freshly built tower."""
        for module in self.modules():
            if module is not self and isinstance(module, (nn.Embedding, nn.Linear)):
                module.reset_parameters()
        self._zero_start()

    def monotone_curve(self) -> torch.Tensor:
        """The "monotone" kind's curve per position code, ``(n_positions,)``: 0 at code 0, then a, a - δ_2²,
        ... (non-increasing from code 1 on); a = 0 for the "pbm" form (its top position is examined for sure).
        Differentiable in the position table."""
        raw = self.positions.weight.squeeze(-1)  # (P,)
        steps = raw[2:] ** 2
        top = raw.new_zeros(1) if self.form == "pbm" else raw[1:2]
        curve = top - torch.cat([raw.new_zeros(1), steps.cumsum(0)])  # (P - 1,), codes 1..
        return torch.cat([raw.new_zeros(1), curve])

    def forward(self, bias: BiasBatch, category: torch.Tensor) -> torch.Tensor:
        valid = (bias.neighbors != 0).unsqueeze(-1).to(self.categories.weight.dtype)  # (B, 6, 1)
        neighbors = (self.categories(bias.neighbors) * valid).sum(1) / valid.sum(1).clamp(min=1.0)  # (B, d)
        context = [self.categories(category), neighbors] if self.target_features else [neighbors]
        # Positions deeper than any seen when the schema was written share the last row.
        code = bias.position.clamp(max=self.positions.num_embeddings - 1)  # (B,)
        if self.pages is None:  # "monotone"
            return self.monotone_curve()[code] + self.tower(torch.cat(context, dim=1))
        position = self.positions(code)  # (B, d) or (B, 1)
        page = self.pages(bias.page.clamp(max=self.pages.num_embeddings - 1))
        if self.kind == "scalar":
            return position.squeeze(-1) + page.squeeze(-1) + self.tower(torch.cat(context, dim=1))
        return self.tower(torch.cat([position, page, *context], dim=1))

    def examination_log(self, bias: BiasBatch, category: torch.Tensor) -> torch.Tensor:
        """Each row's examination term in the form's own scale, ``(B,)``: the logit y_b ("additive"), or the log
        examination probability: log σ(y_b) ("multiplicative"), min(y_b, 0) ("pbm"). Computed in the module's
        current mode."""
        return examination_log(self(bias, category), self.form)

    def examination_curve(self, neighbors: torch.Tensor, category: torch.Tensor, positions: torch.Tensor,
                          pages: torch.Tensor) -> torch.Tensor:
        """The learned examination curve: for each j, ``examination_log`` of every row re-scored at position code
        ``positions[j]`` and page code ``pages[j]``, averaged over the rows. Evaluation mode (no dropout), no
        gradient; the module's mode is restored.

        Shapes: ``neighbors (N, 6)``, ``category (N,)``, ``positions (P,)``, ``pages (P,)`` ``-> (P,)``.
        """
        was_training = self.training
        self.eval()
        try:
            with torch.no_grad():
                curve = [self.examination_log(BiasBatch(position.expand(len(category)), page.expand(len(category)),
                                                        neighbors), category).mean()
                         for position, page in zip(positions, pages, strict=True)]
        finally:
            self.train(was_training)
        return torch.stack(curve)
