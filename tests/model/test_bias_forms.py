"""The bias tower's functional forms (``config.bias``): additive, multiplicative (PAL) or "pbm" loss, MLP or scalar
position effects, zero start, no target features, observation dropout, its own learning rate, the examination
curve, and defaults that build today's tower and loss."""

from __future__ import annotations

import math

import pytest
import torch
from model_fixtures import RankingFixture, tiny_config
from torch import nn
from torch.nn import functional as F
from transformers4rec.config.trainer import T4RecTrainingArguments

from t4r_dmt.model import DMTConfig, DMTTrainer, RankingNetwork, build_model
from t4r_dmt.model.bias import MONOTONE_STEP_START, BiasTower
from t4r_dmt.model.config import LATER_BIAS_DEFAULTS, BiasConfig
from t4r_dmt.model.inputs import BiasBatch
from t4r_dmt.model.loss import MultiTaskLoss
from t4r_dmt.model.mlp import Tower
from t4r_dmt.model.trainer import lr_multipliers

SIZES = {"n_positions": 6, "n_pages": 3, "n_categories": 7, "embedding_dim": 4, "units": [6], "dropout": 0.5}
NEIGHBORS = torch.tensor([[0, 0, 0, 3, 5, 6], [4, 0, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0], [3, 3, 4, 4, 5, 5]])


def _network(model: nn.Module) -> RankingNetwork:
    return model.heads[0].body.module


def _clone(inputs: dict) -> dict:
    return {k: v.clone() for k, v in inputs.items()}


def _rows(position: list[int], page: list[int] | None = None) -> BiasBatch:
    page = page if page is not None else [1] * len(position)
    return BiasBatch(torch.tensor(position), torch.tensor(page), NEIGHBORS[: len(position)])


# --- the multiplicative loss ----------------------------------------------------------------------------------

U = torch.tensor([[0.3, -1.2], [2.0, 0.5], [-0.7, -3.0], [1.1, 0.0]])
Y_B = torch.tensor([0.8, -1.5, 2.5, 0.0])
LABELS = torch.tensor([[1.0, 0.0], [0.0, 0.0], [1.0, 1.0], [0.0, 1.0]])


def test_multiplicative_loss_is_the_bce_of_the_product() -> None:
    loss = MultiTaskLoss([1.0, 2.0], pos_weights=[3.0, 1.0], bias_form="multiplicative")
    p = torch.sigmoid(U) * torch.sigmoid(Y_B).unsqueeze(1)
    bce = -(torch.tensor([3.0, 1.0]) * LABELS * p.log() + (1 - LABELS) * (1 - p).log())
    expected = bce.mean(0)[0] + 2.0 * bce.mean(0)[1]
    torch.testing.assert_close(loss(U, Y_B, LABELS, training=True), expected)
    # "cvr" masks the order task to clicked rows (0 and 2) and applies the factor there too.
    cvr = MultiTaskLoss([1.0, 1.0], order_label="cvr", bias_form="multiplicative")
    plain = -(LABELS * p.log() + (1 - LABELS) * (1 - p).log())
    torch.testing.assert_close(cvr(U, Y_B, LABELS, training=True), plain[:, 0].mean() + plain[[0, 2], 1].mean())
    # Evaluation reads σ(u) alone, in either form.
    additive = MultiTaskLoss([1.0, 2.0], pos_weights=[3.0, 1.0])
    torch.testing.assert_close(loss(U, Y_B, LABELS, training=False), additive(U, None, LABELS, training=True))


def test_multiplicative_loss_is_exact_and_finite_at_extreme_logits() -> None:
    u = torch.tensor([[40.0], [40.0], [-40.0], [-40.0], [15.0], [0.0]], requires_grad=True)
    y_b = torch.tensor([40.0, -40.0, 40.0, -40.0, 15.0, 90.0], requires_grad=True)
    labels = torch.tensor([[0.0], [1.0], [1.0], [0.0], [0.0], [1.0]])
    loss = MultiTaskLoss([1.0], bias_form="multiplicative")(u, y_b, labels, training=True)
    loss.backward()
    # Reference in float64: log p = logσ(u) + logσ(y_b); log(1 - p) through log1p.
    u64, y64 = u.detach().double(), y_b.detach().double().unsqueeze(1)
    log_p = F.logsigmoid(u64) + F.logsigmoid(y64)
    log_q = torch.log1p(-torch.exp(log_p))
    log_q[0] = math.log(2 * math.exp(-40.0))  # 1 - σ(40)² ≈ 2 e^-40, beyond float64's log1p of exp
    log_q[4] = math.log(2 * math.exp(-15.0) + math.exp(-30.0)) - 2 * math.log1p(math.exp(-15.0))
    expected = -(labels.double() * log_p + (1 - labels.double()) * log_q).mean()
    assert float(loss.detach()) == pytest.approx(float(expected), rel=1e-5)
    assert torch.isfinite(u.grad).all() and torch.isfinite(y_b.grad).all()


