"""Errors raised on bad user input: each names the file, column, row and value at fault."""

from __future__ import annotations

from typing import Any


class InputError(ValueError):
    """Bad input data.

    The message always reads ``<file>, column '<col>', line <line>: <problem> (value: <value>)`` so the
    user can open the file and find the offending cell. ``line`` counts the lines of a text file as an
    editor does (the header is line 1, so data row 0 of a CSV with a header is line 2); where a file has no
    lines (parquet, an in-memory table) the place reads ``row <row>`` instead (0-based, as ``iloc``).

    Attributes
    ----------
    row:
        0-based index among the file's data rows (the header and empty lines are not rows), or None.
    line:
        1-based line of the file holding that row (text files), or None.
    """

    def __init__(
        self,
        file: str,
        problem: str,
        column: str | None = None,
        row: int | None = None,
        value: Any = None,
        line: int | None = None,
    ) -> None:
        self.file = file
        self.column = column
        self.row = row
        self.line = line
        self.value = value
        self.problem = problem
        where = [file]
        if column is not None:
            where.append(f"column '{column}'")
        if line is not None:
            where.append(f"line {line}")
        elif row is not None:
            where.append(f"row {row}")
        msg = ": ".join([", ".join(where), problem])
        if value is not None:
            msg += f" (value: {value!r})"
        super().__init__(msg)
