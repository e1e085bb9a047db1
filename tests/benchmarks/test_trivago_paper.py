"""A Trivago log through ``t4r-dmt preprocess --format trivago`` and the paper benchmark.

Trivago has no brands (every brand is null), no carts and no orders. Two failures this guards against:
the shared Categorify wrote no ``unique.brand.parquet`` for an all-null brand column (so the ranking
preprocess failed), and the merlin loader fails with ``KeyError: 0`` on a batch whose cart / order lists are
empty in every row (so training failed unless the benchmark dropped those sequences).
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pandas as pd
import pytest
from merlin.schema.io.tensorflow_metadata import TensorflowMetadata
from paths import BENCHMARKS

SCRIPT = BENCHMARKS / "paper_table.py"
DAY = 86_400
START = 1_541_548_800  # 2018-11-07 00:00 UTC


def trivago_log(n_users: int = 48, n_items: int = 40, seed: int = 0) -> pd.DataFrame:
    """Two days of sessions: item interactions, then a clickout on a list of 8 (clicks favour the top)."""
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(n_users):
        t = START + (u % 2) * DAY + int(rng.integers(0, DAY - 3_600))
        step = 0
        for _ in range(2):
            seen = rng.integers(1, n_items + 1, size=int(rng.integers(1, 4)))
            for item in seen:
                step += 1
                t += 30
                rows.append([f"U{u}", f"S{u}_{step}", t, step, "interaction item image", str(item), "", ""])
            shown = rng.permutation(np.arange(1, n_items + 1))[:8]
            shown[:2] = seen[:2] if len(seen) >= 2 else shown[:2]
            clicked = int(shown[min(int(rng.geometric(0.4)) - 1, 7)])
            step += 1
            t += 30
            rows.append([f"U{u}", f"S{u}_{step}", t, step, "clickout item", str(clicked),
                         "|".join(map(str, shown)), "|".join(str(int(p)) for p in rng.integers(20, 200, size=8))])
    frame = pd.DataFrame(rows, columns=["user_id", "session_id", "timestamp", "step", "action_type", "reference",
                                        "impressions", "prices"])
    frame[["impressions", "prices"]] = frame[["impressions", "prices"]].replace("", None)
    for column in ("platform", "city", "device", "current_filters"):
        frame[column] = None
    return frame


@pytest.fixture(scope="module")
def trivago_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from t4r_dmt.preprocess.arguments import PreprocessArguments
    from t4r_dmt.preprocess.command import run as preprocess

    root = tmp_path_factory.mktemp("trivago")
    trivago_log().to_parquet(root / "train.parquet", index=False)
    preprocess(PreprocessArguments(events=str(root / "train.parquet"), format="trivago", out=str(root / "data"),
                                   with_sessions=False))
    return root / "data"


def test_trivago_preprocess_encodes_the_null_brands(trivago_data: Path) -> None:
    brands = pd.read_parquet(trivago_data / "workflow" / "categories" / "unique.brand.parquet")
    assert brands.empty
    rows = pd.concat([pd.read_parquet(p) for p in sorted(trivago_data.glob("ranking/*/train.parquet"))])
    assert len(rows) > 0 and (rows["item_brand"] == 1).all()  # 1 = null
    assert {v for values in rows["click_brand_seq"] for v in values} <= {1}
    assert rows["cart_item_id_seq"].map(len).max() == 0 and rows["order"].max() == 0
    schema = TensorflowMetadata.from_proto_text_file(str(trivago_data / "ranking")).to_merlin_schema()
    assert schema["item_brand"].int_domain.max == 2


@pytest.fixture(scope="module")
def paper_table() -> ModuleType:
    spec = importlib.util.spec_from_file_location("paper_table", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["paper_table"] = module
    spec.loader.exec_module(module)
    return module


def test_paper_table_trains_on_trivago_with_every_behaviour(trivago_data: Path, paper_table: ModuleType,
                                                            tmp_path: Path) -> None:
    # No --behaviors: the cart and order sequences stay in, empty in every row.
    result = paper_table.run_benchmark(("gbdt", "dnn"), seeds=1, data=trivago_data, out=tmp_path / "out",
                                       work=tmp_path / "work", windows="1:2")
    assert result["windows"] == "1:2" and result["presets"]["dnn"]["relaimpr_click"]["mean"] == 0.0
    for preset in ("gbdt", "dnn"):
        row = result["presets"][preset]
        assert 0.0 <= row["auc_click"]["mean"] <= 1.0
        assert np.isnan(row["auc_order"]["mean"])  # no orders: click task only
    md = (tmp_path / "out" / "paper_table.md").read_text()
    assert "windows 1:2;" in md.splitlines()[0] and "| DNN |" in md and "| n/a |" in md
