"""TFRecord files without TensorFlow: the record framing and the ``tf.train.Example`` message.

**Framing** (TensorFlow's ``core/lib/io/record_writer.cc``), record after record to the end of the file::

    uint64 length  |  uint32 masked_crc32c(length's 8 bytes)  |  data[length]  |  uint32 masked_crc32c(data)

little-endian, with ``masked_crc32c(x) = rotate_right(crc32c(x), 15) + 0xa282ead8 (mod 2**32)``. A file may be
gzip-compressed as a whole (``.gz``, as ``TFRecordDataset(compression_type="GZIP")`` reads it).

**CRC32C**: the ``google-crc32c`` package (Google's, Apache-2.0, pinned in ``constraints.txt``): a wheel with the
C library (~16 GB/s, hardware CRC instructions) that falls back to pure Python where no wheel fits. ``crc32c``
(ICRAR) is as fast but LGPL; a numpy table-driven CRC would cost more per record than parsing it.

**Example**: ``tf.train.Example`` is a small proto3 schema (``example.proto`` / ``feature.proto``)::

    Example { Features features = 1; }         Features { map<string, Feature> feature = 1; }
    Feature { oneof kind { BytesList bytes_list = 1; FloatList float_list = 2; Int64List int64_list = 3; } }
    BytesList { repeated bytes value = 1; }    FloatList { repeated float value = 1 [packed]; }
    Int64List { repeated int64 value = 1 [packed]; }

Compiling ``.proto`` text needs ``protoc``, which is not installed, and ``tensorflow`` is not a dependency. The
small pure-Python ``tfrecord`` package (PyPI) was considered and not taken: it requires the LGPL ``crc32c``,
registers its generated ``example_pb2`` in protobuf's default pool (where TensorFlow's ``tensorflow.Example``
lives when both are imported), and its reader reports no file or record number on a bad record. So the
descriptor above is written by hand as a ``FileDescriptorProto`` and turned into a message class by ``protobuf``
(already installed through ``tensorflow-metadata``), in a private descriptor pool. Parsing is then protobuf's C
parser (upb); the wire format is TensorFlow's, field for field.

Errors: a short or corrupt record raises :class:`RecordError` (an :class:`~t4r_dmt.errors.InputError`) naming
the file, the 0-based record number and the field at fault (``length``, ``length_crc``, ``data``, ``data_crc``,
``example`` or a feature name).
"""

from __future__ import annotations

import gzip
import io
import os
import struct
from collections.abc import Iterator
from typing import Any

import google_crc32c
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from tqdm.auto import tqdm

from t4r_dmt.data.sources import Selection, resolve_files
from t4r_dmt.errors import InputError

MASK_DELTA = 0xA282EAD8
HEADER = struct.Struct("<QI")  # length, masked CRC of the length
FOOTER = struct.Struct("<I")  # masked CRC of the data
#: Files of a folder read as TFRecords: any name (Hadoop writes ``part-r-00000``), except Hadoop's markers and
#: checksums and the usual documentation files (README and hidden files are never read).
RECORD_FILES = Selection(suffixes=("",), exclude=("_*", "*.crc", "*.md", "*.txt", "*.json", "*.py"))


class RecordError(InputError):
    """A bad TFRecord record: ``<file>, record <n>, field '<field>': <problem>``.

    ``column`` holds the field and ``row`` the 0-based record number (as :class:`InputError` names them).
    """

    def __init__(self, file: str, record: int, field: str, problem: str, value: Any = None) -> None:
        super().__init__(file, problem, column=field, row=record, value=value)
        message = f"{file}, record {record}, field '{field}': {problem}"
        if value is not None:
            message += f" (value: {value!r})"
        self.args = (message,)

    @property
    def field(self) -> str:
        return str(self.column)

    @property
    def record(self) -> int:
        return int(self.row or 0)


def masked_crc32c(data: bytes) -> int:
    """TFRecord's masked CRC32C of ``data`` (uint32)."""
    crc = int(google_crc32c.value(data))
    return (((crc >> 15) | (crc << 17)) + MASK_DELTA) & 0xFFFFFFFF


def record_files(path: str | os.PathLike[str]) -> list[str]:
    """The TFRecord files named by ``path``: a file, a glob, or a folder (recursively, see ``RECORD_FILES``)."""
    return resolve_files(path, RECORD_FILES)


def read_file_records(file: str, check_crc: bool = True, stream: io.BufferedIOBase | None = None) -> Iterator[bytes]:
    """The records of one TFRecord file (gzip-compressed when its name ends in ``.gz``), in order.

    Parameters
    ----------
    file:
        The path (also used in error messages).
    check_crc:
        Verify both CRCs of every record (about 1 microsecond per 10 kB).
    stream:
        An open binary stream to read instead of opening ``file``.

    Raises
    ------
    RecordError
        The file ends inside a record (field ``length`` or ``data``), or a CRC does not match (``length_crc``,
        ``data_crc``).
    """
    if stream is None:
        with open_records(file) as opened:
            yield from read_file_records(file, check_crc, opened)
        return
    index = 0
    while True:
        head = stream.read(HEADER.size)
        if not head:
            return
        if len(head) < HEADER.size:
            raise RecordError(file, index, "length", f"the file ends inside the record header ({len(head)} of "
                                                      f"{HEADER.size} bytes): truncated file")
        length, length_crc = HEADER.unpack(head)
        if check_crc and masked_crc32c(head[:8]) != length_crc:
            raise RecordError(file, index, "length_crc", "CRC mismatch of the record length: corrupt file",
                              value=length)
        body = stream.read(length + FOOTER.size)
        if len(body) < length + FOOTER.size:
            raise RecordError(file, index, "data", f"the file ends inside the record ({len(body)} of "
                                                    f"{length + FOOTER.size} bytes): truncated file")
        data = body[:length]
        if check_crc and masked_crc32c(data) != FOOTER.unpack_from(body, length)[0]:
            raise RecordError(file, index, "data_crc", "CRC mismatch of the record data: corrupt record")
        yield data
        index += 1


