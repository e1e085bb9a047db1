"""The JD.com records of the DMT paper (Gu et al., CIKM 2020): TFRecord ``Example`` -> one raw ranking row.

The authors' release (github.com/guyulongcs/CIKM2020_DMT; 667.9M training and 105.4M test rows) stores one
impression per record. Each id is text in a ``bytes_list`` (with a ``...Wts`` float companion, all 1.0 for the
fields read here); ``unknow`` is the authors' missing value. Mapping to the ranking contract (``docs/DESIGN.md``):

=================================  ===========================================================================
ranking column                     JD field
=================================  ===========================================================================
``request_id_text``, ``user_id``,  ``header``, tab-separated, the authors' ``header_schema`` (expid, pin, expo_time,
``request_ts``                     sid, pos, sku, ...): the request id ``sid``, the user ``pin``, the request time
                                   ``expo_time`` (unix seconds; ``request_ts`` in ns)
``request_id``                     int64: pandas' stable ``hash_array`` of ``sid`` (the contract's ids are int64)
``product_id``                     int64 ``item_fea_sku`` (raw, passed through)
``item_id``, ``item_category``,    ``item_fea_sku``, ``item_c3`` (the third-level category), ``item_brand``,
``item_brand``, ``item_shop``      ``item_shop`` (text; encoded later)
``{b}_item_id_seq`` ...            ``clk_seq_{sku,c3,brand,shop}_7d_50``, ``cart_seq_*_12m_10``,
``{b}_shop_seq``                   ``ord_seq_*_12m_10``: already oldest first (their time gaps decrease), the
                                   N most recent kept; a behaviour whose ``sku`` list is ``[unknow]`` is empty
``{b}_time_gap_seq``               ``*_seq_ts_*``: seconds before the request (float32; ``unknow`` -> NaN)
``position``, ``page``             ``pos``, ``page`` as logged (the sample's smallest values are 1)
``neighbor_category_seq``          ``near_expo_seq_c3``: up to 6 neighbouring impressions' categories (text)
``jd_feature_000`` ...             ``features``: 615 floats, already normalised by the authors
``click``, ``order``               ``mask``, one-hot over the label values (0, 1, 2, 4, 5): slots 1-4 click,
                                   slots 3-4 order (an order is also a click)
=================================  ===========================================================================

``unknow`` in an id becomes null (encoded to 1). The ``*_seq_len_*`` fields are not used: the click and order ones
equal their lists' lengths, but ``cart_seq_len_12m_10`` holds the number of known neighbours (``near_expo_seq_*``
entries other than ``unknow``) in every record of the released sample, not the cart list's length.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from t4r_dmt.data.tfrecord import RecordError, feature_values, iter_records, parse_example
from t4r_dmt.data.validate import check_on_bad_rows
from t4r_dmt.schema import BEHAVIORS, NEIGHBOR_CATEGORY_SEQ, TARGET_ITEM_COLUMNS, sequence_column

FORMAT = "jd"
#: The authors' missing value.
JD_NULL = b"unknow"
#: The authors' ``header_schema`` (``DMT_code/conf/settings/dmt.conf``): the tab-separated fields of ``header``.
HEADER_FIELDS: tuple[str, ...] = ("expid", "pin", "expo_time", "sid", "pos", "sku", "uuid", "click_time",
                                  "order_id", "label", "reqsig", "page", "index")
USER, TIME, REQUEST = (HEADER_FIELDS.index(name) for name in ("pin", "expo_time", "sid"))
N_FEATURES = 615
#: ``mask`` is a one-hot over the label values (0, 1, 2, 4, 5): impression, click, click, order, order.
MASK_SLOTS = 5
CLICK_SLOTS = (1, 2, 3, 4)
ORDER_SLOTS = (3, 4)
#: Behaviour -> (field prefix, horizon suffix) of its JD sequence fields: ``clk_seq_sku_7d_50`` ...
BEHAVIOR_FIELDS: dict[str, tuple[str, str]] = {"click": ("clk", "7d_50"), "cart": ("cart", "12m_10"),
                                               "order": ("ord", "12m_10")}
#: Attribute -> its name in the JD fields (``c3``, the third-level category, is the category).
ATTRIBUTE_FIELDS: dict[str, str] = {"item": "sku", "category": "c3", "brand": "brand", "shop": "shop"}
TIME_FIELD = "ts"
NEIGHBOR_FIELD = "near_expo_seq_c3"

# --- output columns beyond schema.py's (the shop and the time gaps exist only in this format) ---------------
REQUEST_ID_TEXT = "request_id_text"
ITEM_SHOP = "item_shop"
#: Target item column -> its JD field (the ids the authors' model embeds).
TARGET_FIELDS: dict[str, str] = {
    TARGET_ITEM_COLUMNS["item"]: "item_fea_sku",
    TARGET_ITEM_COLUMNS["category"]: "item_c3",
    TARGET_ITEM_COLUMNS["brand"]: "item_brand",
    ITEM_SHOP: "item_shop",
}
DENSE_COLUMNS: tuple[str, ...] = tuple(f"jd_feature_{i:03d}" for i in range(N_FEATURES))


def shop_sequence_column(behavior: str) -> str:
    """``"click" -> "click_shop_seq"``."""
    return f"{behavior}_shop_seq"


def time_gap_column(behavior: str) -> str:
    """``"click" -> "click_time_gap_seq"``: seconds between each event and the request."""
    return f"{behavior}_time_gap_seq"


def id_sequence_column(behavior: str, attribute: str) -> str:
    """The ranking column of a behaviour's item / category / brand / shop sequence."""
    return shop_sequence_column(behavior) if attribute == "shop" else sequence_column(behavior, attribute)


