"""YOOCHOOSE, Diginetica, Taobao and Retailrocket readers on tiny fixtures written from each format's
public description: converted values, sessions, and bad-input cases (raise and drop)."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest

from t4r_dmt.data import EVENT_DTYPES, load_logs
from t4r_dmt.errors import InputError

T = pd.Timestamp


def write(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n")
    return path


def error_at(file: Path, column: str, row: int, value: object, problem: str, header: bool = True) -> str:
    """Regex for an InputError naming file, column, line (data row ``row`` is line ``row + 2`` below a
    header line, ``row + 1`` without one), problem and value."""
    return (re.escape(f"{file}, column '{column}', line {row + 1 + header}: {problem}") + r".*"
            + re.escape(f"(value: {value!r})"))


def check_bad(path: Path, fmt: str, column: str, row: int, value: object, reason: str,
              header: bool = True) -> pd.DataFrame:
    """The bad row raises naming file/column/line/value, and is dropped and counted under drop."""
    with pytest.raises(InputError, match=error_at(path, column, row, value, reason, header)):
        load_logs(path, fmt)
    logs = load_logs(path, fmt, on_bad_rows="drop")
    assert logs.dropped == {reason: 1}
    return logs.events


# ---------------------------------------------------------------- YOOCHOOSE
CLICKS = ["1,2014-04-07T10:51:09.277Z,214536502,0", "1,2014-04-07T10:54:09.868Z,214536500,S",
          "2,2014-04-07T13:56:37.614Z,214662742,3", "2,2014-04-07T13:57:19.373Z,214825110,2053013552"]
BUYS = ["2,2014-04-07T13:58:00.000Z,214662742,1046,2"]


def test_yoochoose_clicks_and_buys(tmp_path: Path) -> None:
    write(tmp_path / "yoochoose-clicks.dat", CLICKS)
    write(tmp_path / "yoochoose-buys.dat", BUYS)
    write(tmp_path / "yoochoose-test.dat", CLICKS)  # not read from a folder: not clicks/buys
    (tmp_path / "README.txt").write_text("about")
    logs = load_logs(tmp_path, "yoochoose")
    ev = logs.events
    assert logs.impressions is None and logs.dropped == {}
    assert dict(ev.dtypes.astype(str)) == EVENT_DTYPES
    assert ev["event_time"].tolist() == [T("2014-04-07 13:58:00"), T("2014-04-07 10:51:09.277"),
                                         T("2014-04-07 10:54:09.868"), T("2014-04-07 13:56:37.614"),
                                         T("2014-04-07 13:57:19.373")]
    assert ev["event_type"].tolist() == ["purchase", "view", "view", "view", "view"]
    assert ev["product_id"].tolist() == [214662742, 214536502, 214536500, 214662742, 214825110]
    assert ev["category_id"].tolist() == [-1, -1, -2, 3, -1]
    assert ev["category_code"].tolist() == [None, None, "special_offer", None, None]
    assert ev["brand"].tolist() == [None, None, None, None, "2053013552"]
    assert ev["price"].tolist()[0] == 1046.0 and ev["price"][1:].isna().all()
    assert ev["user_id"].tolist() == [2, 1, 1, 2, 2]
    assert ev["user_session"].tolist() == ["2", "1", "1", "2", "2"]


def test_yoochoose_prepared_tsv(tmp_path: Path) -> None:
    path = write(tmp_path / "clicks_train.txt", ["SessionId\tItemId\tTime", "3\t214716935\t1396437466.94",
                                                 "3\t214832672\t1396438212.318"])
    ev = load_logs(path, "yoochoose").events
    assert ev["event_time"].tolist() == [T("2014-04-02 11:17:46.940"), T("2014-04-02 11:30:12.318")]
    assert ev["product_id"].tolist() == [214716935, 214832672]
    assert ev["user_id"].tolist() == [3, 3] and ev["user_session"].tolist() == ["3", "3"]
    assert (ev["event_type"] == "view").all() and (ev["category_id"] == -1).all()


def test_yoochoose_bad_rows(tmp_path: Path) -> None:
    path = write(tmp_path / "yoochoose-clicks.dat", [CLICKS[0], CLICKS[1].replace(",S", ",X")] + CLICKS[2:])
    ev = check_bad(path, "yoochoose", "category", 1, "X", "not an integer", header=False)
    assert ev["product_id"].tolist() == [214536502, 214662742, 214825110]
    path = write(tmp_path / "yoochoose-buys.dat", [BUYS[0].replace(",1046,", ",-5,")])
    check_bad(path, "yoochoose", "price", 0, "-5", "negative price", header=False)
    path = write(tmp_path / "t.txt", ["SessionId\tItemId\tTime", "3\t214716935\tnoon"])
    check_bad(path, "yoochoose", "Time", 0, "noon", "unparsable time")


# ---------------------------------------------------------------- Diginetica
DIGI_HEADER = "session_id;user_id;item_id;timeframe;eventdate"
DIGI = ["1;NA;81766;526309;2016-05-09", "1;NA;31331;1031018;2016-05-09", "2;5;32118;243569;2016-05-10"]


def test_diginetica_views_with_anonymous_users(tmp_path: Path) -> None:
    ev = load_logs(write(tmp_path / "train-item-views.csv", [DIGI_HEADER, *DIGI]), "diginetica").events
    assert ev["event_time"].tolist() == [T("2016-05-09 00:08:46.309"), T("2016-05-09 00:17:11.018"),
                                         T("2016-05-10 00:04:03.569")]
    assert ev["product_id"].tolist() == [81766, 31331, 32118]
    assert ev["user_id"].tolist() == [-2, -2, 5]  # anonymous: -1 - session_id, never a real (>= 0) id
    assert ev["user_session"].tolist() == ["1", "1", "2"]
    assert (ev["event_type"] == "view").all()
    (tmp_path / "camel").mkdir()
    camel = write(tmp_path / "camel" / "train-item-views.csv", ["sessionId;userId;itemId;timeframe;eventdate", *DIGI])
    (tmp_path / "camel" / "products.csv").write_text("itemId;pricelog2;product.name.tokens\n1;2;3\n")
    pd.testing.assert_frame_equal(load_logs(camel.parent, "diginetica").events, ev)


@pytest.mark.parametrize(("field", "value", "column", "reason"), [
    (2, "abc", "item_id", "not an integer"),
    (1, "-3", "user_id", "negative user id"),
    (1, "", "user_id", "null id"),
    (4, "2016-13-01", "eventdate", "unparsable time"),
])
def test_diginetica_bad_rows(tmp_path: Path, field: int, value: str, column: str, reason: str) -> None:
    fields = DIGI[1].split(";")
    fields[field] = value
    path = write(tmp_path / "train-item-views.csv", [DIGI_HEADER, DIGI[0], ";".join(fields), DIGI[2]])
    ev = check_bad(path, "diginetica", column, 1, value, reason)
    assert ev["product_id"].tolist() == [81766, 32118]


# ---------------------------------------------------------------- Taobao
BASE = 1511544070  # 2017-11-24 17:21:10 UTC
TAOBAO = [f"1,2268318,2520377,pv,{BASE}", f"1,2333346,2520771,fav,{BASE + 60}",
          f"1,2576651,149192,cart,{BASE + 1800}", f"1,3830808,4181361,buy,{BASE + 3601}",
          f"2,4365585,2520377,pv,{BASE + 10}"]


def test_taobao_behaviours_and_sessions(tmp_path: Path) -> None:
    logs = load_logs(write(tmp_path / "UserBehavior.csv", TAOBAO), "taobao")
    ev = logs.events
    assert logs.dropped == {"unmapped behaviour: fav": 1}  # by design, also under "raise"
    assert ev["event_type"].tolist() == ["view", "cart", "purchase", "view"]
    assert ev["product_id"].tolist() == [2268318, 2576651, 3830808, 4365585]
    assert ev["category_id"].tolist() == [2520377, 149192, 4181361, 2520377]
    assert ev["event_time"].tolist() == [T("2017-11-24 17:21:10"), T("2017-11-24 17:51:10"),
                                         T("2017-11-24 18:21:11"), T("2017-11-24 17:21:20")]
    assert ev["user_id"].tolist() == [1, 1, 1, 2]
    # a gap of exactly 30 minutes stays in the session; 30 min 1 s starts a new one
    assert ev["user_session"].tolist() == [f"1_{BASE}", f"1_{BASE}", f"1_{BASE + 3601}", f"2_{BASE + 10}"]
    assert ev["price"].isna().all()


@pytest.mark.parametrize(("field", "value", "column", "reason"), [
    (3, "like", "behavior_type", "unknown event type"),
    (1, "12x", "item_id", "not an integer"),
    (4, "", "timestamp", "missing time"),
    (0, "", "user_id", "null id"),
])
def test_taobao_bad_rows(tmp_path: Path, field: int, value: str, column: str, reason: str) -> None:
    fields = TAOBAO[2].split(",")
    fields[field] = value
    path = write(tmp_path / "UserBehavior.csv", [TAOBAO[0], ",".join(fields)])
    with pytest.raises(InputError, match=error_at(path, column, 1, value, reason, header=False)):
        load_logs(path, "taobao")
    assert load_logs(path, "taobao", on_bad_rows="drop").dropped == {reason: 1}


# ---------------------------------------------------------------- Retailrocket
RR_HEADER = "timestamp,visitorid,event,itemid,transactionid"
RR = ["1433221332117,257597,view,355908,", "1433224214164,992329,view,248676,",
      "1433221999827,257597,addtocart,355908,", "1433223236124,257597,transaction,355908,4000"]


def test_retailrocket_events_and_sessions(tmp_path: Path) -> None:
    write(tmp_path / "events.csv", [RR_HEADER, *RR])
    write(tmp_path / "item_properties_part1.csv", ["timestamp,itemid,property,value", "1,2,3,4"])
    ev = load_logs(tmp_path, "retailrocket").events
    assert ev["event_time"].tolist() == [T("2015-06-02 05:02:12.117"), T("2015-06-02 05:50:14.164"),
                                         T("2015-06-02 05:13:19.827"), T("2015-06-02 05:33:56.124")]
    assert ev["event_type"].tolist() == ["view", "view", "cart", "purchase"]
    assert ev["user_id"].tolist() == [257597, 992329, 257597, 257597]
    assert ev["product_id"].tolist() == [355908, 248676, 355908, 355908]
    assert ev["user_session"].tolist() == ["257597_1433221332", "992329_1433224214", "257597_1433221332",
                                           "257597_1433221332"]


def test_retailrocket_bad_rows(tmp_path: Path) -> None:
    path = write(tmp_path / "events.csv", [RR_HEADER, RR[0], RR[1].replace(",view,", ",click,"), RR[2]])
    check_bad(path, "retailrocket", "event", 1, "click", "unknown event type")
    path = write(tmp_path / "events.csv", [RR_HEADER, RR[0], RR[1].replace("1433224214164", "yesterday")])
    check_bad(path, "retailrocket", "timestamp", 1, "yesterday", "unparsable time")
    path = write(tmp_path / "events.csv", [RR_HEADER.replace("itemid", "item"), *RR])
    with pytest.raises(InputError, match=re.escape(f"{path}, column 'itemid': missing column")):
        load_logs(path, "retailrocket")
