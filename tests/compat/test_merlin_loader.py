"""The merlin-loader workaround in t4r_dmt.compat: empty lists become the padding code ``[0]``.

``loader_file`` end to end (the loader sees the same tensors) is tested in tests/training/test_training_loop.py.
"""

from __future__ import annotations

from t4r_dmt.compat import merlin_loader


def test_pad_empty_lists_writes_the_padding_code_in_empty_and_null_rows():
    import pyarrow as pa

    array = pa.array([[5, 6], [], None, [], [7]], pa.list_(pa.int64()))
    assert merlin_loader.pad_empty_lists(array).to_pylist() == [[5, 6], [0], [0], [0], [7]]
    large = pa.large_list(pa.int64())
    chunked = pa.chunked_array([pa.array([[], [3]], large), pa.array([[]], large)])
    padded = merlin_loader.pad_empty_lists(chunked)
    assert padded.type == pa.large_list(pa.int64()) and padded.to_pylist() == [[0], [3], [0]]
    assert merlin_loader.pad_empty_lists(pa.array([[], []], pa.list_(pa.int64()))).to_pylist() == [[0], [0]]
    all_empty = merlin_loader.pad_empty_lists(pa.array([[], []]))  # pandas writes list<null> then
    assert all_empty.type == pa.list_(pa.int64()) and all_empty.to_pylist() == [[0], [0]]
