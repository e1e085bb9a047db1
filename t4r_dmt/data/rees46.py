"""The REES46 contract: events, impressions and items files (CSV, CSV.gz or parquet).

Events: ``event_time`` (text like ``2019-10-01 00:00:04 UTC`` or a timestamp), ``event_type``
(view | cart | purchase | remove_from_cart), ``product_id``, ``category_id`` (19 digits, read as int64
exactly), ``category_code``, ``brand``, ``price``, ``user_id``, ``user_session``: the columns of the
Kaggle "eCommerce behavior data from multi category store" files, and of ``synth``'s events.parquet.

Ids may be integers or text (:mod:`t4r_dmt.data.ids`): ``user_id`` and ``product_id`` of text become int64
surrogates whose texts the reader adds to an :class:`~t4r_dmt.data.ids.IdTexts`; ``request_id`` is kept raw
(int64, or str when any request id is not an integer).
"""

from __future__ import annotations

import functools
import os

import numpy as np
import pandas as pd

from t4r_dmt.data.canonical import (
    EVENT_DTYPES,
    IMPRESSION_DTYPES,
    NO_CATEGORY,
    check_impressions,
    event_columns,
    finish,
)
from t4r_dmt.data.columns import (
    NULL_ID,
    id_column,
    int_column,
    map_column,
    price_column,
    raw_id_column,
    str_column,
    time_column,
)
from t4r_dmt.data.ids import ID_TEXT_DTYPES, ID_TEXTS, IdTexts, distinct_id_texts, is_text_ids, settle_raw_ids
from t4r_dmt.data.reader import Layout, Logs, counts, every_file, read
from t4r_dmt.data.sources import PARQUET_SUFFIXES, Selection
from t4r_dmt.data.validate import DEFAULT_MAX_TIME_GAP, BadRows, Batch, Columns
from t4r_dmt.schema import EVENT_TYPES

SELECTION = Selection(suffixes=(".csv", ".csv.gz") + PARQUET_SUFFIXES)
ITEM_DTYPES = {"product_id": "int64", "category_id": "int64", "category_code": "object", "brand": "object",
               "price": "float64"}


def _convert_events(batch: Batch) -> dict[str, Columns]:
    event_time = time_column(batch, "event_time")
    event_type = map_column(batch, "event_type", {t: t for t in EVENT_TYPES})
    product_id, product_texts = id_column(batch, "product_id")
    category_id = int_column(batch, "category_id", null=None, default=NO_CATEGORY)
    category_code = str_column(batch, "category_code")
    brand = str_column(batch, "brand")
    price = price_column(batch, "price")
    user_id, user_texts = id_column(batch, "user_id")
    return {"events": event_columns(
        batch.rows, event_time=event_time, event_type=event_type, product_id=product_id, category_id=category_id,
        category_code=category_code, brand=brand, price=price, user_id=user_id,
        user_session=str_column(batch, "user_session", null=NULL_ID),
    ), ID_TEXTS: _id_texts(product_texts, user_texts)}


def _id_texts(*parts: Columns) -> Columns:
    return {name: np.concatenate([part[name] for part in parts]) for name in (*ID_TEXT_DTYPES, "_row")}


def _collect(tables: dict[str, Columns], ids: IdTexts | None, source: str) -> None:
    if ids is not None:
        ids.add_table(tables[ID_TEXTS], source)


EVENTS = Layout(_convert_events, required=tuple(EVENT_DTYPES), reduce={ID_TEXTS: distinct_id_texts})


def read_events(path: str | os.PathLike[str], on_bad_rows: str = "raise", max_time_gap: str = DEFAULT_MAX_TIME_GAP,
                ids: IdTexts | None = None) -> tuple[pd.DataFrame, dict[str, int]]:
    """Read REES46-schema events into the canonical events table.

    Parameters
    ----------
    path:
        A file, a glob or a folder (its .csv, .csv.gz and .parquet files).
    on_bad_rows:
        "raise": the first bad row raises :class:`~t4r_dmt.errors.InputError` naming the file, the
        column, the place (``line N`` of a text file in its own numbering, the header being line 1;
        ``row N``, 0-based, of a parquet file) and the value, and saying how many rows of the file
        are bad. "drop": bad rows are left out and counted by reason.
    max_time_gap:
        Rows apart from the bulk of the log by a longer stretch without rows are bad rows ("time far
        outside the log": a 1970 timestamp in a 2020 log).
    ids:
        Receives the texts of the text ``user_id`` / ``product_id`` values (their int64 surrogates are in the
        table); InputError if two texts share a surrogate.

    Returns
    -------
    events: (N, 9) canonical events; dropped: {reason: rows}
    """
    report = BadRows(on_bad_rows, max_time_gap)
    tables = read(path, SELECTION, every_file(EVENTS), {"events": EVENT_DTYPES, ID_TEXTS: ID_TEXT_DTYPES}, report)
    events = tables["events"]
    _collect(tables, ids, os.fspath(path))
    report.log(os.fspath(path))
    return finish(events, EVENT_DTYPES), counts(report)



