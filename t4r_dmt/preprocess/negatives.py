"""Ranking rows from events alone, by sampled negatives (logs without an impression log).

Scheme (most public e-commerce logs, e.g. REES46, record what users did, not what they were shown):

* every ``view`` event is a request: user u viewed item i at time t;
* its positive candidate is i with ``click = 1`` and ``order = 1`` iff u purchased i later in the same
  session (a ``purchase`` event with the same ``user_session`` and product at or after t);
* K negatives (``negatives``, default 4) are drawn from the items viewed in the same window, with
  probability proportional to their view counts in that window, without repetition inside a request
  and never the positive itself; ``click = order = 0``;
* requests are numbered 1, 2, ... in (time, user, item) order (then the canonical tie-break of
  :func:`t4r_dmt.data.canonical_order`); all candidates share the request time t,
  so the as-of rule (strictly before t) keeps the positive view itself out of every feature;
* there are no list positions: ``position_index``, ``position_page`` and ``neighbor_category_seq`` are
  absent and no column carries the "bias" tag (the bias tower is off);
* the sampler is seeded by ``(seed, window)``: the rows do not depend on the number of workers.

Caveats: a negative is "not viewed", not "shown and skipped"; sampling by popularity makes popular
items frequent negatives, so item popularity alone predicts clicks less well than in a real log.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from t4r_dmt.data.canonical import canonical_rank
from t4r_dmt.errors import InputError
from t4r_dmt.preprocess.candidates import CandidateFiles, check_windows, item_hour_counts, write_window
from t4r_dmt.preprocess.lists import to_numpy
from t4r_dmt.windows import assign_windows

_MAX_REDRAWS = 50


def sampled_windows(
    events: pd.DataFrame,
    window: str,
    negatives: int,
    seed: int,
    folder: Path,
    n_buckets: int,
    source: str = "events",
    rank: np.ndarray | None = None,
) -> CandidateFiles:
    """Build and write the candidate rows of every window from ``view`` events (``rank``: the events'
    :func:`~t4r_dmt.data.canonical.canonical_rank`, computed when not given)."""
    rank = canonical_rank(events) if rank is None else rank
    views = np.flatnonzero(events["event_type"].to_numpy() == "view")
    if len(views) == 0:
        raise InputError(source, "there are no 'view' events to build ranking requests from", column="event_type")
    time = to_numpy(events["event_time"])[views]
    user = events["user_id"].to_numpy(np.int64)[views]
    item = events["product_id"].to_numpy(np.int64)[views]
    order = np.argsort(rank[views], kind="stable")  # (time, user, item, then the rest): independent of row order
    views, time, user, item = views[order], time[order], user[order], item[order]
    ordered = _ordered_later(events, views, time)
    numbers, starts = assign_windows(time, window)
    check_windows(numbers, starts, source, "view events")
    files = CandidateFiles(window_starts=[str(s) for s in starts])
    bounds = np.searchsorted(numbers, np.arange(1, len(starts) + 2))  # views are in time order
    for w in range(1, len(starts) + 1):
        rows = np.arange(bounds[w - 1], bounds[w])
        frame, dropped = _window_candidates(
            request_id=rows + 1, user=user[rows], time=time[rows], item=item[rows],
            ordered=ordered[rows], window=w, negatives=negatives, rng=np.random.default_rng([seed, w]),
        )
        for reason, n in dropped.items():
            files.dropped[reason] = files.dropped.get(reason, 0) + n
        path = folder / f"window-{w:04d}.parquet"
        files.buckets[w] = write_window(frame, path, n_buckets)
        files.paths[w] = path
        files.item_hours.append(item_hour_counts(frame))
    return files


def _ordered_later(events: pd.DataFrame, views: np.ndarray, view_time: np.ndarray) -> np.ndarray:
    """1 where the viewing user purchased the viewed item at or after the view, in the same session.

    ``views`` are row positions of the view events in ``events``, ``view_time`` their times.
    """
    purchases = np.flatnonzero(events["event_type"].to_numpy() == "purchase")
    if len(purchases) == 0:
        return np.zeros(len(views), dtype=np.int64)
    last = (
        pd.DataFrame({"key": _session_item_key(events, purchases), "ts": to_numpy(events["event_time"])[purchases]})
        .groupby("key")["ts"]
        .max()
    )
    position = pd.Index(last.index.to_numpy()).get_indexer(_session_item_key(events, views))
    found = position >= 0
    last_time = np.where(found, last.to_numpy()[np.maximum(position, 0)], np.iinfo(np.int64).min)
    return (found & (last_time >= view_time)).astype(np.int64)


def _session_item_key(events: pd.DataFrame, rows: np.ndarray) -> np.ndarray:
    keys = pd.DataFrame(
        {"s": events["user_session"].to_numpy(object)[rows], "p": events["product_id"].to_numpy(np.int64)[rows]}
    )
    return pd.util.hash_pandas_object(keys, index=False).to_numpy()


def _window_candidates(
    request_id: np.ndarray,
    user: np.ndarray,
    time: np.ndarray,
    item: np.ndarray,
    ordered: np.ndarray,
    window: int,
    negatives: int,
    rng: np.random.Generator,
) -> tuple[pd.DataFrame, dict[str, int]]:
    """Positives and their sampled negatives for one window's requests (arrays of shape (R,))."""
    pool, counts = np.unique(item, return_counts=True)
    k = min(negatives, len(pool) - 1)
    dropped: dict[str, int] = {}
    if k < negatives:
        dropped["negatives not drawn (window has too few distinct items)"] = len(item) * (negatives - k)
    sampled = np.zeros((len(item), 0), dtype=np.int64)
    keep = np.zeros((len(item), 0), dtype=bool)
    if k > 0:
        sampled, keep = _draw(pool, counts / counts.sum(), item, k, rng)
        if (~keep).any():
            dropped["negatives not drawn (no distinct item found)"] = int((~keep).sum())
    n_neg = keep.sum(axis=1)
    frame = pd.DataFrame(
        {
            "request_id": np.r_[request_id, np.repeat(request_id, n_neg)],
            "user_id": np.r_[user, np.repeat(user, n_neg)],
            "request_ts": np.r_[time, np.repeat(time, n_neg)],
            "product_id": np.r_[item, sampled[keep]],
            "window": np.full(len(item) + int(n_neg.sum()), window, dtype=np.int64),
            "click": np.r_[np.ones(len(item), np.int64), np.zeros(int(n_neg.sum()), np.int64)],
            "order": np.r_[ordered, np.zeros(int(n_neg.sum()), np.int64)],
        }
    )
    return frame, dropped


def _draw(
    pool: np.ndarray, prob: np.ndarray, positive: np.ndarray, k: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """(R, k) negatives by popularity, redrawn where they hit the positive or repeat within the row."""
    sampled = rng.choice(pool, size=(len(positive), k), p=prob)
    bad = _collisions(sampled, positive)
    for _ in range(_MAX_REDRAWS):
        if not bad.any():
            break
        sampled[bad] = rng.choice(pool, size=int(bad.sum()), p=prob)
        bad = _collisions(sampled, positive)
    return sampled, ~bad


def _collisions(sampled: np.ndarray, positive: np.ndarray) -> np.ndarray:
    bad = sampled == positive[:, None]
    for j in range(1, sampled.shape[1]):
        bad[:, j] |= (sampled[:, :j] == sampled[:, j : j + 1]).any(axis=1)
    return bad
