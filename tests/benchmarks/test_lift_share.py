"""benchmarks/lift_share.py: the share of the oracle's AUC lift, per seed, from a paper_table work folder."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from paths import load_benchmark


def _module():
    return load_benchmark("lift_share")


def test_shares_per_seed(tmp_path: Path) -> None:
    for seed, (oracle_click, oracle_order, click, order) in enumerate([(0.8, 0.9, 0.77, 0.8), (0.75, 0.85, 0.7, 0.8)]):
        truth = tmp_path / f"seed{seed}" / "raw" / "truth"
        run = tmp_path / f"seed{seed}" / "runs" / "dmt"
        truth.mkdir(parents=True)
        run.mkdir(parents=True)
        (truth / "oracle.json").write_text(json.dumps({"auc_click_relevance_oracle": oracle_click,
                                                       "auc_order_relevance_oracle": oracle_order - 0.05,
                                                       "auc_order_oracle": oracle_order}))
        (run / "record.json").write_text(json.dumps({"auc_click": click, "auc_order": order}))
    out = _module().lift_shares(tmp_path, "dmt", 2)
    assert out["share_click"] == pytest.approx([0.27 / 0.3, 0.2 / 0.25])
    assert out["share_order"] == pytest.approx([0.3 / 0.35, 0.3 / 0.3])
    assert out["share_order_with_position"] == pytest.approx([0.3 / 0.4, 0.3 / 0.35])
    assert out["auc_click"] == [0.77, 0.7]
    with pytest.raises(FileNotFoundError, match="seed2"):
        _module().lift_shares(tmp_path, "dmt", 3)


def test_an_oracle_file_without_the_order_relevance_oracle_is_refused(tmp_path: Path) -> None:
    truth = tmp_path / "seed0" / "raw" / "truth"
    truth.mkdir(parents=True)
    (truth / "oracle.json").write_text(json.dumps({"auc_click_relevance_oracle": 0.8, "auc_order_oracle": 0.9}))
    with pytest.raises(KeyError, match=r"seed0/raw/truth/oracle.json has no auc_order_relevance_oracle"):
        _module().lift_shares(tmp_path, "dmt", 1)