def _convert_impressions(batch: Batch, page_size: int) -> dict[str, Columns]:
    request_id = raw_id_column(batch, "request_id")
    user_id, user_texts = id_column(batch, "user_id")
    event_time = time_column(batch, "event_time")
    product_id, product_texts = id_column(batch, "product_id")
    position = int_column(batch, "position", null="missing position")
    batch.flag(position < 0, "negative position", "position", batch.column("position"))
    if "page" in batch.table.column_names:
        page = int_column(batch, "page", null="missing page")
        batch.flag(page < 0, "negative page", "page", batch.column("page"))
    else:
        page = position // page_size
    labels: dict[str, np.ndarray] = {}
    for name in ("click", "order"):
        if name not in batch.table.column_names:  # unlabelled (serving) logs: read with labels=False
            labels[name] = np.zeros(len(batch.rows), dtype=np.int64)
            continue
        labels[name] = int_column(batch, name, null=f"missing {name}")
        batch.flag((labels[name] != 0) & (labels[name] != 1), f"{name} not 0/1", name, batch.column(name))
    if "order" in batch.table.column_names:
        batch.flag((labels["order"] == 1) & (labels["click"] == 0), "order without click", "order",
                   batch.column("order"))
    return {"impressions": {
        "request_id": request_id, "user_id": user_id, "event_time": event_time, "product_id": product_id,
        "position": position, "page": page, "click": labels["click"].astype(np.int8),
        "order": labels["order"].astype(np.int8), "_row": batch.rows,
    }, ID_TEXTS: _id_texts(product_texts, user_texts)}


def read_impressions(path: str | os.PathLike[str], on_bad_rows: str = "raise", page_size: int = 10,
                     labels: bool = True, max_time_gap: str = DEFAULT_MAX_TIME_GAP, ids: IdTexts | None = None
                     ) -> tuple[pd.DataFrame, dict[str, int]]:
    """Read a ranking log (impressions) into the canonical impressions table.

    Parameters
    ----------
    path:
        A file, a glob or a folder (its .csv, .csv.gz and .parquet files) with columns request_id,
        user_id, event_time, product_id, position, click, order and optionally page.
    on_bad_rows:
        As in :func:`read_events`. Besides bad values,
        an order without a click, a repeated (request_id, position) and a request whose rows disagree
        on user_id or event_time are bad rows.
    page_size:
        Items per page, giving ``page = position // page_size`` when the file has no page column.
    labels:
        True (training logs): ``click`` and ``order`` are required. False (lists to score): they are
        optional and read as 0 where absent.
    max_time_gap:
        As in :func:`read_events` (a request far from the others is a bad row).
    ids:
        As in :func:`read_events`.

    Returns
    -------
    impressions: (N, 8) canonical impressions (``request_id`` int64, or object of str when any request id is
    not an integer); dropped: {reason: rows}
    """
    if page_size < 1:
        raise ValueError(f"page_size must be >= 1; got {page_size}")
    report = BadRows(on_bad_rows, max_time_gap)
    label_columns = ("click", "order")
    layout = Layout(functools.partial(_convert_impressions, page_size=page_size),
                    required=("request_id", "user_id", "event_time", "product_id", "position")
                    + (label_columns if labels else ()),
                    optional=("page",) + (() if labels else label_columns), reduce={ID_TEXTS: distinct_id_texts})
    tables = read(path, SELECTION, every_file(layout), {"impressions": IMPRESSION_DTYPES, ID_TEXTS: ID_TEXT_DTYPES},
                  report)
    _collect(tables, ids, os.fspath(path))
    table = tables["impressions"]
    table["request_id"] = settle_raw_ids(table["request_id"])
    table = check_impressions(table, report)
    report.log(os.fspath(path))
    dtypes = {**IMPRESSION_DTYPES, "request_id": "object"} if is_text_ids(table["request_id"]) else IMPRESSION_DTYPES
    return finish(table, dtypes), counts(report)


def _convert_items(batch: Batch) -> dict[str, Columns]:
    product_id, product_texts = id_column(batch, "product_id")
    return {"items": {
        "product_id": product_id,
        "category_id": int_column(batch, "category_id", null=None, default=NO_CATEGORY),
        "category_code": str_column(batch, "category_code"),
        "brand": str_column(batch, "brand"),
        "price": price_column(batch, "price"),
        "_row": batch.rows,
    }, ID_TEXTS: product_texts}


def read_items(path: str | os.PathLike[str], ids: IdTexts | None = None) -> pd.DataFrame:
    """Read an items file: one row per product with its category_id, category_code, brand and price.

    Any bad row (or a product listed twice) raises :class:`~t4r_dmt.errors.InputError` naming the
    file, column, place (as in :func:`read_events`) and value.

    ``ids`` receives the texts of text product ids, as in :func:`read_events`.

    Returns
    -------
    (P, 5) frame: product_id int64, category_id int64 (-1 if null), category_code, brand (str or
    None), price float64.
    """
    report = BadRows("raise")
    tables = read(path, SELECTION, every_file(Layout(_convert_items, required=tuple(ITEM_DTYPES),
                                                              reduce={ID_TEXTS: distinct_id_texts})),
                  {"items": ITEM_DTYPES, ID_TEXTS: ID_TEXT_DTYPES}, report)
    _collect(tables, ids, os.fspath(path))
    table = tables["items"]
    duplicate = pd.Series(table["product_id"]).duplicated().to_numpy()
    table = report.check_frame(table, duplicate, "duplicate product_id", "product_id")
    return finish(table, ITEM_DTYPES)


def load(path: str | os.PathLike[str], on_bad_rows: str = "raise", page_size: int = 10,
         max_time_gap: str = DEFAULT_MAX_TIME_GAP) -> Logs:
    """REES46 events as :class:`Logs` (no impressions: they come from their own file)."""
    ids = IdTexts()
    events, dropped = read_events(path, on_bad_rows, max_time_gap, ids=ids)
    return Logs(events, None, dropped, ids)