# --- the "pbm" loss: y_b is the log examination ---------------------------------------------------------------

def test_pbm_loss_is_the_bce_of_relevance_times_examination() -> None:
    log_e = torch.tensor([-0.2, -1.5, 0.0, 0.7])  # the last is capped at 0: examined for sure
    loss = MultiTaskLoss([1.0, 2.0], pos_weights=[3.0, 1.0], bias_form="pbm")
    p = torch.sigmoid(U) * torch.tensor([math.exp(-0.2), math.exp(-1.5), 1.0, 1.0]).unsqueeze(1)
    bce = -(torch.tensor([3.0, 1.0]) * LABELS * p.log() + (1 - LABELS) * (1 - p).log())
    torch.testing.assert_close(loss(U, log_e, LABELS, training=True), bce.mean(0)[0] + 2.0 * bce.mean(0)[1])
    # It is PAL's loss with y_b = log σ(z): the two forms differ only in how y_b is read.
    pal = MultiTaskLoss([1.0, 2.0], pos_weights=[3.0, 1.0], bias_form="multiplicative")
    torch.testing.assert_close(loss(U, F.logsigmoid(Y_B), LABELS, training=True), pal(U, Y_B, LABELS, training=True))
    # Evaluation reads σ(u) alone.
    additive = MultiTaskLoss([1.0, 2.0], pos_weights=[3.0, 1.0])
    torch.testing.assert_close(loss(U, log_e, LABELS, training=False), additive(U, None, LABELS, training=True))


def test_pbm_loss_is_exact_and_finite_where_the_examination_is_one_or_tiny() -> None:
    u = torch.tensor([[12.0], [12.0], [-3.0], [2.0], [0.5], [1.0]], requires_grad=True)
    log_e = torch.tensor([0.0, -1e-30, -1e-7, -60.0, 3.0, -0.69], requires_grad=True)
    labels = torch.tensor([[0.0], [0.0], [1.0], [1.0], [0.0], [1.0]])
    loss = MultiTaskLoss([1.0], bias_form="pbm")(u, log_e, labels, training=True)
    loss.backward()
    # Reference in float64: 1 - p = (1 - e) + e σ(-u) summed directly (no cancellation for these values).
    u64, e64 = u.detach().double(), log_e.detach().double().clamp(max=0.0).exp().unsqueeze(1)
    q = (1 - e64) + e64 * torch.sigmoid(-u64)
    log_p = F.logsigmoid(u64) + log_e.detach().double().clamp(max=0.0).unsqueeze(1)
    expected = -(labels.double() * log_p + (1 - labels.double()) * q.log()).mean()
    assert float(loss.detach()) == pytest.approx(float(expected), rel=1e-5)
    assert torch.isfinite(u.grad).all() and torch.isfinite(log_e.grad).all()
    # Above 0 the examination is capped at 1: no gradient pushes it further.
    assert log_e.grad[4] == 0.0 and log_e.grad[3] != 0.0


def test_logged_probabilities_are_what_each_forms_loss_fits() -> None:
    expected = {"additive": torch.sigmoid(U + Y_B.unsqueeze(1)),
                "multiplicative": torch.sigmoid(U) * torch.sigmoid(Y_B).unsqueeze(1),
                "pbm": torch.sigmoid(U) * Y_B.clamp(max=0.0).exp().unsqueeze(1)}
    for form, probs in expected.items():
        loss = MultiTaskLoss([1.0, 1.0], bias_form=form, observation_dropout=0.5)  # never dropped here
        torch.testing.assert_close(loss.logged_probabilities(U, Y_B), probs)
        bce = -(LABELS * probs.log() + (1 - LABELS) * (1 - probs).log()).mean(0).sum()
        torch.testing.assert_close(MultiTaskLoss([1.0, 1.0], bias_form=form)(U, Y_B, LABELS, training=True), bce)


# --- observation dropout --------------------------------------------------------------------------------------

@pytest.mark.parametrize("form", ["additive", "multiplicative", "pbm"])
def test_observation_dropout_trains_dropped_rows_as_examined(form: str) -> None:
    unbiased = MultiTaskLoss([1.0, 1.0], bias_form=form)(U, None, LABELS, training=True)
    kept = MultiTaskLoss([1.0, 1.0], bias_form=form)(U, Y_B, LABELS, training=True)
    assert abs(float(kept - unbiased)) > 0.05
    torch.manual_seed(0)
    all_dropped = MultiTaskLoss([1.0, 1.0], bias_form=form, observation_dropout=0.999999)
    torch.testing.assert_close(all_dropped(U, Y_B, LABELS, training=True), unbiased)
    # 0 draws nothing and changes nothing.
    torch.manual_seed(0)
    expected_draw = torch.rand(3)
    torch.manual_seed(0)
    none = MultiTaskLoss([1.0, 1.0], bias_form=form, observation_dropout=0.0)
    assert torch.equal(none(U, Y_B, LABELS, training=True), kept)
    assert torch.equal(torch.rand(3), expected_draw)
    # Evaluation never drops (nor reads the bias), and draws nothing.
    torch.manual_seed(0)
    assert torch.equal(all_dropped(U, Y_B, LABELS, training=False), none(U, None, LABELS, training=False))
    assert torch.equal(torch.rand(3), expected_draw)


