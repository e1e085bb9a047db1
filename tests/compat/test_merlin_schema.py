"""``t4r_dmt.compat.merlin_schema``: text columns keep their type through schema.pbtxt; other schemas are written
exactly as merlin writes them."""

from __future__ import annotations

from pathlib import Path

import merlin.dtypes as md
from merlin.schema import ColumnSchema, Schema, Tags
from merlin.schema.io.tensorflow_metadata import TensorflowMetadata

from t4r_dmt.compat.merlin_schema import write_schema_pbtxt


def _read(folder: Path) -> Schema:
    return TensorflowMetadata.from_proto_text_file(str(folder)).to_merlin_schema()


def test_text_columns_read_back_as_text(tmp_path: Path) -> None:
    schema = Schema([ColumnSchema("request_id", dtype=md.object_), ColumnSchema("name", dtype=md.string),
                     ColumnSchema("item_id", dtype=md.int64, tags=[Tags.CATEGORICAL])])
    TensorflowMetadata.from_merlin_schema(schema).to_proto_text_file(str(tmp_path))
    assert _read(tmp_path)["request_id"].dtype == md.unknown  # the defect
    write_schema_pbtxt(schema, str(tmp_path))
    read = _read(tmp_path)
    assert read["request_id"].dtype == md.string and read["name"].dtype == md.string
    assert read["item_id"].dtype == md.int64 and Tags.CATEGORICAL in read["item_id"].tags


def test_a_schema_without_text_is_written_as_merlin_writes_it(tmp_path: Path) -> None:
    schema = Schema([ColumnSchema("request_id", dtype=md.int64), ColumnSchema("p", dtype=md.float32)])
    TensorflowMetadata.from_merlin_schema(schema).to_proto_text_file(str(tmp_path), "merlin.pbtxt")
    write_schema_pbtxt(schema, str(tmp_path), "ours.pbtxt")
    assert (tmp_path / "ours.pbtxt").read_text() == (tmp_path / "merlin.pbtxt").read_text()
