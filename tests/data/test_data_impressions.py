"""Impressions and items readers: values, pages, and every bad-input case (raise and drop)."""

from __future__ import annotations

import re
from pathlib import Path

import log_fixtures
import pandas as pd
import pytest

from t4r_dmt.data import IMPRESSION_DTYPES, read_impressions, read_items
from t4r_dmt.errors import InputError

HEADER = "request_id,user_id,event_time,product_id,position,click,order"
ROWS = [
    "7,100,2019-10-01 00:00:04 UTC,11,0,1,1",
    "7,100,2019-10-01 00:00:04 UTC,12,1,0,0",
    "7,100,2019-10-01 00:00:04 UTC,13,2,1,0",
    "8,101,2019-10-01 00:10:00 UTC,11,0,0,0",
    "8,101,2019-10-01 00:10:00 UTC,14,1,0,0",
]


def write_csv(path: Path, rows: list[str], header: str = HEADER) -> Path:
    path.write_text("\n".join([header, *rows]) + "\n")
    return path


def error_at(file: Path, column: str, row: int, value: object, problem: str) -> str:
    """Regex naming file, column, line (data row ``row`` is line ``row + 2``), problem and value."""
    return (re.escape(f"{file}, column '{column}', line {row + 2}: {problem}") + r".*"
            + re.escape(f"(value: {value!r})"))


def test_values_and_pages_from_page_size(tmp_path: Path) -> None:
    frame, dropped = read_impressions(write_csv(tmp_path / "imp.csv", ROWS), page_size=2)
    assert dropped == {}
    assert dict(frame.dtypes.astype(str)) == IMPRESSION_DTYPES
    assert frame["request_id"].tolist() == [7, 7, 7, 8, 8]
    assert frame["user_id"].tolist() == [100, 100, 100, 101, 101]
    assert frame["event_time"].tolist() == [pd.Timestamp("2019-10-01 00:00:04")] * 3 + \
        [pd.Timestamp("2019-10-01 00:10:00")] * 2
    assert frame["product_id"].tolist() == [11, 12, 13, 11, 14]
    assert frame["position"].tolist() == [0, 1, 2, 0, 1]
    assert frame["page"].tolist() == [0, 0, 1, 0, 0]
    assert frame["click"].tolist() == [1, 0, 1, 0, 0]
    assert frame["order"].tolist() == [1, 0, 0, 0, 0]


def test_page_column_is_used_when_present(tmp_path: Path) -> None:
    rows = [r + f",{p}" for r, p in zip(ROWS, [3, 3, 4, 0, 0], strict=True)]
    frame, _ = read_impressions(write_csv(tmp_path / "imp.csv", rows, HEADER + ",page"))
    assert frame["page"].tolist() == [3, 3, 4, 0, 0]
    with pytest.raises(ValueError, match="page_size must be >= 1; got 0"):
        read_impressions(tmp_path / "imp.csv", page_size=0)


def spoil(row: int, field: int, value: str) -> list[str]:
    return log_fixtures.spoil(ROWS, row, field, value)


# (row, field, value, reason, column, reported row, reported value)
BAD = [
    (1, 0, "", "null id", "request_id", 1, ""),
    (2, 1, "", "null id", "user_id", 2, ""),
    (3, 3, "", "null id", "product_id", 3, ""),
    (3, 4, "1st", "not an integer", "position", 3, "1st"),
    (4, 2, "yesterday", "unparsable time", "event_time", 4, "yesterday"),
    (1, 4, "-1", "negative position", "position", 1, "-1"),
    (1, 5, "2", "click not 0/1", "click", 1, "2"),
    (3, 6, "1", "order without click", "order", 3, "1"),
    # the second occurrence of (7, position 1) is the bad one
    (2, 4, "1", "duplicate (request_id, position)", "position", 2, (7, 1)),
    (4, 1, "102", "user_id differs within a request", "user_id", 4, (8, 102)),
    (4, 2, "2019-10-01 00:10:01 UTC", "event_time differs within a request", "event_time", 4,
     (8, pd.Timestamp("2019-10-01 00:10:01"))),
]


@pytest.mark.parametrize(("row", "field", "value", "reason", "column", "at", "shown"), BAD)
def test_bad_rows_raise_and_drop(tmp_path: Path, row: int, field: int, value: str, reason: str, column: str,
                                 at: int, shown: object) -> None:
    path = write_csv(tmp_path / "imp.csv", spoil(row, field, value))
    with pytest.raises(InputError, match=error_at(path, column, at, shown, reason)) as info:
        read_impressions(path)
    assert "1 bad row in " in str(info.value)
    frame, dropped = read_impressions(path, on_bad_rows="drop")
    assert dropped == {reason: 1}
    assert len(frame) == len(ROWS) - 1


def test_missing_column(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "imp.csv", [r.rsplit(",", 1)[0] for r in ROWS], HEADER.rsplit(",", 1)[0])
    with pytest.raises(InputError, match=re.escape(f"{path}, column 'order': missing column")):
        read_impressions(path, on_bad_rows="drop")


ITEMS_HEADER = "product_id,category_id,category_code,brand,price"
ITEMS = ["11,2053013552326770905,appliances.kitchen,aqua,10.5", "12,,,,", "13,2053013552326770906,,acme,0"]


def test_items_values(tmp_path: Path) -> None:
    items = read_items(write_csv(tmp_path / "items.csv", ITEMS, ITEMS_HEADER))
    assert items["product_id"].tolist() == [11, 12, 13]
    assert items["category_id"].tolist() == [2053013552326770905, -1, 2053013552326770906]
    assert items["category_code"].tolist() == ["appliances.kitchen", None, None]
    assert items["brand"].tolist() == ["aqua", None, "acme"]
    assert items["price"].tolist()[::2] == [10.5, 0.0] and pd.isna(items["price"][1])


def test_items_errors(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "items.csv", [*ITEMS, ITEMS[0]], ITEMS_HEADER)
    with pytest.raises(InputError, match=error_at(path, "product_id", 3, 11, "duplicate product_id")):
        read_items(path)
    path = write_csv(tmp_path / "items2.csv", [ITEMS[0], "12,,,,-4"], ITEMS_HEADER)
    with pytest.raises(InputError, match=error_at(path, "price", 1, "-4", "negative price")):
        read_items(path)
    path = write_csv(tmp_path / "items3.csv", [ITEMS[0], ",,,,"], ITEMS_HEADER)
    with pytest.raises(InputError, match=error_at(path, "product_id", 1, "", "null id")):
        read_items(path)
