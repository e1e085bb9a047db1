"""The catalogue co-occurrence loss of the entity embeddings (``config.catalogue``; ``model/cooccurrence.py``)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from model_fixtures import RankingFixture, tiny_config

from t4r_dmt.model import CatalogueConfig, DMTConfig, build_model
from t4r_dmt.model.cooccurrence import CooccurrenceLoss


def test_loss_is_the_in_batch_softmax_over_consecutive_pairs() -> None:
    # Row 0: items 1 -> 2 -> 2 (repeat: skipped) -> pad; row 1: 3 -> 4. Two pairs: (1, 2) and (3, 4).
    tokens = torch.tensor([[[1.0, 0.0], [0.6, 0.8], [0.6, 0.8], [0.0, 0.0]],
                           [[0.0, 1.0], [0.8, 0.6], [0.0, 0.0], [0.0, 0.0]]])
    items = torch.tensor([[1, 2, 2, 0], [3, 4, 0, 0]])
    loss = CooccurrenceLoss(temperature=0.5, max_pairs=16)([(tokens, items)])
    a = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    b = torch.tensor([[0.6, 0.8], [0.8, 0.6]])
    logits = a @ b.T / 0.5
    expected = F.cross_entropy(logits, torch.tensor([0, 1]))
    torch.testing.assert_close(loss, expected)
    # by hand: row 0 logits (1.2, 1.6), row 1 (1.6, 1.2)
    by_hand = 0.5 * (-(1.2 - math.log(math.exp(1.2) + math.exp(1.6))) - (1.2 - math.log(math.exp(1.6) + math.exp(1.2))))
    assert loss.item() == pytest.approx(by_hand, rel=1e-6)


def test_a_pair_with_the_same_next_item_is_no_negative() -> None:
    # Two users both go 1 -> 2 (the same pair): neither is a negative for the other, so their losses are 2-way
    # softmaxes (own pair, the 3 -> 4 pair); the 3 -> 4 pair keeps both as negatives (3-way).
    tokens = torch.tensor([[[1.0, 0.0], [1.0, 0.0]], [[1.0, 0.0], [1.0, 0.0]], [[0.0, 1.0], [0.0, 1.0]]])
    items = torch.tensor([[1, 2], [1, 2], [3, 4]])
    loss = CooccurrenceLoss(temperature=1.0, max_pairs=16)([(tokens, items)])
    two_way = -(1.0 - math.log(math.e + 1.0))  # own pair cos 1, the other pair cos 0
    three_way = -(1.0 - math.log(math.e + 2.0))
    assert loss.item() == pytest.approx((2 * two_way + three_way) / 3, rel=1e-6)


def test_fewer_than_two_pairs_give_zero_with_a_gradient_path() -> None:
    tokens = torch.randn(2, 3, 4, requires_grad=True)
    items = torch.tensor([[5, 5, 0], [7, 0, 0]])  # a repeat and a single event: no pair
    loss = CooccurrenceLoss(0.1, 8)([(tokens, items)])
    assert loss.item() == 0.0
    loss.backward()
    assert tokens.grad is not None and torch.equal(tokens.grad, torch.zeros_like(tokens))


def test_max_pairs_bounds_the_pairs_drawn() -> None:
    torch.manual_seed(0)
    tokens, items = torch.randn(50, 6, 4), torch.randint(1, 1000, (50, 6))
    loss = CooccurrenceLoss(1.0, 8)([(tokens, items)])
    # At most 8 pairs: an 8-way softmax over cosines in [-1, 1] at temperature 1 is at most log 8 + 2.
    assert 0 < loss.item() <= math.log(8) + 2


def test_training_on_it_pulls_items_taken_together_closer() -> None:
    torch.manual_seed(0)
    table = torch.nn.Embedding(9, 8)
    loss_fn = CooccurrenceLoss(temperature=0.2, max_pairs=64)
    opt = torch.optim.Adam(table.parameters(), lr=0.05)
    items = torch.tensor([[1, 2, 1, 2], [3, 4, 3, 4], [5, 6, 5, 6], [7, 8, 7, 8]])  # 1-2, 3-4, 5-6, 7-8 pairs
    for _ in range(100):
        opt.zero_grad()
        loss_fn([(table(items), items)]).backward()
        opt.step()
    w = F.normalize(table.weight.detach(), dim=1)
    for x, y in ((1, 2), (3, 4), (5, 6), (7, 8)):
        others = [z for z in range(1, 9) if z not in (x, y)]
        assert (w[x] @ w[y]) > max(w[x] @ w[z] for z in others) + 0.3


@pytest.mark.parametrize(
    ("data", "match"),
    [
        ({"weight": -1.0}, "catalogue.weight must be a finite number >= 0; got -1.0"),
        ({"weight": True}, "catalogue.weight must be a finite number >= 0; got True"),
        ({"temperature": 0.0}, "catalogue.temperature must be > 0; got 0"),
        ({"temperature": float("inf")}, "catalogue.temperature must be a finite number >= 0"),
        ({"max_pairs": 1}, "catalogue.max_pairs must be an integer >= 2; got 1"),
        ({"max_pairs": 2.5}, "catalogue.max_pairs must be an integer >= 2; got 2.5"),
        ({"lambda": 1.0}, r"unknown config key\(s\) \['lambda'\] in config.catalogue"),
    ],
)
def test_config_errors_name_the_field(data: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        DMTConfig.from_dict({"catalogue": data})


def test_module_errors() -> None:
    with pytest.raises(ValueError, match="temperature must be > 0"):
        CooccurrenceLoss(0.0, 8)
    with pytest.raises(ValueError, match="max_pairs must be >= 2"):
        CooccurrenceLoss(0.1, 1)


def test_config_round_trips_and_is_left_out_at_its_default() -> None:
    assert "catalogue" not in DMTConfig().to_dict()  # configs saved before it existed stay unchanged
    on = DMTConfig.from_dict({"catalogue": {"weight": 0.5, "temperature": 0.2, "max_pairs": 64}})
    assert on.catalogue == CatalogueConfig(0.5, 0.2, 64)
    assert DMTConfig.from_dict(on.to_dict()) == on


def test_network_adds_the_weighted_loss_in_training_only(fixture: RankingFixture, batch: tuple[dict, dict]) -> None:
    torch.manual_seed(0)
    model = build_model(fixture.schema, tiny_config(catalogue={"weight": 0.5, "max_pairs": 4096}))
    network = model.heads[0].body.module
    inputs = {k: v.clone() for k, v in batch[0].items()}
    network.train()
    out = network(inputs)
    assert out.catalogue_loss is not None
    from t4r_dmt.model.inputs import read_batch

    rows = read_batch({k: v.clone() for k, v in batch[0].items()}, network.spec)
    raw = network.cooccurrence(network.encoders[0].sequence_tokens(rows))  # all pairs fit: no draw
    torch.testing.assert_close(out.catalogue_loss, 0.5 * raw)
    model.train()
    with_loss = model({k: v.clone() for k, v in batch[0].items()}, targets=batch[1], training=True)["loss"]
    with_loss.backward()
    assert network.encoders[0].embedding.items.weight.grad.abs().sum() > 0
    network.eval()
    assert network(inputs).catalogue_loss is None
    off = build_model(fixture.schema, tiny_config()).heads[0].body.module.train()
    assert off.cooccurrence is None and off(inputs).catalogue_loss is None