def jd_field(behavior: str, attribute: str) -> str:
    """The JD field of a behaviour's attribute sequence, e.g. ``("click", "item") -> "clk_seq_sku_7d_50"``."""
    prefix, horizon = BEHAVIOR_FIELDS[behavior]
    return f"{prefix}_seq_{ATTRIBUTE_FIELDS.get(attribute, attribute)}_{horizon}"


ID_SEQUENCES: tuple[tuple[str, str, str], ...] = tuple(
    (id_sequence_column(b, a), b, jd_field(b, a)) for b in BEHAVIORS for a in ATTRIBUTE_FIELDS)
LIST_ID_COLUMNS: tuple[str, ...] = (*(c for c, _, _ in ID_SEQUENCES), NEIGHBOR_CATEGORY_SEQ)
TIME_GAP_COLUMNS: tuple[str, ...] = tuple(time_gap_column(b) for b in BEHAVIORS)
SCALAR_ID_COLUMNS: tuple[str, ...] = ("user_id", *TARGET_FIELDS)
INT_COLUMNS: tuple[str, ...] = ("request_id", "request_ts", "product_id", "position", "page", "click", "order")
#: Every raw column, in the order of the chunk tables.
RAW_COLUMNS: tuple[str, ...] = (REQUEST_ID_TEXT, *INT_COLUMNS, *SCALAR_ID_COLUMNS, *LIST_ID_COLUMNS,
                                *TIME_GAP_COLUMNS, *DENSE_COLUMNS)


def request_hash(texts: np.ndarray) -> np.ndarray:
    """int64 request ids of text ids ``(N,)``: pandas' ``hash_array`` (the same in every process and machine)."""
    return pd.util.hash_array(np.asarray(texts, dtype=object)).view(np.int64)


