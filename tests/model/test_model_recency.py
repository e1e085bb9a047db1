"""Recency and match magnitude in the DMT transformer: the time-gap bucket table (``transformer.time_encoding``)
and the match features (``transformer.match_features``), on values with tiny sizes."""

from __future__ import annotations

import logging
import math

import numpy as np
import pytest
import torch
from merlin.schema import ColumnSchema, Schema, Tags
from model_fixtures import FixtureSpec, RankingFixture, loader_batches, ranking_schema, tiny_config
from model_fixtures import write_ranking_fixture as write_fixture
from transformers4rec import torch as tr

from t4r_dmt.model import RankingNetwork, TransformerConfig, build_model, export_torchscript
from t4r_dmt.model.decoder import TargetAttentionBlock
from t4r_dmt.model.interest import DeepInterestTransformer
from t4r_dmt.model.match import MatchMagnitude
from t4r_dmt.schema import BEHAVIORS, TIME_GAP_BUCKETS

TIME = {"time_encoding": "log2_buckets"}
GAP_COLUMNS = [f"{b}_time_gap_bucket_seq" for b in BEHAVIORS]


def _tiny(**transformer: object) -> TransformerConfig:
    return TransformerConfig(d_model=8, d_ff=16, n_heads=2, dropout=0.0, **transformer)  # type: ignore[arg-type]


def _network(model: tr.Model) -> RankingNetwork:
    return model.heads[0].body.module


def _scores(model: tr.Model, inputs: dict) -> torch.Tensor:
    model.eval()
    with torch.no_grad():
        return model({k: v.clone() for k, v in inputs.items()})["score"]


def _other_gaps(inputs: dict) -> dict:
    """The same batch with every real event's time-gap bucket replaced by another one (padding left at 0)."""
    changed = {k: v.clone() for k, v in inputs.items()}
    for b in BEHAVIORS:
        gaps = changed[f"{b}_time_gap_bucket_seq"]
        real = changed[f"{b}_item_id_seq"] != 0
        assert real.any() and torch.equal(gaps != 0, real)  # aligned element by element
        gaps[real] = (gaps[real] + 7) % (TIME_GAP_BUCKETS - 1) + 1
    return changed


# --- time gaps ------------------------------------------------------------------------------------------------
def test_time_gap_table_is_added_to_the_tokens_and_ignores_padding() -> None:
    torch.manual_seed(0)
    dit = DeepInterestTransformer(_tiny(**TIME), token_dim=8, max_length=4, n_time_gap_buckets=32).eval()
    assert dit.time_gaps is not None and dit.time_gaps.padding_idx == 0
    assert torch.equal(dit.time_gaps.weight[0], torch.zeros(8))
    tokens, target = torch.randn(2, 4, 8), torch.randn(2, 8)
    mask = torch.tensor([[1, 1, 1, 0], [1, 1, 1, 1]], dtype=torch.bool)
    gaps = torch.tensor([[20, 12, 1, 0], [18, 18, 3, 1]])
    out, _ = dit(tokens, mask, target, gaps)
    # One more hour or one less: another bucket of one event changes that row only.
    later = gaps.clone()
    later[0, 1] = 13
    moved, _ = dit(tokens, mask, target, later)
    assert not torch.allclose(moved[0], out[0]) and torch.equal(moved[1], out[1])
    # A code at a padded slot is never read.
    padded = gaps.clone()
    padded[0, 3] = 9
    torch.testing.assert_close(dit(tokens, mask, target, padded)[0], out)
    # The table is exactly the "time_add" of the paper's code: the same as adding its rows to the tokens.
    plain = DeepInterestTransformer(_tiny(), token_dim=8, max_length=4).eval()
    plain.load_state_dict({k: v for k, v in dit.state_dict().items() if not k.startswith("time_gaps")})
    shifted = tokens + dit.time_gaps(gaps) / dit.scale
    torch.testing.assert_close(plain(shifted, mask, target)[0], out, rtol=1e-5, atol=1e-5)


