"""The plain DMT blocks, checked on values with tiny sizes."""

from __future__ import annotations

import math

import pytest
import torch
from torch.nn import functional as F

from t4r_dmt.model import TransformerConfig
from t4r_dmt.model.bias import BiasTower
from t4r_dmt.model.config import MultiTaskConfig
from t4r_dmt.model.decoder import TargetAttentionDecoder
from t4r_dmt.model.encoders import ENCODERS, SequenceEncoder, build_hf_config
from t4r_dmt.model.inputs import BiasBatch, list_column, most_recent, scalar_column
from t4r_dmt.model.interest import DeepInterestTransformer
from t4r_dmt.model.loss import MultiTaskLoss
from t4r_dmt.model.multitask import MMoE, SharedBottom, TaskTowers, build_multitask

TINY = TransformerConfig(d_model=8, d_ff=16, n_heads=2, n_layers=1, dropout=0.0)


def test_mmoe_gates_sum_to_one_and_mix_experts() -> None:
    torch.manual_seed(0)
    mmoe = MMoE(in_size=6, num_tasks=2, num_experts=3, expert_units=[5, 4], tower_units=[3])
    x = torch.randn(7, 6)
    gates = mmoe.gate_weights(x)
    assert gates.shape == (7, 2, 3)
    torch.testing.assert_close(gates.sum(-1), torch.ones(7, 2))
    assert (gates > 0).all()
    # The output is each task's tower applied to its gate-weighted sum of the experts.
    experts = torch.stack([e(x) for e in mmoe.experts], dim=1)
    for k in range(2):
        mixed = (gates[:, k].unsqueeze(-1) * experts).sum(1)
        torch.testing.assert_close(mmoe(x)[:, k], mmoe.towers[k](mixed))


def test_shared_bottom_and_towers_shapes_and_independence() -> None:
    torch.manual_seed(0)
    x = torch.randn(4, 6)
    sb = SharedBottom(6, 2, [5], [3])
    towers = TaskTowers(6, 2, [5], [3])
    assert sb(x).shape == towers(x).shape == (4, 2)
    # Task towers share nothing: zeroing task 0's weights leaves task 1's logit unchanged.
    before = towers(x)[:, 1].clone()
    with torch.no_grad():
        for p in towers.towers[0].parameters():
            p.zero_()
    torch.testing.assert_close(towers(x)[:, 1], before)
    assert torch.equal(towers(x)[:, 0], torch.zeros(4))
    assert isinstance(build_multitask(MultiTaskConfig(kind="towers"), 6, 2), TaskTowers)
    assert isinstance(build_multitask(MultiTaskConfig(kind="single_task"), 6, 1), SharedBottom)


def test_decoder_gives_defined_output_for_all_padding_rows() -> None:
    torch.manual_seed(0)
    dec = TargetAttentionDecoder(8, 2, 16, n_layers=2, dropout=0.0, eps=1e-6, act="relu").eval()
    query = torch.randn(3, 8)
    memory = torch.randn(3, 5, 8)
    mask = torch.tensor([[1, 1, 0, 0, 0], [0, 0, 0, 0, 0], [1, 1, 1, 1, 1]], dtype=torch.bool)
    out = dec(query, memory, mask)
    assert torch.isfinite(out).all()
    # A row with no events depends on its query only: any memory gives the same result ...
    out2 = dec(query, memory * 7 + 1, mask)
    torch.testing.assert_close(out[1], out2[1])
    # ... while a row with events does depend on its memory.
    assert not torch.allclose(out[0], out2[0])


def test_decoder_ignores_padded_memory() -> None:
    torch.manual_seed(0)
    dec = TargetAttentionDecoder(8, 2, 16, n_layers=1, dropout=0.0, eps=1e-6, act="gelu").eval()
    query, memory = torch.randn(2, 8), torch.randn(2, 4, 8)
    mask = torch.tensor([[1, 1, 0, 0], [1, 0, 0, 0]], dtype=torch.bool)
    changed = memory.clone()
    changed[:, 2:] = 100.0
    torch.testing.assert_close(dec(query, memory, mask), dec(query, changed, mask))