@pytest.mark.parametrize("form", ["additive", "multiplicative", "pbm"])
def test_observation_dropout_drops_its_share_of_rows(form: str) -> None:
    # Label 1 everywhere. Additive: u = 0, y_b = 30: a kept row has p = σ(30) (loss ≈ 0), a dropped one σ(0)
    # (loss log 2). Multiplicative: u = 30, y_b = 0: kept p = σ(30) σ(0) (loss ≈ log 2), dropped σ(30) (≈ 0).
    # "pbm": u = 30, y_b = -log 2: kept p = σ(30) / 2, dropped σ(30), as multiplicative.
    n = 20_000
    u, y_b = {"additive": (0.0, 30.0), "multiplicative": (30.0, 0.0), "pbm": (30.0, -math.log(2))}[form]
    torch.manual_seed(7)
    loss = MultiTaskLoss([1.0], bias_form=form, observation_dropout=0.3)(
        torch.full((n, 1), u), torch.full((n,), y_b), torch.ones(n, 1), training=True)
    dropped_share = float(loss) / math.log(2) if form == "additive" else 1 - float(loss) / math.log(2)
    assert dropped_share == pytest.approx(0.3, abs=0.02)


# --- the tower's kinds ---------------------------------------------------------------------------------------

def test_scalar_kind_starts_its_position_effects_at_zero_and_trains_them() -> None:
    torch.manual_seed(0)
    tower = BiasTower(**SIZES, kind="scalar")
    assert tower.positions.weight.shape == (6, 1) and tower.pages.weight.shape == (3, 1)
    assert not tower.positions.weight.any() and not tower.pages.weight.any()
    tower.eval()
    category = torch.tensor([3, 4, 5, 6])
    out = tower(_rows([1, 2, 3, 4], [1, 1, 2, 2]), category)
    # Only the category part (random here) differs between rows: the same rows at other positions give the same.
    assert torch.equal(tower(_rows([5, 5, 1, 1], [2, 2, 1, 1]), category), out)
    # zero_init: exactly 0 for every row.
    zero = BiasTower(**SIZES, kind="scalar", zero_init=True).eval()
    assert torch.equal(zero(_rows([1, 2, 3, 4], [1, 1, 2, 2]), category), torch.zeros(4))
    # The gradient reaches the scalars of the positions and pages read (a row each: d y_b / d s = 1).
    zero.train()
    zero(_rows([1, 2, 2, 4], [1, 1, 2, 2]), category).sum().backward()
    assert zero.positions.weight.grad is not None and zero.pages.weight.grad is not None
    assert zero.positions.weight.grad.squeeze(1).tolist() == [0.0, 1.0, 2.0, 0.0, 1.0, 0.0]
    assert zero.pages.weight.grad.squeeze(1).tolist() == [0.0, 2.0, 2.0]


def test_scalar_kind_adds_position_and_page_scalars_without_dropout() -> None:
    torch.manual_seed(0)
    tower = BiasTower(**SIZES, kind="scalar", zero_init=True)  # the MLP's last layer is 0: its dropout is moot
    with torch.no_grad():
        tower.positions.weight.copy_(torch.arange(6.0).unsqueeze(1))
        tower.pages.weight.copy_(torch.tensor([[0.0], [10.0], [20.0]]))
    tower.train()
    for _ in range(3):
        out = tower(_rows([1, 2, 3, 5], [1, 2, 2, 1]), torch.tensor([3, 4, 5, 6]))
        assert out.tolist() == [11.0, 22.0, 23.0, 15.0]


def test_mlp_zero_init_starts_at_zero_and_then_learns_positions() -> None:
    torch.manual_seed(0)
    tower = BiasTower(**{**SIZES, "dropout": 0.0}, zero_init=True)
    rows, category = _rows([1, 2, 3, 4]), torch.tensor([3, 4, 5, 6])
    assert torch.equal(tower(rows, category), torch.zeros(4))
    assert not tower.positions.weight.any() and not tower.pages.weight.any()
    assert tower.categories.weight[1:].abs().sum() > 0  # the category table is drawn as usual
    optimizer = torch.optim.SGD(tower.parameters(), lr=0.5)
    target = torch.tensor([2.0, 1.0, 0.0, -1.0])
    for _ in range(3):  # the last layer moves first, then the position embeddings behind it
        optimizer.zero_grad()
        F.mse_loss(tower(rows, category), target).backward()
        optimizer.step()
    assert tower.positions.weight[1:5].abs().sum() > 0
    # reset_parameters draws again and zeroes again.
    tower.reset_parameters()
    assert torch.equal(tower(rows, category), torch.zeros(4))


