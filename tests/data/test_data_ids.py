"""Ids of any type (``t4r_dmt.data.ids``): integer ids as they are, text ids through stable int64 surrogates whose
texts the readers collect; ``request_id`` kept raw; null ids still named by file, column and line / row."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from t4r_dmt.data import IMPRESSION_DTYPES, load_logs, read_events, read_impressions, read_items
from t4r_dmt.data.ids import INTEGER_ID_MIN, IdTexts, is_surrogate, settle_raw_ids, text_surrogates
from t4r_dmt.errors import InputError

HEADER = "request_id,user_id,event_time,product_id,position,click,order"
# Mixed widths in one column: small and large integers, "r0000123"-style text, a JD-like sku beyond int64,
# zero-padded digits (text: "007" is not the integer 7).
ROWS = [
    "r0000123,u1,2019-10-01 00:00:04 UTC,1,0,1,1",
    "r0000123,u1,2019-10-01 00:00:04 UTC,123456789012,1,0,0",
    "r0000123,u1,2019-10-01 00:00:04 UTC,99999999999999999999,2,0,0",
    "1,42,2019-10-01 00:10:00 UTC,007,0,0,0",
    "1,42,2019-10-01 00:10:00 UTC,1,1,1,0",
    "123456789012,u1,2019-10-01 00:20:00 UTC,sku-9f3a,0,0,0",
]
RAW_REQUESTS = ["r0000123"] * 3 + ["1", "1", "123456789012"]
RAW_PRODUCTS = ["1", "123456789012", "99999999999999999999", "007", "1", "sku-9f3a"]
RAW_USERS = ["u1", "u1", "u1", "42", "42", "u1"]


def write_csv(path: Path, rows: list[str], header: str = HEADER) -> Path:
    path.write_text("\n".join([header, *rows]) + "\n")
    return path


def test_text_and_integer_ids_of_any_width_in_one_column(tmp_path: Path) -> None:
    ids = IdTexts()
    frame, dropped = read_impressions(write_csv(tmp_path / "imp.csv", ROWS), ids=ids)
    assert dropped == {}
    assert frame["request_id"].dtype == object and frame["request_id"].tolist() == RAW_REQUESTS
    assert frame["user_id"].dtype == np.int64 and frame["product_id"].dtype == np.int64
    products = frame["product_id"].to_numpy()
    # Integer ids are those integers; every other id is a surrogate below every integer id.
    assert products[[0, 1, 4]].tolist() == [1, 123456789012, 1]
    assert is_surrogate(products).tolist() == [False, False, True, True, False, True]
    assert (products[is_surrogate(products)] < INTEGER_ID_MIN).all()
    assert frame["user_id"].tolist()[3] == 42
    assert ids.columns == ["product_id", "user_id"]
    assert ids.decode("product_id", products).tolist() == RAW_PRODUCTS
    assert ids.decode("user_id", frame["user_id"].to_numpy()).tolist() == RAW_USERS
    assert ids.texts("user_id")["text"].tolist() == ["u1"]


def test_integer_ids_are_read_as_before(tmp_path: Path) -> None:
    rows = ["7,100,2019-10-01 00:00:04 UTC,123456789012,0,1,1", "7,100,2019-10-01 00:00:04 UTC,-5,1,0,0",
            "9223372036854775807,0,2019-10-01 00:10:00 UTC,0,0,0,0"]
    for path in (write_csv(tmp_path / "imp.csv", rows), tmp_path / "imp.parquet"):
        if path.suffix == ".parquet":
            pd.read_csv(tmp_path / "imp.csv").to_parquet(path)
        ids = IdTexts()
        frame, _ = read_impressions(path, ids=ids)
        assert dict(frame.dtypes.astype(str)) == IMPRESSION_DTYPES
        assert frame["request_id"].tolist() == [7, 7, 9223372036854775807]
        assert frame["product_id"].tolist() == [123456789012, -5, 0]
        assert not ids  # no texts: nothing to map back
        assert ids.decode("product_id", frame["product_id"].to_numpy()).dtype == np.int64


def test_parquet_columns_of_text_and_of_wide_integers(tmp_path: Path) -> None:
    table = pa.table({
        "request_id": pa.array(["a-1", "a-1", "b"]), "user_id": pa.array([5, 5, 6], pa.int32()),
        "event_time": pa.array(pd.to_datetime(["2020-01-01"] * 2 + ["2020-01-02"])),
        "product_id": pa.array([1, 2**64 - 1, 3], pa.uint64()), "position": [0, 1, 0], "click": [0, 1, 0],
        "order": [0, 0, 0]})
    pq.write_table(table, tmp_path / "imp.parquet")
    ids = IdTexts()
    frame, _ = read_impressions(tmp_path / "imp.parquet", ids=ids)
    assert frame["request_id"].tolist() == ["a-1", "a-1", "b"]
    assert frame["user_id"].tolist() == [5, 5, 6]
    assert ids.decode("product_id", frame["product_id"].to_numpy()).tolist() == ["1", "18446744073709551615", "3"]


def test_request_ids_read_from_files_of_both_kinds_are_text(tmp_path: Path) -> None:
    pd.DataFrame({"request_id": [7, 7], "user_id": [1, 1], "event_time": pd.Timestamp("2019-10-01"),
                  "product_id": [1, 2], "position": [0, 1], "click": [0, 0], "order": [0, 0]}
                 ).to_parquet(tmp_path / "a.parquet")
    write_csv(tmp_path / "b.csv", ["r8,2,2019-10-01 00:10:00 UTC,1,0,0,0"])
    frame, _ = read_impressions(tmp_path)
    assert frame["request_id"].tolist() == ["7", "7", "r8"]
    assert settle_raw_ids(np.array([1, 2])).dtype == np.int64


def test_text_ids_of_events_and_items(tmp_path: Path) -> None:
    path = tmp_path / "ev.csv"
    path.write_text("event_time,event_type,product_id,category_id,category_code,brand,price,user_id,user_session\n"
                    "2019-10-01 00:00:04 UTC,view,sku-1,5,,,1.0,visitor-a,s1\n"
                    "2019-10-01 00:00:05 UTC,cart,12,5,,,1.0,visitor-a,s1\n")
    logs = load_logs(path)
    assert logs.ids.decode("product_id", logs.events["product_id"].to_numpy()).tolist() == ["sku-1", "12"]
    assert logs.ids.decode("user_id", logs.events["user_id"].to_numpy()).tolist() == ["visitor-a"] * 2
    events, _ = read_events(path)  # without a collector the surrogates are the same
    assert events["product_id"].equals(logs.events["product_id"])
    items_path = tmp_path / "items.csv"
    items_path.write_text("product_id,category_id,category_code,brand,price\nsku-1,5,,,1\n12,5,,,2\nsku-1,6,,,3\n")
    with pytest.raises(InputError, match=re.escape(f"{items_path}, column 'product_id', line 4: duplicate product_id")):
        read_items(items_path)
    ids = IdTexts()
    items = read_items(write_csv(tmp_path / "items2.csv", ["sku-1,5,,,1", "12,5,,,2"],
                                 "product_id,category_id,category_code,brand,price"), ids=ids)
    assert items["product_id"].tolist() == events["product_id"].tolist()
    assert ids.texts("product_id")["text"].tolist() == ["sku-1"]


@pytest.mark.parametrize("column", ["request_id", "user_id", "product_id"])
@pytest.mark.parametrize("missing", ["", None])
def test_a_null_id_is_named_by_file_column_and_place(tmp_path: Path, column: str, missing: str | None) -> None:
    frame = pd.read_csv(write_csv(tmp_path / "imp.csv", ROWS), dtype=str)
    frame.loc[4, column] = missing
    csv, parquet = tmp_path / "bad.csv", tmp_path / "bad.parquet"
    frame.to_csv(csv, index=False)
    frame.to_parquet(parquet)
    for path, place in ((csv, "line 6"), (parquet, "row 4")):
        with pytest.raises(InputError, match=re.escape(f"{path}, column '{column}', {place}: null id")):
            read_impressions(path)
        kept, dropped = read_impressions(path, on_bad_rows="drop")
        assert dropped == {"null id": 1} and len(kept) == len(ROWS) - 1


def test_two_texts_with_one_surrogate_are_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ids = IdTexts()
    ids.add("product_id", np.array([-(2**63)]), np.array(["a"], object), "x.csv")
    ids.add("product_id", np.array([-(2**63)]), np.array(["a"], object), "y.csv")  # the same text again: fine
    with pytest.raises(InputError, match=r"y.csv, column 'product_id': the ids 'a' and 'b' have the same surrogate"):
        ids.add("product_id", np.array([-(2**63)]), np.array(["b"], object), "y.csv")
    # Through a reader, across files read into one collector (a hash that always clashes stands in for bad luck).
    monkeypatch.setattr("t4r_dmt.data.columns.text_surrogates",
                        lambda texts: np.full(len(texts), -(2**63), np.int64))
    path = write_csv(tmp_path / "imp.csv", ROWS)
    with pytest.raises(InputError, match=re.escape(f"{path}, column 'product_id': the ids '007' and '99999999999")):
        read_impressions(path, ids=IdTexts())


def test_surrogates_are_stable_across_processes() -> None:
    texts = np.array(["r0000123", "u1", "99999999999999999999", "é"], dtype=object)
    pinned = [-4969396115469022541, -6238761855608183939, -5058917140761772575, -6149620959378085657]
    assert text_surrogates(texts).tolist() == pinned
    code = ("import numpy as np; from t4r_dmt.data.ids import text_surrogates; "
            "print(text_surrogates(np.array(['r0000123', 'u1', '99999999999999999999', 'é'], dtype=object)).tolist())")
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                           env={"PYTHONHASHSEED": "123", "PATH": "", "PYTHONPATH": ":".join(sys.path)})
    assert other.stdout.strip() == str(pinned)


def test_id_texts_are_saved_loaded_and_decoded(tmp_path: Path) -> None:
    ids = IdTexts()
    texts = np.array(["b", "a"], object)
    ids.add("product_id", text_surrogates(texts), texts, "x")
    ids.save(tmp_path / "ids")
    assert sorted(p.name for p in (tmp_path / "ids").iterdir()) == ["product_id.parquet"]
    assert pq.read_table(tmp_path / "ids" / "product_id.parquet").column_names == ["id", "raw"]
    loaded = IdTexts.load(tmp_path / "ids")
    assert loaded.decode("product_id", np.r_[text_surrogates(texts), 5]).tolist() == ["b", "a", "5"]
    assert not IdTexts.load(tmp_path / "nothing")
    with pytest.raises(ValueError, match="no text for the surrogate id"):
        loaded.decode("product_id", text_surrogates(np.array(["c"], object)))
    with pytest.raises(ValueError, match="user_id: text ids without their texts"):
        loaded.decode("user_id", text_surrogates(np.array(["c"], object)))