@pytest.mark.parametrize("name", sorted(ENCODERS))
def test_every_encoder_builds_with_our_sizes_and_masks_padding(name: str) -> None:
    cfg = TransformerConfig(encoder=name, d_model=8, d_ff=12, n_heads=2, n_layers=1, dropout=0.2)
    hf = build_hf_config(cfg, max_length=5)
    kind = ENCODERS[name]
    assert getattr(hf, kind.d_ff) == 12
    assert all(getattr(hf, d) == 0.2 for d in kind.dropouts)
    torch.manual_seed(0)
    encoder = SequenceEncoder(cfg, max_length=5).eval()
    if kind.positions is not None:  # our own position table replaces the encoder's
        table = encoder.model.get_submodule(kind.positions).weight
        assert not table.requires_grad and torch.equal(table, torch.zeros_like(table))
    tokens = torch.randn(2, 5, 8)
    mask = torch.tensor([[1, 1, 1, 0, 0], [0, 0, 0, 0, 0]], dtype=torch.bool)
    out = encoder(tokens, mask)
    assert out.shape == (2, 5, 8) and torch.isfinite(out).all()
    changed = tokens.clone()
    changed[0, 3:] = 50.0
    torch.testing.assert_close(encoder(changed, mask)[0, :3], out[0, :3])


def test_unknown_encoder_is_refused() -> None:
    cfg = TransformerConfig()
    object.__setattr__(cfg, "encoder", "lstm")  # bypass __post_init__ validation on purpose
    with pytest.raises(ValueError, match="unknown encoder 'lstm'; choose one of bert"):
        build_hf_config(cfg, 5)


def test_interest_transformer_positions_and_padding() -> None:
    torch.manual_seed(0)
    dit = DeepInterestTransformer(TINY, token_dim=6, max_length=4).eval()
    tokens, target = torch.randn(2, 4, 6), torch.randn(2, 6)
    mask = torch.tensor([[1, 1, 0, 0], [1, 1, 1, 1]], dtype=torch.bool)
    out, aux = dit(tokens, mask, target)
    assert out.shape == (2, 8) and torch.equal(aux, torch.zeros(()))  # no auxiliary loss
    changed = tokens.clone()
    changed[0, 2:] = -3.0
    torch.testing.assert_close(dit(changed, mask, target)[0][0], out[0])
    # Learned positions: swapping two real events changes the interest vector.
    swapped = tokens.clone()
    swapped[1, [0, 1]] = tokens[1, [1, 0]]
    assert not torch.allclose(dit(swapped, mask, target)[0][1], out[1])
    no_pos = DeepInterestTransformer(
        TransformerConfig(d_model=8, d_ff=16, n_heads=2, dropout=0.0, position_encoding="none"), 6, 4).eval()
    assert no_pos.positions is None
    # Shorter inputs than N use the first rows of the position table.
    assert dit(tokens[:, :2], mask[:, :2], target)[0].shape == (2, 8)


def test_recent_positions_count_from_the_last_event() -> None:
    from t4r_dmt.model.interest import recency_slots

    mask = torch.tensor([[True, True, True, False], [True, False, False, False], [False, False, False, False]])
    assert recency_slots(mask).tolist() == [[2, 1, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]]
    torch.manual_seed(0)
    cfg = TransformerConfig(d_model=8, d_ff=16, n_heads=2, dropout=0.0, position_encoding="learned_recent")
    dit = DeepInterestTransformer(cfg, 8, 4).eval()
    # The most recent event carries slot 0 whatever the row's length: a row whose events are the last two of
    # another row's three, with the same target, sees the same last-event token (slot 0) and the same second
    # to last (slot 1); with positions counted from the oldest event the slots would differ.
    tokens = torch.randn(1, 3, 8)
    target = torch.randn(1, 8)
    long_mask = torch.ones(1, 3, dtype=torch.bool)
    short = torch.cat([tokens[:, 1:], torch.zeros(1, 1, 8)], dim=1)
    short_mask = torch.tensor([[True, True, False]])
    x_long = dit.project(tokens) * dit.scale + dit.positions(recency_slots(long_mask))
    x_short = dit.project(short) * dit.scale + dit.positions(recency_slots(short_mask))
    torch.testing.assert_close(x_long[:, 1:], x_short[:, :2])
    out, _ = dit(tokens, long_mask, target)
    assert out.shape == (1, 8) and torch.isfinite(out).all()