def test_time_gap_table_needs_the_option_and_the_column() -> None:
    assert DeepInterestTransformer(_tiny(), 8, 4, n_time_gap_buckets=32).time_gaps is None  # "none"
    assert DeepInterestTransformer(_tiny(**TIME), 8, 4, n_time_gap_buckets=0).time_gaps is None  # no column
    tokens, mask, target = torch.randn(1, 2, 8), torch.ones(1, 2, dtype=torch.bool), torch.randn(1, 8)
    with pytest.raises(ValueError, match="time_gaps must be given exactly when the block has a time-gap table"):
        DeepInterestTransformer(_tiny(**TIME), 8, 4, 32)(tokens, mask, target)
    with pytest.raises(ValueError, match=r"time_gaps must be given .*\(it has none\)"):
        DeepInterestTransformer(_tiny(), 8, 4)(tokens, mask, target, torch.ones(1, 2, dtype=torch.long))
    with pytest.raises(ValueError, match="n_time_gap_buckets must be >= 0"):
        DeepInterestTransformer(_tiny(**TIME), 8, 4, -1)


def test_model_scores_follow_the_gaps_only_with_time_encoding(fixture: RankingFixture,
                                                              batch: tuple[dict, dict]) -> None:
    inputs, changed = batch[0], _other_gaps(batch[0])
    torch.manual_seed(0)
    timed = build_model(fixture.schema, tiny_config(transformer=TIME))
    spec = _network(timed).spec
    assert spec.n_time_gap_buckets == TIME_GAP_BUCKETS
    assert [b.time_gap for b in spec.behaviors] == GAP_COLUMNS
    assert set(GAP_COLUMNS) <= set(timed.input_schema.column_names)
    assert not torch.allclose(_scores(timed, changed), _scores(timed, inputs))
    torch.manual_seed(0)
    untimed = build_model(fixture.schema, tiny_config())
    assert _network(untimed).spec.n_time_gap_buckets == 0
    assert not set(GAP_COLUMNS) & set(untimed.input_schema.column_names)
    torch.testing.assert_close(_scores(untimed, changed), _scores(untimed, inputs), rtol=0, atol=0)
    # The baselines have no transformer: the option is not theirs, the gaps are not read.
    baseline = build_model(fixture.schema, tiny_config(family="baseline", interest={"kind": "din"}, transformer=TIME))
    assert _network(baseline).spec.n_time_gap_buckets == 0


def test_ragged_gap_lists_give_the_padded_scores(fixture: RankingFixture, batch: tuple[dict, dict]) -> None:
    torch.manual_seed(0)
    model = build_model(fixture.schema, tiny_config(transformer={**TIME, "match_features": True}))
    inputs = batch[0]
    ragged = dict(inputs)
    for name in [f"{b}_{s}" for b in BEHAVIORS for s in ("item_id_seq", "category_seq", "brand_seq",
                                                          "time_gap_bucket_seq")]:
        dense = inputs[name]
        lengths = (inputs[f"{name.split('_')[0]}_item_id_seq"] != 0).sum(1)
        ragged.pop(name)
        ragged[f"{name}__values"] = dense[dense != 0]
        ragged[f"{name}__offsets"] = torch.cat([torch.zeros(1, dtype=torch.long), lengths.cumsum(0)])
    torch.testing.assert_close(_scores(model, ragged), _scores(model, inputs), rtol=0, atol=1e-6)