def test_monotone_kind_starts_nearly_flat_and_never_rises_down_the_list() -> None:
    torch.manual_seed(0)
    tower = BiasTower(**SIZES, kind="monotone", zero_init=True).eval()
    step = MONOTONE_STEP_START
    category = torch.tensor([3, 4, 5, 6])
    # Codes 1..5 start at 0, -step, -2 step, ...; code 0 (padding) reads 0; the page is not read.
    torch.testing.assert_close(tower(_rows([1, 2, 3, 5]), category), torch.tensor([0.0, -step, -2 * step, -4 * step]))
    torch.testing.assert_close(tower(_rows([0, 2, 3, 5], [2, 2, 1, 2]), category),
                               torch.tensor([0.0, -step, -2 * step, -4 * step]))
    # It has no page table at all: nothing trains that nothing reads.
    assert tower.pages is None and not any("pages" in name for name, _ in tower.named_parameters())
    # Whatever the table holds, the curve from code 1 on is non-increasing, and equals a - cumsum(δ²).
    with torch.no_grad():
        tower.positions.weight.copy_(torch.tensor([[9.0], [1.5], [3.0], [-20.0], [0.0], [-1.0]]))
    curve = tower.monotone_curve()
    expected = torch.tensor([0.0, 1.5, 1.5 - 9.0, 1.5 - 9.0 - 400.0, 1.5 - 409.0, 1.5 - 410.0])
    torch.testing.assert_close(curve, expected)
    assert (curve[2:] <= curve[1:-1]).all()
    # Deeper codes than the table share its last position.
    torch.testing.assert_close(tower(_rows([9]), category[:1]), curve[5:6])


def test_monotone_kind_learns_a_falling_curve_and_keeps_it_monotone_against_a_rising_target() -> None:
    torch.manual_seed(0)
    tower = BiasTower(**{**SIZES, "dropout": 0.0}, kind="monotone", zero_init=True, target_features=False)
    rows, category = _rows([1, 2, 3, 4]), torch.tensor([3, 4, 5, 6])
    target = torch.tensor([0.0, -1.0, -1.5, -1.0])  # rises at the end: the fit pools codes 3 and 4
    optimizer = torch.optim.Adam([tower.positions.weight], lr=0.05)
    for _ in range(1500):
        optimizer.zero_grad()
        F.mse_loss(tower(rows, category), target).backward()
        optimizer.step()
    out = tower.eval()(rows, category).detach()
    torch.testing.assert_close(out[:2], target[:2], atol=0.02, rtol=0)
    assert (out[1:] <= out[:-1] + 1e-6).all()
    assert out[2] == pytest.approx(-1.25, abs=0.03) and out[3] == pytest.approx(-1.25, abs=0.03)


def test_monotone_pbm_curve_is_the_log_examination_with_the_top_examined_for_sure() -> None:
    torch.manual_seed(0)
    tower = BiasTower(**SIZES, kind="monotone", form="pbm", zero_init=True).eval()
    category = torch.tensor([3, 4, 5, 6])
    with torch.no_grad():
        tower.positions.weight.copy_(torch.tensor([[9.0], [1.5], [0.5], [1.0], [0.0], [2.0]]))
    # Code 1 (the top) is 0 whatever its table entry holds; the steps below it are -δ².
    torch.testing.assert_close(tower.monotone_curve(), torch.tensor([0.0, 0.0, -0.25, -1.25, -1.25, -5.25]))
    torch.testing.assert_close(tower.examination_log(_rows([1, 2, 3, 5]), category),
                               torch.tensor([0.0, -0.25, -1.25, -5.25]))
    # Its MLP has no bias terms, so a context of zeros adds exactly 0 ...
    assert all(layer.bias is None for layer in tower.tower.modules() if isinstance(layer, nn.Linear))
    blind = BiasTower(**SIZES, kind="monotone", form="pbm", target_features=False).eval()
    with torch.no_grad():
        blind.positions.weight.copy_(tower.positions.weight)
    empty = BiasBatch(torch.tensor([1, 2, 3, 5]), torch.ones(4, dtype=torch.long), torch.zeros(4, 6, dtype=torch.long))
    assert torch.equal(blind.examination_log(empty, category), torch.tensor([0.0, -0.25, -1.25, -5.25]))
    # ... and a positive MLP output is capped: the examination is at most 1.
    with torch.no_grad():
        tower.tower.logit.weight.fill_(10.0)  # ReLU outputs >= 0: y_b >= the curve
    y_b = tower(_rows([1, 2, 3, 5]), category)
    assert y_b[0] > 0
    assert torch.equal(tower.examination_log(_rows([1, 2, 3, 5]), category), y_b.clamp(max=0.0))


