"""Tiny ranking data following the preprocessing contract, with a planted, learnable signal.

`write_ranking_fixture(root)` writes what ``t4r-dmt preprocess`` writes under ``DIR/ranking/``:

* ``root/schema.pbtxt``: the Merlin schema with the contract's tags (``behavior_{b}``, ``bias``, TARGET ...),
* ``root/0001/train.parquet``, ``valid.parquet``, ``test.parquet``, ``root/0002/...``: one row per impression.

Planted truth (so a model that reads the click sequence can learn what one without it cannot):
an impression is clicked with probability ``p_hit`` when the target item's category equals the category of
one of the user's last ``recent`` clicked items, else ``p_miss``; that probability is multiplied by a
position-bias factor ``1 / (1 + 0.3 * position)``. A clicked impression is ordered with probability 0.5 when
the target brand appears in the user's order sequence, else 0.1. Users with no click history (new users)
click with probability ``p_miss``. Each sequence has its aligned ``{b}_time_gap_bucket_seq`` (random log2
bucket codes, oldest event the largest; no signal is planted in them) unless ``with_time_gaps`` is off, as in
data preprocessed before those columns existed.

Encoded ids follow NVTabular's Categorify convention: 0 padding, 1 null, 2 OOV, 3+ values.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from merlin.schema import ColumnSchema, Schema, Tags
from merlin.schema.io.tensorflow_metadata import TensorflowMetadata

from t4r_dmt.schema import BEHAVIORS, INTERACTION_TAG, TIME_GAP_BUCKETS

NEIGHBORS = 6  # 3 items above + 3 below
DENSE = ("user_click_count_7d", "item_price_norm")
#: A user-candidate interaction feature (tagged ``interaction``, as ``Interactions`` writes them).
INTERACTION = "click_category_seq_hits"
FIRST_CODE = 3


@dataclass(frozen=True)
class FixtureSpec:
    """Sizes of the synthetic ranking data (all tiny by default)."""

    requests_per_window: int = 60
    items_per_request: int = 8
    n_users: int = 40
    n_items: int = 60
    n_categories: int = 8
    n_brands: int = 6
    lengths: dict[str, int] = field(default_factory=lambda: {"click": 8, "cart": 4, "order": 4})
    recent: int = 3
    p_hit: float = 0.8
    p_miss: float = 0.05
    new_user_share: float = 0.1
    with_bias: bool = True
    with_time_gaps: bool = True


@dataclass(frozen=True)
class RankingFixture:
    """Where the fixture lives and its schema."""

    root: Path
    schema: Schema
    schema_path: Path
    windows: list[Path]

    def path(self, window: int, split: str = "train") -> str:
        return str(self.windows[window - 1] / f"{split}.parquet")


def item_category(item: np.ndarray | int, spec: FixtureSpec) -> np.ndarray:
    return FIRST_CODE + (np.asarray(item) - FIRST_CODE) % spec.n_categories


def item_brand(item: np.ndarray | int, spec: FixtureSpec) -> np.ndarray:
    return FIRST_CODE + ((np.asarray(item) - FIRST_CODE) * 7 + 1) % spec.n_brands


def _sequence(rng: np.random.Generator, interests: np.ndarray, n: int, spec: FixtureSpec) -> np.ndarray:
    """``n`` item codes whose categories are drawn from ``interests``."""
    items = np.arange(FIRST_CODE, FIRST_CODE + spec.n_items)
    pool = items[np.isin(item_category(items, spec), interests)]
    return rng.choice(pool, size=n).astype(np.int64)


def make_window(window: int, spec: FixtureSpec, seed: int) -> pd.DataFrame:
    """One window of impressions, ``requests_per_window * items_per_request`` rows."""
    rng = np.random.default_rng([seed, window])
    cats = np.arange(FIRST_CODE, FIRST_CODE + spec.n_categories)
    rows: list[dict[str, object]] = []
    for r in range(spec.requests_per_window):
        user = int(rng.integers(0, spec.n_users))
        urng = np.random.default_rng([seed, window, r, 7])
        interests = urng.choice(cats, size=2, replace=False)
        new_user = urng.random() < spec.new_user_share
        seqs: dict[str, np.ndarray] = {}
        for b in BEHAVIORS:
            n = 0 if new_user else int(urng.integers(1, spec.lengths[b] + 1))
            seqs[b] = _sequence(urng, interests, n, spec)
        # Their own generator, so the other columns stay what they were before time gaps existed.
        grng = np.random.default_rng([seed, window, r, 11])
        gaps = {b: np.sort(grng.integers(1, TIME_GAP_BUCKETS, size=len(seqs[b])))[::-1].astype(np.int64)
                for b in BEHAVIORS}
        recent_cats = set(item_category(seqs["click"][-spec.recent:], spec).tolist())
        order_brands = set(item_brand(seqs["order"], spec).tolist())
        # Half the candidates come from the user's interests, so positives are not rare.
        half = spec.items_per_request // 2
        candidates = np.concatenate([
            _sequence(rng, interests, half, spec),
            rng.integers(FIRST_CODE, FIRST_CODE + spec.n_items, size=spec.items_per_request - half),
        ])
        rng.shuffle(candidates)
        cand_cats = item_category(candidates, spec)
        for pos, item in enumerate(candidates):
            cat = int(cand_cats[pos])
            p = spec.p_hit if cat in recent_cats else spec.p_miss
            click = int(rng.random() < p / (1.0 + 0.3 * pos))
            brand = int(item_brand(item, spec))
            order = int(click and rng.random() < (0.5 if brand in order_brands else 0.1))
            neighbors = [int(cand_cats[j]) if 0 <= j < len(candidates) else 0
                         for j in (pos - 3, pos - 2, pos - 1, pos + 1, pos + 2, pos + 3)]
            row: dict[str, object] = {
                "request_id": window * 100_000 + r,
                "window": window,
                "product_id": int(item) * 11,
                "user_id": FIRST_CODE + user,
                "item_id": int(item),
                "item_category": cat,
                "item_brand": brand,
                "user_click_count_7d": (len(seqs["click"]) - 4.0) / 3.0,
                "item_price_norm": float(np.sin(int(item))),
                INTERACTION: float(np.sum(item_category(seqs["click"], spec) == cat)) - 1.0,
                "click": click,
                "order": order,
            }
            for b in BEHAVIORS:
                row[f"{b}_item_id_seq"] = seqs[b]
                row[f"{b}_category_seq"] = item_category(seqs[b], spec).astype(np.int64)
                row[f"{b}_brand_seq"] = item_brand(seqs[b], spec).astype(np.int64)
                if spec.with_time_gaps:
                    row[f"{b}_time_gap_bucket_seq"] = gaps[b]
            if spec.with_bias:
                row["position_index"] = pos + 1
                row["position_page"] = pos // 4 + 1
                row["neighbor_category_seq"] = np.asarray(neighbors, dtype=np.int64)
            rows.append(row)
    frame = pd.DataFrame(rows)
    for name in (*DENSE, INTERACTION):
        frame[name] = frame[name].astype(np.float32)
    return frame


def ranking_schema(spec: FixtureSpec) -> Schema:
    """The Merlin schema of the preprocessed ranking output, tagged as the contract says."""
    last_item = FIRST_CODE + spec.n_items - 1
    last_cat = FIRST_CODE + spec.n_categories - 1
    last_brand = FIRST_CODE + spec.n_brands - 1

    def cat(name: str, tags: list, last: int, length: int | None = None) -> ColumnSchema:
        props = {"domain": {"min": 0, "max": last, "name": name}}
        if length is None:
            return ColumnSchema(name, dtype=np.int64, tags=tags, properties=props)
        return ColumnSchema(name, dtype=np.int64, tags=tags, properties=props, dims=(None, (0, length)))

    cols = [
        ColumnSchema("request_id", dtype=np.int64),
        ColumnSchema("window", dtype=np.int64),
        ColumnSchema("product_id", dtype=np.int64),
        cat("user_id", [Tags.CATEGORICAL, Tags.USER, Tags.USER_ID, Tags.ID], FIRST_CODE + spec.n_users - 1),
        cat("item_id", [Tags.CATEGORICAL, Tags.ITEM, Tags.ITEM_ID, Tags.ID], last_item),
        cat("item_category", [Tags.CATEGORICAL, Tags.ITEM], last_cat),
        cat("item_brand", [Tags.CATEGORICAL, Tags.ITEM], last_brand),
    ]
    seq_tags = [Tags.CATEGORICAL, Tags.LIST, Tags.SEQUENCE, Tags.ITEM]
    for b in BEHAVIORS:
        n = spec.lengths[b]
        cols += [
            cat(f"{b}_item_id_seq", [*seq_tags, f"behavior_{b}"], last_item, n),
            cat(f"{b}_category_seq", [*seq_tags, f"behavior_{b}"], last_cat, n),
            cat(f"{b}_brand_seq", [*seq_tags, f"behavior_{b}"], last_brand, n),
        ]
        if spec.with_time_gaps:
            cols.append(cat(f"{b}_time_gap_bucket_seq", [Tags.CATEGORICAL, Tags.LIST, Tags.SEQUENCE, f"behavior_{b}"],
                            TIME_GAP_BUCKETS - 1, n))
    if spec.with_bias:
        cols += [
            cat("position_index", [Tags.CATEGORICAL, "bias"], spec.items_per_request),
            cat("position_page", [Tags.CATEGORICAL, "bias"], (spec.items_per_request - 1) // 4 + 1),
            ColumnSchema("neighbor_category_seq", dtype=np.int64, tags=[Tags.CATEGORICAL, Tags.LIST, "bias"],
                         properties={"domain": {"min": 0, "max": last_cat, "name": "neighbor_category_seq"}},
                         dims=(None, (NEIGHBORS, NEIGHBORS))),
        ]
    cols += [ColumnSchema(name, dtype=np.float32, tags=[Tags.CONTINUOUS]) for name in DENSE]
    cols.append(ColumnSchema(INTERACTION, dtype=np.float32, tags=[Tags.CONTINUOUS, INTERACTION_TAG]))
    target_tags = [Tags.TARGET, Tags.BINARY_CLASSIFICATION, Tags.BINARY, Tags.CLASSIFICATION]
    cols += [ColumnSchema(name, dtype=np.int64, tags=target_tags) for name in ("click", "order")]
    return Schema(cols)


def _valid_side(request_id: int) -> bool:
    return hashlib.md5(str(request_id).encode()).digest()[0] % 2 == 0


def write_ranking_fixture(
    root: Path, n_windows: int = 2, spec: FixtureSpec | None = None, seed: int = 0
) -> RankingFixture:
    """Write ``root/schema.pbtxt`` and ``root/{0001..}/{train,valid,test}.parquet``."""
    spec = spec or FixtureSpec()
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    schema = ranking_schema(spec)
    TensorflowMetadata.from_merlin_schema(schema).to_proto_text_file(str(root))
    windows = []
    for w in range(1, n_windows + 1):
        folder = root / f"{w:04d}"
        folder.mkdir(exist_ok=True)
        frame = make_window(w, spec, seed)[schema.column_names]
        valid = frame["request_id"].map(_valid_side)
        frame.to_parquet(folder / "train.parquet", index=False)
        frame[valid].to_parquet(folder / "valid.parquet", index=False)
        frame[~valid].to_parquet(folder / "test.parquet", index=False)
        windows.append(folder)
    return RankingFixture(root=root, schema=schema, schema_path=root / "schema.pbtxt", windows=windows)


def load_schema(path: Path) -> Schema:
    """Read a ``schema.pbtxt`` folder back into a Merlin schema."""
    return TensorflowMetadata.from_proto_text_file(str(path)).to_merlin_schema()


TINY_MODEL = {
    "transformer": {"d_model": 16, "d_ff": 32, "n_heads": 2},
    "embeddings": {"item_dim": 8, "category_dim": 4, "brand_dim": 4},
    "multitask": {"expert_units": [32, 16], "tower_units": [8], "num_experts": 2},
    "bias": {"units": [8]},
}


def tiny_config(**overrides: object):  # -> t4r_dmt.model.DMTConfig (imported lazily: torch is heavy)
    """A DMTConfig small enough for tests; ``overrides`` replace top-level keys (nested dicts merge)."""
    from t4r_dmt.model import DMTConfig

    data: dict[str, object] = {key: dict(value) for key, value in TINY_MODEL.items()}
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(data.get(key), dict):
            data[key] = {**data[key], **value}  # type: ignore[dict-item]
        else:
            data[key] = value
    return DMTConfig.from_dict(data)


def loader_batches(fixture: RankingFixture, path: str, batch_size: int, max_sequence_length: int,
                   shuffle: bool = False) -> list[tuple[dict, dict]]:
    """Materialised (inputs, targets) batches from T4R's merlin data loader, as tr.Trainer feeds them."""
    from transformers4rec.torch.utils.data_utils import MerlinDataLoader

    loader = MerlinDataLoader.from_schema(fixture.schema, path, batch_size=batch_size,
                                          max_sequence_length=max_sequence_length, shuffle=shuffle)
    return [(dict(x), dict(y)) for x, y in loader]
