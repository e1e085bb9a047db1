"""The one RankingNetwork: its dropout option, its bias tower built once, its auxiliary loss through RankingTask."""

from __future__ import annotations

import math

import pytest
import torch
from model_fixtures import RankingFixture, tiny_config
from torch import nn

from t4r_dmt.model import RankingNetwork, RankingOutput, RankingTask, build_model
from t4r_dmt.model.bias import BiasTower
from t4r_dmt.model.bias_inputs import SelectiveBiasTower
from t4r_dmt.model.dropout import BitsDropout
from t4r_dmt.model.features import FeatureSpec
from t4r_dmt.model.loss import MultiTaskLoss
from t4r_dmt.model.network import build_bias_tower


def _clone(inputs: dict) -> dict:
    return {k: v.clone() for k, v in inputs.items()}


def _network(model: nn.Module) -> RankingNetwork:
    return model.heads[0].body.module


def test_fast_dropout_option_is_honoured_both_ways(fixture: RankingFixture, batch: tuple[dict, dict]) -> None:
    torch.manual_seed(0)
    plain = build_model(fixture.schema, tiny_config(fast_dropout=False))
    torch.manual_seed(0)
    fast = build_model(fixture.schema, tiny_config(fast_dropout=True))
    plain_dropouts = [m for m in plain.modules() if isinstance(m, nn.Dropout)]
    fast_dropouts = [m for m in fast.modules() if isinstance(m, nn.Dropout)]
    assert not any(isinstance(m, BitsDropout) for m in plain.modules())
    assert all(type(m) is nn.Dropout for m in plain_dropouts)
    assert all(type(m) is BitsDropout for m in fast_dropouts)  # no nn.Dropout left
    assert [m.p for m in fast_dropouts] == [m.p for m in plain_dropouts]
    assert sorted({m.p for m in plain_dropouts}) == [0.1, 0.5]  # transformer.dropout, bias.dropout
    hf_encoder = _network(fast).encoders[0].interests["click"].encoder.model  # the HF encoder's own layers
    assert sum(type(m) is BitsDropout for m in hf_encoder.modules()) >= 4
    # The swap draws no random numbers: same parameters, same evaluation scores; training draws other masks.
    for a, b in zip(plain.parameters(), fast.parameters(), strict=True):
        assert torch.equal(a, b)
    inputs, targets = batch
    for model in (plain, fast):
        model.eval()
    with torch.no_grad():
        assert torch.equal(plain(_clone(inputs))["score"], fast(_clone(inputs))["score"])
    losses = []
    for model in (plain, fast):
        model.train()
        torch.manual_seed(1)
        losses.append(model(_clone(inputs), targets=targets, training=True)["loss"])
    assert not torch.equal(losses[0], losses[1])