#: Click relevance per category code (3..7 real) of the planted-curve tests.
RELEVANCE = torch.tensor([0.0, 0.0, 0.0, 0.8, 0.5, 0.3, 0.6, 0.2])


def _fit_planted_curve(tower: BiasTower, planted: torch.Tensor) -> tuple[torch.Tensor, nn.Embedding]:
    """Draw 20,000 clicks as planted[position] · RELEVANCE[category] (fixed seed), fit ``tower`` and one relevance
    logit per category jointly with the tower's form (400 Adam steps), and return the tower's examination curve
    over positions 1..5 (5,) and the relevance logits."""
    generator = torch.Generator().manual_seed(0)
    n = 20_000
    position = torch.randint(1, 6, (n,), generator=generator)
    category = torch.randint(3, 8, (n,), generator=generator)
    clicks = torch.bernoulli(planted[position - 1] * RELEVANCE[category], generator=generator).unsqueeze(1)
    rows = BiasBatch(position, torch.ones(n, dtype=torch.long), torch.zeros(n, 6, dtype=torch.long))
    relevance_logit = nn.Embedding(8, 1)  # u: one logit per category
    loss = MultiTaskLoss([1.0], bias_form=tower.form)
    optimizer = torch.optim.Adam([*tower.parameters(), *relevance_logit.parameters()], lr=0.05)
    for _ in range(400):
        optimizer.zero_grad()
        loss(relevance_logit(category), tower(rows, category), clicks, training=True).backward()
        optimizer.step()
    curve = tower.examination_curve(torch.zeros(1, 6, dtype=torch.long), torch.tensor([3]), torch.arange(1, 6),
                                    torch.ones(5, dtype=torch.long))
    return curve, relevance_logit


def test_monotone_pbm_tower_learns_a_planted_examination_curve_in_absolute_terms() -> None:
    """Clicks drawn as bias(position) · p_rel(category) with bias 1 at the top (the position-based model):
    the monotone "pbm" tower's log curve matches log bias itself, not only its steps."""
    planted = torch.tensor([1.0, 0.6, 0.4, 0.25, 0.15])  # positions 1..5
    torch.manual_seed(0)
    tower = BiasTower(6, 2, 8, 4, [], 0.0, kind="monotone", form="pbm", zero_init=True, target_features=False)
    curve, relevance_logit = _fit_planted_curve(tower, planted)
    assert curve[0] == 0.0
    torch.testing.assert_close(curve, planted.log(), atol=0.12, rtol=0)
    # With the examination pinned at the top, σ(u) is the relevance itself.
    torch.testing.assert_close(torch.sigmoid(relevance_logit.weight[3:, 0]).detach(), RELEVANCE[3:], atol=0.05,
                               rtol=0)


@pytest.mark.parametrize("kind", ["mlp", "scalar", "monotone"])
def test_without_target_features_the_tower_ignores_the_target_category(kind: str) -> None:
    torch.manual_seed(0)
    blind = BiasTower(**SIZES, kind=kind, target_features=False).eval()
    seeing = BiasTower(**SIZES, kind=kind).eval()
    assert blind.tower.mlp.in_size == seeing.tower.mlp.in_size - SIZES["embedding_dim"]
    rows = _rows([1, 2, 3, 4])
    a, b = torch.tensor([3, 4, 5, 6]), torch.tensor([6, 6, 3, 1])
    assert torch.equal(blind(rows, a), blind(rows, b))
    assert not torch.equal(seeing(rows, a), seeing(rows, b))
    # ... but still reads the neighbours' categories.
    other = BiasBatch(rows.position, rows.page, torch.full_like(rows.neighbors, 5))
    assert not torch.equal(blind(other, a), blind(rows, a))


# --- the examination curve ---------------------------------------------------------------------------------

