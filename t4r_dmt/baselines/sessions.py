"""Session windows read as plain item-code arrays, for the non-neural baselines.

The baselines consume the same files as the T4R models (``DIR/sessions/<window>/{train,valid,test}.parquet``,
written by :mod:`t4r_dmt.preprocess.sessions`) and follow the same protocol: fit on every training window
``<= t``, then predict the last item of each session of window ``t+1``'s evaluation split from the items
before it. The catalogue is the one the T4R item embedding table has: item codes ``0 .. max`` of the
schema's ``item_id-list`` domain, so that ranks are comparable across models.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from t4r_dmt.errors import InputError
from t4r_dmt.schema import SESSION_ITEM_COLUMN, SESSION_TIME_COLUMN

ITEM_COLUMN, TIME_COLUMN = SESSION_ITEM_COLUMN, SESSION_TIME_COLUMN


@dataclass(frozen=True)
class SessionBatch:
    """Sessions of one split file, as a ragged array of item codes.

    Attributes
    ----------
    items:
        ``(N,)`` int64 item codes of all sessions, concatenated in file order.
    offsets:
        ``(S + 1,)`` int64: session ``s`` is ``items[offsets[s]:offsets[s + 1]]``.
    start_time:
        ``(S,)`` int64 session start (Unix seconds); sessions are read in file order, which the
        session ETL sorts by start time within a window.
    """

    items: np.ndarray
    offsets: np.ndarray
    start_time: np.ndarray

    @property
    def n_sessions(self) -> int:
        return len(self.offsets) - 1

    def session(self, index: int) -> np.ndarray:
        """``(L,)`` item codes of session ``index``."""
        return self.items[self.offsets[index]:self.offsets[index + 1]]

    def last_item_examples(self) -> tuple[list[np.ndarray], np.ndarray]:
        """The evaluation examples: each session's items but the last, and the last item.

        Returns
        -------
        histories:
            ``S`` arrays of ``(L_s - 1,)`` item codes.
        targets:
            ``(S,)`` int64 last item of each session.
        """
        histories = [self.items[start:stop - 1] for start, stop in zip(self.offsets[:-1], self.offsets[1:],
                                                                         strict=True)]
        targets = self.items[self.offsets[1:] - 1] if self.n_sessions else np.empty(0, dtype=np.int64)
        return histories, targets


def read_sessions(path: Path) -> SessionBatch:
    """Read ``item_id-list`` (and ``timestamp-first``) of a session split file.

    Raises
    ------
    FileNotFoundError
        When ``path`` does not exist.
    InputError
        When the item column is missing, or a session has fewer than 2 items or a negative code.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing")
    names = pq.read_schema(path).names
    if ITEM_COLUMN not in names:
        raise InputError(str(path), "missing session column (run `t4r-dmt preprocess`)", column=ITEM_COLUMN)
    table = pq.read_table(path, columns=[ITEM_COLUMN] + ([TIME_COLUMN] if TIME_COLUMN in names else []))
    lists = table.column(ITEM_COLUMN).combine_chunks()
    offsets = np.asarray(lists.offsets, dtype=np.int64)
    items = np.asarray(lists.flatten(), dtype=np.int64)
    lengths = np.diff(offsets)
    short = np.flatnonzero(lengths < 2)
    if short.size:
        row = int(short[0])
        raise InputError(str(path), "a session needs at least 2 items", column=ITEM_COLUMN, row=row,
                         value=items[offsets[row]:offsets[row + 1]].tolist())
    if items.size and items.min() < 0:
        row = int(np.searchsorted(offsets, np.flatnonzero(items < 0)[0], side="right") - 1)
        raise InputError(str(path), "item codes must be >= 0", column=ITEM_COLUMN, row=row)
    if TIME_COLUMN in names:
        start_time = np.asarray(table.column(TIME_COLUMN), dtype=np.int64)
    else:
        start_time = np.arange(len(lengths), dtype=np.int64)
    return SessionBatch(items=items, offsets=offsets, start_time=start_time)


def catalogue_size(schema: object, column: str = ITEM_COLUMN) -> int:
    """Number of item codes ``V`` (``0 .. V-1``) the models score: the schema's ``int_domain.max + 1``.

    Parameters
    ----------
    schema:
        The Merlin schema of ``DIR/sessions`` (``t4r_dmt.run_folder.load_schema``).
    """
    names = getattr(schema, "column_names", [])
    if column not in names:
        raise ValueError(f"the sessions schema has no column {column!r} (columns: {names})")
    domain = schema[column].int_domain  # type: ignore[index]
    if domain is None or domain.max is None:
        raise ValueError(f"column {column!r} of the sessions schema has no int_domain.max (vocabulary size)")
    return int(domain.max) + 1
