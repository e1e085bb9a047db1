"""``t4r-dmt tune`` and the preset search spaces: parsing, the study's files, pruning, and every error path."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest
from model_fixtures import FixtureSpec, tiny_config, write_ranking_fixture

from t4r_dmt.baselines.ranking.gbdt import GBDTConfig
from t4r_dmt.commands import tune
from t4r_dmt.commands.tune import TuneArguments, objective_value
from t4r_dmt.presets import load_preset, preset_names
from t4r_dmt.search_space import apply_params, parse_space, start_params
from t4r_dmt.training.arguments import DataArguments, RunTrainingArguments


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("prep")
    write_ranking_fixture(root / "ranking", n_windows=3, spec=FixtureSpec(requests_per_window=40), seed=1)
    return root


def _args(data_dir: Path, out: Path, config: str) -> tuple[DataArguments, RunTrainingArguments]:
    return (DataArguments(data=str(data_dir), out=str(out), config=config),
            RunTrainingArguments(output_dir=str(out / "unused"), report_to=[], seed=3))


# ------------------------------------------------------------------------- search spaces
def test_parse_space_kinds_and_errors():
    dims = parse_space({"a.b": {"low": 1, "high": 8}, "c": {"low": 1e-4, "high": 1e-1, "log": True},
                        "d": {"choices": ["x", "y"]}, "e": {"low": 0.0, "high": 1.0, "step": 0.25}})
    assert [(d.path, d.kind) for d in dims] == [("a.b", "int"), ("c", "float"), ("d", "categorical"), ("e", "float")]
    assert dims[1].log and dims[3].step == 0.25 and dims[2].choices == ("x", "y")
    for space, message in (
        ([1], "must be a JSON object of path"),
        ({"a..b": {"low": 0, "high": 1}}, "dotted field names"),
        ({"a": 3}, "must be a JSON object such as"),
        ({"a": {"low": 0, "high": 1, "scale": 2}}, r"unknown key\(s\) \['scale'\]"),
        ({"a": {"choices": []}}, "'choices' must be a non-empty list"),
        ({"a": {"low": 1, "high": 1}}, "low < high"),
        ({"a": {"low": 0.0, "high": 1.0, "log": True}}, "log scale needs low > 0"),
        ({"a": {"low": 0.1, "high": 1.0, "log": True, "step": 0.1}}, "cannot go with log"),
    ):
        with pytest.raises(ValueError, match=message):
            parse_space(space)


def test_a_preset_search_space_must_name_existing_fields():
    with pytest.raises(ValueError, match=r"'multitask.drop' names no field \('drop' is not in multitask"):
        tiny_config(search_space={"multitask.drop": {"low": 0.0, "high": 0.5}})
    with pytest.raises(ValueError, match="gbdt search_space: 'depth' names no field"):
        GBDTConfig(search_space={"depth": {"low": 2, "high": 8}})
    config = tiny_config(search_space={"multitask.dropout": {"low": 0.0, "high": 0.5}})
    assert config.to_dict()["search_space"] == {"multitask.dropout": {"low": 0.0, "high": 0.5}}
    assert "search_space" not in tiny_config().to_dict()  # absent at its default: old presets round-trip


def test_every_shipped_ranking_model_of_table_1_has_a_search_space():
    for name in ("gbdt", "dnn", "din", "dien", "dmt_trans", "dmt"):
        assert parse_space(load_preset(name).search_space), name
    assert set(preset_names("gbdt", "baseline", "dmt")) >= {"gbdt", "dnn", "dmt"}


def test_apply_params_sets_paths_on_a_copy():
    base = {"a": {"b": 1, "c": 2}, "d": 3}
    assert apply_params(base, {"a.b": 5, "d": 4}) == {"a": {"b": 5, "c": 2}, "d": 4}
    assert base == {"a": {"b": 1, "c": 2}, "d": 3}
    with pytest.raises(ValueError, match="'a.x' names no field"):
        apply_params(base, {"a.x": 1})


def test_start_params_are_the_preset_values_inside_the_space():
    dims = parse_space({"a.rate": {"low": 1e-6, "high": 0.1, "log": True}, "a.n": {"low": 1, "high": 8},
                        "p": {"low": 0.0, "high": 0.5}, "k": {"choices": [2, 4]}, "m": {"choices": ["x"]},
                        "none": {"low": 0.1, "high": 0.2}})
    config = {"a": {"rate": 0.0, "n": 12}, "p": 0.3, "k": 4, "m": "y", "none": None}
    # 0 on a log scale -> low; 12 -> high; in range kept; a choice kept; a value not among the choices and a null
    # are left to the sampler.
    assert start_params(config, dims) == {"a.rate": 1e-6, "a.n": 8, "p": 0.3, "k": 4}


def test_objective_value_skips_missing_and_nan_metrics():
    assert objective_value({"auc_click": 0.7, "auc_order": 0.8}, ["auc_click", "auc_order"]) == pytest.approx(0.75)
    assert objective_value({"auc_click": 0.7, "auc_order": math.nan}, ["auc_click", "auc_order"]) == 0.7
    assert math.isnan(objective_value({"ndcg@10": 0.5}, ["auc_click"]))


# ------------------------------------------------------------------------- the study
def test_tune_gbdt_writes_a_loadable_tuned_preset_and_the_study(data_dir, tmp_path):
    preset = tmp_path / "gbdt_small.json"
    preset.write_text(json.dumps({"name": "gbdt_small", "family": "gbdt", "n_estimators": 10,
                                  "search_space": {"num_leaves": {"low": 4, "high": 16},
                                                   "learning_rate": {"low": 0.02, "high": 0.3, "log": True}}}))
    out = tmp_path / "study"
    summary = tune.run(*_args(data_dir, out, str(preset)), TuneArguments(trials=3, pruner="none"))
    assert (summary["trials"], summary["complete"], summary["pruned"]) == (3, 3, 0)
    trials = pd.read_csv(out / "trials.csv")
    assert len(trials) == 3 and trials["value"].max() == pytest.approx(summary["best_value"])
    tuned = load_preset(str(out / "gbdt_small_tuned.json"))
    assert isinstance(tuned, GBDTConfig) and tuned.name == "gbdt_small_tuned" and tuned.n_estimators == 10
    assert (tuned.num_leaves, tuned.learning_rate) == (summary["best_params"]["num_leaves"],
                                                        summary["best_params"]["learning_rate"])
    assert 4 <= tuned.num_leaves <= 16 and 0.02 <= tuned.learning_rate <= 0.3
    assert 0.5 < summary["best_value"] <= 1.0
    assert (out / "optimization_history.png").stat().st_size > 1000
    assert json.loads((out / "study.json").read_text())["best_params"] == summary["best_params"]
    assert not list(out.glob(".trials-*"))  # trial runs are scratch
    with pytest.raises(FileExistsError, match="exists; pass --overwrite"):
        tune.run(*_args(data_dir, out, str(preset)), TuneArguments(trials=1))


def test_tune_a_neural_preset_reports_every_window(data_dir, tmp_path, monkeypatch):
    preset = tmp_path / "tiny.json"
    preset.write_text(json.dumps(tiny_config(
        name="tiny", search_space={"multitask.dropout": {"low": 0.0, "high": 0.3}}).to_dict()))
    windows: list[int] = []
    real = tune.run_train

    def recording(data_args, training_args, config, on_window):
        assert 0.0 <= config.multitask.dropout <= 0.3
        return real(data_args, training_args, config, lambda r: (windows.append(r["eval_window"]), on_window(r)))

    monkeypatch.setattr(tune, "run_train", recording)
    summary = tune.run(*_args(data_dir, tmp_path / "study", str(preset)), TuneArguments(trials=1))
    assert windows == [2, 3] and summary["complete"] == 1
    # Trial 0 is the preset itself.
    assert summary["best_params"] == {"multitask.dropout": tiny_config().multitask.dropout}
    assert load_preset(str(tmp_path / "study" / "tiny_tuned.json")).multitask.dropout == \
        summary["best_params"]["multitask.dropout"]


def test_the_median_pruner_stops_trials_below_earlier_ones(data_dir, tmp_path, monkeypatch):
    """A fake run whose every window scores the trial's x: trials below the median of earlier ones are pruned
    at their first window, and a pruned trial never becomes the tuned preset."""
    preset = tmp_path / "g.json"
    preset.write_text(json.dumps({"name": "g", "family": "gbdt",
                                  "search_space": {"learning_rate": {"low": 0.01, "high": 1.0}}}))
    windows_run: dict[float, int] = {}

    def fake(data_args, training_args, config, on_window):
        x = config.learning_rate
        for window in (2, 3, 4):
            windows_run[round(x, 9)] = windows_run.get(round(x, 9), 0) + 1
            on_window({"eval_window": window, "auc_click": x, "auc_order": x})
        return {"average": {"auc_click": x, "auc_order": x}}

    monkeypatch.setattr(tune, "run_train", fake)
    summary = tune.run(*_args(data_dir, tmp_path / "study", str(preset)), TuneArguments(trials=12))
    trials = pd.read_csv(tmp_path / "study" / "trials.csv")
    pruned = trials[trials["state"] == "PRUNED"]
    assert summary["pruned"] == len(pruned) > 0
    assert all(windows_run[round(x, 9)] == 1 for x in pruned["params_learning_rate"])  # stopped after one window
    assert sum(n == 3 for n in windows_run.values()) == summary["complete"]
    assert summary["best_value"] == pytest.approx(trials.loc[trials["state"] == "COMPLETE", "value"].max())


def test_tune_errors(data_dir, tmp_path):
    with pytest.raises(ValueError, match="--trials must be >= 1"):
        TuneArguments(trials=0)
    with pytest.raises(ValueError, match="--pruner must be one of"):
        TuneArguments(pruner="hyperband")
    with pytest.raises(ValueError, match="--objective names no metric"):
        TuneArguments(objective=" , ")
    bare = tmp_path / "bare.json"
    bare.write_text(json.dumps({"name": "bare", "family": "gbdt"}))
    with pytest.raises(ValueError, match="preset 'bare' has no search_space to tune"):
        tune.run(*_args(data_dir, tmp_path / "x", str(bare)), TuneArguments(trials=1))
    assert not (tmp_path / "x").exists()
