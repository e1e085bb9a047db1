"""REES46 events reader: values, file kinds, paths, and every bad-input case (raise and drop)."""

from __future__ import annotations

import gzip
import re
from pathlib import Path

import log_fixtures
import numpy as np
import pandas as pd
import pytest
from log_fixtures import REES46_HEADER as HEADER
from log_fixtures import REES46_ROWS as ROWS

from t4r_dmt.data import EVENT_DTYPES, FORMATS, ON_BAD_ROWS, load_logs, read_events
from t4r_dmt.errors import InputError


def write_csv(path: Path, rows: list[str], header: str = HEADER, newline: str = "\n") -> Path:
    path.write_text(newline.join([header, *rows]) + newline)
    return path


def error_at(file: Path | str, column: str | None, row: int, value: object, problem: str = "") -> str:
    """Regex for an InputError naming file, column, line (data row ``row`` of a CSV with a header is line
    ``row + 2``), problem and value."""
    where = f"{file}" + (f", column '{column}'" if column else "") + f", line {row + 2}: "
    return re.escape(where) + re.escape(problem) + r".*" + re.escape(f"(value: {value!r})")


def test_values_are_converted_exactly(tmp_path: Path) -> None:
    events, dropped = read_events(write_csv(tmp_path / "ev.csv", ROWS, newline="\r\n"))
    assert dropped == {}
    assert dict(events.dtypes.astype(str)) == EVENT_DTYPES
    assert list(events["event_time"]) == [pd.Timestamp("2019-10-01 00:00:04"), pd.Timestamp("2019-10-01 00:00:05"),
                                          pd.Timestamp("2019-10-01 00:01:00"), pd.Timestamp("2019-10-01 00:02:00")]
    assert list(events["event_type"]) == ["view", "cart", "purchase", "remove_from_cart"]
    # 19 digits survive exactly (through float they would become 2103807459595387648).
    assert events["category_id"].tolist() == [2103807459595387724, 2053013552326770905, 2053013552326770905,
                                              2053013559792632471]
    assert events["category_code"].tolist() == [None, "appliances.environment.water_heater",
                                                "appliances.environment.water_heater", None]
    assert events["brand"].tolist() == ["shiseido", "aqua", None, None]
    assert events["price"].tolist() == [35.79, 33.2, 0.0, 543.1]
    assert events["user_id"].tolist() == [541312140, 554748717, 554748717, 519107250]
    assert events["user_session"].tolist() == ["72d76fde-8bb3", "9333dfbd-b87a", "9333dfbd-b87a", "566511c2"]


def test_parquet_with_timestamps_and_csv_gz_give_the_same_table(tmp_path: Path) -> None:
    expected, _ = read_events(write_csv(tmp_path / "ev.csv", ROWS))
    frame = expected.copy()
    # A zoned timestamp column: 02:00:04+02:00 is 00:00:04 UTC.
    frame["event_time"] = frame["event_time"].dt.tz_localize("UTC").dt.tz_convert("Europe/Berlin")
    frame["event_type"] = frame["event_type"].astype("category")  # stored dictionary-encoded
    frame.to_parquet(tmp_path / "ev.parquet")
    from_parquet, _ = read_events(tmp_path / "ev.parquet")
    pd.testing.assert_frame_equal(from_parquet, expected)
    with gzip.open(tmp_path / "ev2.csv.gz", "wt") as f:
        f.write("\n".join([HEADER, *ROWS]) + "\n")
    from_gz, _ = read_events(tmp_path / "ev2.csv.gz")
    pd.testing.assert_frame_equal(from_gz, expected)


def test_folder_and_glob_read_every_data_file_in_name_order(tmp_path: Path) -> None:
    write_csv(tmp_path / "b.csv", ROWS[2:])
    write_csv(tmp_path / "a.csv", ROWS[:2])
    (tmp_path / "README.txt").write_text("not data")
    (tmp_path / "notes.md").write_text("not data")
    from_folder, _ = read_events(tmp_path)
    assert from_folder["product_id"].tolist() == [44600062, 3900821, 3900821, 17200506]
    from_glob, _ = read_events(str(tmp_path / "*.csv"))
    pd.testing.assert_frame_equal(from_glob, from_folder)
    assert load_logs(tmp_path, "rees46").events.equals(from_folder)
    assert load_logs(tmp_path, "rees46").impressions is None


