"""SharedCategorify: NVTabular Categorify with one vocabulary shared by several columns.

DMT shares embedding tables between the target item and the items of every behaviour sequence, so
``item_id``, ``click_item_id_seq``, ``cart_item_id_seq`` and ``order_item_id_seq`` must use the same
codes (likewise categories and brands). This is Categorify's joint encoding (``encode_type="joint"``)
with three changes:

* several vocabularies in one node (``{"item": [...], "category": [...], ...}``), so the expensive
  upstream as-of join is not re-run once per vocabulary;
* fitting flattens each group's scalar and list columns into one column first (Categorify's own
  CPU path iterates over list leaves in Python); frequencies for ``freq_threshold`` are therefore
  counted over every occurrence in the fit rows, target and sequence positions alike;
* on pandas, the encoding is one vectorised index lookup per column, and a null *inside a list* maps
  to 1 like a null scalar (Categorify's CPU path maps it to the OOV code 2). cuDF frames use
  Categorify's own transform. Arrow-backed list columns (``lists.py``) are encoded leaf buffer to
  leaf buffer (string leaves by ``pyarrow.compute.index_in``) and come out Arrow-backed.

Codes follow Categorify: 0 padding, 1 null, 2 out-of-vocabulary / below threshold, 3+ values. The
vocabulary of group ``g`` is ``categories/unique.g.parquet`` (its index is the code); every column of
the group gets the schema domain ``{"name": g, "min": 0, "max": largest code}``.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import dask
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from merlin.dag.selector import ColumnSelector
from merlin.schema import ColumnSchema, Schema
from nvtabular.ops import Categorify

from t4r_dmt.preprocess.lists import arrow_flat, arrow_list, flat_to_list, is_cudf, list_to_flat
from t4r_dmt.schema import NULL_CODE, OOV_CODE


class SharedCategorify(Categorify):
    """Categorify several column groups, each group sharing one vocabulary.

    Parameters
    ----------
    vocabularies : dict
        Vocabulary name -> its columns (scalar or list columns), e.g.
        ``{"item": ["item_id", "click_item_id_seq"], "user": ["user_id"]}``.
    freq_threshold : int
        Values seen fewer times than this in the fit data map to the OOV code 2.
    out_path : str
        Where the vocabularies are written (``out_path/categories``).
    column_tags : dict, optional
        Extra schema tags per output column (added to CATEGORICAL).
    """

    def __init__(
        self,
        vocabularies: dict[str, list[str]],
        freq_threshold: int = 0,
        out_path: str | None = None,
        column_tags: dict[str, list[Any]] | None = None,
    ) -> None:
        super().__init__(freq_threshold=freq_threshold, out_path=out_path, encode_type="joint")
        seen: set[str] = set()
        for name, columns in vocabularies.items():
            if not columns:
                raise ValueError(f"vocabulary {name!r} has no columns")
            if seen & set(columns):
                raise ValueError(f"columns {sorted(seen & set(columns))} are in more than one vocabulary")
            seen |= set(columns)
        self.vocabularies = {name: list(columns) for name, columns in vocabularies.items()}
        self.storage_name = {col: name for name, columns in self.vocabularies.items() for col in columns}
        self.column_tags = dict(column_tags or {})
        self.value_dtypes: dict[str, Any] = {}

    def compute_output_schema(
        self, input_schema: Schema, col_selector: ColumnSelector, prev_output_schema: Schema | None = None
    ) -> Schema:
        # Remember each vocabulary's value dtype: while fitting, Dask's meta says float64 everywhere.
        for name, columns in self.vocabularies.items():
            column = next((c for c in columns if c in input_schema.column_names), None)
            if column is not None and input_schema[column].dtype is not None:
                self.value_dtypes[name] = _numpy_dtype(input_schema[column].dtype)
        return super().compute_output_schema(input_schema, col_selector, prev_output_schema)

    def fit(self, col_selector: ColumnSelector, ddf: Any) -> Any:
        missing = set(self.storage_name) - set(col_selector.names)
        if missing:
            raise ValueError(f"SharedCategorify input lacks columns {sorted(missing)}")
        parts = []
        for name, columns in self.vocabularies.items():
            dtype = self.value_dtypes.get(name, np.dtype("O"))
            meta = pd.DataFrame({name: pd.Series(dtype=dtype)})
            flat = ddf.map_partitions(_flatten_group, columns, name, dtype, meta=meta)
            parts.append(super().fit(ColumnSelector([name]), flat))
        return dask.delayed(_merge_dicts)(*parts)

    def fit_finalize(self, categories: dict[str, str]) -> None:
        super().fit_finalize(categories)
        # Categorify writes no file for a vocabulary without any value (e.g. a log without brands):
        # write an empty one, so that every column still encodes (to null / OOV) and saves.
        for name, path in self.categories.items():
            if not Path(path).exists():
                empty = pd.DataFrame({name: pd.Series(dtype=self.value_dtypes.get(name, np.dtype("O")))})
                empty.index = pd.RangeIndex(OOV_CODE + 1, OOV_CODE + 1)
                Path(path).parent.mkdir(parents=True, exist_ok=True)
                empty.to_parquet(path)

    def transform(self, col_selector: ColumnSelector, df: Any) -> Any:
        if is_cudf(df):
            return super().transform(col_selector, df)
        encoded = {}
        for column in col_selector.names:
            name = self.storage_name[column]
            series = df[column]
            arrow = arrow_list(series)
            if arrow is not None or (len(series) and _is_list(series)):  # encode the leaves, keep the offsets
                values, offsets = arrow_flat(arrow) if arrow is not None else list_to_flat(series)
                encoded[column] = flat_to_list(self.encode(name, values), offsets).array
            else:
                encoded[column] = self.encode(name, series.to_numpy())
        return pd.DataFrame(encoded, index=df.index)  # arrays, not series: no index alignment

    def encode(self, vocabulary: str, values: np.ndarray | pa.Array) -> np.ndarray:
        """Codes of raw ``values`` (shape (N,)) in one fitted vocabulary: int64, shape (N,).

        Arrow string leaves (brands of Arrow-backed list columns) are looked up by Arrow (``pc.index_in``)
        without turning each one into a Python ``str``: the same codes (exact string match, null -> 1)."""
        if vocabulary not in self.categories:
            raise RuntimeError(f"vocabulary {vocabulary!r} is not fitted yet")
        key = _key(self.categories[vocabulary])
        if isinstance(values, pa.Array):
            strings = pa.types.is_string(values.type) or pa.types.is_large_string(values.type)
            value_set = _arrow_vocabulary(*key, vocabulary) if strings else None
            if value_set is not None:
                return _encode_strings(values, value_set, _read_vocabulary(*key, vocabulary)[1])
            values = values.to_numpy(zero_copy_only=False)
        return _encode(values, _read_vocabulary(*key, vocabulary))

    def _compute_tags(self, col_schema: ColumnSchema, input_schema: Schema) -> ColumnSchema:
        col_schema = super()._compute_tags(col_schema, input_schema)
        return col_schema.with_tags(self.column_tags.get(col_schema.name, []))


def _numpy_dtype(dtype: Any) -> np.dtype:
    try:
        return np.dtype(dtype.to_numpy)
    except (TypeError, ValueError, AttributeError):
        return np.dtype("O")


def _is_list(series: pd.Series) -> bool:
    if arrow_list(series) is not None:
        return True
    first = series.iloc[0]
    return isinstance(first, (np.ndarray, list))


def _flatten_group(df: pd.DataFrame, columns: list[str], name: str, dtype: Any) -> pd.DataFrame:
    """All values of ``columns`` (list leaves included) as one column ``name``."""
    pieces = []
    for column in columns:
        series = df[column]
        if len(series) and _is_list(series):
            pieces.append(list_to_flat(series)[0])
        else:
            pieces.append(series.to_numpy())
    values = np.concatenate(pieces) if pieces else np.zeros(0)
    return pd.DataFrame({name: pd.Series(values, dtype=dtype)})


def _merge_dicts(*parts: dict[str, str]) -> dict[str, str]:
    merged: dict[str, str] = {}
    for part in parts:
        merged.update(part)
    return merged


def _key(path: str) -> tuple[str, int]:
    return str(path), Path(path).stat().st_mtime_ns


@functools.lru_cache(maxsize=16)
def _read_vocabulary(path: str, mtime: int, name: str) -> tuple[pd.Index, np.ndarray]:
    """The vocabulary's values (as an index for lookups) and their codes."""
    table = pd.read_parquet(path)
    return pd.Index(table[name].to_numpy()), table.index.to_numpy(np.int64)


