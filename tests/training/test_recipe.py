"""Next-item training recipes: the preset's ``recipe`` block, which flags a run may override, and
``t4r-dmt tune --task next-item`` tuning the recipe with the model at once."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from log_fixtures import session_events

from t4r_dmt.commands import tune
from t4r_dmt.commands.tune import TuneArguments
from t4r_dmt.model.next_item import NextItemConfig, RecipeConfig
from t4r_dmt.presets import load_preset, preset_names
from t4r_dmt.search_space import parse_space
from t4r_dmt.training.arguments import DataArguments, RunTrainingArguments, resolve_recipe

RECIPE = {"learning_rate": 0.004, "num_train_epochs": 3, "per_device_train_batch_size": 32, "weight_decay": 0.05,
          "lr_scheduler_type": "cosine"}


@pytest.fixture(scope="module")
def sessions_dir(tmp_path_factory) -> Path:
    from t4r_dmt.preprocess.sessions import write_sessions

    root = tmp_path_factory.mktemp("recipe")
    write_sessions(session_events(n_days=3, sessions_per_day=30), root / "sessions", window="1d")
    return root


def tiny(**kwargs) -> NextItemConfig:
    return NextItemConfig(**{"name": "tiny_gru", "transformer": "gru", "n_head": 1, "d_model": 16, "n_layer": 1,
                             "dropout": 0.0, **kwargs})


# ------------------------------------------------------------------------- the config
def test_recipe_round_trips_and_is_left_out_at_its_default():
    config = tiny(recipe=RecipeConfig(**RECIPE))
    data = config.to_dict()
    assert data["recipe"] == RECIPE
    assert NextItemConfig.from_dict(data) == config
    plain = tiny().to_dict()
    # Absent at their defaults: a config saved before the recipes existed round-trips unchanged.
    assert not {"recipe", "rtd_sample_from_batch", "search_space"} & set(plain)
    assert RecipeConfig().training_arguments() == {"weight_decay": 0.0}
    assert RecipeConfig(**RECIPE).training_arguments() == RECIPE


@pytest.mark.parametrize("recipe, message", [
    ({"learning_rate": 0}, r"recipe.learning_rate must be a number > 0 or null; got 0"),
    ({"num_train_epochs": -1}, r"recipe.num_train_epochs must be a number > 0"),
    ({"per_device_train_batch_size": 0}, r"per_device_train_batch_size must be an integer >= 1 or null; got 0"),
    ({"per_device_train_batch_size": 1.5}, r"per_device_train_batch_size must be an integer"),
    ({"weight_decay": -0.1}, r"recipe.weight_decay must be a finite number >= 0; got -0.1"),
    ({"lr_scheduler_type": "cyclic"}, r"recipe.lr_scheduler_type must be one of .*'cosine'.* got 'cyclic'"),
    ({"lr": 0.1}, r"unknown next-item config key\(s\) \['lr'\] in config.recipe"),
])
def test_recipe_errors(recipe, message):
    with pytest.raises(ValueError, match=message):
        NextItemConfig.from_dict({**tiny().to_dict(), "recipe": recipe})


def test_search_space_paths_must_name_fields():
    with pytest.raises(ValueError, match=r"'recipe.lr' names no field \('lr' is not in recipe"):
        tiny(search_space={"recipe.lr": {"low": 1e-4, "high": 1e-2, "log": True}})
    with pytest.raises(ValueError, match="rtd_sample_from_batch must be true or false"):
        tiny(rtd_sample_from_batch="yes")


def test_every_next_item_preset_carries_a_recipe_and_a_space_of_the_paper_knobs():
    names = preset_names("next_item")
    assert len(names) >= 12
    for name in names:
        preset = load_preset(name)
        recipe = preset.recipe
        assert recipe.learning_rate == 0.005 and recipe.per_device_train_batch_size == 128, name
        assert recipe.num_train_epochs == (10 if preset.masking == "clm" else 20), name
        paths = {d.path for d in parse_space(preset.search_space)}
        assert {"recipe.learning_rate", "recipe.weight_decay", "label_smoothing", "input_dropout"} <= paths, name
        assert ("mlm_probability" in paths) == (preset.masking in ("mlm", "rtd")), name
        assert ("rtd_discriminator_weight" in paths) == (preset.masking == "rtd"), name


# ------------------------------------------------------------------------- run flags vs the preset
def test_a_run_flag_wins_over_the_preset_and_the_preset_over_the_defaults():
    unset = RunTrainingArguments(output_dir="x", report_to=[])
    assert (unset.learning_rate, unset.num_train_epochs, unset.per_device_train_batch_size) == (1e-3, 1.0, 256)
    assert unset.lr_scheduler_type == "linear" and unset.weight_decay is None
    resolve_recipe(unset, RECIPE)
    assert (unset.learning_rate, unset.num_train_epochs, unset.per_device_train_batch_size) == (0.004, 3, 32)
    assert unset.lr_scheduler_type == "cosine" and unset.weight_decay == 0.05
    given = RunTrainingArguments(output_dir="x", report_to=[], learning_rate=0.02, weight_decay=0.0,
                                 lr_scheduler_type="constant")
    resolve_recipe(given, RECIPE)
    assert (given.learning_rate, given.weight_decay, given.lr_scheduler_type) == (0.02, 0.0, "constant")
    assert (given.num_train_epochs, given.per_device_train_batch_size) == (3, 32)  # not given: the preset's
    bare = RunTrainingArguments(output_dir="x", report_to=[])
    resolve_recipe(bare, RecipeConfig().training_arguments())  # a preset without a recipe: the defaults
    assert (bare.learning_rate, bare.num_train_epochs, bare.weight_decay) == (1e-3, 1.0, 0.0)


def test_a_run_trains_with_the_preset_recipe_and_records_it(sessions_dir, tmp_path):
    from t4r_dmt.commands.train import run

    config = tiny(recipe=RecipeConfig(learning_rate=0.003, num_train_epochs=1, per_device_train_batch_size=8,
                                      weight_decay=0.01))
    run(DataArguments(data=str(sessions_dir), out=str(tmp_path / "run"), task="next-item", windows="1:2"),
        RunTrainingArguments(output_dir=str(tmp_path / "run" / "trainer"), report_to=[], seed=1,
                             disable_tqdm=True, num_train_epochs=2), config)
    training = json.loads((tmp_path / "run" / "config.json").read_text())["training"]
    assert (training["learning_rate"], training["per_device_train_batch_size"], training["weight_decay"]) == \
        (0.003, 8, 0.01)
    assert training["num_train_epochs"] == 2  # given by the run


# ------------------------------------------------------------------------- tune --task next-item
def test_tune_next_item_tunes_the_recipe_with_ndcg_as_objective(sessions_dir, tmp_path, monkeypatch):
    preset = tmp_path / "tiny_gru.json"
    data = dataclasses.asdict(tiny(recipe=RecipeConfig(num_train_epochs=1, per_device_train_batch_size=16)))
    data["search_space"] = {"recipe.learning_rate": {"low": 1e-3, "high": 1e-2, "log": True},
                            "label_smoothing": {"low": 0.0, "high": 0.3}}
    preset.write_text(json.dumps(data))
    seen: list[tuple[float, float]] = []
    real = tune.run_train

    def recording(data_args, training_args, config, on_window):
        def record(window):
            used = json.loads((Path(data_args.out) / "config.json").read_text())["training"]
            seen.append((config.recipe.learning_rate, used["learning_rate"]))
            on_window(window)
        return real(data_args, training_args, config, record)

    monkeypatch.setattr(tune, "run_train", recording)
    args = TuneArguments(trials=2, pruner="none")
    summary = tune.run(DataArguments(data=str(sessions_dir), out=str(tmp_path / "study"), config=str(preset),
                                     task="next-item", eval_split="valid"),
                       RunTrainingArguments(output_dir="unused", report_to=[], seed=3, disable_tqdm=True), args)
    assert summary["objective"] == ["ndcg@20"] and summary["complete"] == 2
    # Each trial trained with the learning rate it sampled (the preset's recipe, not the run's default).
    assert len(seen) == 4 and all(trial == used and 1e-3 <= used <= 1e-2 for trial, used in seen)
    tuned = load_preset(str(tmp_path / "study" / "tiny_gru_tuned.json"))
    assert isinstance(tuned, NextItemConfig) and tuned.name == "tiny_gru_tuned"
    assert tuned.recipe.learning_rate == summary["best_params"]["recipe.learning_rate"]
    assert tuned.label_smoothing == summary["best_params"]["label_smoothing"]
    assert 0.0 <= summary["best_value"] <= 1.0
