"""Property-based: the readers fed random corruptions of a valid file (dropped columns, values of the wrong
type, garbage bytes, truncation; CSV, CSV.gz and parquet) either raise the project's InputError naming the
file, or return a correct table; never another exception, and ``preprocess`` never leaves partial output.

"Correct" is checked exactly where the corruption's effect is known (a dropped column, wrong-type cells:
the error names the column and the first line, ``drop`` returns the other rows), and otherwise as: a table
of the canonical dtypes whose rows are rows of the original file on every column a corruption cannot turn
into another valid value (time, type, price; ids too, unless the corruption made them text ids, which are valid:
``t4r_dmt.data.ids``). The examples are bounded and derandomised, so CI runs the same cases every time.
"""

from __future__ import annotations

import gzip
import io
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from t4r_dmt.data import EVENT_DTYPES, read_events, read_impressions
from t4r_dmt.data.ids import is_surrogate
from t4r_dmt.errors import InputError
from t4r_dmt.schema import EVENT_TYPES

FUZZ = settings(max_examples=80, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow])

HEADER = "event_time,event_type,product_id,category_id,category_code,brand,price,user_id,user_session"
TYPES = ["view", "cart", "purchase", "remove_from_cart"]
ROWS = [
    f"2019-10-01 00:{i // 60:02d}:{i % 60:02d} UTC,{TYPES[i % 4]},{1000 + 7 * i},{2053013552326770905 + i % 3},"
    f"{'appliances.kitchen' if i % 2 else ''},{['aqua', 'acme', ''][i % 3]},{10.5 * (i % 5)},{500 + i % 4},"
    f"s{i % 6}-ab"
    for i in range(12)
]
STRICT = ["event_time", "event_type", "product_id", "category_id", "price", "user_id"]
"""Columns whose values no corruption below can turn into another valid value (text columns can, and so can ids:
into text ids, whose surrogates :func:`_matches` leaves out of the comparison)."""

# Cell values that are invalid for a column, by column: (value, reason).
INVALID = {
    "event_time": [("yesterday", "unparsable time"), ("2019-13-45 25:00:00 UTC", "unparsable time"),
                   ("", "missing time")],
    "event_type": [("click", "unknown event type"), ("VIEW", "unknown event type"), ("", "unknown event type")],
    "product_id": [("", "null id")],  # any other text is a text id ("abc", "1.5", "99999999999999999999")
    "category_id": [("x12", "not an integer"), ("2.5", "not an integer")],
    "price": [("cheap", "not a number"), ("-1", "negative price"), ("1..2", "not a number")],
    "user_id": [("", "null id")],
    "user_session": [("", "null id")],
}
GARBAGE = [b"\x00", b"\xff", b"\x80", b",", b"\n", b"\r", b'"', b";", b"#", b"x", b" "]


def _csv(rows: list[str], header: str = HEADER) -> bytes:
    return ("\n".join([header, *rows]) + "\n").encode()


def _clean() -> pd.DataFrame:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "ev.csv"
        path.write_bytes(_csv(ROWS))
        return read_events(path)[0]


CLEAN = _clean()


def _strict_rows(frame: pd.DataFrame) -> list[tuple]:
    return [tuple(row) for row in frame[STRICT].astype(object).itertuples(index=False)]


def _matches(row: tuple, original: list[tuple], columns: list[str]) -> bool:
    """``row`` is one of ``original`` on every column, the text-id surrogates (ids a corruption made text) aside."""
    if row in original:
        return True
    text = [(name in ("user_id", "product_id") and bool(is_surrogate(np.array([value]))[0]))
            or (name == "request_id" and isinstance(value, str)) for name, value in zip(columns, row, strict=True)]
    return any(all(t or a == b for t, a, b in zip(text, row, other, strict=True)) for other in original)