def test_loss_values_ctcvr_cvr_bias_and_weights() -> None:
    logits = torch.tensor([[0.5, -1.0], [-0.3, 0.2], [1.2, -2.0]])
    labels = torch.tensor([[1.0, 1.0], [0.0, 0.0], [1.0, 0.0]])
    bias = torch.tensor([0.7, -0.4, 0.1])

    def bce(x: torch.Tensor, y: torch.Tensor) -> float:
        return float(F.binary_cross_entropy_with_logits(x, y))

    ctcvr = MultiTaskLoss([1.0, 2.0])
    expected = bce(logits[:, 0], labels[:, 0]) + 2.0 * bce(logits[:, 1], labels[:, 1])
    assert float(ctcvr(logits, None, labels, training=True)) == pytest.approx(expected)
    # cvr: the order loss only counts clicked rows (0 and 2).
    cvr = MultiTaskLoss([1.0, 1.0], order_label="cvr")
    clicked = labels[:, 0] > 0
    expected = bce(logits[:, 0], labels[:, 0]) + bce(logits[clicked, 1], labels[clicked, 1])
    assert float(cvr(logits, None, labels, training=False)) == pytest.approx(expected)
    assert cvr.row_mask(labels)[:, 1].tolist() == [1.0, 0.0, 1.0]
    # The bias logit is added to every task in training only.
    biased = logits + bias.unsqueeze(1)
    expected_train = bce(biased[:, 0], labels[:, 0]) + bce(biased[:, 1], labels[:, 1])
    plain = MultiTaskLoss([1.0, 1.0])
    assert float(plain(logits, bias, labels, training=True)) == pytest.approx(expected_train)
    assert float(plain(logits, bias, labels, training=False)) == pytest.approx(
        bce(logits[:, 0], labels[:, 0]) + bce(logits[:, 1], labels[:, 1]))
    # The public code's extra unbiased term.
    extra = MultiTaskLoss([1.0, 1.0], unbiased_term=True)
    assert float(extra(logits, bias, labels, training=True)) == pytest.approx(
        expected_train + bce(logits[:, 0], labels[:, 0]) + bce(logits[:, 1], labels[:, 1]))
    # Positive-class weights.
    weighted = MultiTaskLoss([1.0, 0.0], pos_weights=[3.0, 1.0])
    manual = F.binary_cross_entropy_with_logits(logits[:, 0], labels[:, 0], pos_weight=torch.tensor(3.0))
    assert float(weighted(logits, None, labels, training=False)) == pytest.approx(float(manual))
    # A cvr batch without clicks contributes 0 to the order loss, not NaN.
    no_clicks = torch.zeros(3, 2)
    value = cvr(logits, None, no_clicks, training=True)
    assert math.isfinite(float(value))
    assert float(value) == pytest.approx(bce(logits[:, 0], no_clicks[:, 0]))
    with pytest.raises(ValueError, match="order_label must be 'ctcvr' or 'cvr'"):
        MultiTaskLoss([1.0, 1.0], order_label="both")