def test_bias_tower_for_an_inputs_subset_is_built_once(fixture: RankingFixture,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    built: list[type] = []
    original = BiasTower.__init__

    def counting(self: BiasTower, *args: object, **kwargs: object) -> None:
        built.append(type(self))
        original(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(BiasTower, "__init__", counting)
    config = tiny_config(bias={"inputs": ["page"]})
    torch.manual_seed(0)
    model = build_model(fixture.schema, config)
    tower = _network(model).bias_tower
    assert built == [SelectiveBiasTower]  # one tower, chosen at construction; nothing swapped in afterwards
    assert type(tower) is SelectiveBiasTower and tower.inputs == ("page",)
    built.clear()
    full = _network(build_model(fixture.schema, tiny_config())).bias_tower
    assert built == [BiasTower] and type(full) is BiasTower
    # build_model wraps the network RankingNetwork builds, values included.
    torch.manual_seed(0)
    spec = FeatureSpec.from_schema(fixture.schema, config)
    network = RankingNetwork(spec, config)
    for a, b in zip(network.parameters(), _network(model).parameters(), strict=True):
        assert torch.equal(a, b)
    # The subset tower holds the second draw of a full tower and leaves the generator where two draws do
    # (how the Table 5 presets were first trained).
    assert spec.bias is not None
    sizes = (spec.bias.n_positions, spec.bias.n_pages, spec.n_categories, 5, [8], 0.5)
    torch.manual_seed(3)
    BiasTower(*sizes)
    second = BiasTower(*sizes)
    after_two = torch.rand(3)
    torch.manual_seed(3)
    selective = build_bias_tower(spec, config)
    assert isinstance(selective, SelectiveBiasTower)
    assert torch.equal(torch.rand(3), after_two)
    for a, b in zip(second.parameters(), selective.parameters(), strict=True):
        assert torch.equal(a, b)
    assert torch.equal(selective.categories.weight[0], torch.zeros(5))  # padding row still zero


def test_ranking_task_adds_the_weighted_aux_loss_in_training_only() -> None:
    task = RankingTask(MultiTaskLoss([1.0, 1.0]), [1.0, 1.0], ("click", "order"), aux_weight=2.0)
    out = RankingOutput(torch.zeros(2, 2), None, torch.tensor(0.25))
    targets = {"click": torch.tensor([1, 0]), "order": torch.tensor([0, 0])}
    # BCE of logit 0 is log 2 for either label: each task's mean is log 2.
    torch.testing.assert_close(task(out, targets=targets, training=True)["loss"], torch.tensor(2 * math.log(2) + 0.5))
    torch.testing.assert_close(task(out, targets=targets, testing=True)["loss"], torch.tensor(2 * math.log(2)))
    plain = RankingTask(MultiTaskLoss([1.0, 1.0]), [1.0, 1.0], ("click", "order"))
    assert plain.aux_weight == 0.0
    torch.testing.assert_close(plain(out, targets=targets, training=True)["loss"], torch.tensor(2 * math.log(2)))
    with pytest.raises(ValueError, match="aux_weight must be >= 0; got -1.0"):
        RankingTask(MultiTaskLoss([1.0, 1.0]), [1.0, 1.0], ("click", "order"), aux_weight=-1.0)


def test_dien_aux_loss_goes_through_the_one_ranking_task(fixture: RankingFixture, batch: tuple[dict, dict]) -> None:
    inputs, targets = batch
    config = tiny_config(name="dien", behaviors=["click"], interest={"kind": "dien", "aux_loss_weight": 0.5},
                         multitask={"kind": "shared_bottom"}, bias={"enabled": "off"})
    torch.manual_seed(0)
    model = build_model(fixture.schema, config)
    task, network = model.heads[0].task, _network(model)
    assert type(task) is RankingTask and task.aux_weight == 0.5
    model.train()  # no dropout in this model: every call computes the same values
    out = network(_clone(inputs))
    assert float(out.aux_loss.detach()) > 0.1
    labels = task.stack_labels(targets)
    plain = task.loss(out.task_logits, out.bias_logit, labels, training=True)
    trained = model(_clone(inputs), targets=targets, training=True)["loss"]
    assert torch.equal(trained, plain + 0.5 * out.aux_loss)
    tested = model(_clone(inputs), targets=targets, testing=True)["loss"]
    assert torch.equal(tested, task.loss(out.task_logits, out.bias_logit, labels, training=False))
    # DMT's extractors have no auxiliary loss: its training loss is the multi-task loss alone.
    torch.manual_seed(0)
    dmt = build_model(fixture.schema, tiny_config()).eval()  # eval: no dropout, the bias logit still added
    dmt_out = _network(dmt)(_clone(inputs))
    assert torch.equal(dmt_out.aux_loss, torch.zeros(()))
    dmt_task = dmt.heads[0].task
    assert torch.equal(dmt(_clone(inputs), targets=targets, training=True)["loss"],
                       dmt_task.loss(dmt_out.task_logits, dmt_out.bias_logit, labels, training=True))
