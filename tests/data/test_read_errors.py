"""Every read error is the project's one-line InputError naming the file (and the line where known), and
places are given as the user finds them: ``line N`` of a text file in its own numbering (the header is
line 1, so data row 0 is line 2; empty lines count), ``row N`` (0-based) of a parquet file."""

from __future__ import annotations

import gzip
import re
from pathlib import Path

import pytest
from log_fixtures import REES46_HEADER as HEADER
from log_fixtures import REES46_ROWS as ROWS

from t4r_dmt import cli
from t4r_dmt.data import load_logs, read_events, read_impressions
from t4r_dmt.errors import InputError


def _gz(path: Path, text: str) -> Path:
    path.write_bytes(gzip.compress(text.encode()))
    return path


def _text(rows: list[str]) -> str:
    return "\n".join([HEADER, *rows]) + "\n"


def test_a_corrupt_csv_gz_is_an_input_error_naming_the_file(tmp_path):
    data = bytearray(gzip.compress(_text(ROWS * 500).encode()))
    data[len(data) // 2 : len(data) // 2 + 40] = bytes(40)  # a damaged stretch: the checksum fails
    path = tmp_path / "events.csv.gz"
    path.write_bytes(bytes(data))
    with pytest.raises(InputError, match=re.escape(f"{path}: cannot read the file: ") + ".*(zlib|inflate|data)"):
        read_events(path)


def test_a_truncated_csv_gz_is_an_input_error_naming_the_file(tmp_path):
    data = gzip.compress(_text(ROWS * 200).encode())
    path = tmp_path / "events.csv.gz"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match=re.escape(f"{path}: cannot read the file: ")):
        read_events(path)


def test_the_cli_prints_one_line_for_a_corrupt_file(tmp_path, capsys):
    path = tmp_path / "events.csv.gz"
    path.write_bytes(b"\x1f\x8b" + bytes(100))  # a gzip magic, then nothing valid
    out = tmp_path / "out"
    assert cli.main(["preprocess", "--events", str(path), "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"t4r-dmt preprocess: error: {path}: cannot read the file: ")
    assert len(err.strip().splitlines()) == 1
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["events.csv.gz"]


def test_a_file_that_is_not_parquet_is_named(tmp_path):
    path = tmp_path / "events.parquet"
    path.write_bytes(b"PAR1 this is not a parquet file")
    with pytest.raises(InputError, match=re.escape(f"{path}: cannot read the file: ") + ".*[Pp]arquet"):
        read_events(path)
    with pytest.raises(InputError, match=re.escape(f"{path}: cannot read the file")):
        read_impressions(path)


def test_invalid_utf8_is_named_with_its_line(tmp_path):
    path = tmp_path / "events.csv"
    path.write_bytes(_text(ROWS).encode().replace(b"aqua", b"aq\xffua"))
    with pytest.raises(InputError, match=re.escape(f"{path}, line 3: cannot read the file: ") + ".*UTF8"):
        read_events(path)


def test_csv_rows_are_named_by_their_line_counting_the_header_and_empty_lines(tmp_path):
    path = tmp_path / "events.csv"
    bad = ROWS[2].replace(",0,554748717", ",-4,554748717")  # a negative price in data row 2
    path.write_text(HEADER + "\r\n" + ROWS[0] + "\r\n\r\n" + ROWS[1] + "\r\n\r\n\r\n" + bad + "\r\n")
    with pytest.raises(InputError, match=re.escape(f"{path}, column 'price', line 7: negative price")) as info:
        read_events(path)
    assert (info.value.row, info.value.line) == (2, 7)


def test_a_headerless_text_file_starts_at_line_1(tmp_path):
    path = tmp_path / "UserBehavior.csv"
    path.write_text("1,2268318,2520377,pv,1511544070\n1,2333346,2520771,buy,noon\n")
    with pytest.raises(InputError, match=re.escape(f"{path}, column 'timestamp', line 2: unparsable time")):
        load_logs(path, "taobao")


def test_parquet_rows_are_named_0_based(tmp_path):
    frame, _ = read_events(Path(_write(tmp_path / "ev.csv", ROWS)))
    frame.loc[2, "price"] = -1.0
    frame.to_parquet(tmp_path / "ev.parquet")
    with pytest.raises(InputError, match=re.escape(f"{tmp_path / 'ev.parquet'}, column 'price', row 2: negative price")):
        read_events(tmp_path / "ev.parquet")


def test_whole_log_checks_name_the_line_too(tmp_path):
    header = "request_id,user_id,event_time,product_id,position,click,order"
    rows = ["7,100,2019-10-01 00:00:04 UTC,11,0,1,1", "7,100,2019-10-01 00:00:04 UTC,12,0,0,0"]
    path = _write(tmp_path / "imp.csv", rows, header)
    with pytest.raises(InputError, match=re.escape(f"{path}, column 'position', line 3: duplicate (request_id, position)")):
        read_impressions(path)


def _write(path: Path, rows: list[str], header: str = HEADER) -> Path:
    path.write_text("\n".join([header, *rows]) + "\n")
    return path


def test_line_of_row_follows_the_parsers_counting(tmp_path, monkeypatch):
    from t4r_dmt.data import lines

    path = tmp_path / "t.csv"
    path.write_bytes(b"h\r\na\n\nb\rc\r\n\r\nd")  # lines: h, a, (empty), b, c, (empty), d
    assert [lines.line_of_row(str(path), row, header=True) for row in range(5)] == [2, 4, 5, 7, None]
    assert lines.line_of_row(str(path), 0, header=False) == 1
    assert lines.line_of_row(str(_gz(tmp_path / "t.csv.gz", "h\n\na\n")), 0, header=True) == 3
    monkeypatch.setattr(lines, "LINE_SCAN_BYTES", 1)  # every "\r\n" cut in two by the read blocks
    assert [lines.line_of_row(str(path), row, header=True) for row in range(4)] == [2, 4, 5, 7]
