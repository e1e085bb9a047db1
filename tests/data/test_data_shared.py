"""The readers on the real data samples in shared/data (skipped where a sample is absent)."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest
from paths import SHARED_DATA

from t4r_dmt.data import EVENT_DTYPES, load_logs, read_events
from t4r_dmt.errors import InputError

DATA = SHARED_DATA


def sample(name: str) -> Path:
    folder = DATA / name
    if not folder.is_dir():
        pytest.skip(f"{folder} is absent")
    return folder


def test_rees46_head() -> None:
    path = sample("rees46_oct2019_head") / "2019-Oct_head.csv"
    with pytest.raises(InputError, match=re.escape(f"{path}, column 'user_session', line 17436: truncated line")):
        read_events(path)
    events, dropped = read_events(path, on_bad_rows="drop")
    assert dropped == {"truncated line": 1}
    assert len(events) == 17_434
    assert events["event_type"].value_counts().to_dict() == {"view": 17_055, "purchase": 214, "cart": 165}
    assert events["user_id"].nunique() == 4_504 and events["user_session"].nunique() == 5_066
    assert events["product_id"].nunique() == 6_493 and events["category_id"].nunique() == 434
    assert events["category_code"].isna().sum() == 5_746 and events["brand"].isna().sum() == 2_477
    assert events["category_id"].iloc[0] == 2103807459595387724  # 19 digits, exact
    assert events["event_time"].min() == pd.Timestamp("2019-10-01 00:00:00")
    assert events["event_time"].max() == pd.Timestamp("2019-10-01 02:50:00")


def test_yoochoose_prepared() -> None:
    path = sample("yoochoose_rsc15_100k") / "yoochoose-clicks-100k_train_full.txt"
    logs = load_logs(path, "yoochoose")
    ev = logs.events
    assert logs.dropped == {} and dict(ev.dtypes.astype(str)) == EVENT_DTYPES
    assert len(ev) == 70_278
    assert ev["user_session"].nunique() == 17_794 and ev["user_id"].nunique() == 17_794
    assert ev["product_id"].nunique() == 2_933
    assert ev["event_time"].min().floor("min") == pd.Timestamp("2014-04-01 01:02")
    assert ev["event_time"].max().floor("min") == pd.Timestamp("2014-04-07 00:43")


def test_diginetica_sample() -> None:
    logs = load_logs(sample("diginetica_sample"), "diginetica")
    ev = logs.events
    assert logs.dropped == {} and len(ev) == 12_391
    assert ev["user_session"].nunique() == 2_986 and ev["product_id"].nunique() == 7_139
    assert ev.loc[ev["user_id"] >= 0, "user_id"].nunique() == 1_270
    assert ev["event_time"].min().normalize() == pd.Timestamp("2016-01-03")
    assert ev["event_time"].max().normalize() == pd.Timestamp("2016-06-01")


def test_trivago_sample() -> None:
    logs = load_logs(sample("trivago2019_val100k"), "trivago")
    imp = logs.impressions
    assert imp is not None
    assert logs.dropped == {"item interaction without reference": 4}  # reference "unknown"
    assert imp["request_id"].nunique() == 13_597
    clicks = imp.groupby("request_id")["click"].sum()
    assert (clicks == 1).sum() == 13_596 and (clicks == 0).sum() == 1
    positions = imp.loc[imp["click"] == 1, "position"].value_counts()
    assert positions[[0, 1, 2, 3]].tolist() == [4_209, 1_434, 1_034, 795]
    sizes = imp.groupby("request_id").size()
    assert sizes.min() == 1 and sizes.max() == 25 and round(sizes.mean(), 1) == 23.0
    ev = logs.events
    # image 68,538 + clickouts 13,597 + info 1,829 - 4 unknown + rating 1,445 + deals 1,159 + item search 1,044
    assert len(ev) == 87_608 and (ev["event_type"] == "view").all()
    assert ev["user_id"].nunique() <= 6_593 and ev["user_session"].nunique() <= 7_612
