"""An in-memory T4R data loader for one window file: dense tensors built once, batches are slices.

Why: T4R's merlin loader converts every batch from pandas object lists to tensors and pads them
(``LoaderBase._convert_df_to_tensors``, then ``pad_batch``): about 120-280 ms per batch of 256 ranking rows
on a CPU core, as much as DMT's forward pass. A time window of ranking rows fits in memory many times
over (30k rows x 10 lists x 50 int64 = 120 MB), so this loader reads the file once with pyarrow, pads every
list column into one (N, L) tensor with a single vectorised scatter, and serves a batch as an index into
those tensors (~1 ms). It also batches list columns that are empty in every row of a batch, on which
the merlin loader fails (``KeyError: 0``; see ``docs/STACK_NOTES.md``).

It yields exactly what ``MerlinDataLoader.from_schema`` yields for the same file (tested batch by batch):
inputs = the schema's CATEGORICAL, CONTINUOUS and LIST columns (lists left-aligned, zero-padded or cut to
``max_sequence_length``; integers as int64, floats as float32), targets = the TARGET columns. It is
registered in T4R's loader registry as ``"dense"`` (``--data_loader_engine dense``), so the T4R Trainer
builds it for training, evaluation and prediction alike. With ``global_size > 1`` a rank reads rows
``i ≡ global_rank (mod global_size)``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import torch
from merlin.schema import Schema, Tags
from torch.utils.data import BatchSampler, DataLoader, Dataset, RandomSampler, SequentialSampler
from transformers4rec.torch.utils.data_utils import T4RecDataLoader, dataloader_registry

Batch = tuple[dict[str, torch.Tensor], dict[str, torch.Tensor] | None]


class DenseTable(Dataset):
    """Columns of a parquet file as dense tensors; ``table[indices]`` is one (inputs, targets) batch.

    Parameters
    ----------
    path : str or Path
        A parquet file (or a folder / list of files that ``pyarrow.parquet.read_table`` reads as one).
    inputs, targets : list of str
        Column names of the model inputs and of the targets.
    max_sequence_length : int
        Padded length L of every list column.
    rows : np.ndarray of int, optional
        The file rows to keep (a rank's shard), shape (N,); default every row.
    """

    def __init__(
        self,
        path: str | Path | list[str],
        inputs: list[str],
        targets: list[str],
        max_sequence_length: int,
        rows: np.ndarray | None = None,
    ) -> None:
        if max_sequence_length < 1:
            raise ValueError(f"max_sequence_length must be >= 1, got {max_sequence_length}")
        table = pq.read_table(path, columns=list(dict.fromkeys(inputs + targets)))
        if rows is not None:
            table = table.take(pa.array(rows, pa.int64()))
        self.n_rows = table.num_rows
        self.inputs = {name: _dense(table.column(name), max_sequence_length) for name in inputs}
        self.targets = {name: _dense(table.column(name), max_sequence_length) for name in targets}

    def __len__(self) -> int:
        return self.n_rows

    def __getitem__(self, index: Any) -> Batch:
        """``index``: a list of row numbers (B,); returns tensors of shape (B,) or (B, L), and targets
        ``None`` when there are none (as the merlin loader does, e.g. for next-item sessions)."""
        rows = torch.as_tensor(index, dtype=torch.long)
        targets = {k: v.index_select(0, rows) for k, v in self.targets.items()} or None
        return {k: v.index_select(0, rows) for k, v in self.inputs.items()}, targets


def _dense(column: pa.ChunkedArray, length: int) -> torch.Tensor:
    """A scalar column as (N,), a list column as (N, length) left-aligned and zero-padded (cut if longer);
    integers become int64, floats float32."""
    array = column.combine_chunks()
    if not (pa.types.is_list(array.type) or pa.types.is_large_list(array.type)):
        return _tensor(array.to_numpy(zero_copy_only=False))
    n = len(array)
    lengths = pc.fill_null(pc.list_value_length(array), 0).to_numpy(zero_copy_only=False).astype(np.int64)
    offsets = array.offsets.to_numpy().astype(np.int64)
    values = pc.list_flatten(array).to_numpy(zero_copy_only=False)
    if values.dtype == object or pa.types.is_null(array.type.value_type):  # every row empty: no leaf type
        values = values.astype(np.int64) if len(values) else np.zeros(0, np.int64)
    dense = np.zeros((n, length), dtype=values.dtype)
    row = np.repeat(np.arange(n), lengths)
    position = np.arange(len(values)) - np.repeat(offsets[:-1] - offsets[0], lengths)
    keep = position < length
    dense[row[keep], position[keep]] = values[keep]
    return _tensor(dense)


def _tensor(values: np.ndarray) -> torch.Tensor:
    dtype = np.float32 if np.issubdtype(values.dtype, np.floating) else np.int64
    return torch.from_numpy(np.require(values, dtype, ["C", "W"]))  # Arrow's zero-copy views are read-only


@dataloader_registry.register_with_multiple_names("dense", "t4r_dmt_dense")
class DenseDataLoader(T4RecDataLoader, DataLoader):
    """A T4R loader over a ``DenseTable`` (see the module docstring); ``len()`` counts batches.

    Parameters
    ----------
    paths_or_dataset : str, Path or DenseTable
        The parquet file(s) of one window, or a table already built.
    batch_size : int
        Rows per batch.
    shuffle : bool
        Visit the rows in a random order each epoch (torch's global RNG: seeded by the Trainer).
    drop_last : bool
        Leave out the last, shorter batch.
    """

    def __init__(self, paths_or_dataset: Any, batch_size: int, shuffle: bool = False, drop_last: bool = False,
                 **table_kwargs: Any) -> None:
        T4RecDataLoader.__init__(self)
        table = paths_or_dataset if isinstance(paths_or_dataset, DenseTable) else DenseTable(
            paths_or_dataset, **table_kwargs)
        sampler = RandomSampler(table) if shuffle else SequentialSampler(table)
        # batch_size=None: the sampler yields whole index lists and the table gathers each in one call.
        DataLoader.__init__(self, table, batch_size=None, sampler=BatchSampler(sampler, batch_size, drop_last))
        self._batch_size = batch_size  # what HF's Trainer reads for a loader built outside it

    @classmethod
    def from_schema(  # T4R's signature, keyword for keyword
        cls,
        schema: Schema,
        paths_or_dataset: Any,
        batch_size: int,
        max_sequence_length: int | None = None,
        shuffle: bool = False,
        drop_last: bool = False,
        global_rank: int | None = None,
        global_size: int | None = None,
        **_ignored: Any,  # shuffle_buffer_size, device: the Trainer moves batches to its device
    ) -> DenseDataLoader:
        """The loader of ``schema``'s CATEGORICAL, CONTINUOUS and LIST columns and TARGET columns."""
        targets = schema.select_by_tag(Tags.TARGET).column_names
        inputs = [name for tag in (Tags.CATEGORICAL, Tags.CONTINUOUS, Tags.LIST)
                  for name in schema.select_by_tag(tag).column_names if name not in targets]
        inputs = list(dict.fromkeys(inputs))
        if max_sequence_length is None:
            lengths = [c.value_count.max for c in schema if c.is_list and c.value_count and c.value_count.max]
            max_sequence_length = max(lengths, default=1)
        rows = None
        if global_size is not None and global_size > 1 and global_rank is not None and global_rank >= 0:
            total = pq.ParquetFile(paths_or_dataset).metadata.num_rows
            rows = np.arange(global_rank, total, global_size)
        table = DenseTable(paths_or_dataset, inputs, targets, max_sequence_length, rows)
        return cls(table, batch_size, shuffle=shuffle, drop_last=drop_last)