def test_data_without_time_gaps_trains_without_them_and_says_so_once(
        caplog: pytest.LogCaptureFixture, tmp_path) -> None:
    old = write_fixture(tmp_path, n_windows=1, spec=FixtureSpec(with_time_gaps=False))
    assert not set(GAP_COLUMNS) & set(old.schema.column_names)
    # JD's time gaps are seconds (CONTINUOUS): not bucket codes, so not read either.
    seconds = ColumnSchema("click_time_gap_seq", dtype=np.float32, dims=(None, (0, 8)),
                           tags=[Tags.CONTINUOUS, Tags.LIST, Tags.SEQUENCE, "behavior_click"])
    schema = Schema([*old.schema, seconds])
    with caplog.at_level(logging.WARNING, logger="t4r_dmt.model.features"):
        torch.manual_seed(0)
        model = build_model(schema, tiny_config(transformer=TIME))
    warnings = [r.getMessage() for r in caplog.records if r.name == "t4r_dmt.model.features"]
    assert len(warnings) == 1
    assert "no '*_time_gap_bucket_seq' column of ['click', 'cart', 'order']" in warnings[0]
    net = _network(model)
    assert net.spec.n_time_gap_buckets == 0 and all(i.time_gaps is None for i in net.encoders[0].interests.values())
    inputs, targets = loader_batches(old, old.path(1), batch_size=16, max_sequence_length=8)[0]
    model.train()
    out = model({k: v.clone() for k, v in inputs.items()}, targets=targets, training=True)
    out["loss"].backward()
    assert torch.isfinite(out["loss"])


def test_time_gap_schema_errors() -> None:
    schema = ranking_schema(FixtureSpec())
    column = schema["cart_time_gap_bucket_seq"]
    longer = ColumnSchema(column.name, dtype=np.int64, tags=column.tags, properties=column.properties,
                          dims=(None, (0, 9)))
    with pytest.raises(ValueError, match=r"'cart_time_gap_bucket_seq' \(9\) must equal that of its id sequences \(4\)"):
        build_model(Schema([longer if c.name == column.name else c for c in schema]), tiny_config(transformer=TIME))
    twice = ColumnSchema("cart_2_time_gap_bucket_seq", dtype=np.int64, tags=column.tags,
                         properties=column.properties, dims=(None, (0, 4)))
    with pytest.raises(ValueError, match="several time-gap columns tagged 'behavior_cart'"):
        build_model(Schema([*schema, twice]), tiny_config(transformer=TIME))


# --- match features -------------------------------------------------------------------------------------------
def test_match_magnitude_values_masking_and_empty_rows() -> None:
    match = MatchMagnitude()
    with torch.no_grad():
        match.empty.copy_(torch.tensor([-1.5, 0.25]))
    scores = torch.tensor([[1.0, 2.0, 50.0], [0.5, 0.5, 0.5], [7.0, 8.0, 9.0]], requires_grad=True)
    mask = torch.tensor([[True, True, False], [True, True, True], [False, False, False]])
    out = match(scores, mask)
    want = torch.tensor([[2.0, math.log(math.exp(1.0) + math.exp(2.0))], [0.5, 0.5 + math.log(3.0)], [-1.5, 0.25]])
    torch.testing.assert_close(out, want)  # padded 50 is not the max; the empty row gets the learned pair
    out.sum().backward()
    assert scores.grad is not None and torch.isfinite(scores.grad).all()
    assert torch.equal(scores.grad[2], torch.zeros(3)) and scores.grad[0, 2] == 0
    assert match.empty.grad is not None and torch.equal(match.empty.grad, torch.ones(2))


def test_attention_scores_are_what_the_decoder_softmax_normalises() -> None:
    torch.manual_seed(0)
    block = TargetAttentionBlock(8, 1, 16, dropout=0.0, eps=1e-6, act="relu").eval()
    query, memory = torch.randn(3, 8), torch.randn(3, 5, 8)
    _, weights = block.attention(query.unsqueeze(1), memory, memory, need_weights=True)
    torch.testing.assert_close(torch.softmax(block.attention_scores(query, memory), dim=1), weights.squeeze(1))
    # With several heads: the mean of the heads' scaled dot products.
    multi = TargetAttentionBlock(8, 2, 16, dropout=0.0, eps=1e-6, act="relu")
    q, k, _ = torch.nn.functional.linear(query, multi.attention.in_proj_weight, multi.attention.in_proj_bias
                                         ).chunk(3, dim=-1)
    _, k, _ = torch.nn.functional.linear(memory, multi.attention.in_proj_weight, multi.attention.in_proj_bias
                                         ).chunk(3, dim=-1)
    heads = [(q[:, None, h * 4:(h + 1) * 4] * k[:, :, h * 4:(h + 1) * 4]).sum(-1) / 2.0 for h in range(2)]
    torch.testing.assert_close(multi.attention_scores(query, memory), (heads[0] + heads[1]) / 2)


