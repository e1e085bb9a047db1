"""The in-memory ``dense`` T4R loader: the same batches as T4R's merlin loader, and the cases it fails on."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from model_fixtures import FixtureSpec, write_ranking_fixture
from transformers4rec.torch.utils.data_utils import T4RecDataLoader

from t4r_dmt.training.dense_loader import DenseDataLoader, DenseTable


@pytest.fixture(scope="module")
def fixture(tmp_path_factory):
    return write_ranking_fixture(tmp_path_factory.mktemp("dense") / "ranking", n_windows=1,
                                 spec=FixtureSpec(requests_per_window=50), seed=4)


def _batches(engine: str, schema, path: str, batch_size: int, length: int, **kwargs) -> list:
    loader = T4RecDataLoader.parse(engine).from_schema(schema, path, batch_size, max_sequence_length=length,
                                                       shuffle=False, **kwargs)
    return [(dict(x), dict(y)) for x, y in loader]


def _assert_same(left: list, right: list) -> None:
    assert len(left) == len(right)
    for (x0, y0), (x1, y1) in zip(left, right, strict=True):
        assert x0.keys() == x1.keys() and y0.keys() == y1.keys()
        for key in x0:
            assert x0[key].dtype == x1[key].dtype and torch.equal(x0[key], x1[key]), key
        for key in y0:
            assert y0[key].dtype == y1[key].dtype and torch.equal(y0[key], y1[key]), key


@pytest.mark.parametrize("batch_size, length", [(64, 8), (37, 10), (1000, 8)])
def test_dense_batches_equal_the_merlin_loader(fixture, batch_size, length):
    path = fixture.path(1)
    merlin = _batches("merlin", fixture.schema, path, batch_size, length)
    dense = _batches("dense", fixture.schema, path, batch_size, length)
    _assert_same(merlin, dense)
    x, y = dense[0]
    assert x["click_item_id_seq"].shape == (min(batch_size, len(pd.read_parquet(path))), length)
    assert set(y) == {"click", "order"} and "request_id" not in x  # untagged columns are not inputs


def test_lists_are_left_aligned_padded_and_cut(fixture, tmp_path):
    frame = pd.read_parquet(fixture.path(1)).head(3).copy()
    frame["click_item_id_seq"] = [np.array([5, 6, 7, 8]), np.array([], dtype=np.int64), np.array([9])]
    path = tmp_path / "cut.parquet"
    frame.to_parquet(path, index=False)
    table = DenseTable(path, ["click_item_id_seq", "item_id"], ["click"], max_sequence_length=3)
    x, y = table[[0, 1, 2]]
    assert x["click_item_id_seq"].tolist() == [[5, 6, 7], [0, 0, 0], [9, 0, 0]]
    assert x["item_id"].tolist() == frame["item_id"].tolist() and y["click"].dtype == torch.int64
    with pytest.raises(ValueError, match="max_sequence_length must be >= 1"):
        DenseTable(path, ["item_id"], ["click"], max_sequence_length=0)


def test_a_list_column_empty_in_every_row_batches(fixture, tmp_path):
    """The merlin loader raises KeyError: 0 on such a batch (a log without carts); the dense one gives zeros."""
    frame = pd.read_parquet(fixture.path(1))
    for column in ("cart_item_id_seq", "cart_category_seq", "cart_brand_seq"):
        frame[column] = [np.array([], dtype=np.int64) for _ in range(len(frame))]
    path = tmp_path / "no_carts.parquet"
    frame.to_parquet(path, index=False)
    with pytest.raises(KeyError):
        _batches("merlin", fixture.schema, str(path), 64, 8)
    dense = _batches("dense", fixture.schema, str(path), 64, 8)
    assert sum(len(y["click"]) for _, y in dense) == len(frame)
    assert all(int(x["cart_item_id_seq"].abs().sum()) == 0 for x, _ in dense)


def test_shuffle_follows_the_torch_seed_and_visits_every_row_once(fixture):
    def order(seed: int) -> list[int]:
        torch.manual_seed(seed)
        loader = DenseDataLoader.from_schema(fixture.schema, fixture.path(1), 16, max_sequence_length=8,
                                             shuffle=True)
        return [int(v) for x, _ in loader for v in x["item_id"]]

    rows = pd.read_parquet(fixture.path(1))["item_id"].tolist()
    assert order(1) == order(1) != order(2)
    assert sorted(order(1)) == sorted(rows) and order(1) != rows


def test_ranks_read_disjoint_shards_and_drop_last(fixture):
    n = len(pd.read_parquet(fixture.path(1)))
    seen = []
    for rank in range(3):
        loader = DenseDataLoader.from_schema(fixture.schema, fixture.path(1), 7, max_sequence_length=8,
                                             global_rank=rank, global_size=3)
        assert len(loader.dataset) == len(range(rank, n, 3))
        seen.append(torch.cat([y["click"] for _, y in loader]))
    assert sum(len(s) for s in seen) == n
    loader = DenseDataLoader.from_schema(fixture.schema, fixture.path(1), 7, max_sequence_length=8, drop_last=True)
    assert len(loader) == n // 7 and all(len(y["click"]) == 7 for _, y in loader)


def test_default_length_comes_from_the_schema(fixture):
    loader = DenseDataLoader.from_schema(fixture.schema, fixture.path(1), 8)
    x, _ = next(iter(loader))
    longest = max(c.value_count.max for c in fixture.schema if c.is_list)
    assert x["click_item_id_seq"].shape[1] == longest