def test_bias_tower_mean_pools_real_neighbours_only() -> None:
    torch.manual_seed(0)
    tower = BiasTower(n_positions=5, n_pages=3, n_categories=7, embedding_dim=4, units=[6], dropout=0.5).eval()
    category = torch.tensor([3, 4])
    position, page = torch.tensor([1, 2]), torch.tensor([1, 1])
    a = BiasBatch(position, page, torch.tensor([[0, 0, 0, 3, 5, 6], [0, 0, 0, 3, 5, 6]]))
    b = BiasBatch(position, page, torch.tensor([[3, 5, 6, 0, 0, 0], [6, 5, 3, 0, 0, 0]]))
    torch.testing.assert_close(tower(a, category), tower(b, category))
    # Positions beyond the table share its last row instead of failing.
    deep = BiasBatch(torch.tensor([4, 40]), torch.tensor([2, 9]), a.neighbors)
    out = tower(deep, category)
    assert out.shape == (2,) and torch.isfinite(out).all()
    clamped = BiasBatch(torch.tensor([4, 4]), torch.tensor([2, 2]), a.neighbors)
    torch.testing.assert_close(tower(clamped, torch.tensor([3, 3])), tower(deep, torch.tensor([3, 3])))


def test_input_helpers() -> None:
    values = torch.tensor([5, 6, 7, 8, 9])
    offsets = torch.tensor([0, 2, 2, 5])
    dense = list_column({"s__values": values, "s__offsets": offsets}, "s")
    assert dense.tolist() == [[5, 6, 0], [0, 0, 0], [7, 8, 9]]
    no_values = {"s__values": torch.zeros(0, dtype=torch.long), "s__offsets": torch.zeros(3, dtype=torch.long)}
    empty = list_column(no_values, "s")
    assert empty.tolist() == [[0], [0]]
    assert scalar_column({"x": torch.tensor([[1], [2]])}, "x").tolist() == [1, 2]
    # The most recent N of right-padded, oldest-first lists.
    items = torch.tensor([[1, 2, 3, 4, 0], [1, 2, 0, 0, 0], [1, 2, 3, 4, 5]])
    cats = items * 10
    kept_items, kept_cats = most_recent(items, [cats], 3)
    assert kept_items.tolist() == [[2, 3, 4], [1, 2, 0], [3, 4, 5]]
    assert kept_cats.tolist() == [[20, 30, 40], [10, 20, 0], [30, 40, 50]]
    assert most_recent(items, [], 5)[0] is items
    with pytest.raises(ValueError, match="input batch has no list column 'missing'"):
        list_column({}, "missing")
    with pytest.raises(ValueError, match="input batch has no column 'x'"):
        scalar_column({}, "x")
    with pytest.raises(ValueError, match=r"list column 's' must be 2-D \(B, L\); got shape \(3,\)"):
        list_column({"s": torch.zeros(3)}, "s")


@pytest.mark.parametrize("zero_unknown", [True, False])
def test_unknown_ids_start_at_zero_and_train(zero_unknown: bool) -> None:
    """Padding (0) is a fixed zero vector; null (1) and out-of-vocabulary (2) start at zero with ``zero_unknown``
    (random otherwise) and, unlike padding, are trained by the rows that carry them."""
    from t4r_dmt.model.multi_behavior import ItemEmbedding

    torch.manual_seed(0)
    embedding = ItemEmbedding(10, 6, 5, (4, 2, 2), init_std=0.5, zero_unknown=zero_unknown)
    for table in (embedding.items, embedding.categories, embedding.brands):
        assert torch.count_nonzero(table.weight[0]) == 0
        assert (torch.count_nonzero(table.weight[1:3]) == 0) == zero_unknown
        assert torch.count_nonzero(table.weight[3:]) == table.weight[3:].numel()
    codes = torch.tensor([0, 1, 2, 3])
    (embedding(codes, codes, codes) * torch.arange(1.0, 33.0).reshape(4, 8)).sum().backward()
    for table in (embedding.items, embedding.categories, embedding.brands):
        assert torch.count_nonzero(table.weight.grad[0]) == 0
        assert torch.count_nonzero(table.weight.grad[1:4]) == table.weight.grad[1:4].numel()  # null, OOV, a value