def test_more_events_matching_the_target_give_a_larger_magnitude() -> None:
    torch.manual_seed(0)
    block = TargetAttentionBlock(8, 2, 16, dropout=0.0, eps=1e-6, act="relu").eval()
    match = MatchMagnitude()
    target, others = torch.randn(1, 8), torch.randn(1, 2, 8)
    matching = target.unsqueeze(1) * 3.0  # memory rows the target scores highly against
    once = torch.cat([matching, others], dim=1)  # (1, 3, 8)
    thrice = torch.cat([matching, matching, matching, others], dim=1)  # (1, 5, 8)
    small = match(block.attention_scores(target, once), torch.ones(1, 3, dtype=torch.bool))
    large = match(block.attention_scores(target, thrice), torch.ones(1, 5, dtype=torch.bool))
    assert large[0, 1] > small[0, 1]  # the log-sum-exp counts them
    torch.testing.assert_close(large[0, 0], small[0, 0])  # the max does not


def test_the_interest_counts_matches_the_softmax_output_cannot() -> None:
    """A history of 4 copies of the target item and one of a single copy: the decoder's output is the same (a
    softmax over equal events), the log-sum-exp differs by exactly log 4."""
    torch.manual_seed(0)
    dit = DeepInterestTransformer(_tiny(position_encoding="none", match_features=True), 8, 4).eval()
    assert dit.out_size == 8 + 2
    target = torch.randn(1, 8)
    tokens = torch.cat([target.expand(2, 4, 8), torch.zeros(1, 4, 8)])  # rows: 1 copy, 4 copies, no events
    mask = torch.tensor([[1, 0, 0, 0], [1, 1, 1, 1], [0, 0, 0, 0]], dtype=torch.bool)
    out, _ = dit(tokens, mask, target.expand(3, 8))
    assert out.shape == (3, 10) and torch.isfinite(out).all()
    torch.testing.assert_close(out[1, :8], out[0, :8])  # what softmax + LayerNorm see: the same
    torch.testing.assert_close(out[1, 8], out[0, 8])  # the best match: the same
    torch.testing.assert_close(out[1, 9] - out[0, 9], torch.tensor(math.log(4.0)))  # how many: not the same
    torch.testing.assert_close(out[2, 8:], dit.match.empty.detach())  # no events: the learned "empty" pair


def test_match_features_widen_the_interest_and_train(fixture: RankingFixture, batch: tuple[dict, dict]) -> None:
    torch.manual_seed(0)
    config = tiny_config(transformer={**TIME, "match_features": True})
    model = build_model(fixture.schema, config)
    encoder = _network(model).encoders[0]
    assert all(i.out_size == 16 + 2 for i in encoder.interests.values())
    assert encoder.out_size == 3 * (16 + 2) + 16 + 3  # interests with matches, target, 3 dense
    empty = {k: torch.zeros_like(v) if k.endswith("_seq") and k != "neighbor_category_seq" else v
             for k, v in batch[0].items()}
    for inputs in (batch[0], empty):
        assert torch.isfinite(_scores(model, inputs)).all()
    model.train()
    out = model({k: v.clone() for k, v in empty.items()}, targets=batch[1], training=True)
    out["loss"].backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
    assert encoder.interests["click"].match.empty.grad is not None  # new users learn their own pair


def test_export_with_time_gaps_and_match_features_gives_the_scores(fixture: RankingFixture, batch: tuple[dict, dict],
                                                                   tmp_path) -> None:
    torch.manual_seed(0)
    model = build_model(fixture.schema, tiny_config(transformer={**TIME, "match_features": True}))
    other = loader_batches(fixture, fixture.path(2), batch_size=20, max_sequence_length=8)[0][0]
    ref = _scores(model, other)
    export_torchscript(model, batch[0], tmp_path / "dmt.pt")
    with torch.no_grad():
        out = torch.jit.load(str(tmp_path / "dmt.pt"))(dict(other))
    torch.testing.assert_close(out["score"], ref, rtol=0, atol=1e-6)


