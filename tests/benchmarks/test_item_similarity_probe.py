"""benchmarks/item_similarity_probe.py: the pair Spearman and the co-occurrence embedding, by construction."""

from __future__ import annotations

from types import ModuleType

import numpy as np
import pytest
from paths import load_benchmark


@pytest.fixture(scope="module")
def probe() -> ModuleType:
    return load_benchmark("item_similarity_probe")


def test_pair_spearman_is_one_for_the_truth_and_near_zero_for_noise(probe: ModuleType) -> None:
    rng = np.random.default_rng(1)
    hidden = rng.standard_normal((300, 8))
    category = np.arange(300) % 10
    same = probe.pair_spearman(hidden * 3.0, hidden, category)  # a scale does not change cosines
    assert same["all_pairs"] == pytest.approx(1.0) and same["same_category"] == pytest.approx(1.0)
    assert same["n_same_category"] > 1000
    noise = probe.pair_spearman(rng.standard_normal((300, 8)), hidden, category)
    assert abs(noise["all_pairs"]) < 0.05
    flipped = probe.pair_spearman(-hidden[:, :1], hidden[:, :1], category)  # cosine of 1-d vectors: sign product
    assert flipped["all_pairs"] == pytest.approx(1.0)  # sign(-a)sign(-b) = sign(a)sign(b)
    with pytest.raises(ValueError, match="need >= 2 items and one row per item"):
        probe.pair_spearman(hidden[:5], hidden[:4], category[:5])


def test_cooccurrence_embedding_puts_items_of_one_session_pattern_together(probe: ModuleType) -> None:
    """Users who browse items 0-4 or items 5-9, never across: the log's vectors split the two groups."""
    rng = np.random.default_rng(0)
    users, items = [], []
    for user in range(200):
        group = user % 2
        users += [user] * 6
        items += list(rng.integers(0, 5, 6) + 5 * group)
    vectors = probe.cooccurrence_embedding(np.array(users), np.array(items), 10, dim=2)
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    cosine = unit @ unit.T
    within = np.mean([cosine[i, j] for i in range(10) for j in range(10) if i != j and i // 5 == j // 5])
    across = np.mean([cosine[i, j] for i in range(10) for j in range(10) if i // 5 != j // 5])
    assert within > 0.9 and across < 0.1