def test_examination_log_and_curve_are_in_the_forms_scale() -> None:
    category = torch.tensor([3, 4, 5, 6])
    curves = {}
    for form in ("additive", "multiplicative"):
        torch.manual_seed(0)
        tower = BiasTower(**SIZES, kind="scalar", form=form, zero_init=True)
        with torch.no_grad():
            tower.positions.weight.copy_(torch.tensor([[0.0], [2.0], [1.0], [-1.0], [-2.0], [-3.0]]))
            tower.pages.weight.copy_(torch.tensor([[0.0], [0.5], [-0.5]]))
        rows = _rows([1, 2, 3, 4], [1, 1, 2, 2])
        y_b = torch.tensor([2.5, 1.5, -1.5, -2.5])
        expected = y_b if form == "additive" else F.logsigmoid(y_b)
        torch.testing.assert_close(tower.eval().examination_log(rows, category), expected)
        tower.train()
        curves[form] = tower.examination_curve(NEIGHBORS, category, torch.tensor([1, 2, 3]), torch.tensor([1, 1, 2]))
        assert tower.training  # mode restored
    torch.testing.assert_close(curves["additive"], torch.tensor([2.5, 1.5, -1.5]))
    torch.testing.assert_close(curves["multiplicative"], F.logsigmoid(torch.tensor([2.5, 1.5, -1.5])))
    with pytest.raises(ValueError):
        tower.examination_curve(NEIGHBORS, category, torch.tensor([1, 2]), torch.tensor([1]))


def test_examination_curve_averages_over_rows_in_evaluation_mode() -> None:
    torch.manual_seed(0)
    tower = BiasTower(**SIZES, form="multiplicative")  # dropout 0.5: training mode would be random
    category = torch.tensor([3, 4, 5, 6])
    positions, pages = torch.tensor([1, 2, 5]), torch.tensor([1, 2, 2])
    curve = tower.examination_curve(NEIGHBORS, category, positions, pages)
    tower.eval()
    for j in range(3):
        rows = BiasBatch(positions[j].repeat(4), pages[j].repeat(4), NEIGHBORS)
        torch.testing.assert_close(curve[j], F.logsigmoid(tower(rows, category)).mean())


# --- the whole model --------------------------------------------------------------------------------------------

