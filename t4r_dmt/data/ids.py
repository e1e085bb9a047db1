"""Ids of any type: integers are used as they are, any other id through a stable int64 surrogate.

The event history, the as-of joins, the user buckets and the vocabularies work on int64 user and product ids;
logs hold integers (REES46), text (hashed visitor ids, UUIDs) or digit strings too long for int64 (JD skus).
The readers turn every ``user_id`` and ``product_id`` into an int64:

* an **integer** id (a value of an integer column, or text that is exactly an integer's decimal digits:
  ``123``, ``-5``; not ``007``, ``+5`` or ``1.0``) in ``[-2**62, 2**63)`` is that integer;
* every other id is **text** (``u_8f3a``, ``007``, ``99999999999999999999``; an integer below ``-2**62`` as its
  decimal digits), and its id is a surrogate: the stable 64-bit hash of its UTF-8 text (``pd.util.hash_array``,
  the same in every process) cut to 62 bits and placed in ``[-2**63, -2**62)``, a range no integer id takes,
  so a surrogate never equals an integer id.

:class:`IdTexts` keeps the text of each surrogate (``DIR/ids/<column>.parquet`` of a preprocess run) so that
predict writes the raw ids back. Two different texts with one surrogate (odds about ``n**2 / 2**63`` for ``n``
text ids: 1e-5 for ten million) would merge two users or products: :meth:`IdTexts.add` raises
:class:`~t4r_dmt.errors.InputError` on a second text for a surrogate.

``request_id`` is not mapped: it is kept raw (:func:`settle_raw_ids`), int64 when every request id is an
integer, else text.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from t4r_dmt.errors import InputError

#: Integer ids lie in [INTEGER_ID_MIN, 2**63); text ids' surrogates below it.
INTEGER_ID_MIN = -(2**62)
#: The id columns that readers map (``request_id`` is kept raw instead).
MAPPED_COLUMNS: tuple[str, ...] = ("user_id", "product_id")
#: The folder of a preprocess output that holds the texts (``DIR/ids/user_id.parquet``, ``product_id.parquet``).
IDS_DIR = "ids"
#: Name and dtypes of the side table in which converters report text ids (one row per id value read).
ID_TEXTS = "id_texts"
ID_TEXT_DTYPES: dict[str, str] = {"column": "object", "id": "int64", "text": "object"}

_LOW_62 = np.uint64(2**62 - 1)
_SIGN = np.uint64(2**63)


def text_surrogates(texts: np.ndarray) -> np.ndarray:
    """(n,) str -> (n,) int64 in ``[-2**63, -2**62)``: the stable hash of each text, cut to 62 bits."""
    hashed = pd.util.hash_array(np.asarray(texts, dtype=object))
    return ((hashed & _LOW_62) | _SIGN).view(np.int64)


def is_surrogate(ids: np.ndarray) -> np.ndarray:
    """(n,) int64 -> (n,) bool: True for the surrogates of text ids."""
    return np.asarray(ids, np.int64) < INTEGER_ID_MIN


def settle_raw_ids(values: np.ndarray) -> np.ndarray:
    """Raw ids read in parts (integer parts int64, text parts str) as one column: int64 if every part was
    integer, else (n,) object of str (integers as their decimal text, which is how a text file wrote them)."""
    values = np.asarray(values)
    if values.dtype.kind in "iu":
        return values.astype(np.int64, copy=False)
    return np.array([v if isinstance(v, str) else str(v) for v in values.tolist()], dtype=object)


def distinct_id_texts(table: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The rows of an :data:`ID_TEXTS` table (and its helper columns) with a distinct (column, id, text), first
    of each: what a reader keeps of a batch's text ids."""
    if len(table["id"]) < 2:
        return table
    keys = pd.DataFrame({name: table[name] for name in ID_TEXT_DTYPES})
    first = ~keys.duplicated().to_numpy()
    return {name: values[first] for name, values in table.items()}


def is_text_ids(values: np.ndarray | pd.Series) -> bool:
    """Whether a raw id column (int64 or object of str) holds text."""
    return np.asarray(values).dtype.kind not in "iu"


