"""Times far outside a log (a 1970 or 2100 timestamp among 2019 rows) are bad rows: raised on naming the
file, line, count and value, or left out and counted with ``--on_bad_rows drop``; ``--max_time_gap`` says
how long a stretch without rows a log may hold."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest
from log_fixtures import REES46_HEADER as HEADER
from log_fixtures import REES46_ROWS as ROWS

from t4r_dmt import cli
from t4r_dmt.data import load_logs, read_events, read_impressions
from t4r_dmt.errors import InputError

REASON = "time far outside the log"


def _with_time(row: str, time: str) -> str:
    return time + row[row.index(","):]


def _write(path, rows, header=HEADER):
    path.write_text("\n".join([header, *rows]) + "\n")
    return path


def test_a_1970_timestamp_is_named_with_its_line_and_the_count(tmp_path):
    rows = [*ROWS, _with_time(ROWS[1], "1970-01-01 00:00:00 UTC"), *ROWS]
    path = _write(tmp_path / "ev.csv", rows)
    message = (f"{path}, column 'event_time', line 6: {REASON}: more than 30 days away from the rest of the log "
               "(2019-10-01 00:00:04 .. 2019-10-01 00:02:00)")
    with pytest.raises(InputError, match=re.escape(message) + ".*1 bad row in the input.*1970-01-01") as info:
        read_events(path)
    assert (info.value.column, info.value.row, info.value.line) == ("event_time", 4, 6)
    events, dropped = read_events(path, on_bad_rows="drop")
    assert dropped == {REASON: 1} and len(events) == 2 * len(ROWS)


def test_a_2100_timestamp_is_not_silently_accepted(tmp_path):
    rows = [*ROWS, _with_time(ROWS[2], "2100-01-01 00:00:00 UTC"), _with_time(ROWS[0], "1970-01-01 00:00:00 UTC")]
    path = _write(tmp_path / "ev.csv", rows)
    with pytest.raises(InputError, match=re.escape(f"{path}, column 'event_time', line 6: {REASON}")
                       + r".*2 bad rows in the input: 2 time far outside.*2100-01-01") as info:
        read_events(path)
    assert "2100" in str(info.value) and "Timestamp('2100-01-01 00:00:00')" in str(info.value)
    logs = load_logs(path, "rees46", on_bad_rows="drop")
    assert logs.dropped == {REASON: 2}
    assert logs.events["event_time"].max() == pd.Timestamp("2019-10-01 00:02:00")


def test_max_time_gap_sets_how_long_a_quiet_stretch_may_be(tmp_path):
    rows = [*ROWS, _with_time(ROWS[1], "2019-11-20 00:00:00 UTC")]  # 50 days after the rest
    path = _write(tmp_path / "ev.csv", rows)
    with pytest.raises(InputError, match=REASON):
        read_events(path)
    events, dropped = read_events(path, max_time_gap="60d")
    assert dropped == {} and len(events) == len(ROWS) + 1
    with pytest.raises(ValueError, match="max_time_gap must be a duration such as '30d' or '12h'; got 'soon'"):
        read_events(path, max_time_gap="soon")
    with pytest.raises(ValueError, match="max_time_gap must be a duration such as '30d' or '12h'; got '30'"):
        read_events(path, max_time_gap="30")
    with pytest.raises(ValueError, match="max_time_gap must be longer than zero"):
        read_events(path, max_time_gap="0d")


def test_a_request_far_from_the_others_is_dropped_whole(tmp_path):
    header = "request_id,user_id,event_time,product_id,position,click,order"
    rows = ["7,100,2019-10-01 00:00:04 UTC,11,0,1,1", "7,100,2019-10-01 00:00:04 UTC,12,1,0,0",
            "8,101,2099-10-01 00:10:00 UTC,11,0,0,0", "8,101,2099-10-01 00:10:00 UTC,14,1,0,0",
            "9,101,2019-10-02 00:10:00 UTC,11,0,0,0"]
    path = _write(tmp_path / "imp.csv", rows, header)
    with pytest.raises(InputError, match=re.escape(f"{path}, column 'event_time', line 4: {REASON}")):
        read_impressions(path)
    frame, dropped = read_impressions(path, on_bad_rows="drop")
    assert dropped == {REASON: 2} and frame["request_id"].tolist() == [7, 7, 9]


def test_the_bulk_is_the_largest_part_between_long_gaps():
    from t4r_dmt.data.canonical import time_outliers

    day = np.timedelta64(1, "D").astype("timedelta64[ns]")
    times = np.array(["2020-01-05", "1970-01-01", "2020-01-01", "2020-01-02", "2020-03-01", "2020-03-02"],
                     "datetime64[ns]")
    outlier, bulk = time_outliers(times, 30 * day)
    assert outlier.tolist() == [False, True, False, False, True, True]
    assert np.array_equal(bulk, np.array(["2020-01-01", "2020-01-05"], "datetime64[ns]"))
    none, _ = time_outliers(times[[0, 2, 3]], 30 * day)
    assert not none.any()


def test_preprocess_names_the_row_instead_of_counting_windows(tmp_path, capsys):
    from log_fixtures import make_logs

    events, impressions = make_logs(seed=2)
    events.loc[5, "event_time"] = pd.Timestamp("1970-01-01")
    events.to_csv(tmp_path / "events.csv", index=False)
    impressions.to_parquet(tmp_path / "impressions.parquet")
    out = tmp_path / "out"
    argv = ["preprocess", "--events", str(tmp_path / "events.csv"), "--impressions",
            str(tmp_path / "impressions.parquet"), "--out", str(out), "--events_per_bucket", "100"]
    assert cli.main(argv) == 1
    err = capsys.readouterr().err
    assert f"{tmp_path / 'events.csv'}, column 'event_time', line 7: {REASON}" in err and "windows" not in err
    assert not out.exists()
    assert cli.main([*argv, "--on_bad_rows", "drop"]) == 0
    stats = json.loads((out / "stats.json").read_text())
    assert stats["readers"]["events"] == {REASON: 1}
