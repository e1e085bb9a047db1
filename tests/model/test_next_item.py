"""Next-item models: configs and presets, every body and training approach, side information, no label
leakage in causal LM, replaced token detection, and a short incremental training run."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from log_fixtures import session_events

from t4r_dmt.model.next_item import (
    BODY_MASKINGS,
    ItemMultipliedSum,
    NextItemConfig,
    ReplacedTokenDetectionHead,
    build_next_item_model,
    select_features,
)
from t4r_dmt.presets import load_preset, preset_names

CATEGORICAL_SIDE = ["category-list", "brand-list", "event_type-list"]
CONTINUOUS_SIDE = ["et_hour_sin-list", "time_gap_log_norm-list"]




@pytest.fixture(scope="module")
def sessions_dir(tmp_path_factory) -> Path:
    from t4r_dmt.preprocess.sessions import write_sessions

    root = tmp_path_factory.mktemp("next_item")
    write_sessions(session_events(), root / "sessions", window="1d")
    return root


@pytest.fixture(scope="module")
def schema(sessions_dir):
    from t4r_dmt.run_folder import load_schema

    return load_schema(sessions_dir / "sessions")


@pytest.fixture(scope="module")
def batch(sessions_dir, schema):
    from transformers4rec.torch.utils.data_utils import T4RecDataLoader

    loader = T4RecDataLoader.parse("merlin").from_schema(
        schema, str(sessions_dir / "sessions" / "0002" / "train.parquet"), 16, max_sequence_length=20,
        drop_last=False, shuffle=False)
    inputs, _ = next(iter(loader))
    return inputs


def tiny(**kwargs) -> NextItemConfig:
    return NextItemConfig(**{"d_model": 16, "n_head": 2, "n_layer": 1, "dropout": 0.0, **kwargs})


def forward(model, inputs, **flags):
    return model({name: value.clone() for name, value in inputs.items()}, **flags)


# --------------------------------------------------------------------------------------------------
# Config
# --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kwargs, message", [
    ({"transformer": "lstm"}, "transformer must be one of"),
    ({"masking": "xlm"}, "masking must be one of"),
    ({"transformer": "bert", "masking": "clm"}, r"bert supports masking \('mlm', 'rtd'\), not 'clm'"),
    ({"transformer": "gpt2", "masking": "mlm"}, r"gpt2 supports masking \('clm',\)"),
    ({"transformer": "gru", "masking": "plm"}, r"gru supports masking \('clm',\)"),
    ({"aggregation": "sum"}, "aggregation must be one of"),
    ({"d_model": 0}, "d_model must be >= 1"),
    ({"side_embedding_dim": 0}, "side_embedding_dim must be >= 1"),
    ({"d_model": 30, "n_head": 4}, r"d_model \(30\) must be a multiple of n_head \(4\)"),
    ({"item_embedding_dim": -1}, "item_embedding_dim must be >= 0"),
    ({"dropout": 1.0}, r"dropout must be in \[0, 1\)"),
    ({"label_smoothing": -0.1}, r"label_smoothing must be in \[0, 1\)"),
    ({"mlm_probability": 0.0}, r"mlm_probability must be in \(0, 1\]"),
    ({"item_id_init_std": 0.0}, "item_id_init_std must be > 0"),
    ({"features": ["category-list"]}, "features must hold 'item_id-list' once"),
    ({"features": ["item_id-list", "item_id-list"]}, "features must hold 'item_id-list' once"),
    ({"aggregation": "element-wise-sum-item-multi"}, "needs side features besides the item id"),
])
def test_config_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        NextItemConfig(**kwargs)


def test_presets_load_build_and_round_trip(schema, tmp_path):
    presets = preset_names("next_item")
    assert {"xlnet_clm", "xlnet_mlm", "xlnet_plm", "xlnet_rtd", "bert_mlm", "electra_rtd", "gpt2_clm", "gru_clm",
            "xlnet_clm_concat", "xlnet_clm_concat_sohe", "xlnet_clm_elementwise", "xlnet_clm_behaviour"} <= set(presets)
    for name in presets:
        config = load_preset(name)
        assert isinstance(config, NextItemConfig)
        assert config.name == name and config.masking in BODY_MASKINGS[config.transformer]
        model = build_next_item_model(schema, config)  # every preset builds on the session schema
        assert set(model.heads[0].body[0].schema.column_names) == set(config.features)
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps(config.to_dict()))
        assert load_preset(path) == config
    assert NextItemConfig().item_dim == 64 and tiny(item_embedding_dim=24).item_dim == 24
    with pytest.raises(ValueError, match="unknown next-item config key"):
        NextItemConfig.from_dict({"task": "next-item"})
    with pytest.raises(ValueError, match="a NextItemConfig has family 'next_item'"):
        NextItemConfig(family="dmt")


# --------------------------------------------------------------------------------------------------
# Models
# --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("body, masking", [(b, m) for b in ("xlnet", "gpt2", "bert", "electra", "gru")
                                           for m in BODY_MASKINGS[b]])
def test_every_body_and_masking_trains_and_scores_the_catalogue(schema, batch, body, masking):
    torch.manual_seed(0)
    model = build_next_item_model(schema, tiny(transformer=body, masking=masking))
    n_items = schema["item_id-list"].int_domain.max + 1
    model.train()
    out = forward(model, batch, training=True)
    assert torch.isfinite(out["loss"]) and out["loss"].item() > 0
    out["loss"].backward()
    model.eval()
    with torch.no_grad():
        scored = forward(model, batch, testing=True)
    rows = len(batch["item_id-list"])
    assert scored["predictions"].shape == (rows, n_items)  # one prediction per session: its last item
    lengths = (batch["item_id-list"] > 0).sum(dim=1)
    assert scored["labels"].tolist() == batch["item_id-list"][torch.arange(rows), lengths - 1].tolist()


@pytest.mark.parametrize("body", ["xlnet", "gpt2", "gru"])
def test_causal_models_do_not_see_the_item_they_predict(schema, batch, body):
    torch.manual_seed(0)
    model = build_next_item_model(schema, tiny(transformer=body, masking="clm")).eval()
    changed = {name: value.clone() for name, value in batch.items()}
    rows = torch.arange(len(changed["item_id-list"]))
    last = (changed["item_id-list"] > 0).sum(dim=1) - 1
    changed["item_id-list"][rows, last] = 3 + (changed["item_id-list"][rows, last] - 2) % 20  # another item
    with torch.no_grad():
        before = forward(model, batch, testing=True)["predictions"]
        after = forward(model, changed, testing=True)["predictions"]
    torch.testing.assert_close(before, after)


def test_xlnet_clm_uses_causal_attention(schema):
    model = build_next_item_model(schema, tiny(transformer="xlnet", masking="clm"))
    xlnet = model.heads[0].body[2].transformer
    assert xlnet.config.attn_type == "uni"
    assert xlnet.create_mask(3, 0).tolist() == [[0, 1, 1], [0, 0, 1], [0, 0, 0]]
    mlm = build_next_item_model(schema, tiny(transformer="xlnet", masking="mlm"))
    assert mlm.heads[0].body[2].transformer.config.attn_type == "bi"


@pytest.mark.parametrize("body, masking", [("xlnet", "mlm"), ("xlnet", "plm"), ("bert", "mlm"), ("electra", "rtd")])
def test_bidirectional_models_ignore_the_padding(schema, batch, body, masking):
    torch.manual_seed(0)
    model = build_next_item_model(schema, tiny(transformer=body, masking=masking, mlm_probability=0.4)).eval()
    assert model.heads[0].body[0].masking.mlm_probability == 0.4 if masking != "plm" else True
    # One more padded position (BERT and ELECTRA have 20 + 2 absolute positions).
    longer = {name: torch.nn.functional.pad(value, (0, 1)) if value.dim() == 2 else value
              for name, value in batch.items()}
    with torch.no_grad():
        before = forward(model, batch, testing=True)["predictions"]
        after = forward(model, longer, testing=True)["predictions"]
        inferred = forward(model, batch)  # inference: a [MASK] after the last item, (B, V) scores
    torch.testing.assert_close(before, after, rtol=0.0, atol=1e-6)
    assert inferred.shape == before.shape and torch.isfinite(inferred).all()


def test_replaced_token_detection_adds_a_trained_discriminator(schema, batch):
    torch.manual_seed(0)
    rtd = build_next_item_model(schema, tiny(masking="rtd", rtd_discriminator_weight=5.0))
    head = rtd.heads[0]
    assert isinstance(head, ReplacedTokenDetectionHead)
    rtd.train()
    torch.manual_seed(1)
    out = forward(rtd, batch, training=True)
    out["loss"].backward()
    assert head.discriminator.weight.grad is not None and head.discriminator.weight.grad.abs().sum() > 0
    # Same weights without the discriminator term: the RTD loss is larger by 5 x a positive BCE.
    head.discriminator_weight = 0.0
    torch.manual_seed(1)
    mlm_only = forward(rtd, batch, training=True)["loss"]
    assert out["loss"].item() > mlm_only.item() > 0
    with pytest.raises(ValueError, match="needs the raw inputs"):
        head(batch, training=True, call_body=False)


@pytest.mark.parametrize("from_batch", [False, True])
def test_replacements_come_from_the_batch_when_asked(schema, batch, from_batch):
    torch.manual_seed(0)
    rtd = build_next_item_model(schema, tiny(masking="rtd", mlm_probability=0.5, rtd_sample_from_batch=from_batch))
    head = rtd.heads[0]
    masking = next(iter(head.prediction_task_dict.values())).masking
    assert masking.sample_from_batch is from_batch
    calls: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []
    real = masking.get_fake_tokens

    def spy(item_seq, targets, logits):
        out = real(item_seq, targets, logits)
        calls.append((targets, logits, out[0]))
        return out

    masking.get_fake_tokens = spy
    rtd.train()
    forward(rtd, batch, training=True)["loss"].backward()
    ((targets, logits, corrupted),) = calls
    masked = targets[targets != masking.padding_idx]
    # Over the batch's masked items: one score per masked item; else over the catalogue.
    assert logits.shape == (len(masked), len(masked) if from_batch else logits.shape[1])
    replaced_at = targets != masking.padding_idx
    replacements = corrupted.flatten()[replaced_at]
    if from_batch:
        assert set(replacements.tolist()) <= set(masked.tolist())
    assert (replacements != masking.padding_idx).all()


@pytest.mark.parametrize("extra", [
    {"features": ["item_id-list", *CATEGORICAL_SIDE, *CONTINUOUS_SIDE]},
    {"features": ["item_id-list", *CATEGORICAL_SIDE, *CONTINUOUS_SIDE], "continuous_soft_embeddings": True},
    {"features": ["item_id-list", *CATEGORICAL_SIDE, *CONTINUOUS_SIDE], "aggregation": "element-wise-sum-item-multi",
     "continuous_soft_embeddings": True},
    {"features": ["item_id-list", "category-list"], "aggregation": "element-wise-sum",
     "continuous_soft_embeddings": True},
    {"features": ["item_id-list", "event_type-list"], "input_dropout": 0.2, "layer_norm_featurewise": False},
])
def test_side_information_variants(schema, batch, extra):
    torch.manual_seed(0)
    config = tiny(masking="mlm", item_embedding_dim=16, side_embedding_dim=4, **extra)
    model = build_next_item_model(schema, config)
    features = model.heads[0].body[0]
    assert set(features.schema.column_names) == set(config.features)
    out = forward(model, batch, training=True)
    assert torch.isfinite(out["loss"])
    embedded = features.to_merge["categorical_module"].embedding_tables
    for name in CATEGORICAL_SIDE:
        if name in config.features:
            dim = embedded[name].embedding_dim
            assert dim == (16 if config.aggregation != "concat" else 4)


def test_item_multiplied_sum_values():
    merge = ItemMultipliedSum("item")
    inputs = {"item": torch.full((1, 2, 3), 2.0), "a": torch.ones(1, 2, 3), "b": torch.full((1, 2, 3), 3.0)}
    assert merge(inputs).tolist() == [[[8.0] * 3] * 2]  # 2 x (1 + 3)
    size = torch.Size([4, 2, 3])
    assert tuple(merge.forward_output_size({"item": size, "a": size})) == (4, 2, 3)
    with pytest.raises(ValueError, match="last dim of all input features is not equal"):
        merge.forward_output_size({"item": size, "a": torch.Size([4, 2, 1])})


def test_elementwise_aggregation_needs_soft_embeddings_for_continuous_features(schema):
    config = tiny(features=["item_id-list", "category-list", "et_hour_sin-list"], aggregation="element-wise-sum")
    with pytest.raises(ValueError, match=r"needs continuous_soft_embeddings=True for the continuous features "
                                         r"\['et_hour_sin-list'\]"):
        build_next_item_model(schema, config)


def test_gru_encoder_is_causal_and_checks_its_arguments():
    from t4r_dmt.model.next_item import GRUSequenceEncoder, gru_block

    torch.manual_seed(0)
    encoder = GRUSequenceEncoder(4, 6, n_layer=2, dropout=0.0).eval()
    inputs = torch.randn(2, 5, 4)
    changed = inputs.clone()
    changed[:, 3:] = 9.0  # later positions cannot change earlier outputs
    assert encoder(inputs).shape == (2, 5, 6)
    torch.testing.assert_close(encoder(inputs)[:, :3], encoder(changed)[:, :3])
    assert list(gru_block(4, 6, 1, 0.0, 5).forward_output_size(torch.Size([8, 5, 4]))) == [8, 5, 6]
    for args, message in [((0, 6), "must be >= 1"), ((4, 6, 0), "must be >= 1")]:
        with pytest.raises(ValueError, match=message):
            GRUSequenceEncoder(*args)
    with pytest.raises(ValueError, match=r"dropout must be in \[0, 1\)"):
        GRUSequenceEncoder(4, 6, dropout=1.0)
    with pytest.raises(ValueError, match=r"expects \(batch, length, features\), got \(5, 4\)"):
        encoder(torch.randn(5, 4))


def test_select_features_names_unknown_columns(schema):
    assert select_features(schema, ["item_id-list"]).column_names == ["item_id-list"]
    with pytest.raises(ValueError, match=r"features \['price-list'\] are not in the sessions schema"):
        select_features(schema, ["item_id-list", "price-list"])
    with pytest.raises(ValueError, match=r"features \['price-list'\] are not in the sessions schema"):
        build_next_item_model(schema, tiny(features=["item_id-list", "price-list"]))


# --------------------------------------------------------------------------------------------------
# The incremental loop with a next-item preset
# --------------------------------------------------------------------------------------------------
def test_train_command_runs_next_item_windows(sessions_dir, tmp_path):
    from t4r_dmt.commands.train import run
    from t4r_dmt.training.arguments import DataArguments, RunTrainingArguments

    config = tmp_path / "tiny_gru.json"
    config.write_text(json.dumps(dataclasses.asdict(tiny(transformer="gru", n_head=1, name="tiny_gru"))))
    result = run(DataArguments(data=str(sessions_dir), out=str(tmp_path / "run"), config=str(config),
                               task="next-item", eval_split="test"),
                 RunTrainingArguments(output_dir=str(tmp_path / "run" / "trainer"), report_to=[], seed=3,
                                      disable_tqdm=True, num_train_epochs=2, learning_rate=1e-2,
                                      per_device_train_batch_size=16))
    windows = result["windows"]
    assert [(w["train_window"], w["eval_window"]) for w in windows] == [(1, 2), (2, 3)]
    tests = [len(pd.read_parquet(sessions_dir / "sessions" / f"{w:04d}" / "test.parquet")) for w in (2, 3)]
    assert [w["n_rows"] for w in windows] == tests
    for window in windows:
        assert 0.0 <= window["mrr@20"] <= window["ndcg@20"] <= window["recall@20"] <= 1.0
    saved = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert saved["task"] == "next-item" and saved["model"] == "tiny_gru"
    assert saved["average"]["ndcg@20"] == pytest.approx(np.mean([w["ndcg@20"] for w in windows]))