@functools.lru_cache(maxsize=16)
def _arrow_vocabulary(path: str, mtime: int, name: str) -> pa.Array | None:
    """The vocabulary's values as an Arrow string array (positions = those of ``_read_vocabulary``),
    or None when they are not all strings."""
    index = _read_vocabulary(path, mtime, name)[0]
    values = index.to_numpy()
    if len(values) and not all(isinstance(v, str) for v in values):
        return None
    return pa.array(values, type=pa.string())


def _encode(values: np.ndarray, vocabulary: tuple[pd.Index, np.ndarray]) -> np.ndarray:
    index, codes = vocabulary
    position = index.get_indexer(values)
    encoded = np.where(position >= 0, codes[np.maximum(position, 0)] if len(codes) else OOV_CODE, OOV_CODE)
    if values.dtype.kind not in "iub":  # integer ids cannot be null
        encoded[pd.isna(values)] = NULL_CODE
    return encoded.astype(np.int64, copy=False)


def _encode_strings(values: pa.Array, value_set: pa.Array, codes: np.ndarray) -> np.ndarray:
    """``_encode`` of Arrow string leaves against the vocabulary's values as Arrow (``value_set``, positions as
    in ``codes``): unknown -> 2, null -> 1."""
    position = pc.index_in(values, value_set=value_set, skip_nulls=True).fill_null(-1).to_numpy()
    encoded = np.where(position >= 0, codes[np.maximum(position, 0)] if len(codes) else OOV_CODE, OOV_CODE)
    encoded[values.is_null().to_numpy(zero_copy_only=False)] = NULL_CODE
    return encoded.astype(np.int64, copy=False)
