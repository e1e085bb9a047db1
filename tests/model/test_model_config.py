"""DMTConfig: presets, JSON round trip, and every validation error."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from t4r_dmt.model import DMTConfig, RegularisationConfig
from t4r_dmt.presets import load_preset, preset_dir, preset_names, resolve


def test_every_preset_has_a_json_file_that_round_trips() -> None:
    assert {"dmt", "dmt_no_bias", "dmt_trans", "dmt_shared_bottom", "dmt_single_task"} <= set(preset_names("dmt"))
    for name in preset_names("dmt") + preset_names("baseline"):
        config = load_preset(name)
        assert isinstance(config, DMTConfig)
        assert config.name == name
        assert DMTConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config
        assert resolve(preset_dir() / f"{name}.json") == config.to_dict()  # its base applied


def test_paper_defaults() -> None:
    c = load_preset("dmt")
    t = c.transformer
    assert (t.d_model, t.d_ff, t.n_heads, t.n_layers, t.n_decoder_layers, t.dropout) == (80, 320, 4, 1, 1, 0.1)
    assert t.position_encoding == "learned" and t.encoder == "bert"
    assert c.behaviors == ["click", "cart", "order"]
    assert (c.multitask.kind, c.multitask.num_experts, c.multitask.expert_units, c.multitask.tower_units) == (
        "mmoe", 4, [512, 256, 128], [32])
    # DMT's bias tower debiases (issue 15): zero-started scalars per position and page, additive, without the
    # target's own category, observation dropout 0.1; the paper's MLP tower is dmt_bias_paper.
    b = c.bias
    assert (b.enabled, b.kind, b.form, b.zero_init, b.target_features, b.dropout) == (
        "auto", "scalar", "additive", True, False, 0.0)
    assert (b.lr_multiplier, b.observation_dropout) == (10.0, 0.1)
    paper = load_preset("dmt_bias_paper").bias
    assert (paper.enabled, paper.kind, paper.units, paper.dropout, paper.target_features) == (
        "auto", "mlp", [32, 16], 0.5, True)
    # The one-change variants of DMT share its tower.
    for name in ("dmt_trans", "dmt_click", "dmt_click_cart", "dmt_single_task", "dmt_shared_bottom",
                 "dmt_no_catalogue"):
        assert load_preset(name).bias == b, name
    assert (c.loss.task_weights, c.loss.order_label) == ([1.0, 1.0], "ctcvr")
    assert c.embeddings.token_dim == 80
    assert load_preset("dmt_no_bias").bias.enabled == "off"
    assert load_preset("dmt_trans").multitask.kind == "towers"
    assert load_preset("dmt_shared_bottom").multitask.kind == "shared_bottom"
    assert load_preset("dmt_single_task").multitask.kind == "single_task"
    # The RetailRocket recipe's network: dmt without the catalogue loss, nothing else changed.
    assert c.catalogue.weight == 0.3
    plain = load_preset("dmt_no_catalogue")
    assert plain.catalogue.weight == 0.0 and not plain.search_space
    expected = {k: v for k, v in c.to_dict().items() if k not in ("catalogue", "search_space")}
    assert {k: v for k, v in plain.to_dict().items() if k != "search_space"} == {**expected, "name": "dmt_no_catalogue"}


def test_load_config_from_a_path(tmp_path: Path) -> None:
    path = tmp_path / "mine.json"
    path.write_text(json.dumps({"name": "mine", "family": "dmt", "behaviors": [], "loss": {"order_label": "cvr"}}))
    config = load_preset(path)
    assert (config.name, config.behaviors, config.loss.order_label) == ("mine", [], "cvr")
    assert config.transformer.d_model == 80  # unspecified fields keep their defaults


def test_load_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown preset 'dmtx'"):
        load_preset("dmtx")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_preset(tmp_path / "absent.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        load_preset(bad)


@pytest.mark.parametrize(
    ("data", "match"),
    [
        ({"typo": 1}, r"unknown config key\(s\) \['typo'\] in config;"),
        ({"transformer": {"dmodel": 8}}, r"unknown config key\(s\) \['dmodel'\] in config.transformer"),
        ({"transformer": 3}, "config.transformer must be a JSON object"),
        ({"behaviors": ["click", "click"]}, "behaviors must not repeat"),
        ({"behaviors": ["view"]}, "behaviors entries must be one of click, cart, order; got 'view'"),
        ({"score_weights": [1.0]}, "score_weights needs one value per task"),
        ({"score_weights": [0.0, 0.0]}, "score_weights must be >= 0 with a positive sum"),
        ({"transformer": {"encoder": "lstm"}}, "transformer.encoder must be one of bert, roberta"),
        ({"transformer": {"position_encoding": "sin"}}, "position_encoding must be one of learned, learned_recent, none"),
        ({"transformer": {"time_encoding": "seconds"}},
         "transformer.time_encoding must be one of none, log2_buckets; got 'seconds'"),
        ({"transformer": {"match_features": 1}}, "transformer.match_features must be true or false; got 1"),
        ({"transformer": {"match_features": "true"}}, "transformer.match_features must be true or false"),
        ({"transformer": {"n_heads": 3}}, r"d_model \(80\) must be divisible by n_heads \(3\)"),
        ({"transformer": {"d_ff": 0}}, "transformer.d_ff must be a positive integer"),
        ({"transformer": {"dropout": 1.0}}, r"transformer.dropout must be in \[0, 1\)"),
        ({"transformer": {"hidden_act": "tanh"}}, "hidden_act must be one of relu, gelu"),
        ({"transformer": {"layer_norm_eps": 0}}, "layer_norm_eps must be in"),
        ({"embeddings": {"item_dim": 8}}, "= 40 must equal transformer.d_model = 80"),
        ({"embeddings": {"init_std": -1.0}}, "init_std must be > 0"),
        ({"multitask": {"kind": "ple"}}, "multitask.kind must be one of mmoe, shared_bottom, towers, single"),
        ({"multitask": {"expert_units": []}}, "expert_units must list at least one layer size"),
        ({"multitask": {"expert_units": [8, -1]}}, "expert_units entries must be a positive integer"),
        ({"multitask": {"num_experts": 0}}, "num_experts must be a positive integer"),
        ({"bias": {"enabled": True}}, "bias.enabled must be one of auto, on, off"),
        ({"bias": {"dropout": -0.1}}, r"bias.dropout must be in \[0, 1\)"),
        ({"loss": {"task_weights": [1.0, -1.0]}}, "loss.task_weights must be >= 0"),
        ({"loss": {"pos_weights": [1.0]}}, "loss.pos_weights needs one value > 0 per task"),
        ({"loss": {"order_label": "order"}}, "loss.order_label must be one of ctcvr, cvr"),
        ({"family": "gbdt"}, "family must be one of dmt, baseline; got 'gbdt'"),
        ({"family": "baseline"}, "family 'baseline' does not match interest.kind 'transformer'"),
        ({"family": "dmt", "interest": {"kind": "din"}}, "family 'dmt' does not match interest.kind 'din'"),
        ({"fast_dropout": 1}, "fast_dropout must be true or false; got 1"),
        ({"fast_dropout": "false"}, "fast_dropout must be true or false; got 'false'"),
    ],
)
def test_validation_errors(data: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        DMTConfig.from_dict(data)


def test_fast_dropout_is_explicit_in_every_ranking_preset_and_round_trips() -> None:
    presets = preset_names("dmt") + preset_names("baseline")
    assert len(presets) == 18
    for name in presets:
        assert resolve(preset_dir() / f"{name}.json")["fast_dropout"] is True
        assert load_preset(name).fast_dropout is True
    off = DMTConfig.from_dict({"fast_dropout": False})
    assert off.to_dict()["fast_dropout"] is False
    assert DMTConfig.from_dict(json.loads(json.dumps(off.to_dict()))) == off
    assert DMTConfig().fast_dropout is True  # configs written before the option existed keep their dropout


def test_dmt_presets_turn_time_gaps_and_match_features_on_and_old_configs_keep_them_off() -> None:
    for name in preset_names("dmt"):
        transformer = resolve(preset_dir() / f"{name}.json")["transformer"]
        assert (transformer["time_encoding"], transformer["match_features"]) == ("log2_buckets", True), name
    for name in preset_names("baseline"):  # no transformer: spelt out, off
        assert (load_preset(name).transformer.time_encoding, load_preset(name).transformer.match_features) == (
            "none", False)
    # A config saved before the options existed (no such keys) reloads into the network it was trained as.
    saved = load_preset("dmt").to_dict()
    for key in ("time_encoding", "match_features"):
        del saved["transformer"][key]
    old = DMTConfig.from_dict(saved).transformer
    assert (old.time_encoding, old.match_features) == ("none", False)


def test_every_ranking_preset_carries_the_training_recipe() -> None:
    for name in preset_names("dmt") + preset_names("baseline"):
        config = load_preset(name)
        assert config.regularisation == RegularisationConfig(weight_decay=0.01, embedding_l2=0.01), name
        assert config.multitask.dropout == 0.1, name


def test_input_projection_allows_any_token_width() -> None:
    config = DMTConfig.from_dict({"embeddings": {"item_dim": 8, "input_projection": True}})
    assert config.embeddings.token_dim == 40


def test_family_follows_the_interest_kind_when_a_saved_config_has_none() -> None:
    assert DMTConfig.from_dict({}).family == "dmt"
    assert DMTConfig.from_dict({"interest": {"kind": "mean"}}).family == "baseline"


def test_dmt_presets_pool_sequences_and_train_the_catalogue_and_old_configs_do_not() -> None:
    """The shipped DMT recipe: a gated transformer on the click sequence, every sequence's mean token, the
    co-occurrence loss at 0.3 (RESULTS.md, "DMT's sequence path"); a config saved before these existed builds the old network."""
    for name in preset_names("dmt"):
        config = load_preset(name)
        assert config.transformer.pooled_sequences is True and config.transformer.behaviors == ["click"], name
        assert config.transformer.gate is True, name
        assert config.catalogue.weight == (0.0 if name == "dmt_no_catalogue" else 0.3), name
    old = load_preset("dmt").to_dict()
    for key in ("pooled_sequences", "behaviors", "gate"):
        del old["transformer"][key]
    del old["catalogue"]
    old_config = DMTConfig.from_dict(old)
    assert (old_config.transformer.pooled_sequences, old_config.transformer.behaviors, old_config.transformer.gate,
            old_config.catalogue.weight) == (False, None, False, 0.0)