def test_iso_times_with_zone_are_converted_to_utc(tmp_path: Path) -> None:
    rows = [ROWS[0].replace("2019-10-01 00:00:04 UTC", "2019-10-01T02:00:04+02:00"),
            ROWS[1].replace("2019-10-01 00:00:05 UTC", "2019-10-01 00:00:05")]
    events, _ = read_events(write_csv(tmp_path / "ev.csv", rows))
    assert events["event_time"].tolist() == [pd.Timestamp("2019-10-01 00:00:04"), pd.Timestamp("2019-10-01 00:00:05")]


# (row index to spoil, field index, bad value, reason, column)
BAD_CELLS = [
    (1, 3, "x12", "not an integer", "category_id"),
    (2, 3, "99999999999999999999", "not an integer", "category_id"),
    (1, 0, "2019-13-45 25:00:00 UTC", "unparsable time", "event_time"),
    (2, 0, "", "missing time", "event_time"),
    (1, 7, "", "null id", "user_id"),
    (3, 2, "", "null id", "product_id"),
    (2, 8, "", "null id", "user_session"),
    (3, 6, "-1.5", "negative price", "price"),
    (1, 6, "12,50".replace(",", "_"), "not a number", "price"),
    (2, 1, "like", "unknown event type", "event_type"),
]


def spoil(row: int, field: int, value: str) -> list[str]:
    return log_fixtures.spoil(ROWS, row, field, value)


@pytest.mark.parametrize(("row", "field", "value", "reason", "column"), BAD_CELLS)
def test_bad_cell_raises_naming_file_column_row_value(tmp_path: Path, row: int, field: int, value: str,
                                                     reason: str, column: str) -> None:
    path = write_csv(tmp_path / "ev.csv", spoil(row, field, value))
    with pytest.raises(InputError, match=error_at(path, column, row, value, reason)) as info:
        read_events(path)
    assert "1 bad row in this file" in str(info.value)
    assert (info.value.file, info.value.column, info.value.row) == (str(path), column, row)


@pytest.mark.parametrize(("row", "field", "value", "reason", "column"), BAD_CELLS)
def test_bad_cell_is_dropped_and_counted(tmp_path: Path, row: int, field: int, value: str, reason: str,
                                         column: str) -> None:
    events, dropped = read_events(write_csv(tmp_path / "ev.csv", spoil(row, field, value)), on_bad_rows="drop")
    assert dropped == {reason: 1}
    assert len(events) == len(ROWS) - 1
    kept = [i for i in range(len(ROWS)) if i != row]
    assert events["event_time"].tolist() == [read_events_times()[i] for i in kept]


def read_events_times() -> list[pd.Timestamp]:
    return [pd.Timestamp(r.split(",")[0].removesuffix(" UTC")) for r in ROWS]


def test_missing_column_raises_in_both_modes(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "ev.csv", [r.rsplit(",", 1)[0] for r in ROWS], header=HEADER.rsplit(",", 1)[0])
    for mode in ON_BAD_ROWS:
        with pytest.raises(InputError, match=re.escape(f"{path}, column 'user_session': missing column")):
            read_events(path, on_bad_rows=mode)


def test_truncated_last_line_is_named_or_dropped(tmp_path: Path) -> None:
    path = tmp_path / "ev.csv"
    cut = ROWS[3].rsplit(",", 1)[0][:-3]  # user_id cut off, no user_session, no final newline
    path.write_text("\r\n".join([HEADER, *ROWS[:3], cut]))
    with pytest.raises(InputError, match=error_at(path, "user_session", 3, cut, "truncated line: 8 of 9 fields")):
        read_events(path)
    events, dropped = read_events(path, on_bad_rows="drop")
    assert dropped == {"truncated line": 1}
    assert events["product_id"].tolist() == [44600062, 3900821, 3900821]


