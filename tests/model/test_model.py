"""build_model on the contract's schema: sizes, variants, masking, bias, save/load, export, schema errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from merlin.schema import ColumnSchema, Schema, Tags
from model_fixtures import FixtureSpec, RankingFixture, loader_batches, ranking_schema, tiny_config
from sklearn.metrics import roc_auc_score
from transformers4rec import torch as tr

from t4r_dmt.model import RankingNetwork, build_model, export_torchscript
from t4r_dmt.presets import load_preset

PRESETS = ("dmt", "dmt_no_bias", "dmt_trans", "dmt_shared_bottom", "dmt_single_task")

SEQ_COLUMNS = [f"{b}_{c}_seq" for b in ("click", "cart", "order") for c in ("item_id", "category", "brand")]


def _network(model: tr.Model) -> RankingNetwork:
    return model.heads[0].body.module


def _scores(model: tr.Model, inputs: dict) -> dict[str, torch.Tensor]:
    model.eval()
    with torch.no_grad():
        return model({k: v.clone() for k, v in inputs.items()})


def test_build_reads_names_and_sizes_from_the_schema(fixture: RankingFixture) -> None:
    torch.manual_seed(0)
    model = build_model(fixture.schema, tiny_config())
    assert isinstance(model, tr.Model)
    spec = _network(model).spec
    assert (spec.n_items, spec.n_categories, spec.n_brands) == (63, 11, 9)  # int_domain.max + 1
    assert [(b.name, b.max_length) for b in spec.behaviors] == [("click", 8), ("cart", 4), ("order", 4)]
    assert spec.dense == ("user_click_count_7d", "item_price_norm", "click_category_seq_hits")
    # interactions=False drops the columns tagged "interaction" (the ablation), nothing else
    assert _network(build_model(fixture.schema, tiny_config(interactions=False))).spec.dense == spec.dense[:2]
    assert spec.bias is not None
    assert (spec.bias.n_positions, spec.bias.n_pages, spec.bias.n_neighbors) == (9, 3, 6)
    assert model.max_sequence_length == 8
    assert model.dmt_config["name"] == "dmt"
    assert set(model.input_schema.column_names) == {
        "item_id", "item_category", "item_brand", "user_click_count_7d", "item_price_norm", "click_category_seq_hits",
        *SEQ_COLUMNS,
        "position_index", "position_page", "neighbor_category_seq"}
    # One table per entity, shared by the target and every behaviour.
    encoder = _network(model).encoders[0]
    assert encoder.embedding.categories.num_embeddings == 11
    assert set(encoder.interests) == {"click", "cart", "order"}
    assert encoder.interests["click"].positions.num_embeddings == 8
    assert encoder.interests["cart"].positions.num_embeddings == 4
    assert encoder.out_size == 3 * 16 + 16 + 3
    assert len(model.heads[0].prediction_task_dict) == 1


@pytest.mark.parametrize("preset", PRESETS)
def test_every_preset_builds_and_trains(fixture: RankingFixture, batch: tuple[dict, dict], preset: str) -> None:
    paper = load_preset(preset)
    config = tiny_config(name=preset, multitask={"kind": paper.multitask.kind},
                         bias={"enabled": paper.bias.enabled})
    torch.manual_seed(0)
    model = build_model(fixture.schema, config)
    net = _network(model)
    assert len(net.encoders) == (2 if preset == "dmt_single_task" else 1)
    assert (net.bias_tower is None) == (preset == "dmt_no_bias")
    before = [p.detach().clone() for p in model.parameters()]
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    inputs, targets = batch
    model.train()
    losses = []
    for _ in range(4):
        out = model({k: v.clone() for k, v in inputs.items()}, targets=targets, training=True)
        optimizer.zero_grad()
        out["loss"].backward()
        optimizer.step()
        losses.append(float(out["loss"]))
    assert all(np.isfinite(losses)) and losses[-1] < losses[0]
    assert out["predictions"].shape == out["labels"].shape == (32, 2)
    assert torch.equal(out["labels"][:, 0], targets["click"].float())
    changed = sum(not torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))
    assert changed > 0.9 * len(before)
    scores = _scores(model, inputs)
    assert set(scores) == {"p_click", "p_order", "score"}
    assert all(v.shape == (32,) and ((v > 0) & (v < 1)).all() for v in scores.values())
    torch.testing.assert_close(scores["score"], (scores["p_click"] + scores["p_order"]) / 2)


def test_score_weights(fixture: RankingFixture, batch: tuple[dict, dict]) -> None:
    torch.manual_seed(0)
    model = build_model(fixture.schema, tiny_config(score_weights=[1.0, 3.0]))
    s = _scores(model, batch[0])
    torch.testing.assert_close(s["score"], (s["p_click"] + 3 * s["p_order"]) / 4)


def test_padded_positions_do_not_change_logits(fixture: RankingFixture, batch: tuple[dict, dict]) -> None:
    torch.manual_seed(0)
    model = build_model(fixture.schema, tiny_config())
    inputs = batch[0]
    ref = _scores(model, inputs)
    changed = {k: v.clone() for k, v in inputs.items()}
    for b in ("click", "cart", "order"):
        pad = changed[f"{b}_item_id_seq"] == 0
        assert pad.any()
        changed[f"{b}_category_seq"][pad] = 5
        changed[f"{b}_brand_seq"][pad] = 4
    out = _scores(model, changed)
    for key in ref:
        torch.testing.assert_close(out[key], ref[key], rtol=0, atol=1e-6)
    # Padding every list wider than the model's max length changes nothing either.
    wider = {k: torch.nn.functional.pad(v, (0, 5)) if k in SEQ_COLUMNS else v for k, v in inputs.items()}
    torch.testing.assert_close(_scores(model, wider)["score"], ref["score"], rtol=0, atol=1e-6)
    # Ragged inputs (no loader padding) give the same scores as padded ones.
    ragged = dict(inputs)
    for name in SEQ_COLUMNS:
        dense = inputs[name]
        lengths = (dense != 0).sum(1)
        ragged.pop(name)
        ragged[f"{name}__values"] = dense[dense != 0]
        ragged[f"{name}__offsets"] = torch.cat([torch.zeros(1, dtype=torch.long), lengths.cumsum(0)])
    torch.testing.assert_close(_scores(model, ragged)["score"], ref["score"], rtol=0, atol=1e-6)


def test_new_users_get_defined_scores(fixture: RankingFixture, batch: tuple[dict, dict]) -> None:
    torch.manual_seed(0)
    model = build_model(fixture.schema, tiny_config(transformer={"encoder": "gpt2"}))
    empty = {k: torch.zeros_like(v) if k in SEQ_COLUMNS else v for k, v in batch[0].items()}
    scores = _scores(model, empty)
    assert all(torch.isfinite(v).all() for v in scores.values())
    model.train()
    out = model(empty, targets=batch[1], training=True)
    out["loss"].backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


def test_bias_logit_changes_training_loss_not_evaluation(
    fixture: RankingFixture, batch: tuple[dict, dict]
) -> None:
    torch.manual_seed(0)
    model = build_model(fixture.schema, tiny_config(bias={"dropout": 0.0}))
    inputs, targets = batch

    def run() -> tuple[float, float, dict[str, torch.Tensor]]:
        model.eval()  # no dropout: compare deterministic values
        with torch.no_grad():
            train_loss = float(model(dict(inputs), targets=targets, training=True)["loss"])
            eval_loss = float(model(dict(inputs), targets=targets, testing=True)["loss"])
        return train_loss, eval_loss, _scores(model, inputs)

    train1, eval1, scores1 = run()
    with torch.no_grad():
        _network(model).bias_tower.tower.logit.bias.add_(3.0)
    train2, eval2, scores2 = run()
    assert abs(train2 - train1) > 0.1
    assert eval2 == pytest.approx(eval1, abs=1e-7)
    for key in scores1:
        torch.testing.assert_close(scores1[key], scores2[key], rtol=0, atol=0)


def test_cvr_order_auc_counts_clicked_rows_only(fixture: RankingFixture) -> None:
    model = build_model(fixture.schema, tiny_config(loss={"order_label": "cvr"}))
    task = model.heads[0].task
    preds = torch.tensor([[0.9, 0.8], [0.2, 0.9], [0.7, 0.1], [0.6, 0.3], [0.1, 0.95]])
    labels = torch.tensor([[1, 1], [0, 0], [1, 0], [1, 1], [0, 0]])
    task.reset_metrics()
    task.calculate_metrics(preds, labels)
    auc = task.compute_metrics()
    assert float(auc["auc_click"]) == pytest.approx(roc_auc_score(labels[:, 0], preds[:, 0]))
    clicked = labels[:, 0] == 1
    assert float(auc["auc_order"]) == pytest.approx(roc_auc_score(labels[clicked, 1], preds[clicked, 1]))
    task.reset_metrics()
    assert all(np.isnan(float(v)) for v in task.compute_metrics().values())  # nothing accumulated
    task.calculate_metrics(preds[:2], torch.tensor([[1, 0], [1, 0]]))
    assert np.isnan(float(task.compute_metrics()["auc_click"]))  # one class only


def test_save_load_and_torchscript_export_give_identical_scores(
    fixture: RankingFixture, batch: tuple[dict, dict], tmp_path: Path
) -> None:
    torch.manual_seed(0)
    model = build_model(fixture.schema, tiny_config())
    others = loader_batches(fixture, fixture.path(2), batch_size=20, max_sequence_length=8)
    ref = _scores(model, others[0][0])
    model.save(tmp_path / "saved")
    loaded = tr.Model.load(tmp_path / "saved")
    assert loaded.dmt_config == model.dmt_config
    for key, value in _scores(loaded, others[0][0]).items():
        torch.testing.assert_close(value, ref[key], rtol=0, atol=0)
    model.train()
    export_torchscript(model, batch[0], tmp_path / "dmt.pt")
    assert model.training  # export traces in eval mode and restores the mode it found
    scripted = torch.jit.load(str(tmp_path / "dmt.pt"))
    with torch.no_grad():
        out = scripted(dict(others[0][0]))  # another batch size than the traced one
    for key, value in out.items():
        torch.testing.assert_close(value, ref[key], rtol=0, atol=1e-6)


def test_behaviours_and_user_features_are_configurable(fixture: RankingFixture, batch: tuple[dict, dict]) -> None:
    none = build_model(fixture.schema, tiny_config(behaviors=[]))
    encoder = _network(none).encoders[0]
    assert len(encoder.interests) == 0 and encoder.out_size == 16 + 3
    assert not any(c in none.input_schema.column_names for c in SEQ_COLUMNS)
    users = build_model(fixture.schema, tiny_config(behaviors=["click"],
                                                    embeddings={"use_user_features": True, "user_dim": 3}))
    encoder = _network(users).encoders[0]
    assert encoder.out_size == 16 + 16 + 3 + 3 and encoder.users[0].num_embeddings == 43
    assert torch.isfinite(_scores(users, batch[0])["score"]).all()


def _replace(schema: Schema, column: ColumnSchema) -> Schema:
    return Schema([column if c.name == column.name else c for c in schema])


def test_schema_without_bias_columns() -> None:
    schema = ranking_schema(FixtureSpec(with_bias=False))
    model = build_model(schema, tiny_config())  # "auto": off
    assert _network(model).bias_tower is None
    with pytest.raises(ValueError, match="bias.enabled is 'on' but the schema has no column tagged 'bias'"):
        build_model(schema, tiny_config(bias={"enabled": "on"}))


def test_schema_errors() -> None:
    schema = ranking_schema(FixtureSpec())
    with pytest.raises(ValueError, match="config must be a DMTConfig"):
        build_model(schema, {"name": "dmt"})  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="schema has no column 'item_brand'"):
        build_model(schema.excluding_by_name(["item_brand"]), tiny_config())
    with pytest.raises(ValueError, match="schema has no target column 'order' tagged TARGET"):
        build_model(schema.excluding_by_name(["order"]), tiny_config())
    with pytest.raises(ValueError, match=r"tagged 'behavior_cart' \(found \[\]\).*Remove 'cart'"):
        build_model(schema.excluding_by_name(["cart_brand_seq"]), tiny_config())
    no_domain = ColumnSchema("item_id", dtype=np.int64, tags=[Tags.CATEGORICAL, Tags.ITEM_ID])
    with pytest.raises(ValueError, match="'item_id' has no int_domain.max"):
        build_model(_replace(schema, no_domain), tiny_config())
    col = schema["click_brand_seq"]
    longer = ColumnSchema(col.name, dtype=np.int64, tags=col.tags, properties={"domain": {"min": 0, "max": 8}},
                          dims=(None, (0, 9)))
    with pytest.raises(ValueError, match="behaviour 'click': the value_count.max of .* must be one positive"):
        build_model(_replace(schema, longer), tiny_config())
    partial = schema.excluding_by_name(["position_page"])
    with pytest.raises(ValueError, match=r"lacks \['position_page'\]"):
        build_model(partial, tiny_config())
    # A behaviour can be dropped from the config when the schema lacks it.
    model = build_model(schema.excluding_by_name(["cart_item_id_seq", "cart_category_seq", "cart_brand_seq"]),
                        tiny_config(behaviors=["click", "order"]))
    assert [b.name for b in _network(model).spec.behaviors] == ["click", "order"]


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_gpu_scores_match_cpu(fixture: RankingFixture, batch: tuple[dict, dict]) -> None:
    torch.manual_seed(0)
    model = build_model(fixture.schema, tiny_config())
    ref = _scores(model, batch[0])
    model.cuda()
    inputs = {k: v.cuda() for k, v in batch[0].items()}
    targets = {k: v.cuda() for k, v in batch[1].items()}
    model.train()
    model(dict(inputs), targets=targets, training=True)["loss"].backward()
    out = _scores(model, inputs)
    for key, value in out.items():
        torch.testing.assert_close(value.cpu(), ref[key], rtol=1e-4, atol=1e-5)