def _check_table(frame: pd.DataFrame) -> None:
    """A well-formed canonical events table."""
    assert dict(frame.dtypes.astype(str)) == EVENT_DTYPES
    assert not frame["event_time"].isna().any()
    assert frame["event_type"].isin(EVENT_TYPES).all()
    assert not (frame["price"] < 0).any()
    assert frame["user_session"].map(lambda s: isinstance(s, str) and s != "").all()


def _outcome(path: Path, *, strict_subset: bool = True, ordered_prefix: bool = False,
             mode: str = "raise") -> pd.DataFrame | None:
    """Read ``path``: InputError naming it (None), or a checked table."""
    try:
        frame, _ = read_events(path, on_bad_rows=mode)
    except InputError as err:
        assert str(err).startswith(str(path)), str(err)
        assert "\n" not in str(err)
        event(f"{path.suffix}: InputError")
        return None
    _check_table(frame)
    rows, original = _strict_rows(frame), _strict_rows(CLEAN)
    if ordered_prefix:
        assert rows == original[: len(rows)]
    elif strict_subset:
        for row in rows:
            assert _matches(row, original, STRICT), row
    event(f"{path.suffix}: table")
    return frame


@FUZZ
@given(column=st.sampled_from(HEADER.split(",")), kind=st.sampled_from(["csv", "csv.gz", "parquet"]))
def test_a_dropped_column_is_named(column, kind):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"ev.{kind}"
        frame = pd.read_csv(io.BytesIO(_csv(ROWS)), dtype=str, keep_default_na=False).drop(columns=[column])
        _write(frame, path)
        for mode in ("raise", "drop"):
            with pytest.raises(InputError, match=f"^{path}, column '{column}': missing column"):
                read_events(path, on_bad_rows=mode)


def _write(frame: pd.DataFrame, path: Path) -> None:
    if path.suffix == ".parquet":
        frame.to_parquet(path, index=False)
    else:
        text = frame.to_csv(index=False).encode()
        path.write_bytes(gzip.compress(text) if path.name.endswith(".gz") else text)


@FUZZ
@given(data=st.data(), column=st.sampled_from(sorted(INVALID)), kind=st.sampled_from(["csv", "csv.gz", "parquet"]))
def test_cells_of_the_wrong_type_are_named_or_dropped_exactly(data, column, kind):
    bad_rows = sorted(data.draw(st.sets(st.integers(0, len(ROWS) - 1), min_size=1, max_size=4), label="rows"))
    values = {r: data.draw(st.sampled_from(INVALID[column]), label=f"row {r}") for r in bad_rows}
    frame = pd.read_csv(io.BytesIO(_csv(ROWS)), dtype=str, keep_default_na=False)
    for r, (value, _) in values.items():
        frame.loc[r, column] = value
    if kind == "parquet":
        frame = frame.replace("", None)  # an empty cell is a null in parquet
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"ev.{kind}"
        _write(frame, path)
        first = bad_rows[0]
        place = f"row {first}" if kind == "parquet" else f"line {first + 2}"
        expected = f"{path}, column '{column}', {place}: {values[first][1]}"
        with pytest.raises(InputError) as info:
            read_events(path)
        message = str(info.value)
        # A null user_session in parquet is also "null id"; a null event_time "missing time".
        assert message.startswith(expected), (message, expected)
        assert f"{len(bad_rows)} bad row{'s' if len(bad_rows) > 1 else ''} in this file" in message
        kept, dropped = read_events(path, on_bad_rows="drop")
        assert sum(dropped.values()) == len(bad_rows)
        expect = CLEAN.drop(index=bad_rows).reset_index(drop=True)
        pd.testing.assert_frame_equal(kept, expect)