def test_rows_after_a_skipped_line_keep_their_file_row_number(tmp_path: Path) -> None:
    rows = spoil(3, 6, "-2")
    rows.insert(1, ROWS[1] + ",extra")  # a malformed line: row 1; the bad price is now row 4
    path = write_csv(tmp_path / "ev.csv", rows)
    with pytest.raises(InputError, match=error_at(path, None, 1, rows[1], "malformed line: 10 fields, expected 9")
                       + r".*") as info:
        read_events(path)
    assert "2 bad rows in this file: 1 negative price, 1 malformed line" in str(info.value)
    del rows[1]
    rows.insert(4, ROWS[1] + ",extra")  # now after the bad price (row 3)
    path = write_csv(tmp_path / "ev2.csv", rows)
    with pytest.raises(InputError, match=error_at(path, "price", 3, "-2", "negative price")):
        read_events(path)
    rows = [ROWS[0], ROWS[1] + ",extra", ROWS[1] + ",extra", ROWS[2], spoil(3, 6, "-2")[3]]
    path = write_csv(tmp_path / "ev3.csv", rows)
    _, dropped = read_events(path, on_bad_rows="drop")
    assert dropped == {"malformed line": 2, "negative price": 1}


def test_many_bad_rows_report_the_first_and_the_count(tmp_path: Path) -> None:
    rows = [spoil(i, 3, f"x{i}")[i] for i in range(len(ROWS))]
    rows[0] = spoil(0, 6, "-3")[0]
    path = write_csv(tmp_path / "ev.csv", rows)
    with pytest.raises(InputError, match=error_at(path, "price", 0, "-3", "negative price")) as info:
        read_events(path)
    assert "4 bad rows in this file: 3 not an integer, 1 negative price" in str(info.value)
    events, dropped = read_events(path, on_bad_rows="drop")
    assert events.empty and dict(events.dtypes.astype(str)) == EVENT_DTYPES
    assert dropped == {"not an integer": 3, "negative price": 1}


def test_second_file_rows_are_numbered_within_that_file(tmp_path: Path) -> None:
    write_csv(tmp_path / "a.csv", ROWS)
    path = write_csv(tmp_path / "b.csv", spoil(2, 3, "abc"))
    with pytest.raises(InputError, match=error_at(path, "category_id", 2, "abc")):
        read_events(tmp_path)


def test_a_row_with_two_problems_is_counted_once(tmp_path: Path) -> None:
    rows = spoil(1, 3, "abc")
    rows[1] = rows[1].replace("33.20", "-1")
    _, dropped = read_events(write_csv(tmp_path / "ev.csv", rows), on_bad_rows="drop")
    assert dropped == {"not an integer": 1}


def test_drop_counts_are_logged(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("INFO", logger="t4r_dmt.data"):
        read_events(write_csv(tmp_path / "ev.csv", spoil(1, 6, "-1")), on_bad_rows="drop")
    assert "1 negative price" in caplog.text


def test_bad_arguments_and_paths(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "ev.csv", ROWS)
    with pytest.raises(ValueError, match="on_bad_rows must be one of raise, drop; got 'skip'"):
        read_events(path, on_bad_rows="skip")
    with pytest.raises(ValueError, match="unknown format 'kaggle'; choose one of " + ", ".join(FORMATS)):
        load_logs(path, "kaggle")
    with pytest.raises(ValueError, match="on_bad_rows must be one of"):
        load_logs(path, "rees46", on_bad_rows="ignore")
    with pytest.raises(ValueError, match="page_size must be >= 1"):
        load_logs(path, "trivago", page_size=0)
    with pytest.raises(InputError, match="no such file or folder"):
        read_events(tmp_path / "nothing-*.csv")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no input files in this folder"):
        read_events(tmp_path / "empty")


def test_header_only_file_gives_an_empty_typed_table(tmp_path: Path) -> None:
    events, dropped = read_events(write_csv(tmp_path / "ev.csv", []))
    assert events.empty and dropped == {}
    assert dict(events.dtypes.astype(str)) == EVENT_DTYPES
    assert np.array_equal(events.columns, list(EVENT_DTYPES))
