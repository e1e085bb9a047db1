"""The regularisation of the training recipe: weight decay of the dense weights only, the embedding L2 of the rows a
batch reads, the expert dropout, and the warm-up that T4R's Trainer would ignore."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from model_fixtures import RankingFixture, tiny_config
from torch import nn
from transformers4rec import torch as tr
from transformers4rec.config.trainer import T4RecTrainingArguments

from t4r_dmt.model import DMTConfig, DMTTrainer, RankingNetwork, build_model
from t4r_dmt.model.config import RegularisationConfig
from t4r_dmt.model.multitask import MMoE, build_multitask
from t4r_dmt.model.trainer import decay_parameter_names
from t4r_dmt.schema import BEHAVIORS, OOV_CODE

RECIPE = {"multitask": {"dropout": 0.5}, "regularisation": {"weight_decay": 0.5, "embedding_l2": 0.25}}


def _network(model: nn.Module) -> RankingNetwork:
    return model.heads[0].body.module


def _trainer(model: nn.Module, fixture: RankingFixture, tmp_path, **kwargs) -> DMTTrainer:
    args = T4RecTrainingArguments(output_dir=str(tmp_path), max_sequence_length=8, no_cuda=True, report_to=[],
                                  save_strategy="no", disable_tqdm=True, **kwargs)
    return DMTTrainer(model=model, args=args, schema=fixture.schema)


# --- config -------------------------------------------------------------------------------------------------

def test_recipe_round_trips_and_defaults_leave_old_configs_unchanged() -> None:
    config = tiny_config(**RECIPE)
    assert config.regularisation == RegularisationConfig(weight_decay=0.5, embedding_l2=0.25)
    assert config.multitask.dropout == 0.5
    assert DMTConfig.from_dict(config.to_dict()) == config
    # A config without the recipe (saved before it existed) has none, and writes none back.
    assert DMTConfig().regularisation == RegularisationConfig(0.0, 0.0)
    assert "regularisation" not in tiny_config().to_dict()


@pytest.mark.parametrize(("data", "match"), [
    ({"regularisation": {"weight_decay": -0.1}}, r"regularisation.weight_decay must be a finite number >= 0; got -0.1"),
    ({"regularisation": {"embedding_l2": -1}}, r"regularisation.embedding_l2 must be a finite number >= 0; got -1"),
    ({"regularisation": {"embedding_l2": float("nan")}}, r"regularisation.embedding_l2 must be a finite number"),
    ({"regularisation": {"weight_decay": True}}, r"regularisation.weight_decay must be a finite number"),
    ({"regularisation": {"l2": 0.1}}, r"unknown config key\(s\) \['l2'\] in config.regularisation"),
    ({"multitask": {"dropout": -0.1}}, r"multitask.dropout must be in \[0, 1\)"),
])
def test_recipe_validation_errors(data: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        DMTConfig.from_dict(data)


# --- weight decay ---------------------------------------------------------------------------------------------

def test_decay_parameters_are_the_dense_weights(fixture: RankingFixture) -> None:
    model = build_model(fixture.schema, tiny_config())
    names = dict(model.named_parameters())
    decay = set(decay_parameter_names(model))
    modules = dict(model.named_modules())
    embeddings = {n for n in names if isinstance(modules[n.rsplit(".", 1)[0]], nn.Embedding)}
    norms = {n for n in names if isinstance(modules[n.rsplit(".", 1)[0]], nn.LayerNorm)}
    biases = {n for n in names if n.endswith(".bias")}
    assert embeddings and norms and biases  # the tiny DMT has all three kinds
    assert {n for n in embeddings if ".embedding.items." in n}  # the entity tables are among them
    assert decay == set(names) - embeddings - norms - biases
    # HF's ``"bias" not in name`` would spare the bias tower's dense weights: they are decayed here.
    assert {n for n in decay if "bias_tower" in n and n.endswith(".weight")}
    assert {n for n in decay if ".experts." in n}


def test_weight_decay_shrinks_a_dense_weight_but_not_an_embedding_or_a_layer_norm(fixture: RankingFixture,
                                                                                  tmp_path) -> None:
    torch.manual_seed(0)
    model = build_model(fixture.schema, tiny_config())
    trainer = _trainer(model, fixture, tmp_path, learning_rate=0.1, weight_decay=0.5, optim="adamw_torch")
    optimizer = trainer.create_optimizer()
    network = _network(model)
    encoder = network.encoders[0]
    expert = network.multitask[0].experts[0].layers[0]
    norm = next(m for m in network.modules() if isinstance(m, nn.LayerNorm))
    watched = {"expert": expert.weight, "items": encoder.embedding.items.weight, "norm": norm.weight,
               "expert_bias": expert.bias}
    before = {k: v.detach().clone() for k, v in watched.items()}
    for p in model.parameters():
        p.grad = torch.zeros_like(p)  # Adam's step is 0: only the decoupled decay moves a weight
    optimizer.step()
    torch.testing.assert_close(watched["expert"], before["expert"] * (1 - 0.1 * 0.5))
    for name in ("items", "norm", "expert_bias"):
        assert torch.equal(watched[name], before[name]), name


def test_an_unresolved_weight_decay_is_refused(fixture: RankingFixture, tmp_path) -> None:
    trainer = _trainer(build_model(fixture.schema, tiny_config()), fixture, tmp_path)
    trainer.args.weight_decay = None
    with pytest.raises(ValueError, match="weight_decay is None"):
        trainer.create_optimizer()


# --- embedding L2 ---------------------------------------------------------------------------------------------

def _used_rows(inputs: dict, column: str, sequence: str) -> np.ndarray:
    codes = [inputs[column].reshape(-1).numpy()] + [inputs[f"{b}_{sequence}"].reshape(-1).numpy() for b in BEHAVIORS]
    used = np.unique(np.concatenate(codes))
    return used[used != 0]


def test_embedding_l2_adds_exactly_the_penalty_of_the_rows_in_the_batch(fixture: RankingFixture,
                                                                        batch: tuple[dict, dict]) -> None:
    inputs, targets = batch
    torch.manual_seed(0)
    with_l2 = build_model(fixture.schema, tiny_config(regularisation={"embedding_l2": 0.25}))
    plain = build_model(fixture.schema, tiny_config())
    plain.load_state_dict(with_l2.state_dict())
    losses = []
    for model in (with_l2, plain):
        model.train()
        torch.manual_seed(1)  # the same dropout masks: the penalty draws no random numbers
        losses.append(model(dict(inputs), targets=targets, training=True)["loss"])
    embedding = _network(with_l2).encoders[0].embedding
    expected = 0.0
    for table, column, sequence in ((embedding.items, "item_id", "item_id_seq"),
                                    (embedding.categories, "item_category", "category_seq"),
                                    (embedding.brands, "item_brand", "brand_seq")):
        rows = table.weight.detach().numpy()[_used_rows(inputs, column, sequence)]
        expected += float((rows.astype(np.float64) ** 2).sum())
    expected *= 0.25 / len(inputs["item_id"])
    assert expected > 0
    assert float((losses[0] - losses[1]).detach()) == pytest.approx(expected, rel=1e-4)
    # Only the rows the batch reads get the penalty's gradient; evaluation losses leave it out.
    out = _network(with_l2)(dict(inputs))
    assert out.embedding_penalty is not None
    out.embedding_penalty.backward()
    grad = embedding.items.weight.grad
    touched = np.flatnonzero(grad.abs().sum(dim=1).numpy())
    np.testing.assert_array_equal(touched, _used_rows(inputs, "item_id", "item_id_seq"))
    torch.testing.assert_close(grad[touched], 2 * 0.25 / 32 * embedding.items.weight[touched].detach())
    with_l2.eval()
    assert _network(with_l2)(dict(inputs)).embedding_penalty is None
    tested = [m.eval()(dict(inputs), targets=targets, testing=True)["loss"] for m in (with_l2, plain)]
    assert torch.equal(tested[0], tested[1])


def test_embedding_l2_off_computes_nothing(fixture: RankingFixture, batch: tuple[dict, dict]) -> None:
    model = build_model(fixture.schema, tiny_config()).train()
    assert _network(model)(dict(batch[0])).embedding_penalty is None


# --- expert dropout -------------------------------------------------------------------------------------------

def test_expert_dropout_is_active_in_training_and_off_in_evaluation() -> None:
    torch.manual_seed(0)
    dropped = MMoE(12, 2, 3, [16, 8], [4], dropout=0.5)
    plain = MMoE(12, 2, 3, [16, 8], [4], dropout=0.0)  # the same layers without the Dropout modules
    linears = [[m for m in block.modules() if isinstance(m, nn.Linear)] for block in (dropped, plain)]
    for source, target in zip(*linears, strict=True):
        target.load_state_dict(source.state_dict())
    x = torch.randn(64, 12)
    dropped.eval(), plain.eval()
    assert torch.equal(dropped(x), plain(x))
    assert torch.equal(dropped.expert_outputs(x), plain.expert_outputs(x))
    dropped.train(), plain.train()
    experts = dropped.expert_outputs(x)  # (B, E, H): ReLU then dropout, so about half the units are 0
    zero_share = float((experts == 0).float().mean())
    assert 0.6 < zero_share < 0.9  # ReLU zeros about half, dropout half of the rest
    assert not torch.equal(dropped(x), plain(x))
    assert torch.equal(plain(x), plain.eval()(x))  # no dropout: training mode changes nothing
    # The config's multitask.dropout is the one the experts use.
    block = build_multitask(tiny_config(**RECIPE).multitask, 12, 2)
    assert isinstance(block, MMoE) and block.experts[0].dropout == 0.5


# --- warm-up --------------------------------------------------------------------------------------------------

def test_warmup_ratio_is_honoured(fixture: RankingFixture, tmp_path) -> None:
    model = build_model(fixture.schema, tiny_config())
    kwargs = {"learning_rate": 1e-2, "warmup_ratio": 0.5, "lr_scheduler_type": "linear"}
    trainer = _trainer(model, fixture, tmp_path / "dmt", **kwargs)
    trainer.create_optimizer_and_scheduler(num_training_steps=10)
    lrs = []
    for _ in range(6):
        lrs.append(trainer.lr_scheduler.get_last_lr()[0])
        trainer.optimizer.step()
        trainer.lr_scheduler.step()
    assert lrs == pytest.approx([0.0, 2e-3, 4e-3, 6e-3, 8e-3, 1e-2])  # 5 warm-up steps, then decay
    # T4R 23.12's own scheduler ignores the ratio (the defect DMTTrainer.create_scheduler works around).
    stock = tr.Trainer(model=model, args=trainer.args, schema=fixture.schema)
    stock.create_optimizer_and_scheduler(num_training_steps=10)
    assert stock.lr_scheduler.get_last_lr()[0] == pytest.approx(1e-2)


# --- unknown dropout ------------------------------------------------------------------------------------------

def test_unknown_dropout_reads_known_items_as_unknown_while_training_only(fixture: RankingFixture) -> None:
    """``embeddings.unknown_dropout`` p: in training each known item code (> OOV_CODE) is read as OOV_CODE with
    probability p, padding / null / OOV codes never change; in evaluation, or with p = 0, every code is read as it
    is."""
    model = build_model(fixture.schema, tiny_config(embeddings={"unknown_dropout": 0.25}))
    encoder = _network(model).encoders[0]
    codes = torch.arange(0, 8).repeat(5000)  # 0 padding, 1 null, 2 OOV, 3..7 known
    encoder.train()
    torch.manual_seed(0)
    read = encoder.read_items(codes)
    assert torch.equal(read[codes <= OOV_CODE], codes[codes <= OOV_CODE])
    known = codes > OOV_CODE
    assert set(read[known].unique().tolist()) == {OOV_CODE, 3, 4, 5, 6, 7}
    assert 0.23 < float((read[known] == OOV_CODE).float().mean()) < 0.27  # 25,000 draws of p = 0.25
    encoder.eval()
    assert torch.equal(encoder.read_items(codes), codes)
    plain = _network(build_model(fixture.schema, tiny_config())).encoders[0].train()
    assert torch.equal(plain.read_items(codes), codes)
    assert tiny_config().embeddings.unknown_dropout == 0.0


@pytest.mark.parametrize("value", [-0.1, 1.0, True])
def test_unknown_dropout_must_be_a_probability(value: object) -> None:
    with pytest.raises(ValueError, match=rf"embeddings.unknown_dropout must be in \[0, 1\); got {value!r}"):
        DMTConfig.from_dict({"embeddings": {"unknown_dropout": value}})
