"""Vectorised column converters: raw column -> typed numpy array, flagging the rows that do not convert.

Each converter reads one raw column of a :class:`~t4r_dmt.data.validate.Batch` (strings from text
files, typed columns from parquet or JSON), returns an (n,) numpy array, and flags bad rows on the batch
(wrong type, null id, unparsable time, ...). Values of flagged rows are placeholders; the reader drops
those rows. The fast path is one pyarrow cast; the per-value diagnosis runs only when that cast fails.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from t4r_dmt.data.ids import INTEGER_ID_MIN, text_surrogates
from t4r_dmt.data.validate import Batch, Columns
from t4r_dmt.errors import InputError

NULL_ID = "null id"
NOT_INTEGER = "not an integer"
NOT_NUMBER = "not a number"
BAD_TIME = "unparsable time"
MISSING_TIME = "missing time"
UNKNOWN_EVENT = "unknown event type"

INT64_MAX = "9223372036854775807"
_FLOAT_RE = r"^[+-]?(([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?|nan|NaN|inf|Inf|infinity|Infinity)$"
# Latest time a datetime64[ns] holds, in seconds (2262-04-11).
_MAX_SECONDS = 9.2e9


def _null_mask(arr: pa.Array) -> np.ndarray:
    return np.asarray(arr.is_null().to_numpy(zero_copy_only=False), bool)


def _to_bool(arr: pa.Array) -> np.ndarray:
    return np.asarray(arr.fill_null(False).to_numpy(zero_copy_only=False), bool)


def _parse_int_strings(arr: pa.Array) -> tuple[pa.Array, np.ndarray]:
    """Strings -> int64 exactly (never through float); also returns (n,) bool "not an integer"."""
    try:
        return pc.cast(arr, pa.int64()), np.zeros(len(arr), bool)
    except pa.ArrowInvalid:
        pass
    short = pc.match_substring_regex(arr, r"^[+-]?[0-9]{1,18}$")
    # 19 digits fit only up to INT64_MAX; equal-length digit strings compare like numbers.
    long = pc.and_(pc.match_substring_regex(arr, r"^[+-]?[0-9]{19}$"),
                   pc.less_equal(pc.utf8_ltrim(arr, characters="+-"), INT64_MAX))
    ok = pc.or_(short, long)
    parsed = pc.cast(pc.if_else(ok, arr, pa.scalar(None, pa.string())), pa.int64())
    return parsed, ~_to_bool(ok) & ~_null_mask(arr)


def int_column(batch: Batch, name: str, *, null: str | None = NULL_ID, default: int = 0,
               raw: pa.Array | None = None, rows: np.ndarray | None = None) -> np.ndarray:
    """Column ``name`` as (n,) int64.

    Parameters
    ----------
    null:
        Reason to flag null values with; None: nulls are allowed and become ``default``.
    raw, rows:
        Convert this array instead of the batch column (e.g. the elements of a list column), whose
        element i belongs to local row ``rows[i]``.
    """
    arr = batch.column(name) if raw is None else raw
    nulls = _null_mask(arr)
    typ = arr.type
    if pa.types.is_string(typ) or pa.types.is_large_string(typ):
        parsed, bad = _parse_int_strings(arr)
    elif pa.types.is_integer(typ) or pa.types.is_boolean(typ):
        parsed, bad = pc.cast(arr, pa.int64()), np.zeros(len(arr), bool)
    elif pa.types.is_floating(typ):
        values = arr.to_numpy(zero_copy_only=False).astype(np.float64)
        with np.errstate(invalid="ignore"):
            bad = ~nulls & ~((np.floor(values) == values) & (np.abs(values) < 2.0**63))
        parsed = pa.array(np.where(bad | nulls, 0, values).astype(np.int64))
    else:
        raise InputError(batch.file, f"column has type {typ}; expected integers", column=name)
    batch.flag(bad, NOT_INTEGER, name, arr, rows=rows)
    if null is not None:
        batch.flag(nulls, null, name, arr, rows=rows)
    out = np.asarray(parsed.fill_null(0).to_numpy(zero_copy_only=False), np.int64)
    if null is None and default != 0:
        out = np.where(nulls, default, out)
    return out


def _text_integers(arr: pa.Array, low: int) -> tuple[np.ndarray, np.ndarray]:
    """Text -> (n,) int64 of the values that are exactly the decimal text of an integer in ``[low, 2**63)``
    (``123``, ``-5``; not ``007``, ``+5``, ``-0``), and (n,) bool True for those; other values read 0 and False."""
    try:
        parsed = pc.cast(arr, pa.int64())  # the usual case: every value is an integer (rejects "+5", " 5")
    except pa.ArrowInvalid:
        parsed = None
    if parsed is not None:
        values = np.asarray(parsed.fill_null(0).to_numpy(zero_copy_only=False), np.int64)
        padded = pc.or_(pc.and_(pc.starts_with(arr, "0"), pc.not_equal(arr, "0")), pc.starts_with(arr, "-0"))
        if not _to_bool(padded).any() and not (values < low).any():
            return values, ~_null_mask(arr)
    short = pc.match_substring_regex(arr, r"^(0|-?[1-9][0-9]{0,17})$")  # 18 digits are within any range here
    positive = pc.and_(pc.match_substring_regex(arr, r"^[1-9][0-9]{18}$"), pc.less_equal(arr, INT64_MAX))
    # Digit strings of equal length compare like the numbers.
    negative = pc.and_(pc.match_substring_regex(arr, r"^-[1-9][0-9]{18}$"),
                       pc.less_equal(pc.utf8_ltrim(arr, characters="-"), str(-low)))
    ok = pc.or_(short, pc.or_(positive, negative))
    parsed = pc.cast(pc.if_else(ok, arr, pa.scalar(None, pa.string())), pa.int64())
    return np.asarray(parsed.fill_null(0).to_numpy(zero_copy_only=False), np.int64), _to_bool(ok)


def _is_text(arr: pa.Array) -> bool:
    return pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type)


def _null_ids(arr: pa.Array) -> np.ndarray:
    """(n,) bool: null values, and empty text (a missing id written as "")."""
    nulls = _null_mask(arr)
    if _is_text(arr):
        nulls |= _to_bool(pc.equal(arr, ""))
    return nulls


def id_column(batch: Batch, name: str, *, null: str = NULL_ID) -> tuple[np.ndarray, Columns]:
    """Column ``name`` of user or product ids as (n,) int64, as :mod:`t4r_dmt.data.ids` defines them.

    Integer ids are those integers; every other id (text, an integer below ``-2**62``) is its text's surrogate.
    Null and empty values are flagged with ``null``; a float column must hold whole numbers.

    Returns
    -------
    ids : (n,) int64
    texts : the :data:`~t4r_dmt.data.ids.ID_TEXTS` rows of the text ids (``column``, ``id``, ``text``,
        ``_row``), one per row holding one
    """
    arr = batch.column(name)
    nulls = _null_ids(arr)
    if _is_text(arr):
        values, integer = _text_integers(arr, INTEGER_ID_MIN)
        text = ~integer & ~nulls
        raw = np.asarray(arr.filter(pa.array(text)).to_pylist(), dtype=object)
    elif pa.types.is_unsigned_integer(arr.type):
        # uint64 above int64's range (e.g. long skus) are text ids
        big = _to_bool(pc.greater(arr, pa.scalar(2**63 - 1, arr.type)))
        values = np.asarray(pc.if_else(pa.array(big), pa.scalar(0, arr.type), arr).cast(pa.int64())
                            .fill_null(0).to_numpy(zero_copy_only=False), np.int64)
        text = big | (~nulls & (values < INTEGER_ID_MIN))
        raw = np.asarray(pc.cast(arr.filter(pa.array(text)), pa.string()).to_pylist(), dtype=object)
    elif pa.types.is_integer(arr.type) or pa.types.is_boolean(arr.type) or pa.types.is_floating(arr.type):
        values = int_column(batch, name, null=None)
        text = ~nulls & (values < INTEGER_ID_MIN)
        raw = values[text].astype(str).astype(object)
    else:
        raise InputError(batch.file, f"column has type {arr.type}; expected integers or text", column=name)
    batch.flag(nulls, null, name, arr)
    surrogates = text_surrogates(raw)
    values = np.where(nulls, 0, values)
    values[text] = surrogates
    rows = np.flatnonzero(text)
    return values, {"column": np.full(len(rows), name, dtype=object), "id": surrogates, "text": raw, "_row": rows}


def raw_id_column(batch: Batch, name: str, *, null: str = NULL_ID) -> np.ndarray:
    """Column ``name`` of ids kept raw (``request_id``): (n,) int64 when every value is an integer (an integer
    column, or text that is exactly integers' decimal digits), else (n,) object of the values' text as written.

    Batches of one column may differ; :func:`~t4r_dmt.data.ids.settle_raw_ids` makes the read column one type.
    Null and empty values are flagged with ``null``.
    """
    arr = batch.column(name)
    nulls = _null_ids(arr)
    batch.flag(nulls, null, name, arr)
    if _is_text(arr):
        values, integer = _text_integers(arr, -(2**63))
        if (integer | nulls).all():
            return values
        return np.asarray(arr.fill_null("").to_pylist(), dtype=object)
    if pa.types.is_unsigned_integer(arr.type) and _to_bool(pc.greater(arr, pa.scalar(2**63 - 1, arr.type))).any():
        return np.asarray(pc.cast(arr, pa.string()).fill_null("").to_pylist(), dtype=object)
    if pa.types.is_integer(arr.type) or pa.types.is_boolean(arr.type) or pa.types.is_floating(arr.type):
        return int_column(batch, name, null=None)
    raise InputError(batch.file, f"column has type {arr.type}; expected integers or text", column=name)


def float_column(batch: Batch, name: str, *, raw: pa.Array | None = None, rows: np.ndarray | None = None,
                 reason: str = NOT_NUMBER) -> np.ndarray:
    """Column ``name`` as (n,) float64; nulls become NaN, non-numbers are flagged with ``reason``."""
    arr = batch.column(name) if raw is None else raw
    typ = arr.type
    bad = np.zeros(len(arr), bool)
    if pa.types.is_string(typ) or pa.types.is_large_string(typ):
        try:
            parsed = pc.cast(arr, pa.float64())
        except pa.ArrowInvalid:
            ok = pc.match_substring_regex(arr, _FLOAT_RE)
            bad = ~_to_bool(ok) & ~_null_mask(arr)
            parsed = pc.cast(pc.if_else(ok, arr, pa.scalar(None, pa.string())), pa.float64())
    elif pa.types.is_integer(typ) or pa.types.is_floating(typ) or pa.types.is_decimal(typ):
        parsed = pc.cast(arr, pa.float64())
    else:
        raise InputError(batch.file, f"column has type {typ}; expected numbers", column=name)
    batch.flag(bad, reason, name, arr, rows=rows)
    return np.asarray(parsed.fill_null(np.nan).to_numpy(zero_copy_only=False), np.float64)


def price_column(batch: Batch, name: str, *, raw: pa.Array | None = None,
                 rows: np.ndarray | None = None) -> np.ndarray:
    """Like :func:`float_column`, and negative values are flagged as "negative price"."""
    arr = batch.column(name) if raw is None else raw
    values = float_column(batch, name, raw=arr, rows=rows)
    batch.flag(values < 0, "negative price", name, arr, rows=rows)
    return values


def time_column(batch: Batch, name: str, formats: Sequence[str] = ("%Y-%m-%d %H:%M:%S UTC",)) -> np.ndarray:
    """Column ``name`` as (n,) datetime64[ns], UTC and tz-naive.

    Text is tried against each strptime ``format`` (fast, in pyarrow), then whatever is left against
    pandas' parser (ISO 8601 with or without a zone, ...). Zoned times are converted to UTC; times
    without a zone are taken as UTC. Timestamp and date columns (parquet) are used as they are.
    """
    arr = batch.column(name)
    typ = arr.type
    nulls = _null_mask(arr)
    if pa.types.is_timestamp(typ) or pa.types.is_date(typ):
        target = pa.timestamp("ns", tz="UTC") if getattr(typ, "tz", None) else pa.timestamp("ns")
        out = pc.cast(pc.cast(arr, target), pa.int64()).fill_null(0).to_numpy(zero_copy_only=False)
        times = np.asarray(out, np.int64).view("datetime64[ns]")
    elif pa.types.is_string(typ) or pa.types.is_large_string(typ):
        times = _parse_time_strings(arr, formats)
    else:
        raise InputError(batch.file, f"column has type {typ}; expected times or text", column=name)
    batch.flag(nulls, MISSING_TIME, name, arr)
    batch.flag(np.isnat(times) & ~nulls, BAD_TIME, name, arr)
    return times


def _parse_time_strings(arr: pa.Array, formats: Sequence[str]) -> np.ndarray:
    times = np.full(len(arr), np.datetime64("NaT"), "datetime64[ns]")
    todo = ~_null_mask(arr)
    for fmt in formats:
        if not todo.any():
            return times
        idx = np.flatnonzero(todo)
        part = arr if len(idx) == len(arr) else arr.take(pa.array(idx))
        parsed = pc.strptime(part, format=fmt, unit="ns", error_is_null=True)
        ok = ~_null_mask(parsed)
        values = np.asarray(parsed.cast(pa.int64()).fill_null(0).to_numpy(zero_copy_only=False), np.int64)
        times[idx[ok]] = values[ok].view("datetime64[ns]")
        todo[idx[ok]] = False
    if todo.any():
        idx = np.flatnonzero(todo)
        rest = pd.to_datetime(pd.Series(arr.take(pa.array(idx)).to_pandas()), errors="coerce", utc=True)
        times[idx] = rest.dt.tz_convert(None).to_numpy()
    return times


def epoch_column(batch: Batch, name: str, unit: str) -> np.ndarray:
    """Column ``name`` of unix times in ``unit`` ("s" or "ms"; fractions allowed) as (n,) datetime64[ns]."""
    values = float_column(batch, name, reason=BAD_TIME)
    return epoch_to_time(batch, name, values, unit, batch.column(name))


def epoch_to_time(batch: Batch, name: str, values: np.ndarray, unit: str, raw: pa.Array | np.ndarray,
                  rows: np.ndarray | None = None) -> np.ndarray:
    """(n,) float unix times in ``unit`` -> (n,) datetime64[ns]; flags missing and out-of-range ones."""
    per_second = {"s": 1.0, "ms": 1e3}[unit]
    seconds = values / per_second
    missing = np.isnan(values)
    with np.errstate(invalid="ignore"):
        bad = ~missing & ~((seconds >= 0) & (seconds < _MAX_SECONDS))
    batch.flag(missing, MISSING_TIME, name, raw, rows=rows)
    batch.flag(bad, BAD_TIME, name, raw, rows=rows)
    millis = np.round(np.where(missing | bad, 0.0, seconds) * 1e3).astype(np.int64)
    return millis.view("datetime64[ms]").astype("datetime64[ns]")


def str_column(batch: Batch, name: str, *, null: str | None = None) -> np.ndarray:
    """Column ``name`` as (n,) object array of str, None where null (flagged if ``null`` is given)."""
    arr = _as_text(batch, name, batch.column(name))
    if null is not None:
        batch.flag(_null_mask(arr), null, name, arr)
    return np.asarray(arr.to_pandas(), dtype=object)


def map_column(batch: Batch, name: str, mapping: Mapping[str, str | None], *, raw: pa.Array | None = None,
               rows: np.ndarray | None = None) -> np.ndarray:
    """Column ``name`` mapped through ``mapping`` to an (n,) object array.

    Values outside ``mapping`` (and nulls) are flagged as "unknown event type"; values mapped to None
    come out as None (the caller decides what to do with them).
    """
    arr = _as_text(batch, name, batch.column(name) if raw is None else raw)
    keys = list(mapping)
    idx = np.asarray(pc.index_in(arr, value_set=pa.array(keys, pa.string())).fill_null(-1)
                     .to_numpy(zero_copy_only=False), np.int64)
    batch.flag(idx < 0, UNKNOWN_EVENT, name, arr, hint=f"expected one of {', '.join(keys)}", rows=rows)
    targets = np.array([mapping[k] for k in keys] + [None], dtype=object)
    return targets[idx]


def _as_text(batch: Batch, name: str, arr: pa.Array) -> pa.Array:
    """``arr`` as strings; a column of lists or structs is an InputError naming it."""
    if pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type):
        return arr
    if pa.types.is_nested(arr.type):
        raise InputError(batch.file, f"column has type {arr.type}; expected text", column=name)
    return pc.cast(arr, pa.string())


def id_labels(ids: np.ndarray) -> np.ndarray:
    """(n,) int64 ids -> (n,) object array of their decimal strings, one str object per distinct id."""
    codes, uniques = pd.factorize(ids)
    return np.asarray(uniques.astype(str), dtype=object)[codes]


def stable_hash(values: np.ndarray) -> np.ndarray:
    """(n,) values (e.g. str ids) -> (n,) int64 in [0, 2**63): the same value always gives the same id."""
    hashed = pd.util.hash_array(np.asarray(values, dtype=object))
    return (hashed & np.uint64(0x7FFF_FFFF_FFFF_FFFF)).astype(np.int64)
