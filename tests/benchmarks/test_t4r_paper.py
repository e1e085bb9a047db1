"""benchmarks/t4r_paper.py at a tiny size: raw logs -> session windows -> baselines and T4R models -> the table."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest
from log_fixtures import session_events
from paths import ROOT

from t4r_dmt.errors import InputError
from t4r_dmt.presets import load_preset

ROOT = ROOT


def _load_benchmark():
    spec = importlib.util.spec_from_file_location("t4r_paper_benchmark", ROOT / "benchmarks" / "t4r_paper.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve their module by name
    spec.loader.exec_module(module)
    return module


bench = _load_benchmark()


@pytest.fixture(scope="module")
def events_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("raw") / "events.parquet"
    session_events(n_days=2, sessions_per_day=40).to_parquet(path)
    return path


def test_tiny_benchmark_writes_the_table(events_file, tmp_path):
    from t4r_dmt.baselines import Popularity, catalogue_size, evaluate_scorer
    from t4r_dmt.run_folder import load_schema

    args = bench.BenchmarkArguments(data=str(events_file), format="rees46", dataset="yoochoose", out=str(tmp_path),
                                    work=str(tmp_path / "t4r_paper_work"),
                                    models=["popularity", "v-sknn", "gru_clm", "xlnet_clm"], seeds=1, max_steps=2,
                                    min_eval_sessions=5)
    results = bench.run(args)
    assert results["windows"] == "1:2" and results["eval_split"] == "test"
    assert results["sessions"] == {"train": 80, "eval": 40}
    models = results["models"]
    assert list(models) == ["popularity", "v-sknn", "gru_clm", "xlnet_clm"]
    assert models["popularity"]["seeds"] == [42] and models["gru_clm"]["seeds"] == [42]
    # The baseline row is exactly the protocol's output.
    task_dir = tmp_path / "t4r_paper_work" / "data" / "sessions"
    expected = evaluate_scorer(Popularity(catalogue_size(load_schema(task_dir))), task_dir, "1:2", "test")
    assert models["popularity"]["mean"]["ndcg@20"] == pytest.approx(np.mean([w["ndcg@20"] for w in expected]))
    assert models["popularity"]["std"]["ndcg@20"] == 0.0
    for model in models.values():
        for seed_average in model["per_seed"]:
            assert 0.0 <= seed_average["mrr@20"] <= seed_average["ndcg@20"] <= seed_average["recall@20"] <= 1.0
    gru = models["gru_clm"]
    assert gru["mean"] == gru["per_seed"][0] and gru["std"]["ndcg@20"] == 0.0
    # The results record the training arguments the runs used (here capped at 2 steps), not the bare recipe.
    recipe = load_preset("gru_clm").recipe
    assert gru["training"] == {**recipe.training_arguments(), "max_steps": 2}
    assert gru["training"]["learning_rate"] == 0.005 and gru["training"]["num_train_epochs"] == 10
    # The run used the preset's recipe (no flag of its own): config.json records the resolved arguments.
    used = json.loads((tmp_path / "t4r_paper_work" / "runs" / "gru_clm" / "seed42" / "config.json").read_text())
    assert used["training"]["learning_rate"] == 0.005 and used["training"]["per_device_train_batch_size"] == 128
    assert models["v-sknn"]["training"] == {}
    goal = results["goal"]
    assert goal["best_transformer"] == "xlnet_clm" and goal["gru_ndcg@20"] == gru["mean"]["ndcg@20"]
    assert goal["gain"] == pytest.approx(models["xlnet_clm"]["mean"]["ndcg@20"] / gru["mean"]["ndcg@20"] - 1)
    saved = json.loads((tmp_path / "t4r_paper_yoochoose.json").read_text())
    assert saved["models"]["v-sknn"]["mean"] == pytest.approx(models["v-sknn"]["mean"])
    assert saved["paper"]["xlnet_rtd"]["ndcg@20"] == 0.3776
    table = (tmp_path / "t4r_paper_yoochoose.md").read_text()
    assert table == results["table"]
    assert "| Baselines | GRU (CLM) | " in table and "0.3442 (GRU4Rec)" in table
    assert f"| Transformers (item id only) | XLNet (CLM) | {models['xlnet_clm']['mean']['ndcg@20']:.4f} | " in table
    assert (tmp_path / "t4r_paper_work" / "runs" / "xlnet_clm" / "seed42" / "metrics.json").exists()


def test_summarise_averages_over_time_then_over_seeds():
    seed_a = [{"eval_window": 2, "ndcg@20": 0.2, "recall@20": 0.4, "mrr@20": 0.1},
              {"eval_window": 3, "ndcg@20": 0.4, "recall@20": 0.6, "mrr@20": 0.3}]
    seed_b = [{"eval_window": 2, "ndcg@20": 0.1, "recall@20": 0.2, "mrr@20": 0.1},
              {"eval_window": 3, "ndcg@20": 0.3, "recall@20": 0.4, "mrr@20": 0.1}]
    # --report_from 3: only the windows after the tuning ones count.
    late = bench.summarise([seed_a, seed_b], report_from=3)
    assert late["per_seed"][0] == pytest.approx({"ndcg@20": 0.4, "recall@20": 0.6, "mrr@20": 0.3})
    assert late["mean"] == pytest.approx({"ndcg@20": 0.35, "recall@20": 0.5, "mrr@20": 0.2})
    with pytest.raises(ValueError, match=r"--report_from 4: no evaluation window at or after it \(evaluated: \[2, 3\]"):
        bench.summarise([seed_a], report_from=4)
    summary = bench.summarise([seed_a, seed_b])
    assert summary["per_seed"][0] == pytest.approx({"ndcg@20": 0.3, "recall@20": 0.5, "mrr@20": 0.2})
    assert summary["mean"] == pytest.approx({"ndcg@20": 0.25, "recall@20": 0.4, "mrr@20": 0.15})
    assert summary["std"] == pytest.approx({"ndcg@20": 0.05, "recall@20": 0.1, "mrr@20": 0.05})
    model = {"mean": summary["mean"], "std": summary["std"], "per_seed": summary["per_seed"]}
    assert bench._cell(model, "ndcg@20") == "0.2500 ± 0.0500"
    models = {"gru_clm": {"group": bench.GROUPS[0], "mean": {"ndcg@20": 0.2}},
              "xlnet_mlm": {"group": bench.GROUPS[1], "mean": {"ndcg@20": 0.21}},
              "gpt2_clm": {"group": bench.GROUPS[1], "mean": {"ndcg@20": 0.23}}}
    assert bench.goal(models) == pytest.approx({"best_transformer": "gpt2_clm", "best_ndcg@20": 0.23,
                                                "gru_ndcg@20": 0.2, "gain": 0.15, "met": True})
    assert bench.goal({"gpt2_clm": models["gpt2_clm"]}) == {}


def test_preprocessed_input_and_window_selection(events_file, tmp_path):
    from t4r_dmt.preprocess.sessions import write_sessions

    write_sessions(session_events(n_days=4, sessions_per_day=12), tmp_path / "prep" / "sessions", window="1d")
    args = bench.BenchmarkArguments(data=str(tmp_path / "prep"), out=str(tmp_path / "out"))
    data_dir, stats = bench.prepare_sessions(args)
    assert data_dir == tmp_path / "prep" and stats == {"source": "preprocessed", "path": str(tmp_path / "prep")}
    task_dir = data_dir / "sessions"
    assert bench.default_windows(task_dir, "test", 1) == "1:4"
    with pytest.raises(ValueError, match="no two consecutive windows with >= 100 test sessions; use a longer"):
        bench.default_windows(task_dir, "test", 100)


def test_default_windows_keep_the_longest_run_of_full_windows(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    # Sessions per window: 9, 1, 8, 7, 9, 2 -> with a minimum of 5: runs [1] and [3, 4, 5] -> "3:5".
    for window, count in enumerate([9, 1, 8, 7, 9, 2], start=1):
        folder = tmp_path / f"{window:04d}"
        folder.mkdir()
        pq.write_table(pa.table({"item_id-list": [[3, 4]] * count}), folder / "test.parquet")
    assert bench.default_windows(tmp_path, "test", 5) == "3:5"
    assert bench.default_windows(tmp_path, "test", 1) == "1:6"
    with pytest.raises(ValueError, match="no two consecutive windows with >= 9 test sessions"):
        bench.default_windows(tmp_path, "test", 9)


def test_effective_training_applies_the_overrides():
    recipe = load_preset("xlnet_mlm").recipe.training_arguments()
    assert recipe == {"learning_rate": 0.005, "num_train_epochs": 20, "per_device_train_batch_size": 128,
                      "weight_decay": 0.0, "lr_scheduler_type": "linear"}
    plain = bench.BenchmarkArguments(data="x")
    assert bench.effective_training("xlnet_mlm", plain) == {**recipe, "max_steps": -1}
    overridden = bench.BenchmarkArguments(data="x", epochs=3, max_steps=7)
    training = bench.effective_training("xlnet_mlm", overridden)
    assert training["num_train_epochs"] == 3 and training["max_steps"] == 7
    assert training["learning_rate"] == recipe["learning_rate"]
    assert load_preset("xlnet_mlm").recipe.num_train_epochs == 20  # the preset itself is left as it was
    assert bench.effective_training("popularity", overridden) == {}


@pytest.mark.parametrize("kwargs, message", [
    ({"models": ["lstm"]}, r"unknown models \['lstm'\]"),
    ({"models": []}, "unknown models"),
    ({"seeds": 0}, "--seeds must be >= 1"),
    ({"eval_split": "train"}, "--eval_split must be valid or test"),
    ({"min_eval_sessions": 0}, "--min_eval_sessions must be >= 1"),
])
def test_argument_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        bench.BenchmarkArguments(data="x", **kwargs)


def test_arguments_defaults_and_missing_data(tmp_path):
    args = bench.BenchmarkArguments(data="x", out=str(tmp_path), models=["popularity", "side"])
    assert args.models == ["popularity", *bench.SIDE_INFO_MODELS] and args.dataset == "yoochoose"
    # The default work folder is the git-ignored runs/ of the repository, never the committed results folder.
    assert args.work == str(bench.ROOT / "runs" / "t4r_paper_yoochoose")
    assert not Path(args.work).is_relative_to(tmp_path)
    assert "runs/" in (bench.ROOT / ".gitignore").read_text().splitlines()
    assert bench.DEFAULT_MODELS[:3] == ["popularity", "v-sknn", "gru_clm"]
    with pytest.raises(InputError, match="nothing: --data: no such file, folder or glob match"):
        bench.prepare_sessions(bench.BenchmarkArguments(data=str(tmp_path / "nothing"), out=str(tmp_path)))


def test_tuned_rows_run_the_study_presets(events_file, tmp_path):
    from t4r_dmt.presets import load_preset

    tuned = tmp_path / "tuned"
    with pytest.raises(FileNotFoundError, match=r"no tuned preset .*gru_clm_tuned.json.*--tune_trials N"):
        bench.BenchmarkArguments(data=str(events_file), models=["popularity", "gru_clm"], tuned=str(tuned))
    preset = load_preset("gru_clm").to_dict()
    preset.update(name="gru_clm_tuned", d_model=32, recipe={**preset["recipe"], "learning_rate": 0.002})
    tuned.mkdir()
    (tuned / "gru_clm_tuned.json").write_text(json.dumps(preset))
    args = bench.BenchmarkArguments(data=str(events_file), format="rees46", dataset="yoochoose", out=str(tmp_path),
                                    work=str(tmp_path / "work"), models=["popularity", "gru_clm"], seeds=1,
                                    max_steps=1, min_eval_sessions=5, tuned=str(tuned), report_from=2)
    results = bench.run(args)
    gru = results["models"]["gru_clm"]
    assert gru["tuned"] == str(tuned / "gru_clm_tuned.json")
    assert gru["training"]["learning_rate"] == 0.002
    used = json.loads((tmp_path / "work" / "runs" / "gru_clm" / "seed42" / "config.json").read_text())
    assert used["model"] == "gru_clm_tuned" and used["config"]["d_model"] == 32
    assert used["training"]["learning_rate"] == 0.002
    assert (tmp_path / "t4r_paper_yoochoose_tuned.md").read_text().startswith("**yoochoose**")
    assert "averaged over evaluation windows >= 2), tuned presets" in results["table"]
    with pytest.raises(ValueError, match="--report_from must be >= 0|--report_from >= 0"):
        bench.BenchmarkArguments(data=str(events_file), report_from=-1)


def test_tune_trials_tune_every_neural_row_at_the_same_budget_first(events_file, tmp_path):
    with pytest.raises(ValueError, match="--tune_trials N .* and --tune_windows A:B go together"):
        bench.BenchmarkArguments(data=str(events_file), tune_trials=2)
    args = bench.BenchmarkArguments(data=str(events_file), format="rees46", dataset="yoochoose", out=str(tmp_path),
                                    work=str(tmp_path / "work"), models=["popularity", "gru_clm"], seeds=1,
                                    max_steps=1, min_eval_sessions=5, tune_trials=2, tune_windows="1:2")
    assert args.tuned == str(tmp_path / "work" / "tuned")
    results = bench.run(args)
    tuned = tmp_path / "work" / "tuned"
    study = json.loads((tuned / "gru_clm_study.json").read_text())
    assert study["trials"] == 2 and study["objective"] == ["ndcg@20"] and study["windows"] == "1:2"
    assert (tuned / "gru_clm_optimization_history.png").stat().st_size > 1000
    best = load_preset(str(tuned / "gru_clm_tuned.json"))
    assert best.recipe.learning_rate == study["best_params"]["recipe.learning_rate"]
    assert results["models"]["gru_clm"]["training"]["learning_rate"] == best.recipe.learning_rate
    assert results["tune_trials"] == 2 and not (tuned / "popularity_tuned.json").exists()
    # The table carries the tuning record: the preset's own value (trial 0) beside the best.
    assert study["start_value"] is not None and study["best_value"] >= study["start_value"]
    assert "| GRU (CLM) | 2 (0) | " + f"{study['start_value']:.4f} | {study['best_value']:.4f} | " in results["table"]
    if study["best_trial"] == 0:
        assert "nothing (the preset won)" in results["table"]
    # --resume reuses the finished run of the same preset, windows, split and seed; another config is redone.
    run_dir = tmp_path / "work" / "runs" / "gru_clm" / "seed42"
    assert bench.same_run(run_dir, best.to_dict(), "1:2", "test", 42)
    assert not bench.same_run(run_dir, best.to_dict(), "1:2", "test", 43)
    assert not bench.same_run(run_dir, {**best.to_dict(), "d_model": 8}, "1:2", "test", 42)
    assert not bench.same_run(tmp_path / "nowhere", best.to_dict(), "1:2", "test", 42)
    checkpoint = run_dir / "checkpoints" / "window_0001" / "model.pt"
    stamp = checkpoint.stat().st_mtime_ns
    again = bench.run(dataclasses.replace(args, resume=True, tune_trials=0, tune_windows=""))
    assert checkpoint.stat().st_mtime_ns == stamp  # not trained again
    assert again["models"]["gru_clm"]["mean"] == results["models"]["gru_clm"]["mean"]
    assert "| Baselines | GRU (CLM) | " in again["table"] and again["table"].count(" | — |\n") >= 1  # no run time


def test_differs_ignores_the_clipping_of_trial_zero():
    assert not bench._differs(0.0, 1e-6) and not bench._differs(0.005, 0.005)
    assert bench._differs(0.005, 0.0055) and bench._differs(64, 128) and bench._differs(False, True)