# --- pooled sequences ---------------------------------------------------------------------------------------------
def test_pooled_sequences_append_each_behaviours_mean_token(fixture: RankingFixture, batch: tuple[dict, dict]) -> None:
    """The official code's MLP input holds the mean-pooled embedding of every sequence feature beside the
    transformer states: with ``pooled_sequences`` the shared input gains, per behaviour, the masked mean of its
    tokens (zeros for an empty sequence), and the interests before them do not change."""
    from t4r_dmt.model.inputs import read_batch

    torch.manual_seed(0)
    model = build_model(fixture.schema, tiny_config(transformer={**TIME, "pooled_sequences": True}))
    network = _network(model).eval()
    encoder = network.encoders[0]
    assert encoder.out_size == 3 * (16 + 16) + 16 + 3  # interests, pooled tokens, target, 3 dense
    rows = read_batch({k: v.clone() for k, v in batch[0].items()}, network.spec)
    with torch.no_grad():
        shared, _ = encoder(rows)
        plain = encoder.pooled
        encoder.pooled = None
        without, _ = encoder(rows)
        encoder.pooled = plain
    torch.testing.assert_close(shared[:, : 3 * 16], without[:, : 3 * 16])  # interests unchanged
    torch.testing.assert_close(shared[:, 6 * 16:], without[:, 3 * 16:])  # target, dense unchanged
    for i, seq in enumerate(rows.sequences):
        tokens = encoder.embedding(seq.items, seq.categories, seq.brands)  # (B, L, 16)
        real = (seq.items != 0).float()
        expected = (tokens * real.unsqueeze(-1)).sum(1) / real.sum(1, keepdim=True).clamp(min=1)
        torch.testing.assert_close(shared[:, 3 * 16 + 16 * i: 3 * 16 + 16 * (i + 1)], expected)
        empty = real.sum(1) == 0
        assert not empty.all() and (shared[empty, 3 * 16 + 16 * i: 3 * 16 + 16 * (i + 1)] == 0).all()
    assert torch.isfinite(_scores(model, batch[0])).all()


def test_pooled_sequences_is_a_transformer_option_only() -> None:
    from t4r_dmt.model.config import DMTConfig

    with pytest.raises(ValueError, match="transformer.pooled_sequences must be true or false; got 1"):
        DMTConfig.from_dict({"transformer": {"pooled_sequences": 1}})
    assert DMTConfig().transformer.pooled_sequences is False  # configs saved before it existed: off


# --- empty sequences ----------------------------------------------------------------------------------------------
def test_learned_empty_sequence_says_nothing_about_the_target() -> None:
    """``empty_sequence: "learned"``: a row without events gets the learned vector (0 at first) whatever its
    target, in the bucketed path and the traced one; rows with events get what the decoder gives them."""
    torch.manual_seed(0)
    decode = DeepInterestTransformer(_tiny(match_features=True), 8, 4).eval()
    torch.manual_seed(0)
    learned = DeepInterestTransformer(_tiny(match_features=True, empty_sequence="learned"), 8, 4).eval()
    assert learned.empty is not None and decode.empty is None
    tokens, targets = torch.randn(3, 4, 8), torch.randn(3, 8)
    mask = torch.tensor([[1, 1, 0, 0], [0, 0, 0, 0], [1, 1, 1, 1]], dtype=torch.bool)
    with torch.no_grad():
        learned.empty.copy_(torch.arange(8.0))
        out, _ = learned(tokens, mask, targets)
        ref, _ = decode(tokens, mask, targets)
        other, _ = learned(tokens, mask, torch.randn(3, 8))
    torch.testing.assert_close(out[[0, 2]], ref[[0, 2]])  # rows with events: unchanged
    torch.testing.assert_close(out[1, :8], torch.arange(8.0))  # no events: the learned vector ...
    torch.testing.assert_close(other[1], out[1])  # ... whatever the target
    assert not torch.allclose(ref[1, :8], torch.zeros(8))  # "decode": a transform of the target
    with torch.no_grad():
        traced = torch.jit.trace(learned, (tokens, mask, targets))(tokens, mask, targets)[0]
    torch.testing.assert_close(traced, out)


