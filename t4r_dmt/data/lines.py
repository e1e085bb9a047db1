"""Line numbers of rows in text files, for error messages that point where an editor would.

The CSV and JSON parsers count *rows*: the non-empty lines after the header line. Users count *lines*,
empty ones and the header included, 1-based. :func:`line_of_row` converts one into the other by reading
the file (decompressed) up to that row, vectorised; it runs only when an error is reported.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

LINE_SCAN_BYTES = 16 << 20
"""Bytes read per step when locating the line of a row."""


def line_of_row(file: str, row: int, header: bool) -> int | None:
    """The 1-based line of ``file`` that holds data row ``row`` (0-based), as an editor numbers lines.

    Rows are the file's non-empty lines after the header line (when ``header``), as the CSV and JSON
    parsers count them; a line ends in ``\\n``, ``\\r\\n`` or ``\\r``. The file is read only up to that
    row (this runs on error paths). None if the file has fewer rows.
    """
    if row < 0:
        return None
    wanted = row + int(header)  # index among the non-empty lines
    lines = nonempty = 0  # lines (and non-empty lines) ended before ``data``
    length = 0  # bytes of the unfinished line carried over from earlier blocks
    carry = b""
    with pa.input_stream(file, compression="detect") as stream:
        while True:
            block = stream.read(LINE_SCAN_BYTES)
            data, carry = carry + block, b""
            if not data:
                break
            if block and data.endswith(b"\r"):  # maybe the first half of a "\r\n": decide with the next block
                data, carry = data[:-1], b"\r"
            b = np.frombuffer(data, np.uint8)
            lf, cr = b == 10, b == 13
            after_cr = np.r_[False, cr[:-1]]
            ends = np.flatnonzero(lf | (cr & ~np.r_[lf[1:], False]))  # one end per line: "\r\n" ends at "\n"
            if len(ends):
                sizes = ends - np.r_[0, ends[:-1] + 1] - (lf[ends] & after_cr[ends])
                sizes[0] += length
                counted = np.cumsum(sizes > 0)
                hit = np.flatnonzero(counted == wanted - nonempty + 1)
                if len(hit):
                    return lines + int(hit[0]) + 1
                nonempty += int(counted[-1])
                lines += len(ends)
                length = len(b) - int(ends[-1]) - 1
            else:
                length += len(b)
            if not block:
                break
    if length > 0 and nonempty == wanted:  # the last line, without a line ending
        return lines + 1
    return None