def _old_bias_tower(n_positions: int, n_pages: int, n_categories: int, embedding_dim: int, units: list[int],
                    dropout: float) -> nn.Module:
    """The bias tower before ``bias.form`` and ``bias.kind`` existed, as it was written."""

    class OldBiasTower(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.positions = nn.Embedding(n_positions, embedding_dim)
            self.pages = nn.Embedding(n_pages, embedding_dim)
            self.categories = nn.Embedding(n_categories, embedding_dim, padding_idx=0)
            self.tower = Tower(4 * embedding_dim, units, dropout)

        def forward(self, bias: BiasBatch, category: torch.Tensor) -> torch.Tensor:
            valid = (bias.neighbors != 0).unsqueeze(-1).to(self.categories.weight.dtype)
            neighbors = (self.categories(bias.neighbors) * valid).sum(1) / valid.sum(1).clamp(min=1.0)
            position = bias.position.clamp(max=self.positions.num_embeddings - 1)
            page = bias.page.clamp(max=self.pages.num_embeddings - 1)
            x = torch.cat([self.positions(position), self.pages(page), self.categories(category), neighbors], dim=1)
            return self.tower(x)

    return OldBiasTower()


def test_defaults_build_todays_tower_and_loss(fixture: RankingFixture, batch: tuple[dict, dict]) -> None:
    config = tiny_config()
    assert config.bias == BiasConfig(units=[8])
    assert not set(config.to_dict()["bias"]) & set(LATER_BIAS_DEFAULTS)  # saved configs stay as they were
    torch.manual_seed(0)
    model = build_model(fixture.schema, config)
    tower, spec = _network(model).bias_tower, _network(model).spec
    assert type(tower) is BiasTower and spec.bias is not None
    old = _old_bias_tower(spec.bias.n_positions, spec.bias.n_pages, spec.n_categories, 5, [8], 0.5)
    assert list(old.state_dict()) == list(tower.state_dict())
    old.load_state_dict(tower.state_dict())  # strict: the same keys and shapes
    rows, category = _rows([1, 2, 3, 4]), torch.tensor([3, 4, 5, 6])
    assert torch.equal(old.eval()(rows, category), tower.eval()(rows, category))
    # Same seed, same draws: a default tower equals the old one built in its place.
    torch.manual_seed(3)
    old = _old_bias_tower(6, 3, 7, 4, [6], 0.5)
    after_old = torch.rand(2)
    torch.manual_seed(3)
    new = BiasTower(6, 3, 7, 4, [6], 0.5)
    assert torch.equal(torch.rand(2), after_old)
    for (name, a), (_, b) in zip(old.state_dict().items(), new.state_dict().items(), strict=True):
        assert torch.equal(a, b), name
    for training in (True, False):  # dropout masks included
        old.train(training), new.train(training)
        torch.manual_seed(5)
        a = old(rows, category)
        torch.manual_seed(5)
        assert torch.equal(new(rows, category), a)
    # The default loss adds y_b to every task logit in training.
    model.eval()
    inputs, targets = batch
    out = _network(model)(_clone(inputs))
    labels = model.heads[0].task.stack_labels(targets)
    expected = sum(F.binary_cross_entropy_with_logits(out.task_logits[:, k] + out.bias_logit, labels[:, k])
                   for k in range(2))
    torch.testing.assert_close(model(_clone(inputs), targets=targets, training=True)["loss"], expected)


def test_multiplicative_model_trains_on_the_product_and_serves_relevance(fixture: RankingFixture,
                                                                         batch: tuple[dict, dict]) -> None:
    inputs, targets = batch
    models = {}
    for form in ("additive", "multiplicative"):
        torch.manual_seed(0)
        models[form] = build_model(fixture.schema, tiny_config(bias={"form": form})).eval()
    model = models["multiplicative"]
    assert _network(model).bias_tower.form == "multiplicative"
    out = _network(model)(_clone(inputs))
    labels = model.heads[0].task.stack_labels(targets)
    p = torch.sigmoid(out.task_logits) * torch.sigmoid(out.bias_logit).unsqueeze(1)
    expected = F.binary_cross_entropy(p, labels, reduction="none").mean(0).sum()
    torch.testing.assert_close(model(_clone(inputs), targets=targets, training=True)["loss"], expected)
    # The same weights serve the same scores in either form: σ(u) alone.
    with torch.no_grad():
        scores = [m(_clone(inputs)) for m in models.values()]
    for key in scores[0]:
        assert torch.equal(scores[0][key], scores[1][key])
    # score_logged: the probabilities the loss fits, the tower's factor included (early stopping's tail).
    task = model.heads[0].task
    task.score_logged = True
    with torch.no_grad():
        logged = model(_clone(inputs))
    task.score_logged = False
    torch.testing.assert_close(logged["p_click"], p[:, 0].detach())
    torch.testing.assert_close(logged["p_order"], p[:, 1].detach())
    assert not torch.equal(logged["p_click"], scores[1]["p_click"])


def test_pbm_model_trains_on_relevance_times_examination_and_round_trips(fixture: RankingFixture,
                                                                          batch: tuple[dict, dict]) -> None:
    inputs, targets = batch
    config = tiny_config(bias={"form": "pbm", "kind": "monotone", "zero_init": True})
    assert DMTConfig.from_dict(config.to_dict()) == config
    torch.manual_seed(0)
    model = build_model(fixture.schema, config).eval()
    tower = _network(model).bias_tower
    assert (tower.form, model.heads[0].task.loss.bias_form) == ("pbm", "pbm")
    out = _network(model)(_clone(inputs))
    labels = model.heads[0].task.stack_labels(targets)
    p = torch.sigmoid(out.task_logits) * out.bias_logit.clamp(max=0.0).exp().unsqueeze(1)
    expected = F.binary_cross_entropy(p, labels, reduction="none").mean(0).sum()
    torch.testing.assert_close(model(_clone(inputs), targets=targets, training=True)["loss"], expected)
    # The weights reload into a freshly built model of the same config (no MLP bias terms on either side).
    torch.manual_seed(1)
    again = build_model(fixture.schema, config).eval()
    again.load_state_dict(model.state_dict())
    with torch.no_grad():
        assert torch.equal(again(_clone(inputs))["score"], model(_clone(inputs))["score"])


def test_observation_dropout_is_wired_to_the_models_loss(fixture: RankingFixture, batch: tuple[dict, dict]) -> None:
    inputs, targets = batch
    torch.manual_seed(0)
    model = build_model(fixture.schema, tiny_config(bias={"observation_dropout": 0.999999, "form": "multiplicative",
                                                          "kind": "scalar"})).eval()
    loss = model.heads[0].task.loss
    assert (loss.bias_form, loss.observation_dropout) == ("multiplicative", 0.999999)
    out = _network(model)(_clone(inputs))
    labels = model.heads[0].task.stack_labels(targets)
    unbiased = loss(out.task_logits, None, labels, training=True)
    torch.testing.assert_close(model(_clone(inputs), targets=targets, training=True)["loss"], unbiased)
    torch.testing.assert_close(model(_clone(inputs), targets=targets, testing=True)["loss"], unbiased)


def test_the_bias_tower_trains_with_its_own_learning_rate(fixture: RankingFixture, tmp_path) -> None:
    def optimizer(multiplier: float) -> tuple[nn.Module, torch.optim.Optimizer, DMTTrainer]:
        model = build_model(fixture.schema, tiny_config(bias={"lr_multiplier": multiplier}))
        args = T4RecTrainingArguments(output_dir=str(tmp_path), max_sequence_length=8, no_cuda=True, report_to=[],
                                      save_strategy="no", disable_tqdm=True, learning_rate=1e-3, weight_decay=0.1,
                                      warmup_steps=2)
        trainer = DMTTrainer(model=model, args=args, schema=fixture.schema)
        return model, trainer.create_optimizer(), trainer

    model, default, _ = optimizer(1.0)
    assert lr_multipliers(model) == {}
    assert [g["lr"] for g in default.param_groups] == [1e-3, 1e-3]  # today's two groups
    model, scaled, trainer = optimizer(30.0)
    tower = {id(p) for p in _network(model).bias_tower.parameters()}
    assert set(lr_multipliers(model).values()) == {30.0} and len(lr_multipliers(model)) == len(tower)
    groups = scaled.param_groups
    assert len(groups) == 4
    assert [g["lr"] for g in groups] == pytest.approx([1e-3, 1e-3, 3e-2, 3e-2])
    assert [g["weight_decay"] for g in groups] == [0.1, 0.0, 0.1, 0.0]
    assert {id(p) for g in groups[2:] for p in g["params"]} == tower
    assert not {id(p) for g in groups[:2] for p in g["params"]} & tower
    assert sum(len(g["params"]) for g in groups) == sum(p.requires_grad for p in model.parameters())
    # The scheduler scales both alike: the ratio holds through the warm-up and the decay.
    scheduler = trainer.create_scheduler(10)
    for _ in range(5):
        scaled.step()
        scheduler.step()
        lrs = scheduler.get_last_lr()
        assert lrs[2] == pytest.approx(30.0 * lrs[0])


# --- configuration ------------------------------------------------------------------------------------------------

def test_new_bias_keys_round_trip() -> None:
    bias = {"form": "multiplicative", "kind": "scalar", "zero_init": True, "target_features": False,
            "lr_multiplier": 20.0, "observation_dropout": 0.1}
    config = tiny_config(bias=bias)
    assert {k: config.to_dict()["bias"][k] for k in bias} == bias
    assert DMTConfig.from_dict(config.to_dict()) == config


@pytest.mark.parametrize(("bias", "match"), [
    ({"form": "product"}, r"bias.form must be one of additive, multiplicative, pbm; got 'product'"),
    ({"kind": "table"}, r"bias.kind must be one of mlp, scalar, monotone; got 'table'"),
    ({"zero_init": 1}, r"bias.zero_init must be true or false; got 1"),
    ({"target_features": "no"}, r"bias.target_features must be true or false; got 'no'"),
    ({"unbiased_loss_term": None}, r"bias.unbiased_loss_term must be true or false"),
    ({"lr_multiplier": -1.0}, r"bias.lr_multiplier must be a finite number >= 0; got -1.0"),
    ({"lr_multiplier": float("inf")}, r"bias.lr_multiplier must be a finite number >= 0"),
    ({"lr_multiplier": True}, r"bias.lr_multiplier must be a finite number >= 0"),
    ({"observation_dropout": 1.0}, r"bias.observation_dropout must be in \[0, 1\); got 1.0"),
    ({"observation_dropout": -0.1}, r"bias.observation_dropout must be in \[0, 1\); got -0.1"),
    ({"observation_dropout": "0.1"}, r"bias.observation_dropout must be in \[0, 1\); got '0.1'"),
    ({"observation_dropout": float("nan")}, r"bias.observation_dropout must be in \[0, 1\)"),
])
def test_bias_config_errors_name_the_field(bias: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        tiny_config(bias=bias)


def test_blocks_refuse_unknown_forms_and_kinds() -> None:
    with pytest.raises(ValueError, match=r"kind must be one of \('mlp', 'scalar', 'monotone'\); got 'table'"):
        BiasTower(**SIZES, kind="table")
    with pytest.raises(ValueError, match=r"form must be one of \('additive', 'multiplicative', 'pbm'\); got 'pal'"):
        BiasTower(**SIZES, form="pal")
    with pytest.raises(ValueError, match=r"bias_form must be one of .*; got 'pal'"):
        MultiTaskLoss([1.0, 1.0], bias_form="pal")
    with pytest.raises(ValueError, match=r"observation_dropout must be in \[0, 1\); got 1.0"):
        MultiTaskLoss([1.0, 1.0], observation_dropout=1.0)


# --- learning a planted curve -------------------------------------------------------------------------------------

def test_scalar_multiplicative_tower_learns_a_planted_examination_curve() -> None:
    """Clicks drawn as bias(position) · p_rel(category), PAL's model, with a fixed seed: the scalar tower's learned
    log-examination curve decreases with position, and its steps match the planted log ratios."""
    planted = torch.tensor([0.9, 0.6, 0.4, 0.25, 0.15])  # positions 1..5
    torch.manual_seed(0)
    tower = BiasTower(6, 2, 8, 4, [], 0.0, kind="scalar", form="multiplicative", zero_init=True,
                      target_features=False)
    curve, _ = _fit_planted_curve(tower, planted)
    steps = curve[1:] - curve[:-1]
    assert (steps < -0.2).all(), curve
    # PAL's factors are identified up to a constant: the log ratios between positions are.
    torch.testing.assert_close(steps, planted.log().diff(), atol=0.12, rtol=0)