@FUZZ
@given(data=st.data(), kind=st.sampled_from(["csv", "csv.gz"]), mode=st.sampled_from(["raise", "drop"]))
def test_garbage_bytes_in_text_give_an_input_error_or_rows_of_the_file(data, kind, mode):
    text = bytearray(_csv(ROWS))
    for _ in range(data.draw(st.integers(1, 3), label="insertions")):
        at = data.draw(st.integers(0, len(text)), label="at")
        text[at:at] = data.draw(st.sampled_from(GARBAGE), label="byte") * data.draw(st.integers(1, 2), label="n")
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"ev.{kind}"
        path.write_bytes(gzip.compress(bytes(text)) if kind == "csv.gz" else bytes(text))
        _outcome(path, mode=mode)


@FUZZ
@given(data=st.data(), kind=st.sampled_from(["csv", "csv.gz", "parquet"]), mode=st.sampled_from(["raise", "drop"]))
def test_a_truncated_file_gives_an_input_error_or_a_prefix_of_its_rows(data, kind, mode):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"ev.{kind}"
        if kind == "parquet":
            CLEAN.to_parquet(path, index=False)
        else:
            path.write_bytes(gzip.compress(_csv(ROWS)) if kind == "csv.gz" else _csv(ROWS))
        content = path.read_bytes()
        cut = data.draw(st.integers(0, len(content) - 1), label="cut")
        path.write_bytes(content[:cut])
        _outcome(path, ordered_prefix=True, mode=mode)


@FUZZ
@given(data=st.data(), kind=st.sampled_from(["csv.gz", "parquet"]), mode=st.sampled_from(["raise", "drop"]))
def test_garbage_bytes_in_binary_files_give_an_input_error_or_a_well_formed_table(data, kind, mode):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"ev.{kind}"
        if kind == "parquet":
            CLEAN.to_parquet(path, index=False)
        else:
            path.write_bytes(gzip.compress(_csv(ROWS)))
        content = bytearray(path.read_bytes())
        for _ in range(data.draw(st.integers(1, 4), label="flips")):
            at = data.draw(st.integers(0, len(content) - 1), label="at")
            content[at] = data.draw(st.integers(0, 255), label="byte")
        path.write_bytes(bytes(content))
        # Parquet has no checksums: a flipped data byte may decode to another valid value, so only the
        # table's form is checked; a gzip stream is checksummed, so its rows must be the file's.
        _outcome(path, strict_subset=kind == "csv.gz", mode=mode)


PARQUET_SWAPS = {
    "product_id": pa.array(["a"] * len(ROWS)),
    "user_id": pa.array([1.5] * len(ROWS)),
    "event_time": pa.array(list(range(len(ROWS))), pa.int64()),
    "price": pa.array([True] * len(ROWS)),
    "event_type": pa.array([1] * len(ROWS), pa.int64()),
    "category_id": pa.array([b"\x01"] * len(ROWS), pa.binary()),
    "user_session": pa.array([[1]] * len(ROWS), pa.list_(pa.int64())),
}


@FUZZ
@given(column=st.sampled_from(sorted(PARQUET_SWAPS)), mode=st.sampled_from(["raise", "drop"]))
def test_a_parquet_column_of_another_type_gives_an_input_error_or_a_checked_table(column, mode):
    table = pa.Table.from_pandas(CLEAN, preserve_index=False)
    table = table.set_column(table.schema.get_field_index(column), column, PARQUET_SWAPS[column])
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "ev.parquet"
        pq.write_table(table, path)
        frame = _outcome(path, strict_subset=False, mode=mode)
        if frame is not None:  # every row dropped, or a type that converts (bool -> price) to canonical values
            event(f"{column} ({mode}): {len(frame)} row(s)")


IMPRESSIONS_HEADER = "request_id,user_id,event_time,product_id,position,click,order"
IMPRESSIONS = [f"{7 + i // 4},{100 + i // 4},2019-10-01 00:{i // 4:02d}:00 UTC,{11 + i},{i % 4},{int(i % 3 == 0)},0"
               for i in range(12)]


