"""Finding input files and reading them in batches of raw columns (CSV / CSV.gz / parquet / jsonl).

Text files are parsed by pyarrow's streaming CSV reader with every needed column read as a string, so
no value is ever lost to type inference (a 19-digit ``category_id`` never passes through float) and the
converters in :mod:`t4r_dmt.data.columns` can say exactly which row holds a bad value. Lines that do not
split into the header's number of fields (a truncated last line) are skipped by the parser and located
afterwards, so they are reported with their row number too.
"""

from __future__ import annotations

import fnmatch
import glob
import io
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv
import pyarrow.json as pjson
import pyarrow.parquet as pq

from t4r_dmt.data.lines import line_of_row
from t4r_dmt.data.validate import FileReport
from t4r_dmt.errors import InputError

BLOCK_BYTES = 64 << 20
"""Bytes of text parsed per batch: large enough to amortise per-batch work, small enough for memory."""

PARQUET_SUFFIXES = (".parquet", ".pq", ".parquet.snappy")
JSON_SUFFIXES = (".jsonl", ".jsonl.gz", ".json", ".json.gz")
JSON_PIECE_LINES = 50_000
"""Lines parsed per JSON piece: pyarrow's JSON parser takes at most 100,000 rows per block."""
TEXT_SUFFIXES = (".csv", ".csv.gz", ".tsv", ".tsv.gz", ".txt", ".txt.gz", ".dat", ".dat.gz")


@dataclass(frozen=True)
class Selection:
    """Which files of a folder belong to a format.

    Attributes
    ----------
    suffixes:
        File name endings read (case-insensitive).
    include, exclude:
        fnmatch patterns on the file name: a file is read if it matches one of ``include`` and none
        of ``exclude``. README files and hidden files are never read.
    """

    suffixes: tuple[str, ...] = TEXT_SUFFIXES + PARQUET_SUFFIXES
    include: tuple[str, ...] = ("*",)
    exclude: tuple[str, ...] = ()

    def accepts(self, name: str) -> bool:
        low = name.lower()
        if low.startswith((".", "readme")) or not low.endswith(self.suffixes):
            return False
        return any(fnmatch.fnmatch(low, p) for p in self.include) and not any(
            fnmatch.fnmatch(low, p) for p in self.exclude)


def check_inputs_given(flags: dict[str, str | None]) -> None:
    """InputError naming the flag of the first given path (``{"--events": path, ...}``; None = not given)
    that is neither a file, a folder nor a glob with a match: checked before anything is read."""
    for flag, path in flags.items():
        if path is not None and not (Path(path).exists() or glob.glob(path)):
            raise InputError(path, f"{flag}: no such file, folder or glob match")


def resolve_files(path: str | os.PathLike[str], selection: Selection) -> list[str]:
    """The input files named by ``path``: a file, a glob, or a folder (read recursively).

    A folder yields the files ``selection`` accepts; a glob yields every matching file that is not
    hidden. Files are sorted by path, which fixes the order rows are read in.
    """
    text = os.fspath(path)
    if os.path.isfile(text):
        return [text]
    if os.path.isdir(text):
        files = sorted(str(p) for p in Path(text).rglob("*") if p.is_file() and selection.accepts(p.name))
        if not files:
            raise InputError(text, f"no input files in this folder (looking for {', '.join(selection.include)}"
                                   f" ending in {', '.join(selection.suffixes)})")
        return files
    files = sorted(f for f in glob.glob(text) if os.path.isfile(f) and not os.path.basename(f).startswith("."))
    if not files:
        raise InputError(text, "no such file or folder, and no file matches it as a glob")
    return files


def file_kind(file: str) -> str:
    """"parquet", "json" or "text", from the file name."""
    low = file.lower()
    if low.endswith(PARQUET_SUFFIXES):
        return "parquet"
    if low.endswith(JSON_SUFFIXES):
        return "json"
    return "text"


def first_line(file: str) -> str:
    """The first line of a (possibly compressed) text file, without its line ending or BOM."""
    with pa.input_stream(file, compression="detect") as stream:
        head = stream.read(1 << 20)
    return head.split(b"\n", 1)[0].decode("utf-8-sig", errors="replace").rstrip("\r")


