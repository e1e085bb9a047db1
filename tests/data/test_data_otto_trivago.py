"""OTTO (jsonl sessions) and Trivago (clickouts with impression lists) readers on tiny fixtures."""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from paths import SHARED_DATA

from t4r_dmt.data import EVENT_DTYPES, IMPRESSION_DTYPES, load_logs
from t4r_dmt.errors import InputError

T = pd.Timestamp


def error_at(file: Path, column: str | None, row: int, value: object, problem: str) -> str:
    """Regex naming file, column, line, problem and value: data row ``row`` is line ``row + 1`` of a JSON
    lines file, ``row + 2`` of a CSV file (below its header)."""
    line = row + (1 if Path(file).suffix == ".jsonl" else 2)
    where = f"{file}" + (f", column '{column}'" if column else "") + f", line {line}: {problem}"
    return re.escape(where) + r".*" + re.escape(f"(value: {value!r})")


# ---------------------------------------------------------------- OTTO
SESSIONS = [
    {"session": 0, "events": [{"aid": 1517085, "ts": 1659304800025, "type": "clicks"},
                              {"aid": 1563459, "ts": 1659304904511, "type": "carts"}]},
    {"session": 12899779, "events": [{"aid": 59625, "ts": 1661724000, "type": "orders"}]},  # test file: seconds
    {"session": 5, "events": []},
]


def write_jsonl(path: Path, sessions: list[dict], tail: str = "") -> Path:
    path.write_text("".join(json.dumps(s) + "\n" for s in sessions) + tail)
    return path


def test_otto_events(tmp_path: Path) -> None:
    logs = load_logs(write_jsonl(tmp_path / "train.jsonl", SESSIONS), "otto")
    ev = logs.events
    assert logs.impressions is None and logs.dropped == {}
    assert dict(ev.dtypes.astype(str)) == EVENT_DTYPES
    assert ev["event_time"].tolist() == [T("2022-07-31 22:00:00.025"), T("2022-07-31 22:01:44.511"),
                                         T("2022-08-28 22:00:00")]
    assert ev["event_type"].tolist() == ["view", "cart", "purchase"]
    assert ev["product_id"].tolist() == [1517085, 1563459, 59625]
    assert ev["user_id"].tolist() == [0, 0, 12899779]
    assert ev["user_session"].tolist() == ["0", "0", "12899779"]
    with gzip.open(tmp_path / "part.jsonl.gz", "wt") as f:
        f.write("".join(json.dumps(s) + "\n" for s in SESSIONS))
    (tmp_path / "train.jsonl").unlink()
    pd.testing.assert_frame_equal(load_logs(tmp_path, "otto").events, ev)


@pytest.mark.parametrize(("field", "value", "column", "reason"), [
    ("aid", 1.5, "events.aid", "not an integer"),
    ("aid", None, "events.aid", "null id"),
    ("type", "views", "events.type", "unknown event type"),
])
def test_otto_bad_events_drop_their_session(tmp_path: Path, field: str, value: object, column: str,
                                            reason: str) -> None:
    sessions = json.loads(json.dumps(SESSIONS))
    sessions[0]["events"][1][field] = value
    path = write_jsonl(tmp_path / "train.jsonl", sessions)
    with pytest.raises(InputError, match=error_at(path, column, 0, "" if value is None else value, reason)):
        load_logs(path, "otto")
    logs = load_logs(path, "otto", on_bad_rows="drop")
    assert logs.dropped == {reason: 1}
    assert logs.events["product_id"].tolist() == [59625]


def test_otto_truncated_last_line_and_bad_json(tmp_path: Path) -> None:
    cut = '{"session": 6, "events": [{"aid": 3, "ts": 16593'
    path = write_jsonl(tmp_path / "train.jsonl", SESSIONS, tail=cut)
    with pytest.raises(InputError, match=error_at(path, None, 3, cut, "truncated line")):
        load_logs(path, "otto")
    logs = load_logs(path, "otto", on_bad_rows="drop")
    assert logs.dropped == {"truncated line": 1} and len(logs.events) == 3
    lines = path.read_text().splitlines()[:3]
    lines.insert(1, '{"session": 7, "events": [}')
    path.write_text("\n".join(lines) + "\n")
    for mode in ("raise", "drop"):  # bad JSON inside the file cannot be dropped
        with pytest.raises(InputError, match=re.escape(f"{path}, line 2: invalid JSON")):
            load_logs(path, "otto", on_bad_rows=mode)


# ---------------------------------------------------------------- Trivago
TRIVAGO_HEADER = "user_id,session_id,timestamp,step,action_type,reference,platform,city,device,current_filters," \
                 "impressions,prices"
TRIVAGO = [
    'U1,S1,1541599523,1,interaction item image,5967314,FR,"Marseille, France",tablet,,,',
    'U1,S1,1541599553,2,clickout item,5967314,FR,"Marseille, France",tablet,,100131|913787|5967314,71|107|119',
    'U1,S1,1541599560,3,filter selection,Sort by Price,FR,"Marseille, France",tablet,,,',
    'U1,S1,1541599570,4,interaction item info,unknown,FR,"Marseille, France",tablet,,,',
    "U2,S2,1541600000,1,search for item,42,US,Austin,mobile,,,",
    "U2,S2,1541600100,2,clickout item,,US,Austin,mobile,,42|43,10|20",  # masked (test split): no label
    "U2,S2,1541600200,3,clickout item,43,US,Austin,mobile,Sort by Price,42|43,10|20",
]


