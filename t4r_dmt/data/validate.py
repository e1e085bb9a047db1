"""Bad-row bookkeeping shared by every reader: find bad rows, then raise or drop them and count.

Rows are counted as the parsers count them: the 0-based index among the file's data rows (the header
line and empty lines are not rows). Errors name the place as the user finds it: ``line N`` of a text
file in the file's own numbering (the header is line 1; :func:`~t4r_dmt.data.lines.line_of_row`),
``row N`` (0-based) of a parquet file. Checks are vectorised: each one hands a boolean
mask over a batch of rows to :class:`Batch.flag`, which keeps, per reason, the number of bad rows and
the first offender, so an error can name the file, column, row and value without a loop over rows.

A row flagged by several checks is counted once, under the first check that flagged it.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from t4r_dmt.data.lines import line_of_row
from t4r_dmt.errors import InputError

logger = logging.getLogger(__name__)

ON_BAD_ROWS = ("raise", "drop")
DEFAULT_MAX_TIME_GAP = "30d"
"""Rows whose time is separated from the bulk of their log by a longer stretch without rows are bad rows."""

Columns = dict[str, np.ndarray]
"""A table as (N,) numpy arrays by column name (cheaper than a DataFrame while reading)."""


def check_on_bad_rows(on_bad_rows: str) -> None:
    """Raise ValueError unless ``on_bad_rows`` is one of :data:`ON_BAD_ROWS`."""
    if on_bad_rows not in ON_BAD_ROWS:
        raise ValueError(f"on_bad_rows must be one of {', '.join(ON_BAD_ROWS)}; got {on_bad_rows!r}")


@dataclass(frozen=True)
class Offender:
    """The first bad row of one kind: where it is and what is wrong with it."""

    row: int
    problem: str
    column: str | None
    value: Any


class RowMap:
    """Maps row numbers of the parsed table to data-row numbers of the file.

    They differ once the CSV parser has skipped lines it could not split (a truncated last line):
    those lines are rows of the file but not of the table.

    Parameters
    ----------
    skipped: (K,) int
        Sorted data-row numbers of the skipped lines.
    """

    def __init__(self, skipped: np.ndarray | None = None) -> None:
        skipped = np.zeros(0, np.int64) if skipped is None else np.asarray(skipped, np.int64)
        # shift[j] = number of table rows before the j-th skipped line.
        self._shift = skipped - np.arange(len(skipped))

    def __call__(self, table_rows: np.ndarray) -> np.ndarray:
        """(N,) table row numbers -> (N,) file data-row numbers."""
        table_rows = np.asarray(table_rows, np.int64)
        return table_rows + np.searchsorted(self._shift, table_rows, side="right")


class Batch:
    """One parsed slice of one input file, and the bad rows found in it so far.

    Parameters
    ----------
    table:
        The raw columns of ``n`` rows, as parsed (text columns are strings).
    file:
        The input file, for messages.
    start:
        Table row number of the batch's first row within its file.
    """

    def __init__(self, table: pa.Table, file: str, start: int) -> None:
        self.table = table
        self.file = file
        self.start = start
        self.n = table.num_rows
        self.bad = np.zeros(self.n, bool)
        self.counts: Counter[str] = Counter()
        self.first: Offender | None = None
        self._skips: list[tuple[np.ndarray, str]] = []

    @property
    def rows(self) -> np.ndarray:
        """(n,) local row numbers 0..n-1 (what converters put in the ``_row`` column)."""
        return np.arange(self.n, dtype=np.int64)

    def column(self, name: str) -> pa.Array:
        """The raw column ``name`` as one array; InputError if the file lacks it."""
        if name not in self.table.column_names:
            raise InputError(self.file, f"missing column (found: {', '.join(self.table.column_names)})",
                             column=name)
        column = self.table.column(name).combine_chunks()
        # Categorical parquet columns arrive dictionary-encoded: converters want plain values.
        return column.dictionary_decode() if pa.types.is_dictionary(column.type) else column

    def flag(
        self,
        mask: np.ndarray,
        reason: str,
        column: str | None,
        raw: pa.Array | np.ndarray | None,
        hint: str = "",
        rows: np.ndarray | None = None,
    ) -> None:
        """Mark rows as bad.

        Parameters
        ----------
        mask: (n,) bool, or (E,) bool over the elements of a list column when ``rows`` is given
            True where the check failed.
        reason:
            Short name of the problem; the key of the drop counts (e.g. "negative price").
        column, raw:
            The column at fault and its raw values (aligned with ``mask``), for the message.
        hint:
            Extra words for the error message (e.g. the valid choices).
        rows: (E,) int, optional
            Local row of each element, when ``mask`` is over list elements.
        """
        mask = np.asarray(mask, bool)
        row_mask = mask
        if rows is not None:
            row_mask = np.zeros(self.n, bool)
            row_mask[rows[mask]] = True
        new = row_mask & ~self.bad
        if not new.any():
            return
        self.counts[reason] += int(new.sum())
        row = int(np.argmax(new))
        element = row if rows is None else int(np.flatnonzero(mask & (rows == row))[0])
        if self.first is None or row < self.first.row:
            problem = f"{reason}: {hint}" if hint else reason
            self.first = Offender(row, problem, column, _value_at(raw, element))
        self.bad |= row_mask

    def skip(self, mask: np.ndarray, reason: str) -> None:
        """Leave good rows out of the output by design (not an error), counted under ``reason``.

        Parameters
        ----------
        mask: (n,) bool
        """
        self._skips.append((np.asarray(mask, bool), reason))

    def finish(self) -> tuple[np.ndarray, Counter[str]]:
        """(n,) bool rows to keep, and the counts of rows skipped by design."""
        keep = ~self.bad
        skipped: Counter[str] = Counter()
        for mask, reason in self._skips:
            hit = mask & keep
            if hit.any():
                skipped[reason] += int(hit.sum())
                keep &= ~hit
        return keep, skipped


def _value_at(raw: pa.Array | np.ndarray | None, i: int) -> Any:
    """The raw value at ``i``; a null shows as "" (an empty cell) so that messages always show one."""
    if raw is None:
        return ""
    value = raw[i].as_py() if isinstance(raw, pa.Array | pa.ChunkedArray) else raw[i]
    if value is None:
        return ""
    return value.item() if hasattr(value, "item") else value


class FileReport:
    """The bad rows of one input file, gathered batch by batch.

    Batch offenders are kept in table rows and lines the parser skipped in file rows; :meth:`first`
    turns everything into file rows once the skipped lines are known.

    Parameters
    ----------
    file:
        The input file.
    lines:
        True for text files (CSV, JSON lines): errors name the line; False (parquet): the row.
    header:
        The text file's first line is a header (data row 0 is then line 2).
    """

    def __init__(self, file: str, lines: bool = False, header: bool = True) -> None:
        self.file = file
        self.lines = lines
        self.header = header
        self.counts: Counter[str] = Counter()
        self.skipped: Counter[str] = Counter()
        self.row_map = RowMap()
        self._first_table: Offender | None = None
        self._first_line: Offender | None = None

    def add_batch(self, batch: Batch, skipped: Counter[str]) -> None:
        self.counts.update(batch.counts)
        self.skipped.update(skipped)
        if batch.first is not None:
            row = batch.start + batch.first.row
            if self._first_table is None or row < self._first_table.row:
                f = batch.first
                self._first_table = Offender(row, f.problem, f.column, f.value)

    def add_lines(self, rows: np.ndarray, reasons: list[str], problems: list[str],
                  columns: list[str | None], texts: list[str]) -> None:
        """Record lines the parser could not split; ``rows`` are sorted file data-row numbers."""
        self.row_map = RowMap(rows)
        self.counts.update(reasons)
        if len(rows):
            self._first_line = Offender(int(rows[0]), problems[0], columns[0], texts[0])

    def line(self, row: int) -> int | None:
        """The 1-based line of data row ``row`` of a text file; None for parquet files."""
        return line_of_row(self.file, row, self.header) if self.lines else None

    def first(self) -> Offender | None:
        """The first bad row of the file, in file rows."""
        candidates = [self._first_line]
        if self._first_table is not None:
            f = self._first_table
            row = int(self.row_map(np.array([f.row]))[0])
            candidates.append(Offender(row, f.problem, f.column, f.value))
        present = [c for c in candidates if c is not None]
        return min(present, key=lambda c: c.row) if present else None


def _describe(counts: Counter[str], where: str) -> str:
    total = sum(counts.values())
    detail = ", ".join(f"{n} {reason}" for reason, n in counts.most_common())
    return f"{total} bad row{'s' if total != 1 else ''} {where}: {detail}"


class BadRows:
    """Raise on, or drop and count, the bad rows of one read (all its files).

    Parameters
    ----------
    on_bad_rows:
        "raise": the first bad row of the first bad file raises InputError (after the whole file
        was checked, so the message can say how many rows are bad); "drop": bad rows are left
        out and counted by reason in :attr:`dropped`.
    max_time_gap:
        A duration (``"30d"``): rows separated from the bulk of their log by a longer stretch without
        any row are bad rows (:func:`t4r_dmt.data.canonical.check_time_outliers`).
    """

    def __init__(self, on_bad_rows: str, max_time_gap: str = DEFAULT_MAX_TIME_GAP) -> None:
        check_on_bad_rows(on_bad_rows)
        self.on_bad_rows = on_bad_rows
        self.max_time_gap = parse_time_gap(max_time_gap)
        self.files: list[FileReport] = []
        self.dropped: Counter[str] = Counter()

    def add_file(self, report: FileReport) -> None:
        """Account for one finished file: raise on its first bad row, or count its drops."""
        self.files.append(report)
        self.dropped.update(report.skipped)
        if not report.counts:
            return
        first = report.first()
        if self.on_bad_rows == "raise" and first is not None:
            raise InputError(report.file, f"{first.problem} ({_describe(report.counts, 'in this file')})",
                             column=first.column, row=first.row, value=first.value, line=report.line(first.row))
        self.dropped.update(report.counts)

    def check_frame(self, columns: Columns, mask: np.ndarray, reason: str, column: str,
                    value_columns: tuple[str, ...] | None = None, hint: str = "") -> Columns:
        """Apply a check over whole-read rows (e.g. duplicates across files).

        Parameters
        ----------
        columns: (N,) arrays, with the helper columns ``_src`` (file index) and ``_row`` (table row)
        mask: (N,) bool
            True for bad rows.
        value_columns:
            Columns whose values make the reported value (default: ``column``).
        hint:
            Extra words for the error message (what the check means, what to do).

        Returns
        -------
        The good rows (under "drop"); raises InputError on the first bad row (under "raise").
        """
        mask = np.asarray(mask, bool)
        if not mask.any():
            return columns
        if self.on_bad_rows == "drop":
            self.dropped[reason] += int(mask.sum())
            return {name: values[~mask] for name, values in columns.items()}
        bad = np.flatnonzero(mask)
        i = int(bad[np.lexsort((columns["_row"][bad], columns["_src"][bad]))[0]])
        report = self.files[int(columns["_src"][i])]
        row = int(report.row_map(np.array([columns["_row"][i]]))[0])
        values = tuple(_plain(columns[c][i]) for c in value_columns or (column,))
        counts: Counter[str] = Counter({reason: len(bad)})
        problem = f"{reason}: {hint}" if hint else reason
        raise InputError(report.file, f"{problem} ({_describe(counts, 'in the input')})", column=column,
                         row=row, value=values[0] if len(values) == 1 else values, line=report.line(row))

    def log(self, what: str) -> None:
        """Log the drop counts at INFO."""
        if self.dropped:
            logger.info("%s: %s", what, _describe(self.dropped, "left out"))


def parse_time_gap(text: str) -> np.timedelta64:
    """``"30d"``, ``"12h"`` ... as a positive timedelta64[ns]; ValueError naming the value otherwise."""
    try:
        if str(text).strip().replace(".", "", 1).isdigit():
            raise ValueError("a number without a unit")  # pandas would read "30" as 30 nanoseconds
        gap = pd.Timedelta(text)
    except (ValueError, TypeError) as err:
        raise ValueError(f"max_time_gap must be a duration such as '30d' or '12h'; got {text!r}") from err
    if gap <= pd.Timedelta(0):
        raise ValueError(f"max_time_gap must be longer than zero; got {text!r}")
    return np.timedelta64(gap.value, "ns")


def _plain(value: Any) -> Any:
    if isinstance(value, np.datetime64):
        return pd.Timestamp(value)
    return value.item() if hasattr(value, "item") else value
