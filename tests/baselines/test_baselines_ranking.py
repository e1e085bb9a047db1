"""The Table 1 baselines: GBDT features and loop, DNN / DIN / DIEN blocks and presets, bias-input ablations."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from model_fixtures import DENSE, RankingFixture, loader_batches, tiny_config
from model_fixtures import write_ranking_fixture as write_fixture

from t4r_dmt.baselines.ranking import (
    GBDTConfig,
    GBDTFeatures,
    fit_predict,
    tabular_features,
)
from t4r_dmt.model import DMTConfig, build_model
from t4r_dmt.model.bias_inputs import SelectiveBiasTower
from t4r_dmt.model.dien import AUGRUCell, InterestEvolution, auxiliary_loss
from t4r_dmt.model.inputs import BiasBatch
from t4r_dmt.model.multi_behavior import build_interest
from t4r_dmt.model.network import RankingNetwork, RankingOutput
from t4r_dmt.model.sequence_interest import MeanPoolInterest, TargetAttentionInterest, masked_softmax
from t4r_dmt.presets import load_preset, preset_names

BASELINE_PRESETS = preset_names("baseline")
ABLATION_PRESETS = ("dmt_click", "dmt_click_cart", "dmt_bias_position", "dmt_bias_page", "dmt_bias_neighbors")


@pytest.fixture(scope="module")
def fixture(tmp_path_factory: pytest.TempPathFactory) -> RankingFixture:
    return write_fixture(tmp_path_factory.mktemp("ranking"), n_windows=3)


@pytest.fixture(scope="module")
def batch(fixture: RankingFixture) -> tuple[dict, dict]:
    return loader_batches(fixture, fixture.path(1), batch_size=32, max_sequence_length=8)[0]


# ---------------------------------------------------------------- GBDT
def test_tabular_features_and_fit_predict(fixture: RankingFixture) -> None:
    spec = GBDTFeatures.from_schema(fixture.schema)
    # every continuous scalar column, the interaction features included: the neural models' dense inputs
    assert spec.dense == ("user_click_count_7d", "item_price_norm", "click_category_seq_hits")
    train = pd.read_parquet(fixture.path(1))
    table = tabular_features(train, spec)
    assert list(table.columns) == ["item_id", "item_category", "item_brand", *spec.dense]
    assert "position_index" not in table.columns  # bias features are left out of the served score
    np.testing.assert_array_equal(table["click_category_seq_hits"], train["click_category_seq_hits"].astype(np.float32))
    np.testing.assert_array_equal(table["item_id"], train["item_id"])
    evaluate = pd.read_parquet(fixture.path(2, "valid"))
    out = fit_predict(train, evaluate, spec, GBDTConfig(n_estimators=20, min_child_samples=5), seed=0)
    assert list(out.columns) == ["request_id", "user_id", "click", "order", "p_click", "p_order", "score"]
    assert len(out) == len(evaluate) and out["p_click"].between(0, 1).all()
    np.testing.assert_allclose(out["score"], (out["p_click"] + out["p_order"]) / 2)
    no_orders = train.assign(order=0)
    constant = fit_predict(no_orders, evaluate, spec, GBDTConfig(n_estimators=5), seed=0)
    assert (constant["p_order"] == 0.0).all()  # one class only: the constant rate
    with pytest.raises(ValueError, match="lacks column"):
        tabular_features(train.drop(columns=["item_price_norm"]), spec)
    with pytest.raises(ValueError, match="target item"):
        GBDTFeatures.from_schema(fixture.schema.excluding_by_name(["item_brand"]))


def test_gbdt_config_validation(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="n_estimators must be a positive integer"):
        GBDTConfig(n_estimators=0)
    with pytest.raises(ValueError, match="learning_rate"):
        GBDTConfig(learning_rate=0.0)
    with pytest.raises(ValueError, match="feature_fraction"):
        GBDTConfig(feature_fraction=1.5)
    with pytest.raises(ValueError, match="score_weights"):
        GBDTConfig(score_weights=[1.0])
    with pytest.raises(ValueError, match="unknown gbdt config key"):
        GBDTConfig.from_dict({"trees": 3})
    with pytest.raises(ValueError, match="a GBDTConfig has family 'gbdt'"):
        GBDTConfig(family="dmt")


def test_gbdt_runs_the_window_loop(fixture: RankingFixture, tmp_path: Path) -> None:
    from t4r_dmt.commands.train import run
    from t4r_dmt.training.arguments import DataArguments, RunTrainingArguments

    data = tmp_path / "data"
    data.mkdir()
    (data / "ranking").symlink_to(fixture.root)
    result = run(DataArguments(data=str(data), out=str(tmp_path / "run"), config="gbdt"),
                 RunTrainingArguments(output_dir=str(tmp_path / "t"), report_to=[]))
    assert [(w["train_window"], w["eval_window"]) for w in result["windows"]] == [(1, 2), (2, 3)]
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["model"] == "gbdt" and 0.5 < metrics["average"]["auc_click"] <= 1.0
    assert metrics["windows"][1]["n_rows"] == len(pd.read_parquet(fixture.path(3, "valid")))


def test_gbdt_ablation_variants_fit_window_t_alone_and_drop_the_interactions(fixture: RankingFixture,
                                                                             tmp_path: Path,
                                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    from t4r_dmt.baselines.ranking import gbdt
    from t4r_dmt.run_folder import DataArguments

    spec = GBDTFeatures.from_schema(fixture.schema, interactions=False)
    table = tabular_features(pd.read_parquet(fixture.path(1)), spec)
    assert spec.dense == ("user_click_count_7d", "item_price_norm")  # the column tagged "interaction" is gone
    assert "click_category_seq_hits" not in table.columns
    with pytest.raises(ValueError, match="train_windows"):
        GBDTConfig(train_windows="last")
    seen: list[tuple[int, int]] = []

    class Recording(gbdt.GBDTModels):
        def __init__(self, train: pd.DataFrame, spec: GBDTFeatures, config: GBDTConfig, seed: int) -> None:
            seen.append((len(train), len(spec.columns)))
            super().__init__(train, spec, GBDTConfig(n_estimators=5), seed)

    monkeypatch.setattr(gbdt, "GBDTModels", Recording)
    data = tmp_path / "data"
    data.mkdir()
    (data / "ranking").symlink_to(fixture.root)
    rows = [len(pd.read_parquet(fixture.path(w))) for w in (1, 2)]
    for train_windows, expected in (("all", [rows[0], rows[0] + rows[1]]), ("current", rows)):
        seen.clear()
        gbdt.run(DataArguments(data=str(data), out=str(tmp_path / f"run_{train_windows}")),
                 GBDTConfig(train_windows=train_windows, interactions=False), seed=0)
        assert [n for n, _ in seen] == expected


def test_gbdt_presets_read_their_own_file(tmp_path: Path) -> None:
    """Every preset of family ``gbdt`` loads as a GBDTConfig with its own fields."""
    from t4r_dmt.presets import load_preset

    def config_of(name: str) -> GBDTConfig:
        config = load_preset(name)
        assert isinstance(config, GBDTConfig)
        return config

    assert dataclasses.replace(config_of("gbdt"), search_space={}) == GBDTConfig()  # + what `tune` may change
    assert config_of("gbdt_current_window") == GBDTConfig(name="gbdt_current_window", train_windows="current")
    assert config_of("gbdt_no_history") == GBDTConfig(name="gbdt_no_history", interactions=False)
    assert config_of("gbdt_current_no_history") == GBDTConfig(name="gbdt_current_no_history",
                                                              train_windows="current", interactions=False)
    with pytest.raises(ValueError, match="unknown preset 'gbdt_deep'; choose one of .*gbdt, gbdt_current_no_history"):
        config_of("gbdt_deep")
    with pytest.raises(FileNotFoundError, match="gbdt_none.json does not exist"):
        config_of(str(tmp_path / "gbdt_none.json"))


# ---------------------------------------------------------------- torch blocks
def test_mean_pool_and_masked_softmax() -> None:
    tokens = torch.tensor([[[1.0, 2.0], [3.0, 4.0], [9.0, 9.0]]])
    mask = torch.tensor([[True, True, False]])
    pooled, aux = MeanPoolInterest()(tokens, mask, tokens[:, 0])
    torch.testing.assert_close(pooled, torch.tensor([[2.0, 3.0]]))
    assert float(aux) == 0.0
    weights = masked_softmax(torch.zeros(2, 3), torch.tensor([[True, True, False], [False, False, False]]))
    torch.testing.assert_close(weights, torch.tensor([[0.5, 0.5, 0.0], [0.0, 0.0, 0.0]]))


def test_din_attends_to_real_events_only() -> None:
    torch.manual_seed(0)
    din = TargetAttentionInterest(4, [8])
    tokens, target = torch.randn(3, 5, 4), torch.randn(3, 4)
    mask = torch.tensor([[True] * 5, [True, True, False, False, False], [False] * 5])
    out, _ = din(tokens, mask, target)
    changed = tokens.clone()
    changed[1, 2:] = 100.0  # padding content must not matter
    out2, _ = din(changed, mask, target)
    torch.testing.assert_close(out[1], out2[1])
    torch.testing.assert_close(out[2], torch.zeros(4))  # no history: zero interest
    config = tiny_config()
    object.__setattr__(config.interest, "kind", "lstm")  # bypass the config's validation on purpose
    with pytest.raises(ValueError, match="unknown interest.kind 'lstm'; choose one of transformer, mean"):
        build_interest(config, 4)


def test_augru_with_zero_attention_keeps_the_state() -> None:
    torch.manual_seed(0)
    cell = AUGRUCell(3, 3)
    h = torch.randn(2, 3)
    torch.testing.assert_close(cell(torch.randn(2, 3), h, torch.zeros(2)), h)


def test_dien_auxiliary_loss_and_padding() -> None:
    hidden = torch.tensor([[[1.0, 0.0], [0.0, 1.0]], [[1.0, 0.0], [0.0, 0.0]]])
    tokens = torch.tensor([[[0.0, 0.0], [2.0, 0.0]], [[0.0, 0.0], [-2.0, 0.0]]])
    mask = torch.tensor([[True, True], [True, False]])
    # Only row 0, step 0 has a next event: positive h·e = 2, negative (row 1's token) h·e = -2.
    expected = 2 * torch.nn.functional.softplus(torch.tensor(-2.0))
    torch.testing.assert_close(auxiliary_loss(hidden, tokens, mask), expected)
    assert float(auxiliary_loss(hidden, tokens, torch.zeros(2, 2, dtype=torch.bool))) == 0.0
    torch.manual_seed(0)
    dien = InterestEvolution(4, [8])
    tokens4, target = torch.randn(2, 6, 4), torch.randn(2, 4)
    mask4 = torch.tensor([[True] * 6, [True, True, True, False, False, False]])
    out, aux = dien(tokens4, mask4, target)
    assert out.shape == (2, 4) and float(aux) > 0
    padded = tokens4.clone()
    padded[1, 3:] = 50.0
    torch.testing.assert_close(dien(padded, mask4, target)[0][1], out[1])


# ---------------------------------------------------------------- presets
@pytest.mark.parametrize("preset", BASELINE_PRESETS)
def test_baseline_presets_build_and_train(fixture: RankingFixture, batch: tuple[dict, dict], preset: str) -> None:
    paper = load_preset(preset)
    assert paper.interest.kind == {"dnn": "mean", "din": "din", "dien": "dien"}[preset]
    config = tiny_config(name=preset, behaviors=paper.behaviors, interest=paper.interest.__dict__,
                         multitask={"kind": "shared_bottom"}, bias={"enabled": "off"})
    torch.manual_seed(0)
    model = build_model(fixture.schema, config)
    net = model.heads[0].body.module
    assert isinstance(net, RankingNetwork) and net.bias_tower is None and len(net.encoders) == 1
    assert net.encoders[0].out_size == (len(paper.behaviors) + 1) * 16 + len(DENSE) + 1  # + the interaction column
    inputs, targets = batch
    out = net({k: v.clone() for k, v in inputs.items()})
    assert isinstance(out, RankingOutput) and out.task_logits.shape == (32, 2)
    assert (float(out.aux_loss) > 0) == (preset == "dien")
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    model.train()
    losses = []
    for _ in range(4):
        result = model({k: v.clone() for k, v in inputs.items()}, targets=targets, training=True)
        optimizer.zero_grad()
        result["loss"].backward()
        optimizer.step()
        losses.append(float(result["loss"]))
    assert np.isfinite(losses).all() and losses[-1] < losses[0]
    model.eval()
    with torch.no_grad():
        scores = model({k: v.clone() for k, v in inputs.items()})
    torch.testing.assert_close(scores["score"], (scores["p_click"] + scores["p_order"]) / 2)


def test_ablation_presets_differ_from_dmt_only_where_named() -> None:
    dmt = load_preset("dmt").to_dict()
    changed = {}
    for preset in ABLATION_PRESETS:
        cfg = load_preset(preset).to_dict()
        changed[preset] = sorted(k for k in cfg if cfg[k] != dmt[k] and k != "name")
    assert changed == {"dmt_click": ["behaviors"], "dmt_click_cart": ["behaviors"], "dmt_bias_position": ["bias"],
                       "dmt_bias_page": ["bias"], "dmt_bias_neighbors": ["bias"]}
    assert load_preset("dmt_bias_page").bias.inputs == ["page"]


def test_selective_bias_tower_ignores_left_out_inputs(fixture: RankingFixture) -> None:
    torch.manual_seed(0)
    model = build_model(fixture.schema, tiny_config(bias={"inputs": ["position"]}))
    tower = model.heads[0].body.module.bias_tower
    assert isinstance(tower, SelectiveBiasTower) and tower.inputs == ("position",)
    tower.eval()
    position = torch.tensor([1, 2, 3])
    a = tower(BiasBatch(position, torch.tensor([1, 1, 1]), torch.tensor([[3] * 6] * 3)), torch.tensor([3, 4, 5]))
    b = tower(BiasBatch(position, torch.tensor([2, 2, 2]), torch.zeros(3, 6, dtype=torch.long)),
              torch.tensor([6, 7, 8]))
    torch.testing.assert_close(a, b)
    assert not torch.allclose(a[0], a[2])  # position still matters
    full = build_model(fixture.schema, tiny_config()).heads[0].body.module.bias_tower
    assert not isinstance(full, SelectiveBiasTower)
    with pytest.raises(ValueError, match="non-empty subset"):
        SelectiveBiasTower(4, 2, 4, 2, [4], 0.0, ["slot"])


def test_config_validation_of_new_fields() -> None:
    with pytest.raises(ValueError, match="interest.kind must be one of"):
        DMTConfig.from_dict({"interest": {"kind": "lstm"}})
    with pytest.raises(ValueError, match="interest.aux_loss_weight"):
        DMTConfig.from_dict({"interest": {"aux_loss_weight": -1.0}})
    with pytest.raises(ValueError, match="bias.inputs must list distinct"):
        DMTConfig.from_dict({"bias": {"inputs": []}})
    with pytest.raises(ValueError, match="bias.inputs entries must be one of"):
        DMTConfig.from_dict({"bias": {"inputs": ["slot"]}})
    with pytest.raises(ValueError, match="is a DMT ablation only"):
        build_model(_schema(), DMTConfig.from_dict({**tiny_config().to_dict(), "family": "baseline", "interest": {"kind": "mean"},
                                                    "multitask": {"kind": "single_task"}}))
    assert load_preset("dmt").interest.kind == "transformer"


def _schema():  # the module fixture's schema without writing files
    from model_fixtures import FixtureSpec, ranking_schema

    return ranking_schema(FixtureSpec())