@dataclass
class TextLayout:
    """How a text file splits into columns.

    Attributes
    ----------
    delimiter:
        Field separator.
    names:
        Column names in file order for files without a header line; None: the first line is the header.
    aliases:
        File column name -> canonical name (e.g. ``sessionId`` -> ``session_id``).
    """

    delimiter: str = ","
    names: tuple[str, ...] | None = None
    aliases: dict[str, str] = field(default_factory=dict)


def file_columns(file: str, layout: TextLayout) -> list[str]:
    """Column names of ``file`` as they appear in it (before aliases)."""
    kind = file_kind(file)
    if kind == "parquet":
        return list(pq.ParquetFile(file).schema_arrow.names)
    if layout.names is not None:
        return list(layout.names)
    names = first_line(file).split(layout.delimiter)
    # As pyarrow reads them: quoted names unquoted, nothing stripped.
    return [n[1:-1].replace('""', '"') if len(n) > 1 and n[0] == n[-1] == '"' else n for n in names]


def read_batches(file: str, layout: TextLayout, columns: tuple[str, ...], report: FileReport
                 ) -> Iterator[tuple[pa.Table, int]]:
    """Yield ``(table, start)`` batches of the canonical-named ``columns`` of one file.

    ``start`` is the table row number of the batch's first row. Columns absent from the file are
    absent from the tables (the converter names the missing column). Lines that cannot be parsed are
    recorded in ``report`` once the file is read.
    """
    kind = file_kind(file)
    if kind == "json":
        yield from _json_batches(file, report)
        return
    present = file_columns(file, layout)
    canonical = {name: layout.aliases.get(name, name) for name in present}
    wanted = [name for name in present if canonical[name] in columns]
    try:
        if kind == "parquet":
            start = 0
            for rb in pq.ParquetFile(file).iter_batches(batch_size=1 << 20, columns=wanted):
                table = pa.Table.from_batches([rb])
                yield table.rename_columns([canonical[n] for n in table.column_names]), start
                start += table.num_rows
            return
        yield from _text_batches(file, layout, present, wanted, canonical, report)
    except pa.ArrowInvalid as err:
        raise unreadable(file, err) from err


def _text_batches(file: str, layout: TextLayout, present: list[str], wanted: list[str],
                  canonical: dict[str, str], report: FileReport) -> Iterator[tuple[pa.Table, int]]:
    invalid: list[tuple[str, int, int]] = []

    def on_invalid(row: pcsv.InvalidRow) -> str:
        invalid.append((row.text, row.actual_columns, row.expected_columns))
        return "skip"

    reader = pcsv.open_csv(
        file,
        read_options=pcsv.ReadOptions(block_size=BLOCK_BYTES, column_names=list(layout.names or []) or None),
        parse_options=pcsv.ParseOptions(delimiter=layout.delimiter, invalid_row_handler=on_invalid),
        convert_options=pcsv.ConvertOptions(
            column_types={name: pa.string() for name in wanted}, include_columns=wanted,
            strings_can_be_null=True, null_values=[""], quoted_strings_can_be_null=True),
    )
    start = 0
    for rb in reader:
        table = pa.Table.from_batches([rb])
        yield table.rename_columns([canonical[n] for n in table.column_names]), start
        start += table.num_rows
    if invalid:
        _record_invalid_lines(file, layout, present, invalid, report)


def _record_invalid_lines(file: str, layout: TextLayout, present: list[str],
                          invalid: list[tuple[str, int, int]], report: FileReport) -> None:
    """Find the row numbers of the lines the parser skipped (vectorised: read the file as lines)."""
    texts = [text for text, _, _ in invalid]
    lines = pcsv.read_csv(
        file,
        read_options=pcsv.ReadOptions(block_size=BLOCK_BYTES, column_names=["line"],
                                      skip_rows=0 if layout.names else 1),
        parse_options=pcsv.ParseOptions(delimiter="\x1f", quote_char=False, double_quote=False,
                                        escape_char=False),
        convert_options=pcsv.ConvertOptions(column_types={"line": pa.string()}),
    ).column("line")
    rows = np.flatnonzero(pc.is_in(lines, value_set=pa.array(sorted(set(texts)))).to_numpy(zero_copy_only=False))
    by_text = {text: (actual, expected) for text, actual, expected in invalid}
    if len(rows) != len(invalid):
        raise InputError(file, f"{len(invalid)} line(s) do not have {invalid[0][2]} fields and could not be "
                               "located", value=texts[0])
    line_texts = [lines[int(r)].as_py() for r in rows]
    reasons, problems, columns = [], [], []
    for text in line_texts:
        actual, expected = by_text[text]
        if actual < expected:
            reasons.append("truncated line")
            problems.append(f"truncated line: {actual} of {expected} fields")
            columns.append(present[actual] if actual < len(present) else None)
        else:
            reasons.append("malformed line")
            problems.append(f"malformed line: {actual} fields, expected {expected}")
            columns.append(None)
    report.add_lines(rows, reasons, problems, columns, line_texts)