def test_empty_sequence_must_be_a_known_choice() -> None:
    from t4r_dmt.model.config import DMTConfig

    with pytest.raises(ValueError, match="transformer.empty_sequence must be one of decode, learned; got 'zero'"):
        DMTConfig.from_dict({"transformer": {"empty_sequence": "zero"}})
    assert DMTConfig().transformer.empty_sequence == "decode"  # configs saved before it existed


# --- transformers for some behaviours only ----------------------------------------------------------------------
def test_transformer_behaviors_leave_the_others_to_their_mean_token(fixture: RankingFixture,
                                                                    batch: tuple[dict, dict]) -> None:
    """``transformer.behaviors: ["click"]`` with ``pooled_sequences``: one transformer (click), every behaviour's
    mean token; the cart and order sequences still change the scores (through their means)."""
    torch.manual_seed(0)
    model = build_model(fixture.schema, tiny_config(transformer={"pooled_sequences": True, "behaviors": ["click"]}))
    encoder = _network(model).encoders[0]
    assert list(encoder.interests) == ["click"]
    assert encoder.out_size == 16 + 3 * 16 + 16 + 3  # click interest, 3 mean tokens, target, 3 dense
    ref = _scores(model, batch[0])
    no_carts = {k: torch.zeros_like(v) if k.startswith("cart_") and k.endswith("_seq") else v.clone()
                for k, v in batch[0].items()}
    assert (batch[0]["cart_item_id_seq"] != 0).any()
    assert not torch.allclose(_scores(model, no_carts), ref)


@pytest.mark.parametrize(
    ("transformer", "behaviors", "match"),
    [
        ({"behaviors": ["view"], "pooled_sequences": True}, None, r"transformer.behaviors must list distinct entries"),
        ({"behaviors": ["click", "click"], "pooled_sequences": True}, None, "must list distinct entries"),
        ({"behaviors": ["order"], "pooled_sequences": True}, ["click"], "must list distinct entries"),
        ({"behaviors": ["click"]}, None, r"behaviors \['cart', 'order'\] have no transformer .*pooled_sequences"),
    ],
)
def test_transformer_behaviors_errors(transformer: dict, behaviors: list | None, match: str) -> None:
    from t4r_dmt.model.config import DMTConfig

    data: dict = {"transformer": transformer}
    if behaviors is not None:
        data["behaviors"] = behaviors
    with pytest.raises(ValueError, match=match):
        DMTConfig.from_dict(data)


# --- gate ---------------------------------------------------------------------------------------------------------
def test_gate_starts_the_network_without_the_transformer_and_learns_to_open() -> None:
    """``gate``: the interest is 0 at first whatever the sequence, so the transformer's weights get no gradient
    until the gate moves; the gate itself gets one, and once open the interest is the gated decoder output."""
    torch.manual_seed(0)
    dit = DeepInterestTransformer(_tiny(match_features=True, gate=True), 8, 4)
    tokens, target = torch.randn(3, 4, 8), torch.randn(3, 8)
    mask = torch.tensor([[1, 1, 0, 0], [0, 0, 0, 0], [1, 1, 1, 1]], dtype=torch.bool)
    out, _ = dit(tokens, mask, target)
    assert torch.equal(out, torch.zeros(3, 10))
    (out * torch.randn(3, 10)).sum().backward()
    assert dit.gate is not None and dit.gate.grad is not None and dit.gate.grad.abs().item() > 0
    assert all(p.grad is None or torch.equal(p.grad, torch.zeros_like(p)) for n, p in dit.named_parameters()
               if n != "gate")
    torch.manual_seed(0)
    plain = DeepInterestTransformer(_tiny(match_features=True), 8, 4).eval()
    dit.eval()
    with torch.no_grad():
        dit.gate.fill_(0.5)
        torch.testing.assert_close(dit(tokens, mask, target)[0], 0.5 * plain(tokens, mask, target)[0])
