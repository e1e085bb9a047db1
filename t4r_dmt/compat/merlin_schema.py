"""Workaround: merlin-core 23.08 writes a text column to ``schema.pbtxt`` without a type, so it reads back as
dtype ``unknown``.

``TensorflowMetadata.from_merlin_schema`` sets a feature's type only for int and float columns; its reader maps
``BYTES`` to ``str``, but its writer never writes ``BYTES``. docs/STACK_NOTES.md, "merlin-core 23.08".
:func:`write_schema_pbtxt` writes the schema as merlin does and types its text columns (merlin dtype ``str`` or
``object``: a ranking output's ``request_id`` of text) as ``BYTES``; a schema without text columns is written
exactly as merlin writes it.
"""

from __future__ import annotations

import numpy as np
from merlin.dtypes import DType
from merlin.schema import Schema
from merlin.schema.io.schema_bp import FeatureType
from merlin.schema.io.tensorflow_metadata import TensorflowMetadata

__all__ = ["is_text_column", "write_schema_pbtxt"]


def is_text_column(dtype: DType) -> bool:
    """Whether a merlin dtype holds text (``str``, or ``object`` as a pandas text column infers)."""
    try:
        return np.dtype(dtype.to_numpy).kind in "OUS"
    except (TypeError, ValueError, AttributeError):  # merlin's "unknown" has no numpy dtype
        return False


def write_schema_pbtxt(schema: Schema, folder: str, file_name: str = "schema.pbtxt") -> None:
    """Write ``schema`` to ``folder/file_name`` as merlin does, with its text columns typed ``BYTES``."""
    metadata = TensorflowMetadata.from_merlin_schema(schema)
    text = {column.name for column in schema if is_text_column(column.dtype)}
    for feature in metadata.proto_schema.feature:
        if feature.name in text:
            feature.type = FeatureType.BYTES
    metadata.to_proto_text_file(folder, file_name)