def write_csv(path: Path, rows: list[str]) -> Path:
    path.write_text("\n".join([TRIVAGO_HEADER, *rows]) + "\n")
    return path


def user_hash(user: str) -> int:
    return int(pd.util.hash_array(np.array([user], dtype=object))[0] & np.uint64(0x7FFF_FFFF_FFFF_FFFF))


def test_trivago_events_and_impressions(tmp_path: Path) -> None:
    write_csv(tmp_path / "train.csv", TRIVAGO)
    (tmp_path / "item_metadata.csv").write_text("item_id,properties\n1,Wifi\n")
    logs = load_logs(tmp_path, "trivago", page_size=2)
    assert logs.dropped == {"clickout without reference": 1, "item interaction without reference": 1}
    ev = logs.events
    u1, u2 = user_hash("U1"), user_hash("U2")
    assert dict(ev.dtypes.astype(str)) == EVENT_DTYPES
    assert ev["event_time"].tolist() == [T("2018-11-07 14:05:23"), T("2018-11-07 14:05:53"),
                                         T("2018-11-07 14:13:20"), T("2018-11-07 14:16:40")]
    assert (ev["event_type"] == "view").all()
    assert ev["product_id"].tolist() == [5967314, 5967314, 42, 43]
    assert ev["user_id"].tolist() == [u1, u1, u2, u2]
    assert ev["user_session"].tolist() == ["S1", "S1", "S2", "S2"]
    imp = logs.impressions
    assert imp is not None
    assert dict(imp.dtypes.astype(str)) == {**IMPRESSION_DTYPES, "price": "float64"}
    assert imp["product_id"].tolist() == [100131, 913787, 5967314, 42, 43]
    assert imp["position"].tolist() == [0, 1, 2, 0, 1]
    assert imp["page"].tolist() == [0, 0, 1, 0, 0]
    assert imp["click"].tolist() == [0, 0, 1, 0, 1]
    assert imp["order"].tolist() == [0] * 5
    assert imp["price"].tolist() == [71.0, 107.0, 119.0, 10.0, 20.0]
    assert imp["user_id"].tolist() == [u1, u1, u1, u2, u2]
    assert imp["event_time"].tolist() == [T("2018-11-07 14:05:53")] * 3 + [T("2018-11-07 14:16:40")] * 2
    requests = imp["request_id"].tolist()
    assert len(set(requests[:3])) == 1 and len(set(requests[3:])) == 1 and requests[0] != requests[3]
    # the same clickouts read from parquet get the same (deterministic) request ids
    frame = pd.read_csv(tmp_path / "train.csv", dtype=str)
    frame[["timestamp", "step"]] = frame[["timestamp", "step"]].astype("int64")
    frame.to_parquet(tmp_path / "train.parquet")
    (tmp_path / "train.csv").unlink()
    again = load_logs(tmp_path, "trivago", page_size=2)
    pd.testing.assert_frame_equal(again.impressions, imp)
    pd.testing.assert_frame_equal(again.events, ev)
    # By default a clickout's list (up to 25 items) is one page.
    assert load_logs(tmp_path, "trivago").impressions["page"].tolist() == [0] * 5


def test_trivago_sample_is_one_page_per_list() -> None:
    sample = SHARED_DATA / "trivago2019_val100k"
    if not sample.exists():
        pytest.skip(f"{sample} is not here")
    impressions = load_logs(sample, "trivago").impressions
    assert impressions is not None and impressions["position"].max() == 24 and (impressions["page"] == 0).all()


@pytest.mark.parametrize(("row", "old", "new", "column", "value", "reason"), [
    (1, "100131|913787", "100131|abc", "impressions", "abc", "not an integer"),
    (1, "71|107|119", "71|107", "prices", "71|107", "prices do not match impressions"),
    (1, "71|107|119", "71|-107|119", "prices", "-107", "negative price"),
    (6, "clickout item", "clickout hotel", "action_type", "clickout hotel", "unknown event type"),
    (0, "5967314", "59x", "reference", "59x", "not an integer"),
    (4, "U2", "", "user_id", "", "null id"),
    (4, "1541600000", "noon", "timestamp", "noon", "unparsable time"),
])
def test_trivago_bad_rows(tmp_path: Path, row: int, old: str, new: str, column: str, value: str,
                          reason: str) -> None:
    rows = list(TRIVAGO)
    rows[row] = rows[row].replace(old, new, 1)
    path = write_csv(tmp_path / "train.csv", rows)
    with pytest.raises(InputError, match=error_at(path, column, row, value, reason)):
        load_logs(path, "trivago")
    logs = load_logs(path, "trivago", on_bad_rows="drop")
    assert logs.dropped == {reason: 1, "clickout without reference": 1, "item interaction without reference": 1}


def test_trivago_repeated_clickout_is_a_duplicate(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "train.csv", [*TRIVAGO, TRIVAGO[1]])
    with pytest.raises(InputError, match=error_at(path, "position", 7, (None, 0), "duplicate (request_id, position)")
                       .replace(re.escape("(None"), r"\(\d+")):
        load_logs(path, "trivago")
    logs = load_logs(path, "trivago", on_bad_rows="drop")
    assert logs.dropped["duplicate (request_id, position)"] == 3
    assert logs.impressions is not None and len(logs.impressions) == 5
