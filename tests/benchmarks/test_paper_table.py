"""benchmarks/paper_table.py: RelaImpr, the table layout, and one tiny end-to-end run."""

from __future__ import annotations

import importlib.util
import json
import math
import os
import sys
from pathlib import Path
from types import ModuleType

import pytest
from model_fixtures import write_ranking_fixture
from paths import BENCHMARKS

SCRIPT = BENCHMARKS / "paper_table.py"


@pytest.fixture(scope="module")
def paper_table() -> ModuleType:
    spec = importlib.util.spec_from_file_location("paper_table", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["paper_table"] = module  # the spawned workers of --jobs import it by name
    spec.loader.exec_module(module)
    return module


def test_summary_and_markdown(paper_table: ModuleType) -> None:
    runs = {
        "dnn": [{"auc_click": 0.6, "auc_order": 0.7, "ndcg@10": 0.3}, {"auc_click": 0.62, "auc_order": 0.7,
                                                                       "ndcg@10": 0.3}],
        "dmt": [{"auc_click": 0.65, "auc_order": 0.75, "ndcg@10": 0.4, "spearman": 0.99, "max_log_ratio": 0.1,
                 "relevance_ndcg@10": 0.8, "relevance_auc": 0.71, "promoted_overrating@10": 0.01}] * 2,
        "dmt_no_bias": [{"auc_click": 0.64, "auc_order": math.nan, "ndcg@10": 0.4, "spearman": math.nan,
                         "relevance_ndcg@10": 0.7}] * 2,
    }
    result = paper_table.summarise(runs, seeds=2, epochs=1.0, data="x")
    dmt = result["presets"]["dmt"]
    assert dmt["auc_click"] == {"mean": pytest.approx(0.65), "std": 0.0}
    expected = ((0.15 / 0.1 - 1) * 100 + (0.15 / 0.12 - 1) * 100) / 2
    assert dmt["relaimpr_click"]["mean"] == pytest.approx(expected)
    assert result["tables"] == {"table1": ["dnn", "dmt"], "gbdt": [], "behaviors": [], "multitask": [],
                                "bias": ["dmt_no_bias", "dmt"]}
    md = paper_table.markdown(result)
    assert "| DMT | 0.6500 ± 0.0000 | 0.7500 ± 0.0000 | 0.4000 ± 0.0000 | 37.50% ± 17.68% |" in md
    assert "| none | 0.6400 ± 0.0000 | n/a |" in md
    assert ("Spearman (position curve) | max abs log ratio | NDCG@10 vs true relevance | AUC vs relevance oracle |"
            " promoted over-rating@10 |" in md)
    assert "0.990 ± 0.000 | 0.100 ± 0.000 | 0.8000 ± 0.0000 | 0.7100 ± 0.0000 | 0.0100 ± 0.0000 |" in md
    (none,) = [line for line in md.splitlines() if line.startswith("| none |")]
    assert none.endswith("| n/a | n/a | 0.7000 ± 0.0000 | n/a | n/a |")  # no curve without a tower; not promotion data
    assert "**Table 5: bias features** (2 seed(s))" in md and "| DMT: additive scalar per position / page, observation dropout 0.1 |" in md  # from the preset
    assert "GBDT ablation" not in md  # no GBDT variant ran


def test_relaimpr_pairs_runs_by_seed(paper_table: ModuleType) -> None:
    """An ablation run over the first seeds only is compared with DNN's runs of those seeds."""
    runs = {
        "dnn": [{"seed": 0, "auc_click": 0.6, "auc_order": 0.7, "ndcg@10": 0.3},
                {"seed": 1, "auc_click": 0.7, "auc_order": 0.7, "ndcg@10": 0.3}],
        "dmt_click": [{"seed": 0, "auc_click": 0.65, "auc_order": 0.7, "ndcg@10": 0.3}],
        "gbdt_current_window": [{"seed": 1, "auc_click": 0.8, "auc_order": 0.7, "ndcg@10": 0.3},
                                {"seed": 0, "auc_click": 0.6, "auc_order": 0.7, "ndcg@10": 0.3}],
    }
    result = paper_table.summarise(runs, seeds=2, epochs=1.0, data="x")
    assert result["presets"]["dmt_click"]["relaimpr_click"]["mean"] == pytest.approx(50.0)
    assert result["presets"]["gbdt_current_window"]["relaimpr_click"]["mean"] == pytest.approx(25.0)
    assert "seed" not in result["presets"]["dnn"]
    assert result["tables"]["gbdt"] == ["gbdt_current_window", "dnn"]
    md = paper_table.markdown(result)
    assert "**Table 4a: behaviour sequences** (1 seed(s))" in md and "| click | 0.6500 ± 0.0000 |" in md
    assert "| GBDT, window t only | 0.7000 ± 0.1414 |" in md


def test_benchmark_runs_at_tiny_size(paper_table: ModuleType, tmp_path: Path) -> None:
    data = tmp_path / "data"
    write_ranking_fixture(data / "ranking", n_windows=2)
    out = tmp_path / "out"
    result = paper_table.run_benchmark(("gbdt", "dnn"), seeds=1, data=data, out=out, work=tmp_path / "work")
    saved = json.loads((out / "paper_table.json").read_text())
    assert saved["tables"]["table1"] == ["gbdt", "dnn"] and saved["seeds"] == 1
    for preset in ("gbdt", "dnn"):
        row = result["presets"][preset]
        assert 0.0 <= row["auc_click"]["mean"] <= 1.0 and row["seeds"] == 1
        assert "spearman" not in row  # no truth/ beside preprocessed data
    assert result["presets"]["dnn"]["relaimpr_click"]["mean"] == 0.0
    md = (out / "paper_table.md").read_text()
    assert md.splitlines()[0].startswith("Data: ")
    assert "| model | AUC click | AUC order | NDCG@10 | RelaImpr click | RelaImpr order |" in md
    assert "| GBDT |" in md and "| DNN |" in md and "Table 5" not in md
    # A second call with the same --work reuses the finished runs.
    again = paper_table.run_benchmark(("gbdt",), seeds=1, data=data, out=out, work=tmp_path / "work")
    assert again["presets"]["gbdt"]["auc_click"] == result["presets"]["gbdt"]["auc_click"]


def test_parse_synth_types_each_value_as_its_synth_argument(paper_table: ModuleType) -> None:
    parsed = paper_table.parse_synth(["policy=promotion", "promoted_share=0.2", "users=300", "latent_pool=max"])
    assert parsed == {"policy": "promotion", "promoted_share": 0.2, "users": 300, "latent_pool": "max"}
    assert isinstance(parsed["users"], int) and isinstance(parsed["promoted_share"], float)
    for bad in ("seed=3", "policy", "nope=1"):
        with pytest.raises(ValueError, match="--synth .*: expected KEY=VALUE, KEY one of users, items"):
            paper_table.parse_synth([bad])
    assert paper_table.parse_preprocess(["ctr_position_debias=true", "window=12h"]) == {
        "ctr_position_debias": True, "window": "12h"}
    assert paper_table.parse_preprocess(["ctr_position_debias=False"]) == {"ctr_position_debias": False}
    with pytest.raises(ValueError, match="ctr_position_debias takes true or false"):
        paper_table.parse_preprocess(["ctr_position_debias=yes"])
    with pytest.raises(ValueError, match="--preprocess 'out=x': expected KEY=VALUE"):
        paper_table.parse_preprocess(["out=x"])


def test_benchmark_errors(paper_table: ModuleType, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="--synth / --preprocess describe the generated data"):
        paper_table.run_benchmark(("dnn",), seeds=1, data=tmp_path, out=tmp_path, synth={"policy": "promotion"})
    with pytest.raises(ValueError, match="unknown preset"):
        paper_table.run_benchmark(("nope",), seeds=1, out=tmp_path)
    with pytest.raises(ValueError, match="--seeds and --jobs must be >= 1"):
        paper_table.run_benchmark(("dnn",), seeds=0, out=tmp_path)
    with pytest.raises(ValueError, match="--ablation_seeds in 1..seeds"):
        paper_table.run_benchmark(("dnn",), seeds=1, ablation_seeds=2, out=tmp_path)
    with pytest.raises(FileNotFoundError, match="schema.pbtxt is missing"):
        paper_table.run_benchmark(("dnn",), seeds=1, data=tmp_path, out=tmp_path)


def test_restrict_behaviors_trims_schema_and_configs(paper_table: ModuleType, tmp_path: Path) -> None:
    from t4r_dmt.presets import load_preset
    from t4r_dmt.run_folder import load_schema

    data = tmp_path / "data"
    write_ranking_fixture(data / "ranking", n_windows=2)
    view, configs = paper_table.restrict_behaviors(data, ("click",), ("gbdt", "dmt"), tmp_path / "work")
    names = set(load_schema(view / "ranking").column_names)
    assert "click_item_id_seq" in names and not {"cart_item_id_seq", "order_brand_seq"} & names
    assert (view / "ranking" / "0001" / "train.parquet").exists()
    assert configs["gbdt"] == "gbdt" and load_preset(configs["dmt"]).behaviors == ["click"]
    with pytest.raises(ValueError, match="--behaviors must name some of"):
        paper_table.restrict_behaviors(data, ("view",), ("dmt",), tmp_path / "work2")


def test_pool_workers_use_their_share_of_the_cores(paper_table: ModuleType,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """``--jobs N`` workers run on ``cpu_count // N`` threads each (torch's default, one per core in every
    worker, oversubscribes the machine)."""
    import torch

    before = torch.get_num_threads()
    monkeypatch.setenv("OMP_NUM_THREADS", "8")
    monkeypatch.setenv("MKL_NUM_THREADS", "8")
    try:
        paper_table._use_threads(1)
        assert torch.get_num_threads() == 1
        assert os.environ["OMP_NUM_THREADS"] == os.environ["MKL_NUM_THREADS"] == "1"
    finally:
        torch.set_num_threads(before)


def test_tuning_trials_train_with_the_reported_recipe(paper_table: ModuleType, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """Equal budget means the same recipe: a neural preset's trials choose their epochs by early stopping, as its
    reported runs do, and replay the same windows; GBDT refits and gets neither. Every preset without a tuned preset yet gets a study."""
    import t4r_dmt.commands.tune as tune

    seen: dict[str, tuple[float, float, int, bool, int, str]] = {}

    def fake_run(data_args, training_args, tune_args):  # type: ignore[no-untyped-def]
        seen[data_args.config] = (training_args.early_stopping_tail, training_args.num_train_epochs,
                                  training_args.replay_windows, training_args.carry_optimizer,
                                  training_args.early_stopping_metric, tune_args.trials, data_args.windows)
        return {"preset": data_args.config, "best_value": 0.75}

    monkeypatch.setattr(tune, "run", fake_run)
    monkeypatch.setattr(tune, "collect", lambda summary, work, tuned: tuned / f"{summary['preset']}_tuned.json")
    recipe = paper_table.Recipe(early_stopping_tail=0.1, max_epochs=3, replay_windows=2, carry_optimizer=True,
                                early_stopping_metric="click_order")
    records = paper_table.run_jobs(
        [(tmp_path, p, 2, "1:3", tmp_path / "tuned", tmp_path / p, recipe) for p in ("gbdt", "dnn", "dmt")],
        1, paper_table._tune)
    assert seen == {"gbdt": (0.0, 1.0, 0, False, "click_order", 2, "1:3"),
                    "dnn": (0.1, 3, 2, True, "click_order", 2, "1:3"),
                    "dmt": (0.1, 3, 2, True, "click_order", 2, "1:3")}
    assert records == [{"best_value": 0.75, "trials": 2.0}] * 3


def test_the_recipe_scores_the_tail_with_the_bias_for_neural_presets_only(paper_table: ModuleType) -> None:
    recipe = paper_table.Recipe(early_stopping_tail=0.1, early_stopping_with_bias=True)
    assert recipe.training("dmt_bias_monotone", 1.0)["early_stopping_with_bias"] is True
    assert recipe.training("gbdt", 1.0)["early_stopping_with_bias"] is False
    assert paper_table.Recipe(early_stopping_tail=0.1).training("dmt", 1.0)["early_stopping_with_bias"] is False