def _json_batches(file: str, report: FileReport) -> Iterator[tuple[pa.Table, int]]:
    """JSON lines in pieces of whole lines; a truncated last line is recorded, any other bad JSON raises."""
    start = 0
    with pa.input_stream(file, compression="detect") as stream:
        rest = b""
        while True:
            block = stream.read(BLOCK_BYTES)
            data = rest + block
            if block:
                cut = data.rfind(b"\n") + 1
                data, rest = data[:cut], data[cut:]
            pieces = _split_lines(data, JSON_PIECE_LINES)
            for k, piece in enumerate(pieces):
                if piece.isspace():
                    continue
                table = _parse_json(file, piece, start, last=not block and k == len(pieces) - 1, report=report)
                yield table, start
                start += table.num_rows
            if not block:
                return


def _split_lines(data: bytes, lines: int) -> list[bytes]:
    """``data`` cut after every ``lines``-th newline (newlines found vectorised)."""
    ends = np.flatnonzero(np.frombuffer(data, np.uint8) == ord("\n"))[lines - 1::lines] + 1
    bounds = [0, *ends.tolist(), len(data)]
    return [data[a:b] for a, b in zip(bounds[:-1], bounds[1:], strict=True) if b > a]


def _parse_json(file: str, data: bytes, start: int, last: bool, report: FileReport) -> pa.Table:
    options = pjson.ReadOptions(block_size=len(data) + 1, use_threads=False)
    try:
        return pjson.read_json(io.BytesIO(data), read_options=options)
    except pa.ArrowInvalid as err:
        message = str(err)
        lines = [line for line in data.split(b"\n") if line.strip()]
        row = _row_in_message(message)
        if row is not None and last and not data.endswith(b"\n") and row == len(lines) - 1:
            # A file cut off in its last line (an interrupted download): the only bad JSON we can drop.
            text = lines[-1].decode("utf-8", errors="replace")
            report.add_lines(np.array([start + row]), ["truncated line"], ["truncated line: incomplete JSON"],
                             [None], [text])
            if row == 0:
                return pa.table({})
            return _parse_json(file, b"\n".join(lines[:-1]) + b"\n", start, False, report)
        value = lines[row].decode("utf-8", errors="replace")[:200] if row is not None and row < len(lines) else None
        column = message.split("Column(", 1)[1].split(")", 1)[0] if "Column(" in message else None
        row = None if row is None else start + row
        raise InputError(file, f"invalid JSON: {message}", column=column, row=row, value=value,
                         line=None if row is None else line_of_row(file, row, header=False)) from err


def _row_in_message(message: str) -> int | None:
    tail = message.rsplit(" in row ", 1)
    if len(tail) == 2 and tail[1].strip().isdigit():
        return int(tail[1].strip())
    return None


def unreadable(file: str, err: BaseException) -> InputError:
    """The InputError for a file that the parsers gave up on: its name, the reason, the line where known
    (pyarrow names neither; invalid UTF-8 is located by decoding the file line by line)."""
    message = " ".join(str(err).split()) or type(err).__name__
    line = None
    if "invalid UTF8" in message or isinstance(err, UnicodeDecodeError):
        line = _first_invalid_utf8_line(file)
    return InputError(file, f"cannot read the file: {message}", line=line)


def _first_invalid_utf8_line(file: str) -> int | None:
    """The 1-based line holding the first bytes that are not UTF-8 (None if there are none)."""
    line, rest = 0, b""
    try:
        with pa.input_stream(file, compression="detect") as stream:
            while True:
                block = stream.read(16 << 20)
                data = rest + block
                cut = len(data) if not block else data.rfind(b"\n") + 1
                chunk, rest = data[:cut], data[cut:]
                try:
                    chunk.decode("utf-8")
                except UnicodeDecodeError as err:
                    return line + chunk[: err.start].count(b"\n") + 1
                line += chunk.count(b"\n")
                if not block:
                    return None
    except (OSError, pa.ArrowException):  # the file is broken in other ways too: no line then
        return None
