"""TFRecord files written the way TensorFlow writes them, for the tests of several packages.

The framing and CRC here are written independently of ``t4r_dmt.data.tfrecord`` (a bitwise CRC-32C), so the
reader is checked against a second implementation, not against itself.
"""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

from t4r_dmt.data.tfrecord import Example


def _table() -> list[int]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
        table.append(crc)
    return table


_TABLE = _table()


def crc32c_bitwise(data: bytes) -> int:
    """CRC-32C (Castagnoli, reflected polynomial 0x82F63B78) in plain Python, a table built bit by bit: the
    reference the library is checked against."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc = (crc >> 8) ^ _TABLE[(crc ^ byte) & 0xFF]
    return crc ^ 0xFFFFFFFF


def masked(crc: int) -> int:
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def frame(data: bytes) -> bytes:
    """One record as TensorFlow's RecordWriter writes it."""
    length = struct.pack("<Q", len(data))
    return (length + struct.pack("<I", masked(crc32c_bitwise(length))) + data
            + struct.pack("<I", masked(crc32c_bitwise(data))))


def write_records(path: Path, records: list[bytes], compress: bool = False) -> Path:
    body = b"".join(frame(r) for r in records)
    path.write_bytes(gzip.compress(body) if compress else body)
    return path


def example(**features: list) -> bytes:
    """A serialised Example: bytes values -> bytes_list, floats -> float_list, ints -> int64_list."""
    message = Example()
    for name, values in features.items():
        feature = message.features.feature[name]
        if values and isinstance(values[0], bytes):
            feature.bytes_list.value.extend(values)
        elif values and isinstance(values[0], float):
            feature.float_list.value.extend(values)
        else:
            feature.int64_list.value.extend(values)
    return message.SerializeToString()
