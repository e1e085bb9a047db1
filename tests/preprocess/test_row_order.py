"""The preprocess output does not depend on the order of the input rows: events of one user in the same
second are taken in one canonical order (event type, then item, then the other columns), and sessions are
numbered by their first event, so shuffled logs give byte-identical files."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from t4r_dmt.preprocess import command
from t4r_dmt.preprocess.arguments import PreprocessArguments
from t4r_dmt.synth.command import SynthArguments
from t4r_dmt.synth.command import run as synth

# Files that differ between any two runs on the same input: they record the time of the run (stats.json's
# timings, metadata.json's timestamp), its scratch paths (workflow.pkl, schema.pbtxt's cat_path) or
# Python's set order (schema.pbtxt's tags). They are compared with those parts removed.
VOLATILE = {"stats.json", "metadata.json", "workflow.pkl", "schema.pbtxt"}


def _files(root: Path) -> dict[str, Path]:
    return {str(p.relative_to(root)): p for p in sorted(root.rglob("*")) if p.is_file()}


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _stable(path: Path) -> object:
    """The parts of a volatile file that must not change."""
    if path.name == "stats.json":
        stats = json.loads(path.read_text())
        stats.pop("timings")
        return stats
    if path.name == "metadata.json":
        meta = json.loads(path.read_text())
        meta.pop("generated_timestamp")
        return meta
    if path.name == "schema.pbtxt":
        text = re.sub(r'string_value: "[^"]*"', "", path.read_text())
        return sorted(text.splitlines())
    return None  # workflow.pkl: the fitted statistics it holds are in the files compared above


@pytest.fixture(scope="module")
def logs(tmp_path_factory):
    root = tmp_path_factory.mktemp("order")
    synth(SynthArguments(out=str(root / "synth"), users=150, items=80, days=3, requests_per_day=80, list_length=10))
    events = pd.read_parquet(root / "synth" / "events.parquet")
    assert events.duplicated(["user_id", "event_time"], keep=False).sum() > 20  # same-second events to order
    return root


def _preprocess(events: Path, impressions: Path, out: Path) -> None:
    command.run(PreprocessArguments(events=str(events), impressions=str(impressions), out=str(out),
                                    events_per_bucket=1000))


def test_shuffled_input_gives_byte_identical_output(logs, tmp_path):
    _preprocess(logs / "synth" / "events.parquet", logs / "synth" / "impressions.parquet", tmp_path / "a")
    rng = np.random.default_rng(5)
    for name in ("events", "impressions"):
        frame = pd.read_parquet(logs / "synth" / f"{name}.parquet")
        frame.iloc[rng.permutation(len(frame))].to_parquet(tmp_path / f"{name}.parquet", index=False)
    _preprocess(tmp_path / "events.parquet", tmp_path / "impressions.parquet", tmp_path / "b")
    a, b = _files(tmp_path / "a"), _files(tmp_path / "b")
    assert a.keys() == b.keys()
    data = [name for name in a if Path(name).name not in VOLATILE]
    assert len(data) > 30 and any(name.startswith("sessions/0003/") for name in data)
    assert [name for name in data if _digest(a[name]) != _digest(b[name])] == []
    assert [name for name in a if Path(name).name in VOLATILE and _stable(a[name]) != _stable(b[name])] == []


def test_same_second_events_are_ordered_by_event_type_then_item():
    from t4r_dmt.data import canonical_order

    t = pd.Timestamp("2020-01-01 10:00:00")
    events = pd.DataFrame({
        "event_time": [t, t, t, t - pd.Timedelta(seconds=1), t, t],
        "event_type": ["purchase", "view", "view", "view", "cart", "view"],
        "product_id": [5, 9, 3, 7, 1, 3],
        "category_id": [1, 1, 1, 1, 1, 1],
        "category_code": [None] * 6,
        "brand": ["b", "a", "z", "a", "a", None],
        "price": [1.0, 1.0, 1.0, 1.0, 1.0, 1.0],
        "user_id": [1, 1, 1, 1, 1, 1],
        "user_session": ["s"] * 6,
    })
    order = canonical_order(events)
    assert events.iloc[order][["event_type", "product_id", "brand"]].values.tolist() == [
        ["view", 7, "a"], ["view", 3, None], ["view", 3, "z"], ["view", 9, "a"], ["cart", 1, "a"],
        ["purchase", 5, "b"]]


def test_canonical_order_does_not_depend_on_the_row_order():
    from t4r_dmt.data import canonical_order

    rng = np.random.default_rng(0)
    n = 400
    events = pd.DataFrame({
        "event_time": pd.Timestamp("2020-01-01") + pd.to_timedelta(rng.integers(0, 5, n), unit="s"),
        "event_type": rng.choice(["view", "cart", "purchase", "remove_from_cart"], n),
        "product_id": rng.integers(0, 3, n),
        "category_id": rng.integers(0, 2, n),
        "category_code": rng.choice(np.array(["a.b", None], dtype=object), n),
        "brand": rng.choice(np.array(["x", "y", None], dtype=object), n),
        "price": rng.choice([1.0, np.nan], n),
        "user_id": rng.integers(0, 2, n),
        "user_session": rng.choice(["s1", "s2"], n),
    })
    expected = events.iloc[canonical_order(events)].reset_index(drop=True)
    for seed in range(3):
        shuffled = events.sample(frac=1, random_state=seed).reset_index(drop=True)
        pd.testing.assert_frame_equal(shuffled.iloc[canonical_order(shuffled)].reset_index(drop=True), expected)
