"""Errors raised on bad user input: each names the file, column, row and value at fault."""

from __future__ import annotations

from typing import Any


class InputError(ValueError):
    """Bad input data.

    The message always reads ``<file>: column '<col>', row <row>: <problem> (value: <value>)`` so the
    user can open the file and find the offending cell.
    """

    def __init__(
        self,
        file: str,
        problem: str,
        column: str | None = None,
        row: int | None = None,
        value: Any = None,
    ) -> None:
        self.file = file
        self.column = column
        self.row = row
        self.value = value
        self.problem = problem
        where = [file]
        if column is not None:
            where.append(f"column '{column}'")
        if row is not None:
            where.append(f"row {row}")
        msg = ": ".join([", ".join(where), problem])
        if value is not None:
            msg += f" (value: {value!r})"
        super().__init__(msg)