class IdTexts:
    """The raw text of each text id's surrogate, per id column.

    Readers :meth:`add` what they read; a second text for one surrogate raises (see the module docstring).
    ``DIR/ids/<column>.parquet`` (columns ``id``: the int64 of ``DIR``'s rows and vocabularies, ``raw``: the text)
    holds those of a preprocess run; a log with integer ids only has none.
    """

    def __init__(self) -> None:
        self._frames: dict[str, pd.DataFrame] = {}

    def __bool__(self) -> bool:
        return bool(self._frames)

    @property
    def columns(self) -> list[str]:
        """The id columns with text ids, sorted."""
        return sorted(self._frames)

    def texts(self, column: str) -> pd.DataFrame:
        """``id`` (int64) and ``text`` (str) of the text ids of ``column``, sorted by id (empty if none)."""
        frame = self._frames.get(column)
        if frame is None:
            return pd.DataFrame({"id": np.zeros(0, np.int64), "text": np.zeros(0, object)})
        return frame

    def add(self, column: str, ids: np.ndarray, texts: np.ndarray, source: str) -> None:
        """Record that the text ``texts[i]`` of ``column`` has the surrogate ``ids[i]``; (n,) each.

        Raises
        ------
        InputError
            Two different texts of ``column`` share a surrogate (named with ``source``, where they were read).
        """
        if len(ids) == 0:
            return
        new = pd.DataFrame({"id": np.asarray(ids, np.int64), "text": np.asarray(texts, dtype=object)})
        frame = pd.concat([self.texts(column), new], ignore_index=True).drop_duplicates()
        clash = frame["id"].duplicated(keep=False).to_numpy()
        if clash.any():
            first = frame[clash].sort_values(["id", "text"]).iloc[:2]
            a, b = first["text"].tolist()
            raise InputError(
                source, f"the ids {a!r} and {b!r} have the same surrogate {int(first['id'].iloc[0])} (a 62-bit hash "
                "of the text, t4r_dmt.data.ids): they would count as one; rename one of them", column=column)
        self._frames[column] = frame.sort_values("id", kind="stable").reset_index(drop=True)

    def add_table(self, table: dict[str, np.ndarray], source: str) -> None:
        """Add the rows of a converters' :data:`ID_TEXTS` side table (``column``, ``id``, ``text``)."""
        columns = np.asarray(table["column"], dtype=object)
        for column in sorted(set(columns.tolist())):
            rows = columns == column
            self.add(column, table["id"][rows], table["text"][rows], source)

    def update(self, other: IdTexts, source: str) -> None:
        """Add every text of ``other`` (e.g. a saved run's texts to those of new input)."""
        for column in other.columns:
            frame = other.texts(column)
            self.add(column, frame["id"].to_numpy(), frame["text"].to_numpy(), source)

    def decode(self, column: str, ids: np.ndarray) -> np.ndarray:
        """(n,) int64 ids of ``column`` -> their raw values.

        Returns the ids unchanged (int64) when ``column`` has no text ids; else (n,) object of str: the text of
        each surrogate, the decimal digits of each integer id.

        Raises
        ------
        ValueError
            A surrogate whose text is unknown (the texts of another run).
        """
        ids = np.asarray(ids, np.int64)
        frame = self._frames.get(column)
        if frame is None:
            if is_surrogate(ids).any():
                raise ValueError(f"{column}: text ids without their texts (is the ids/ folder of the data missing?)")
            return ids
        texts = pd.Series(frame["text"].to_numpy(), index=frame["id"].to_numpy()).reindex(ids).to_numpy(object)
        unknown = pd.isna(texts)
        if (unknown & is_surrogate(ids)).any():
            first = int(ids[unknown & is_surrogate(ids)][0])
            raise ValueError(f"{column}: no text for the surrogate id {first} (ids of another preprocess run?)")
        texts[unknown] = ids[unknown].astype(str)
        return texts

    def save(self, folder: str | os.PathLike[str]) -> None:
        """Write ``folder/<column>.parquet`` (``id``, ``raw``) for each column with text ids; nothing if none."""
        for column, frame in self._frames.items():
            Path(folder).mkdir(parents=True, exist_ok=True)
            table = pa.table({"id": pa.array(frame["id"].to_numpy(), pa.int64()),
                              "raw": pa.array(frame["text"].tolist(), pa.string())})
            pq.write_table(table, Path(folder) / f"{column}.parquet")

    @classmethod
    def load(cls, folder: str | os.PathLike[str]) -> IdTexts:
        """The texts saved by :meth:`save` in ``folder`` (none when it does not exist)."""
        out = cls()
        for path in sorted(Path(folder).glob("*.parquet")) if Path(folder).is_dir() else []:
            frame = pq.read_table(path).to_pandas()
            out.add(path.stem, frame["id"].to_numpy(np.int64), frame["raw"].to_numpy(object), str(path))
        return out