def open_records(file: str) -> io.BufferedIOBase:
    """A buffered binary stream of ``file``, decompressed when its name ends in ``.gz``."""
    if file.lower().endswith(".gz"):
        return gzip.open(file, "rb")
    return open(file, "rb")


def iter_records(
    path: str | os.PathLike[str], check_crc: bool = True, progress: bool | None = None
) -> Iterator[tuple[str, int, bytes]]:
    """``(file, record number, data)`` of every record of every file of ``path`` (sorted by file name).

    ``progress``: a tqdm bar over the input bytes (compressed bytes for ``.gz``); ``None`` shows it on a terminal.
    """
    files = record_files(path)
    total = sum(os.path.getsize(f) for f in files)
    disable = None if progress is None else not progress
    with tqdm(total=total, unit="B", unit_scale=True, desc="tfrecords", disable=disable) as bar:
        for file in files:
            with open(file, "rb") as raw:
                stream: io.BufferedIOBase = gzip.GzipFile(fileobj=raw) if file.lower().endswith(".gz") else raw
                done = 0
                for index, data in enumerate(read_file_records(file, check_crc, stream)):
                    yield file, index, data
                    position = raw.tell()
                    bar.update(position - done)
                    done = position


# --- tf.train.Example ---------------------------------------------------------------------------------------

def _example_descriptor() -> descriptor_pb2.FileDescriptorProto:
    """``example.proto`` + ``feature.proto`` as a descriptor (the schema in the module docstring)."""
    field = descriptor_pb2.FieldDescriptorProto
    proto = descriptor_pb2.FileDescriptorProto(name="t4r_dmt/tf_example.proto", package="tensorflow",
                                               syntax="proto3")

    def message(name: str, fields: list[tuple[str, int, int, int, str]]) -> descriptor_pb2.DescriptorProto:
        msg = proto.message_type.add(name=name)
        for field_name, number, kind, label, type_name in fields:
            added = msg.field.add(name=field_name, number=number, type=kind, label=label)
            if type_name:  # set only for message fields (an empty type_name still counts as set)
                added.type_name = type_name
        return msg

    repeated, optional = field.LABEL_REPEATED, field.LABEL_OPTIONAL
    message("BytesList", [("value", 1, field.TYPE_BYTES, repeated, "")])
    message("FloatList", [("value", 1, field.TYPE_FLOAT, repeated, "")])
    message("Int64List", [("value", 1, field.TYPE_INT64, repeated, "")])
    feature = message("Feature", [
        ("bytes_list", 1, field.TYPE_MESSAGE, optional, ".tensorflow.BytesList"),
        ("float_list", 2, field.TYPE_MESSAGE, optional, ".tensorflow.FloatList"),
        ("int64_list", 3, field.TYPE_MESSAGE, optional, ".tensorflow.Int64List"),
    ])
    feature.oneof_decl.add(name="kind")
    for item in feature.field:
        item.oneof_index = 0
    features = message("Features", [
        ("feature", 1, field.TYPE_MESSAGE, repeated, ".tensorflow.Features.FeatureEntry")])
    entry = features.nested_type.add(name="FeatureEntry")
    entry.options.map_entry = True
    entry.field.add(name="key", number=1, type=field.TYPE_STRING, label=optional)
    entry.field.add(name="value", number=2, type=field.TYPE_MESSAGE, label=optional, type_name=".tensorflow.Feature")
    message("Example", [("features", 1, field.TYPE_MESSAGE, optional, ".tensorflow.Features")])
    return proto


_POOL = descriptor_pool.DescriptorPool()
_POOL.Add(_example_descriptor())


def _message_class(name: str) -> Any:
    descriptor = _POOL.FindMessageTypeByName(name)
    if hasattr(message_factory, "GetMessageClass"):  # protobuf >= 4.22
        return message_factory.GetMessageClass(descriptor)
    return message_factory.MessageFactory(_POOL).GetPrototype(descriptor)  # older ones (e.g. in the GPU image)


#: The ``tf.train.Example`` message class (``Example().ParseFromString(data)``, ``SerializeToString()``).
Example: Any = _message_class("tensorflow.Example")
#: Field name of each ``Feature`` kind.
KINDS = ("bytes_list", "float_list", "int64_list")


def parse_example(data: bytes, file: str = "<bytes>", record: int = 0) -> Any:
    """The ``features.feature`` map (name -> ``Feature``) of one serialised ``Example``.

    Raises :class:`RecordError` (field ``example``) when ``data`` is not an ``Example``.
    """
    example = Example()
    try:
        example.ParseFromString(data)
    except Exception as err:  # protobuf raises its DecodeError; any failure means "not an Example"
        raise RecordError(file, record, "example", f"not a tf.train.Example ({err})") from err
    return example.features.feature


def feature_values(features: Any, name: str, kind: str, file: str = "<bytes>", record: int = 0) -> Any:
    """The values of feature ``name`` (a protobuf repeated container), which must be of ``kind``
    (``bytes_list``, ``float_list`` or ``int64_list``).

    Raises :class:`RecordError` (field ``name``) when the feature is missing or of another kind.
    """
    if name not in features:
        raise RecordError(file, record, name, "missing feature")
    feature = features[name]
    found = feature.WhichOneof("kind")
    if found != kind:
        raise RecordError(file, record, name, f"expected a {kind}, found {found or 'an empty feature'}")
    return getattr(feature, kind).value