@FUZZ
@given(data=st.data(), mode=st.sampled_from(["raise", "drop"]))
def test_impressions_with_garbage_or_truncation_give_an_input_error_or_rows_of_the_file(data, mode):
    text = bytearray(_csv(IMPRESSIONS, IMPRESSIONS_HEADER))
    if data.draw(st.booleans(), label="truncate"):
        text = text[: data.draw(st.integers(0, len(text) - 1), label="cut")]
    else:
        at = data.draw(st.integers(0, len(text)), label="at")
        text[at:at] = data.draw(st.sampled_from(GARBAGE), label="byte")
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "imp.csv"
        path.write_bytes(bytes(text))
        clean = read_impressions_bytes(_csv(IMPRESSIONS, IMPRESSIONS_HEADER), Path(folder))
        try:
            frame, _ = read_impressions(path, on_bad_rows=mode)
        except InputError as err:
            assert str(err).startswith(str(path))
            event("impressions: InputError")
            return
        event("impressions: table")
        if frame["request_id"].dtype == object:  # a corruption made a request id text: all are read as text
            clean["request_id"] = clean["request_id"].astype(str)
        original = [tuple(r) for r in clean.astype(object).itertuples(index=False)]
        for row in frame.astype(object).itertuples(index=False):
            assert _matches(tuple(row), original, list(frame.columns)), row


def read_impressions_bytes(content: bytes, folder: Path) -> pd.DataFrame:
    path = folder / "clean.csv"
    path.write_bytes(content)
    return read_impressions(path)[0]


PREPROCESS = settings(max_examples=12, deadline=None, derandomize=True, database=None,
                      suppress_health_check=[HealthCheck.too_slow])


@PREPROCESS
@given(data=st.data(), mode=st.sampled_from(["raise", "drop"]))
def test_preprocess_leaves_no_partial_output(data, mode):
    from log_fixtures import make_logs

    from t4r_dmt.preprocess import command
    from t4r_dmt.preprocess.arguments import PreprocessArguments

    events, impressions = make_logs(seed=2)
    text = bytearray(events.to_csv(index=False).encode())
    kind = data.draw(st.sampled_from(["garbage", "truncate", "wrong type"]), label="kind")
    if kind == "truncate":
        text = text[: data.draw(st.integers(0, len(text) - 1), label="cut")]
    elif kind == "garbage":
        at = data.draw(st.integers(0, len(text)), label="at")
        text[at:at] = data.draw(st.sampled_from(GARBAGE), label="byte")
    else:
        lines = text.decode().split("\n")
        row = data.draw(st.integers(1, len(lines) - 2), label="row")
        fields = lines[row].split(",")
        fields[data.draw(st.sampled_from([0, 1, 2, 6, 7]), label="field")] = "??"
        text = bytearray("\n".join(lines[:row] + [",".join(fields)] + lines[row + 1:]).encode())
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        (root / "events.csv").write_bytes(bytes(text))
        impressions.to_parquet(root / "impressions.parquet")
        out = root / "out"
        args = PreprocessArguments(events=str(root / "events.csv"), impressions=str(root / "impressions.parquet"),
                                   out=str(out), events_per_bucket=100, with_sessions=False, on_bad_rows=mode)
        try:
            command.run(args)
        except InputError as err:
            assert str(err).startswith(str(root)), str(err)
            assert sorted(p.name for p in root.iterdir()) == ["events.csv", "impressions.parquet"]
            event(f"preprocess {kind} ({mode}): InputError, nothing written")
            return
        assert sorted(p.name for p in root.iterdir()) == ["events.csv", "impressions.parquet", "out"]
        assert (out / "stats.json").exists() and (out / "ranking" / "schema.pbtxt").exists()
        event(f"preprocess {kind} ({mode}): complete output")


def test_the_base_files_are_valid():
    assert len(CLEAN) == len(ROWS) and np.array_equal(CLEAN["product_id"], [1000 + 7 * i for i in range(12)])
