"""TFRecord framing, CRC32C and tf.train.Example parsing without TensorFlow, on files written here."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from tfrecord_fixtures import crc32c_bitwise, example, frame, masked, write_records

from t4r_dmt.data.tfrecord import (
    RecordError,
    feature_values,
    iter_records,
    masked_crc32c,
    parse_example,
    read_file_records,
    record_files,
)
from t4r_dmt.errors import InputError

RECORDS = [b"first", b"", bytes(range(256)) * 40]


def test_crc32c_matches_the_reference_and_the_standard_check_value():
    assert crc32c_bitwise(b"123456789") == 0xE3069283  # the CRC-32C check value (RFC 3720)
    for data in (b"", b"123456789", bytes(range(256)) * 3):
        assert masked_crc32c(data) == masked(crc32c_bitwise(data))


@pytest.mark.parametrize("compress", [False, True])
def test_records_round_trip(tmp_path, compress):
    path = write_records(tmp_path / ("part-0.gz" if compress else "part-0"), RECORDS, compress)
    assert list(read_file_records(str(path))) == RECORDS
    assert [(f, i, d) for f, i, d in iter_records(path, progress=False)] == [
        (str(path), i, d) for i, d in enumerate(RECORDS)]


def test_a_folder_or_glob_reads_the_part_files_in_name_order(tmp_path):
    write_records(tmp_path / "part-r-00001", [b"c"])
    write_records(tmp_path / "part-r-00000", [b"a", b"b"])
    for marker in ("_SUCCESS", "README.txt", ".part-r-00000.crc"):
        (tmp_path / marker).write_text("not a record")
    assert [Path(f).name for f in record_files(tmp_path)] == ["part-r-00000", "part-r-00001"]
    assert [d for _, _, d in iter_records(tmp_path, progress=False)] == [b"a", b"b", b"c"]
    assert [d for _, _, d in iter_records(str(tmp_path / "part-r-*"), progress=False)] == [b"a", b"b", b"c"]
    with pytest.raises(InputError, match="no such file"):
        record_files(tmp_path / "absent-*")


def test_example_parsing_reads_every_kind():
    features = parse_example(example(ids=[b"12", b"unknow"], weights=[1.0, 0.5], counts=[3, -4]))
    assert list(feature_values(features, "ids", "bytes_list")) == [b"12", b"unknow"]
    assert list(feature_values(features, "weights", "float_list")) == [1.0, 0.5]
    assert list(feature_values(features, "counts", "int64_list")) == [3, -4]


def _error(path: Path, record: int, field: str) -> str:
    return re.escape(f"{path}, record {record}, field '{field}': ")


@pytest.mark.parametrize("cut, field", [(5, "length"), (12 + 3, "data"), (12 + 5 + 2, "data")])
def test_a_truncated_file_names_the_record_and_field(tmp_path, cut, field):
    good = frame(b"record0")
    path = tmp_path / "part-0"
    path.write_bytes(good + frame(b"abcde")[:cut])
    with pytest.raises(RecordError, match=_error(path, 1, field) + ".*truncated file") as err:
        list(iter_records(path, progress=False))
    assert (err.value.file, err.value.record, err.value.field) == (str(path), 1, field)
    assert isinstance(err.value, InputError)


def test_a_crc_mismatch_of_the_length_is_an_error(tmp_path):
    bad = bytearray(frame(b"abcde"))
    bad[9] ^= 0x01  # a bit of the length's CRC
    path = tmp_path / "part-0"
    path.write_bytes(frame(b"ok") * 2 + bytes(bad))
    with pytest.raises(RecordError, match=_error(path, 2, "length_crc") + "CRC mismatch of the record length"):
        list(iter_records(path, progress=False))


def test_a_crc_mismatch_of_the_data_is_an_error(tmp_path):
    bad = bytearray(frame(b"abcde"))
    bad[12 + 2] ^= 0x20  # a bit of the data
    path = tmp_path / "part-0"
    path.write_bytes(frame(b"ok") + bytes(bad))
    with pytest.raises(RecordError, match=_error(path, 1, "data_crc") + "CRC mismatch of the record data"):
        list(iter_records(path, progress=False))
    assert list(read_file_records(str(path), check_crc=False))[1] == b"abCde"


def test_a_record_that_is_not_an_example_or_lacks_a_feature_is_named(tmp_path):
    with pytest.raises(RecordError, match=re.escape("f, record 7, field 'example': not a tf.train.Example")):
        parse_example(b"\xff\xff\xff", "f", 7)
    features = parse_example(example(ids=[b"1"]), "f", 3)
    with pytest.raises(RecordError, match=re.escape("f, record 3, field 'mask': missing feature")):
        feature_values(features, "mask", "float_list", "f", 3)
    with pytest.raises(RecordError, match=re.escape("f, record 3, field 'ids': expected a float_list, found "
                                                    "bytes_list")):
        feature_values(features, "ids", "float_list", "f", 3)
