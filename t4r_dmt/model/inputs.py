"""Turn T4R's input dict (padded or ragged columns) into the typed tensors the DMT modules take.

The merlin data loader pads every list column to one ``max_sequence_length`` (or leaves ``__values`` /
``__offsets`` pairs when it is unset); each behaviour group is cut back here to its own length N, keeping the
N most recent events (lists are oldest first, padded on the right with code 0).
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from t4r_dmt.model.features import FeatureSpec


class SequenceBatch(NamedTuple):
    """One behaviour sequence, each ``(B, N)`` int64, 0 = padding; ``time_gaps``, the time-gap bucket code of
    each event, element by element with ``items``, or None when the model reads no time gaps."""

    items: torch.Tensor
    categories: torch.Tensor
    brands: torch.Tensor
    time_gaps: torch.Tensor | None = None


class BiasBatch(NamedTuple):
    """Bias-tower inputs: ``position`` and ``page`` ``(B,)``, ``neighbors`` ``(B, 6)`` category codes."""

    position: torch.Tensor
    page: torch.Tensor
    neighbors: torch.Tensor


class RankingBatch(NamedTuple):
    """Everything the DMT network reads.

    ``item``, ``category``, ``brand``: ``(B,)`` target item codes; ``sequences``: one per behaviour;
    ``dense``: ``(B, n_dense)`` float32; ``users``: ``(B, n_users)`` int64.
    """

    item: torch.Tensor
    category: torch.Tensor
    brand: torch.Tensor
    sequences: tuple[SequenceBatch, ...]
    dense: torch.Tensor
    users: torch.Tensor
    bias: BiasBatch | None


def scalar_column(inputs: dict[str, torch.Tensor], name: str) -> torch.Tensor:
    """A scalar column as ``(B,)`` (the loader may give ``(B,)`` or ``(B, 1)``)."""
    if name not in inputs:
        raise ValueError(f"input batch has no column {name!r}; it has {sorted(inputs)}")
    t = inputs[name]
    return t.reshape(t.shape[0])


def list_column(inputs: dict[str, torch.Tensor], name: str) -> torch.Tensor:
    """A list column as a right-padded ``(B, L)`` tensor, from a dense or a ``__values/__offsets`` input."""
    if name in inputs:
        t = inputs[name]
        if t.dim() != 2:
            raise ValueError(f"list column {name!r} must be 2-D (B, L); got shape {tuple(t.shape)}")
        return t
    values, offsets = inputs.get(f"{name}__values"), inputs.get(f"{name}__offsets")
    if values is None or offsets is None:
        raise ValueError(f"input batch has no list column {name!r}; it has {sorted(inputs)}")
    values, offsets = values.reshape(-1), offsets.reshape(-1)
    lengths = offsets[1:] - offsets[:-1]
    n_rows = lengths.shape[0]
    width = max(int(lengths.max()) if n_rows else 0, 1)
    rows = torch.repeat_interleave(torch.arange(n_rows, device=values.device), lengths)
    cols = torch.arange(values.shape[0], device=values.device) - torch.repeat_interleave(offsets[:-1], lengths)
    out = torch.zeros(n_rows, width, dtype=values.dtype, device=values.device)
    out[rows, cols] = values
    return out


def most_recent(items: torch.Tensor, others: list[torch.Tensor], n: int) -> list[torch.Tensor]:
    """Keep the ``n`` most recent events of right-padded, oldest-first lists.

    Parameters
    ----------
    items: ``(B, L)`` item codes (0 = padding), which define each row's length.
    others: more ``(B, L)`` columns aligned with ``items``.
    n: the behaviour's length N.

    Returns
    -------
    ``[items, *others]``, each ``(B, min(L, n))``.
    """
    if items.shape[1] <= n:
        return [items, *others]
    lengths = (items != 0).sum(dim=1, keepdim=True)
    start = (lengths - n).clamp(min=0)
    index = start + torch.arange(n, device=items.device).unsqueeze(0)
    return [t.gather(1, index) for t in (items, *others)]


def read_batch(inputs: dict[str, torch.Tensor], spec: FeatureSpec) -> RankingBatch:
    """Select, reshape and cut the columns ``spec`` names out of a T4R input dict."""
    item = scalar_column(inputs, spec.item)
    batch_size = item.shape[0]
    sequences = []
    for b in spec.behaviors:
        others = [list_column(inputs, b.category), list_column(inputs, b.brand)]
        if b.time_gap is not None:
            others.append(list_column(inputs, b.time_gap))
        items, cats, brands, *gaps = most_recent(list_column(inputs, b.item), others, b.max_length)
        sequences.append(SequenceBatch(items, cats, brands, gaps[0] if gaps else None))
    if spec.dense:
        dense = torch.stack([scalar_column(inputs, n).float() for n in spec.dense], dim=1)
    else:
        dense = torch.zeros(batch_size, 0, device=item.device)
    if spec.users:
        users = torch.stack([scalar_column(inputs, n) for n, _ in spec.users], dim=1)
    else:
        users = torch.zeros(batch_size, 0, dtype=torch.long, device=item.device)
    bias = None
    if spec.bias is not None:
        neighbors = list_column(inputs, spec.bias.neighbors)[:, : spec.bias.n_neighbors]
        bias = BiasBatch(scalar_column(inputs, spec.bias.position), scalar_column(inputs, spec.bias.page),
                         neighbors)
    return RankingBatch(item, scalar_column(inputs, spec.category), scalar_column(inputs, spec.brand),
                        tuple(sequences), dense, users, bias)
