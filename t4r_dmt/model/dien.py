"""DIEN's interest extractor and evolution (Zhou et al., AAAI 2019), one behaviour sequence at a time.

1. Interest extractor: a GRU over the events gives hidden states ``h_t``. Its auxiliary loss asks ``h_t`` to
   tell the next real event ``e_{t+1}`` from a negative (the event at the same step of another row of the
   batch): ``-log σ(h_t·e_{t+1}) - log(1 - σ(h_t·e⁻))``, averaged over the steps that have a next event.
2. Interest evolution: an AUGRU whose update gate is scaled by the attention of ``h_t`` on the target item
   (DIN's activation unit, softmax over the real events). Padded steps get attention 0 and leave the state
   unchanged, so the state after the last step is the evolved interest.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from t4r_dmt.model.sequence_interest import AttentionScorer, masked_softmax


class AUGRUCell(nn.Module):
    """GRU cell with an attentional update gate: ``u' = a * u``; ``h = (1 - u') h_prev + u' h~``.

    Shapes: ``x (B, D), h_prev (B, H), a (B,) -> (B, H)``.
    """

    def __init__(self, input_size: int, hidden_size: int) -> None:
        super().__init__()
        self.x2h = nn.Linear(input_size, 3 * hidden_size)
        self.h2h = nn.Linear(hidden_size, 3 * hidden_size)

    def forward(self, x: torch.Tensor, h_prev: torch.Tensor, attention: torch.Tensor) -> torch.Tensor:
        xr, xu, xn = self.x2h(x).chunk(3, dim=-1)
        hr, hu, hn = self.h2h(h_prev).chunk(3, dim=-1)
        reset = torch.sigmoid(xr + hr)
        update = torch.sigmoid(xu + hu) * attention.unsqueeze(-1)
        candidate = torch.tanh(xn + reset * hn)
        return (1.0 - update) * h_prev + update * candidate


def auxiliary_loss(hidden: torch.Tensor, tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """DIEN's next-event loss. ``hidden (B, L, H)``, ``tokens (B, L, H)``, ``mask (B, L)`` -> ``()``.

    Negatives are the tokens of the next row of the batch at the same step (a cheap in-batch sample).
    Returns 0 when no row has two real events.
    """
    valid = mask[:, 1:] & mask[:, :-1]  # (B, L-1): step t has a real next event
    if hidden.shape[1] < 2 or not bool(valid.any()):
        return hidden.new_zeros(())
    h = hidden[:, :-1]
    positive = (h * tokens[:, 1:]).sum(-1)
    negative = (h * tokens.roll(1, dims=0)[:, 1:]).sum(-1)
    loss = F.softplus(-positive) + F.softplus(negative)  # -log σ(p) - log(1 - σ(n))
    return loss[valid].mean()


class InterestEvolution(nn.Module):
    """DIEN for one behaviour.

    Parameters
    ----------
    dim: width D of the events and the target (the GRU's hidden size too, so the output is ``(B, D)``).
    units: hidden widths of the attention MLP.

    Shapes: ``tokens (B, L, D), mask (B, L), target (B, D) -> (interest (B, D), aux_loss ())``.
    """

    def __init__(self, dim: int, units: list[int]) -> None:
        super().__init__()
        self.extractor = nn.GRU(dim, dim, batch_first=True)
        self.scorer = AttentionScorer(dim, units)
        self.evolution = AUGRUCell(dim, dim)

    def forward(self, tokens: torch.Tensor, mask: torch.Tensor,
                target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # Sequences are right-padded and the GRU runs left to right: states at real steps never see padding.
        hidden, _ = self.extractor(tokens)  # (B, L, D)
        aux = auxiliary_loss(hidden, tokens, mask)
        attention = masked_softmax(self.scorer(hidden, target), mask)  # (B, L)
        state = hidden.new_zeros(hidden.shape[0], hidden.shape[2])
        for step in range(hidden.shape[1]):
            state = self.evolution(hidden[:, step], state, attention[:, step])
        return state, aux
