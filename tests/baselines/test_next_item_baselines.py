"""The non-neural baselines (popularity, V-SkNN) and their incremental protocol, on hand-made sessions."""

from __future__ import annotations

import math

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from t4r_dmt.baselines import (
    Popularity,
    PopularityConfig,
    SessionBatch,
    SkNNConfig,
    VSkNN,
    evaluate_scorer,
    read_sessions,
)
from t4r_dmt.baselines.sknn import recency_weights
from t4r_dmt.errors import InputError


def batch(*sessions: list[int], times: list[int] | None = None) -> SessionBatch:
    lengths = [len(s) for s in sessions]
    return SessionBatch(items=np.array([i for s in sessions for i in s], dtype=np.int64),
                        offsets=np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
                        start_time=np.array(times if times is not None else range(len(sessions)), dtype=np.int64))


def write_split(path, sessions, times=None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    columns = {"item_id-list": pa.array(sessions, type=pa.list_(pa.int64()))}
    if times is not None:
        columns["timestamp-first"] = pa.array(times, type=pa.int64())
    pq.write_table(pa.table(columns), path)


# --------------------------------------------------------------------------------------------------
# Reading session files
# --------------------------------------------------------------------------------------------------
def test_read_sessions_and_last_item_examples(tmp_path):
    write_split(tmp_path / "s.parquet", [[3, 4, 5], [6, 3]], times=[10, 20])
    sessions = read_sessions(tmp_path / "s.parquet")
    assert sessions.n_sessions == 2 and sessions.items.tolist() == [3, 4, 5, 6, 3]
    assert sessions.offsets.tolist() == [0, 3, 5] and sessions.start_time.tolist() == [10, 20]
    histories, targets = sessions.last_item_examples()
    assert [h.tolist() for h in histories] == [[3, 4], [6]] and targets.tolist() == [5, 3]
    write_split(tmp_path / "no_time.parquet", [[3, 4]])
    assert read_sessions(tmp_path / "no_time.parquet").start_time.tolist() == [0]


def test_read_sessions_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.parquet is missing"):
        read_sessions(tmp_path / "missing.parquet")
    pq.write_table(pa.table({"other": [1]}), tmp_path / "bad.parquet")
    with pytest.raises(InputError, match=r"bad.parquet, column 'item_id-list': missing session column"):
        read_sessions(tmp_path / "bad.parquet")
    write_split(tmp_path / "short.parquet", [[3, 4], [5]])
    with pytest.raises(InputError, match=r"row 1: a session needs at least 2 items \(value: \[5\]\)"):
        read_sessions(tmp_path / "short.parquet")
    write_split(tmp_path / "neg.parquet", [[3, 4], [5, -1]])
    with pytest.raises(InputError, match=r"row 1: item codes must be >= 0"):
        read_sessions(tmp_path / "neg.parquet")


# --------------------------------------------------------------------------------------------------
# Popularity
# --------------------------------------------------------------------------------------------------
def test_popularity_counts_all_windows_or_the_last_ones():
    pop = Popularity(6)
    pop.fit(batch([3, 4, 3], [4, 5]))
    pop.fit(batch([5, 5]))
    scores = pop.score([np.array([3]), np.array([4, 5])])
    assert scores.shape == (2, 6)
    assert scores[0].tolist() == [0, 0, 0, 2, 2, 3] and scores[1].tolist() == scores[0].tolist()
    recent = Popularity(6, PopularityConfig(last_windows=1))
    recent.fit(batch([3, 4, 3], [4, 5]))
    recent.fit(batch([5, 5]))
    assert recent.score([np.array([3])])[0].tolist() == [0, 0, 0, 0, 0, 2]
    assert Popularity(4).score([np.array([3])]).tolist() == [[0, 0, 0, 0]]


def test_popularity_errors():
    with pytest.raises(ValueError, match="last_windows must be >= 0"):
        PopularityConfig(last_windows=-1)
    with pytest.raises(ValueError, match="n_items must be >= 1"):
        Popularity(0)
    with pytest.raises(ValueError, match="item code 7 is outside the catalogue of 6 items"):
        Popularity(6).fit(batch([3, 7]))


# --------------------------------------------------------------------------------------------------
# V-SkNN
# --------------------------------------------------------------------------------------------------
def test_recency_weights():
    assert recency_weights(3, "same").tolist() == [1, 1, 1]
    assert recency_weights(3, "linear") == pytest.approx([0.8, 0.9, 1.0])
    assert recency_weights(3, "div") == pytest.approx([1 / 3, 1 / 2, 1])
    assert recency_weights(2, "quadratic") == pytest.approx([1 / 4, 1])
    assert recency_weights(2, "log") == pytest.approx([1 / math.log2(3), 1])
    assert recency_weights(12, "linear")[0] == 0.0  # recency 12 -> 1 - 1.1 clipped
    with pytest.raises(ValueError, match="weighting must be one of"):
        recency_weights(2, "cubic")


def test_vsknn_scores_a_hand_made_example():
    # Training sessions, in time order: A=[3,4,5], B=[4,6], C=[7,8], D=[3,6,3].
    knn = VSkNN(10, SkNNConfig(k=2, sample_size=0, weighting="div", idf_weighting=0.0))
    knn.fit(batch([3, 4, 5], [4, 6], [7, 8], [3, 6, 3]))
    # Prefix [3, 4]: weights 3 -> 1/2, 4 -> 1. sim(A) = 1.5, sim(B) = 1, sim(D) = 0.5, C shares nothing.
    sessions, similarity = knn.neighbours(np.array([3, 4]))
    assert sessions.tolist() == [0, 1] and similarity.tolist() == pytest.approx([1.5, 1.0])
    scores = knn.score([np.array([3, 4])])[0]
    # A adds 1.5 to 3, 4, 5; B adds 1 to 4, 6.
    assert scores.tolist() == pytest.approx([0, 0, 0, 1.5, 2.5, 1.5, 1.0, 0, 0, 0])
    # Repeated items keep the weight of their most recent position: [4, 3, 4] -> 4: 1, 3: 1/2.
    assert knn.neighbours(np.array([4, 3, 4]))[1].tolist() == pytest.approx([1.5, 1.0])
    # Ties: the more recent session first (D and A both hold 3 only... A also 4): prefix [3] -> D, A (1.0 each).
    assert knn.neighbours(np.array([3]))[0].tolist() == [3, 0]
    assert knn.score([np.array([9])])[0].sum() == 0.0  # unknown item: no neighbour, all zero


def test_vsknn_sampling_idf_and_incremental_fit():
    knn = VSkNN(10, SkNNConfig(k=10, sample_size=2, weighting="same", idf_weighting=1.0))
    knn.fit(batch([3, 4], [3, 5], times=[5, 1]))  # fit sorts by start time: [3,5] is session 0
    knn.fit(batch([3, 6], [7, 8]))
    assert knn.n_sessions == 4
    # Item 3 is in 3 of 4 sessions: idf log(4/3); sample_size 2 keeps the 2 most recent: [3,4] (1), [3,6] (2).
    sessions, similarity = knn.neighbours(np.array([3]))
    assert sorted(sessions.tolist()) == [1, 2]
    assert similarity == pytest.approx([1 + math.log(4 / 3)] * 2)
    expected = np.array([2.0, 1.0, 0.0, 1.0]) * (1 + math.log(4 / 3))
    assert knn.score([np.array([3])])[0][[3, 4, 5, 6]] == pytest.approx(expected)


def test_vsknn_errors():
    for kwargs, message in [({"k": 0}, "k must be >= 1"), ({"sample_size": -1}, "sample_size must be >= 0"),
                            ({"weighting": "x"}, "weighting must be one of"),
                            ({"idf_weighting": -1.0}, "idf_weighting must be >= 0")]:
        with pytest.raises(ValueError, match=message):
            SkNNConfig(**kwargs)
    with pytest.raises(ValueError, match="n_items must be >= 1"):
        VSkNN(0)
    knn = VSkNN(5)
    with pytest.raises(ValueError, match="item code 5 is outside the catalogue of 5 items"):
        knn.fit(batch([3, 5]))
    knn.fit(batch([3, 4]))
    with pytest.raises(ValueError, match=r"history item codes must be in \[0, 5\)"):
        knn.neighbours(np.array([3, 9]))
    assert VSkNN(5).neighbours(np.array([3]))[0].size == 0  # nothing fitted yet


# --------------------------------------------------------------------------------------------------
# The protocol
# --------------------------------------------------------------------------------------------------
def test_evaluate_scorer_runs_the_incremental_protocol(tmp_path):
    task = tmp_path / "sessions"
    write_split(task / "0001" / "train.parquet", [[3, 4], [3, 4], [5, 6]])
    write_split(task / "0002" / "train.parquet", [[5, 6], [6, 5]])
    write_split(task / "0002" / "test.parquet", [[3, 4], [5, 6]])
    write_split(task / "0003" / "train.parquet", [[3, 4]])
    write_split(task / "0003" / "test.parquet", [[6, 5], [3, 7]])
    records = evaluate_scorer(Popularity(8), task, eval_split="test", batch_size=1)
    # Window 1 -> 2: counts 3:2 4:2 5:1 6:1 (ties by lower code): ranks of 4 -> 2, of 6 -> 4.
    first = records[0]
    assert (first["train_window"], first["eval_window"], first["n_rows"]) == (1, 2, 2)
    assert first["recall@20"] == 1.0
    assert first["ndcg@20"] == pytest.approx((1 / math.log2(3) + 1 / math.log2(5)) / 2)
    assert first["mrr@20"] == pytest.approx((1 / 2 + 1 / 4) / 2)
    # Window 2 -> 3, history = windows 1 and 2: 3:2 4:2 5:3 6:3: 5 ranks 1, the unseen 7 ranks 8.
    second = records[1]
    assert second["mrr@20"] == pytest.approx((1 / 1 + 1 / 8) / 2)
    knn = evaluate_scorer(VSkNN(8), task, windows="1:2", eval_split="test")
    # The prefix item ties with the target in every neighbour and has the lower code: rank 2.
    assert len(knn) == 1 and knn[0]["recall@20"] == 1.0 and knn[0]["mrr@20"] == 0.5
    with pytest.raises(ValueError, match="eval_split must be one of"):
        evaluate_scorer(Popularity(8), task, eval_split="dev")
    with pytest.raises(ValueError, match="batch_size must be >= 1"):
        evaluate_scorer(Popularity(8), task, batch_size=0)
    with pytest.raises(FileNotFoundError, match="0002/valid.parquet is missing"):
        evaluate_scorer(Popularity(8), task, eval_split="valid")
