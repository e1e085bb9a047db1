"""The paper's GRU baseline body: a GRU in place of the transformer, inside the same T4R meta-architecture.

Transformers4Rec 23.12 has no recurrent block in its torch API, so the GRU is a plain ``torch.nn.GRU``
adapted to T4R in one place (:func:`gru_block`). It runs under the same ``TabularSequenceFeatures``
(with causal, ``clm``, masking) and ``NextItemPredictionTask`` as the transformers, so training and
evaluation are identical; a GRU reads left to right, so a position never sees the items after it and
the padded positions at the end of a session do not change the outputs before them.
"""

from __future__ import annotations

from typing import Any

import torch
import transformers4rec.torch as tr


class GRUSequenceEncoder(torch.nn.Module):
    """A stack of GRU layers over a padded interaction sequence.

    Parameters
    ----------
    d_input:
        Size of each input interaction embedding.
    d_hidden:
        GRU hidden size (the output size).
    n_layer:
        Stacked GRU layers.
    dropout:
        Dropout on the outputs of each layer (``torch.nn.GRU``'s between layers, and after the last).

    Shapes: ``(B, L, d_input) -> (B, L, d_hidden)``.
    """

    def __init__(self, d_input: int, d_hidden: int, n_layer: int = 1, dropout: float = 0.0) -> None:
        super().__init__()
        if min(d_input, d_hidden, n_layer) < 1:
            raise ValueError(f"d_input, d_hidden and n_layer must be >= 1, got {d_input}, {d_hidden}, {n_layer}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        self.d_hidden = d_hidden
        self.gru = torch.nn.GRU(d_input, d_hidden, num_layers=n_layer, batch_first=True,
                                dropout=dropout if n_layer > 1 else 0.0)
        self.output_dropout = torch.nn.Dropout(dropout)

    def forward(self, inputs: torch.Tensor, **kwargs: Any) -> torch.Tensor:
        """``(B, L, d_input)`` -> ``(B, L, d_hidden)``; T4R's ``training`` / ``testing`` flags are ignored."""
        if inputs.dim() != 3:
            raise ValueError(f"GRUSequenceEncoder expects (batch, length, features), got {tuple(inputs.shape)}")
        outputs, _ = self.gru(inputs)
        return self.output_dropout(outputs)


def gru_block(d_input: int, d_hidden: int, n_layer: int, dropout: float, max_sequence_length: int) -> tr.Block:
    """A ``tr.Block`` around :class:`GRUSequenceEncoder` with its fixed output size ``(None, L, d_hidden)``."""
    encoder = GRUSequenceEncoder(d_input, d_hidden, n_layer, dropout)
    output_size: list[Any] = [None, max_sequence_length, d_hidden]  # None: any batch size
    return tr.Block(encoder, output_size)