class JDReader:
    """Stream JD records as Arrow tables of raw ranking columns (:data:`RAW_COLUMNS`), ``chunk_size`` rows each.

    Parameters
    ----------
    path:
        A TFRecord file (``.gz`` too), a glob, or a folder of them.
    lengths:
        N per behaviour (``{"click": 50, "cart": 10, "order": 10}``): the N most recent events are kept.
    chunk_size:
        Records per table; memory is about ``chunk_size`` x 30 kB (the parsed rows of one chunk).
    on_bad_rows:
        ``"raise"``: a bad record raises :class:`~t4r_dmt.data.tfrecord.RecordError` naming file, record and field;
        ``"drop"``: records with bad fields are left out and counted in :attr:`dropped` by reason. A truncated or
        corrupt file (framing, CRC) always raises: the records after it cannot be trusted.
    progress:
        tqdm bar over the input bytes (None: on a terminal only).

    Attributes
    ----------
    records_read:
        Records parsed so far (kept and dropped).
    dropped:
        Dropped records by reason (``"missing <field>"``, ``"invalid <field>"``).
    """

    def __init__(self, path: str | os.PathLike[str], lengths: dict[str, int], chunk_size: int = 4096,
                 on_bad_rows: str = "raise", progress: bool | None = None) -> None:
        check_on_bad_rows(on_bad_rows)
        if chunk_size < 1:
            raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
        missing = [b for b in BEHAVIORS if b not in lengths]
        if missing or any(lengths[b] < 1 for b in BEHAVIORS):
            raise ValueError(f"lengths needs a positive N for each of {BEHAVIORS}, got {lengths}")
        self.path = path
        self.lengths = {b: int(lengths[b]) for b in BEHAVIORS}
        self.chunk_size = chunk_size
        self.on_bad_rows = on_bad_rows
        self.progress = progress
        self.records_read = 0
        self.dropped: Counter[str] = Counter()

    def __iter__(self) -> Iterator[pa.Table]:
        chunk = _Chunk(self.chunk_size)
        for file, index, data in iter_records(self.path, progress=self.progress):
            self.records_read += 1
            try:
                row = parse_record(parse_example(data, file, index), file, index, self.lengths)
            except RecordError as err:
                if self.on_bad_rows == "raise":
                    raise
                self.dropped[("missing " if err.problem.startswith("missing") else "invalid ") + err.field] += 1
                continue
            chunk.append(row)
            if chunk.size == self.chunk_size:
                yield chunk.table()
                chunk = _Chunk(self.chunk_size)
        if chunk.size:
            yield chunk.table()


def parse_record(features: Any, file: str, index: int, lengths: dict[str, int]) -> dict[str, Any]:
    """The raw values of one record (``features``: an Example's feature map), validated.

    Returns a dict: ``header`` (user, time, request id as text / int), ``ids`` (target ids as bytes),
    ``lists`` (id sequences as lists of bytes, per column), ``gaps`` (float lists), ``position``, ``page``,
    ``product_id``, ``dense`` (615 floats), ``click``, ``order``. Raises :class:`RecordError` naming the field.
    """
    def values(name: str, kind: str = "bytes_list") -> Any:
        return feature_values(features, name, kind, file, index)

    def single(name: str) -> bytes:
        found = values(name)
        if len(found) != 1:
            raise RecordError(file, index, name, f"expected 1 value, found {len(found)}")
        return bytes(found[0])

    def integer(name: str, text: bytes) -> int:
        try:
            return int(text)
        except ValueError:
            raise RecordError(file, index, name, "not an integer", value=text.decode(errors="replace")) from None

    header = single("header").split(b"\t")
    if len(header) <= REQUEST:
        raise RecordError(file, index, "header", f"expected the tab-separated {', '.join(HEADER_FIELDS)}; found "
                                                 f"{len(header)} field(s)")
    row: dict[str, Any] = {
        "user": header[USER].decode(errors="replace"),
        "request": header[REQUEST].decode(errors="replace"),
        "time": integer("header", header[TIME]),
    }
    row["ids"] = {column: single(field) for column, field in TARGET_FIELDS.items()}
    row["product_id"] = integer(TARGET_FIELDS["item_id"], row["ids"]["item_id"])
    row["position"] = integer("pos", single("pos"))
    row["page"] = integer("page", single("page"))
    row["neighbors"] = list(values(NEIGHBOR_FIELD))

    row["lists"], row["gaps"] = {}, {}
    for behavior in BEHAVIORS:
        fields = {attribute: jd_field(behavior, attribute) for attribute in (*ATTRIBUTE_FIELDS, TIME_FIELD)}
        found = {attribute: values(field) for attribute, field in fields.items()}
        n = len(found["item"])
        for attribute, field in fields.items():
            if len(found[attribute]) != n:
                raise RecordError(file, index, field, f"holds {len(found[attribute])} values but "
                                                      f"{fields['item']} holds {n}")
        empty = n == 1 and found["item"][0] == JD_NULL
        keep = 0 if empty else min(n, lengths[behavior])  # oldest first: the last `keep` are the most recent
        for attribute in ATTRIBUTE_FIELDS:
            row["lists"][id_sequence_column(behavior, attribute)] = list(found[attribute][n - keep:])
        gaps = []
        for text in found[TIME_FIELD][n - keep:]:
            try:
                gaps.append(np.nan if text == JD_NULL else float(text))
            except ValueError:
                raise RecordError(file, index, fields[TIME_FIELD], "not a number of seconds",
                                  value=text.decode(errors="replace")) from None
        row["gaps"][time_gap_column(behavior)] = gaps

    dense = values("features", "float_list")
    if len(dense) != N_FEATURES:
        raise RecordError(file, index, "features", f"expected {N_FEATURES} values, found {len(dense)}")
    row["dense"] = dense
    mask = list(values("mask", "float_list"))
    if len(mask) != MASK_SLOTS or sorted(mask) != [0.0] * (MASK_SLOTS - 1) + [1.0]:
        raise RecordError(file, index, "mask", f"expected a one-hot of {MASK_SLOTS} classes", value=mask)
    slot = mask.index(1.0)
    row["click"], row["order"] = int(slot in CLICK_SLOTS), int(slot in ORDER_SLOTS)
    return row


