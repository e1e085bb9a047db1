"""The read loop every format shares: files -> batches -> converted, checked columns -> one table each.

A format supplies, per file, a :class:`Layout`: which columns it needs and a ``convert`` function that
turns one :class:`~t4r_dmt.data.validate.Batch` of raw columns into canonical tables (e.g. "events",
"impressions"), flagging bad rows on the batch. The loop drops the flagged rows, raises or counts them
at the end of each file (:class:`~t4r_dmt.data.validate.BadRows`), and concatenates the tables.
A file that cannot be read at all (corrupt compression, not parquet, invalid UTF-8 ...) raises
:class:`~t4r_dmt.errors.InputError` naming it; times far from the bulk of a table are bad rows
(:func:`~t4r_dmt.data.canonical.check_time_outliers`).
"""

from __future__ import annotations

import functools
import os
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa

from t4r_dmt.data.canonical import check_time_outliers, empty, take
from t4r_dmt.data.ids import IdTexts
from t4r_dmt.data.sources import (
    Selection,
    TextLayout,
    file_columns,
    file_kind,
    read_batches,
    resolve_files,
    unreadable,
)
from t4r_dmt.data.validate import BadRows, Batch, Columns, FileReport
from t4r_dmt.errors import InputError

Converter = Callable[[Batch], dict[str, Columns]]


@dataclass
class Logs:
    """What a reader returns.

    Attributes
    ----------
    events:
        Canonical events (see :mod:`t4r_dmt.data.canonical`).
    impressions:
        Canonical impressions, or None when the format has no ranking log.
    dropped:
        Rows left out, by reason: bad rows under ``on_bad_rows="drop"`` (e.g. "negative price"), and,
        in either mode, rows a format leaves out by design (e.g. Taobao "fav" rows as
        "unmapped behaviour: fav").
    ids:
        The texts of the text ``user_id`` / ``product_id`` values, whose int64 surrogates the tables hold
        (:mod:`t4r_dmt.data.ids`); empty when every id is an integer.
    """

    events: pd.DataFrame
    impressions: pd.DataFrame | None
    dropped: dict[str, int] = field(default_factory=dict)
    ids: IdTexts = field(default_factory=IdTexts)


@dataclass
class Layout:
    """How to read and convert one input file.

    Attributes
    ----------
    convert:
        Batch -> {output name: columns, with ``_row`` (the local row each output row comes from)}.
    required:
        Columns (canonical names) the file must have.
    optional:
        Further columns read when present.
    text:
        Delimiter, header and column aliases for text files.
    reduce:
        Output name -> a function applied to the kept rows of each batch of that output (e.g. one row per
        distinct text id), so that the read holds less.
    """

    convert: Converter
    required: tuple[str, ...]
    optional: tuple[str, ...] = ()
    text: TextLayout = field(default_factory=TextLayout)
    reduce: Mapping[str, Callable[[Columns], Columns]] = field(default_factory=dict)


def read(
    path: str | os.PathLike[str],
    selection: Selection,
    layout_for: Callable[[str], Layout],
    outputs: dict[str, dict[str, str]],
    report: BadRows,
) -> dict[str, Columns]:
    """Read every file of ``path`` and return one table per output name.

    Parameters
    ----------
    outputs:
        Output name -> canonical dtypes (for empty results).
    report:
        Collects bad rows; raises on the first bad file under ``on_bad_rows="raise"``.

    Returns
    -------
    {name: columns}, each still carrying the helper columns ``_src`` and ``_row``.

    Raises
    ------
    InputError
        Bad rows under "raise", and any file that cannot be read (naming it, and the line where known).
    """
    parts: dict[str, list[Columns]] = {name: [] for name in outputs}
    for src, file in enumerate(resolve_files(path, selection)):
        layout = layout_for(file)
        kind = file_kind(file)
        file_report = FileReport(file, lines=kind != "parquet", header=kind == "text" and layout.text.names is None)
        try:
            _read_file(file, layout, src, parts, report.on_bad_rows, file_report)
        except (OSError, EOFError, pa.ArrowException, UnicodeDecodeError) as err:
            raise unreadable(file, err) from err
        report.add_file(file_report)
    tables = {name: _concatenate(tables) if tables else empty(outputs[name]) for name, tables in parts.items()}
    return {name: check_time_outliers(columns, report) if "event_time" in columns else columns
            for name, columns in tables.items()}


def _read_file(file: str, layout: Layout, src: int, parts: dict[str, list[Columns]], on_bad_rows: str,
               file_report: FileReport) -> None:
    """Read, convert and check one file; append its good rows to ``parts``."""
    if file_kind(file) != "json":
        _check_columns(file, layout)
    for table, start in read_batches(file, layout.text, layout.required + layout.optional, file_report):
        if table.num_rows == 0:
            continue
        batch = Batch(table, file, start)
        tables = layout.convert(batch)
        keep, skipped = batch.finish()
        for name, columns in tables.items():
            kept = keep[columns["_row"]]
            columns = take(columns, kept) if not kept.all() else columns
            columns["_row"] = columns["_row"] + start
            columns["_src"] = np.full(len(columns["_row"]), src, np.int32)
            if name in layout.reduce:
                columns = layout.reduce[name](columns)
            parts[name].append(columns)
        file_report.add_batch(batch, skipped)
        if on_bad_rows == "raise" and file_report.counts:
            # The file will raise once fully checked: stop holding any rows.
            for held in parts.values():
                held.clear()


def _concatenate(tables: list[Columns]) -> Columns:
    if len(tables) == 1:
        return tables[0]
    return {name: np.concatenate([t[name] for t in tables]) for name in tables[0]}


def every_file(layout: Layout) -> Callable[[str], Layout]:
    """A ``layout_for`` that gives ``layout`` for every file."""
    return functools.partial(_constant, layout)


def _constant(layout: Layout, file: str) -> Layout:
    return layout


def _check_columns(file: str, layout: Layout) -> None:
    present = {layout.text.aliases.get(name, name) for name in file_columns(file, layout.text)}
    for column in layout.required:
        if column not in present:
            raise InputError(file, f"missing column (found: {', '.join(sorted(present))})", column=column)


def counts(report: BadRows) -> dict[str, int]:
    """The drop counts as a plain dict, largest first."""
    return dict(Counter(report.dropped).most_common())