class _Chunk:
    """Rows of one chunk gathered column by column, turned into one Arrow table."""

    def __init__(self, capacity: int) -> None:
        self.size = 0
        self.dense = np.empty((capacity, N_FEATURES), dtype=np.float32)
        self.scalars: dict[str, list[Any]] = {name: [] for name in
                                              ("user", "request", "time", "product_id", "position", "page",
                                               "click", "order")}
        self.ids: dict[str, list[bytes]] = {column: [] for column in TARGET_FIELDS}
        self.lists: dict[str, tuple[list[bytes], list[int]]] = {c: ([], []) for c in LIST_ID_COLUMNS}
        self.gaps: dict[str, tuple[list[float], list[int]]] = {c: ([], []) for c in TIME_GAP_COLUMNS}

    def append(self, row: dict[str, Any]) -> None:
        for name, values in self.scalars.items():
            values.append(row[name])
        for column, ids in self.ids.items():
            ids.append(row["ids"][column])
        for column, value in (*row["lists"].items(), (NEIGHBOR_CATEGORY_SEQ, row["neighbors"])):
            flat, counts = self.lists[column]
            flat.extend(value)
            counts.append(len(value))
        for column, gaps in row["gaps"].items():
            flat_gaps, counts = self.gaps[column]
            flat_gaps.extend(gaps)
            counts.append(len(gaps))
        self.dense[self.size] = row["dense"]
        self.size += 1

    def table(self) -> pa.Table:
        s = self.scalars
        requests = np.asarray(s["request"], dtype=object)
        columns: dict[str, pa.Array] = {
            REQUEST_ID_TEXT: pa.array(requests, pa.string()),
            "request_id": pa.array(request_hash(requests)),
            "request_ts": pa.array(np.asarray(s["time"], dtype=np.int64) * 1_000_000_000),
            **{name: pa.array(np.asarray(s[name], dtype=np.int64)) for name in
               ("product_id", "position", "page", "click", "order")},
            "user_id": pa.array(s["user"], pa.string()),
        }
        for column, ids in self.ids.items():
            columns[column] = _text(pa.array(ids, pa.binary()))
        for column, (flat, counts) in self.lists.items():
            columns[column] = pa.ListArray.from_arrays(_offsets(counts), _text(pa.array(flat, pa.binary())))
        for column, (flat_gaps, counts) in self.gaps.items():
            columns[column] = pa.ListArray.from_arrays(_offsets(counts), pa.array(flat_gaps, pa.float32()))
        for i, column in enumerate(DENSE_COLUMNS):
            columns[column] = pa.array(self.dense[: self.size, i])
        return pa.table({name: columns[name] for name in RAW_COLUMNS})


def _offsets(counts: list[int]) -> pa.Array:
    offsets = np.zeros(len(counts) + 1, dtype=np.int32)
    np.cumsum(counts, out=offsets[1:])
    return pa.array(offsets)


def _text(values: pa.Array) -> pa.Array:
    """Binary ids -> text, the authors' ``unknow`` -> null."""
    missing = pc.equal(values, pa.scalar(JD_NULL, pa.binary()))
    return pc.cast(pc.if_else(missing, pa.scalar(None, pa.binary()), values), pa.string())
