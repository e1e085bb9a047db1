"""Tests of the logging policies of ``t4r-dmt synth --policy``: noisy unchanged, promotion, epsilon, errors, files."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from t4r_dmt import cli
from t4r_dmt.synth.command import SynthArguments, run
from t4r_dmt.synth.config import SynthConfig
from t4r_dmt.synth.events import sigmoid
from t4r_dmt.synth.generator import SynthResult, generate
from t4r_dmt.synth.policy import explore_swaps, promoted_items

SMALL = {"n_users": 300, "n_items": 200, "n_days": 2, "requests_per_day": 200, "n_categories": 12, "seed": 3}
EPSILON = 0.3

# Frames of generate(SynthConfig(**GOLDEN)) before the logging policies existed (commit 0f895a7), as the
# sha256 of pandas' row hashes (independent of the parquet writer): the default policy must keep them. The truth
# frame's float columns (probabilities through exp, einsum) differ in their last bits between CPUs, so its digest
# covers the other columns, and each float column is checked by its sum, its row-weighted mean and its sum of
# squares to 1e-9 (0f895a7's values on two machines whose full digests differ).
GOLDEN = {"n_users": 150, "n_items": 120, "n_days": 2, "requests_per_day": 100, "n_categories": 12, "seed": 5}
GOLDEN_DIGESTS = {
    "events": "e8d51fbde9a721f97763bfc08007420e188347ebe28f0cdb3252a413a144ddeb",
    "impressions": "858b3a506440c028e87ffbe33e65c95bb56d69bc18f649551faf266560584e2a",
    "items": "7bd28034072ce19276f89a38622778b344e9abd96af59529b3fbe8c7f43d98c4",
    "truth": "7c3c07c7f3cfac655c546c8d2e6a8247e98da81da9fb0079e2f4ad91200f7742",
}
GOLDEN_TRUTH_FLOATS = {
    "p_click": [353.93372909957054, 0.09252638925297424, 111.74660597764164],
    "p_click_relevance": [1061.28859556626, 0.27556543225232144, 471.14055355852696],
    "p_order": [96.37683064657654, 0.026034523715697873, 18.983356790223954],
    "relevance": [-3948.437091932181, -0.9259591609299047, 10611.851987367494],
    "position_bias": [1049.1773585187182, 0.2618006251738164, 459.0359920712043],
    "neighbor_similarity": [2945.5, 0.7333825606098475, 5216.5],
    "p_order_given_click": [889.3337722681011, 0.2245225560961634, 300.4261495323034],
}


def _digest(frame: pd.DataFrame) -> str:
    return hashlib.sha256(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes()).hexdigest()


def _float_columns(frame: pd.DataFrame) -> list[str]:
    return [c for c in frame.columns if pd.api.types.is_float_dtype(frame[c])]


def _float_checks(frame: pd.DataFrame) -> dict[str, list[float]]:
    """Per float column: sum, mean weighted by the row number (1..N, so an order change shows), sum of squares."""
    weights = np.arange(1, len(frame) + 1, dtype=np.float64)
    return {c: [float(frame[c].sum()), float((frame[c] * weights).sum() / weights.sum()), float((frame[c] ** 2).sum())]
            for c in _float_columns(frame)}


@pytest.fixture(scope="module")
def noisy() -> SynthResult:
    return generate(SynthConfig(**SMALL))


@pytest.fixture(scope="module")
def promotion() -> SynthResult:
    return generate(SynthConfig(policy="promotion", **SMALL))


@pytest.fixture(scope="module")
def epsilon() -> SynthResult:
    return generate(SynthConfig(policy="epsilon", epsilon=EPSILON, **SMALL))


def _assert_same_data(a: SynthResult, b: SynthResult) -> None:
    for name in ("events", "impressions", "items"):
        pd.testing.assert_frame_equal(getattr(a, name), getattr(b, name))
    pd.testing.assert_frame_equal(a.truth.impressions, b.truth.impressions)
    assert a.truth.oracle == b.truth.oracle


# --- noisy: the default, unchanged -------------------------------------------------------------------


def test_default_policy_keeps_the_frames_of_the_generator_before_policies() -> None:
    result = generate(SynthConfig(**GOLDEN))
    assert result.config.policy == "noisy"
    truth = result.truth.impressions
    got = {"events": _digest(result.events), "impressions": _digest(result.impressions),
           "items": _digest(result.items), "truth": _digest(truth.drop(columns=_float_columns(truth)))}
    assert got == GOLDEN_DIGESTS
    checks = _float_checks(truth)
    assert sorted(checks) == sorted(GOLDEN_TRUTH_FLOATS)
    for column, values in GOLDEN_TRUTH_FLOATS.items():
        assert checks[column] == pytest.approx(values, rel=1e-9, abs=1e-12), column
    assert result.truth.promoted_items is None
    assert not result.latent.impressions.promoted.any() and not result.latent.impressions.swapped.any()


def test_policies_without_effect_equal_noisy(noisy: SynthResult) -> None:
    """epsilon = 0 and promoted_share = 0 draw from the policy stream only: the data are the noisy data."""
    assert "promoted" not in noisy.truth.impressions and "swapped" not in noisy.truth.impressions
    no_swaps = generate(SynthConfig(policy="epsilon", epsilon=0.0, **SMALL))
    assert not no_swaps.truth.impressions.pop("swapped").any()
    _assert_same_data(noisy, no_swaps)
    no_promotion = generate(SynthConfig(policy="promotion", promoted_share=0.0, **SMALL))
    assert not no_promotion.truth.impressions.pop("promoted").any()
    assert no_promotion.truth.promoted_items is not None and len(no_promotion.truth.promoted_items) == 0
    _assert_same_data(noisy, no_promotion)


# --- promotion -----------------------------------------------------------------------------------------


def test_promoted_share_of_the_catalogue(promotion: SynthResult) -> None:
    promoted = promotion.truth.promoted_items
    assert promoted is not None and list(promoted.columns) == ["product_id"]
    assert len(promoted) == round(0.1 * SMALL["n_items"]) and promoted.product_id.is_monotonic_increasing
    assert set(promoted.product_id) <= set(promotion.items.product_id) and promoted.product_id.is_unique
    for share, n in ((0.25, 50), (1.0, 200), (0.0, 0)):
        mask = promoted_items(SynthConfig(policy="promotion", promoted_share=share, **SMALL))
        assert mask.sum() == n
    assert not promoted_items(SynthConfig(**SMALL)).any()
    # The set is fixed by the seed.
    config = SynthConfig(policy="promotion", **SMALL)
    np.testing.assert_array_equal(promoted_items(config), promoted_items(config))
    rows = promotion.truth.impressions
    np.testing.assert_array_equal(rows.promoted, rows.product_id.isin(promoted.product_id))


def test_promoted_candidates_take_the_top_slots(noisy: SynthResult, promotion: SynthResult) -> None:
    rows = promotion.truth.impressions
    n_promoted = rows.groupby("request_id").promoted.transform("sum")
    assert (rows.promoted == (rows.position < n_promoted)).all()
    lists_with = rows.groupby("request_id").promoted.any()
    assert 0.5 < lists_with.mean() < 1.0  # many lists have promoted candidates, not all
    # Same candidates and policy scores as noisy: each part keeps the noisy order among itself.
    assert promotion.truth.promoted_items is not None
    promoted_ids = set(promotion.truth.promoted_items.product_id)
    before = noisy.truth.impressions.assign(promoted=lambda f: f.product_id.isin(promoted_ids))
    for part in (True, False):
        a = before[before.promoted == part][["request_id", "product_id"]].reset_index(drop=True)
        b = rows[rows.promoted == part][["request_id", "product_id"]].reset_index(drop=True)
        pd.testing.assert_frame_equal(a, b)


def test_promotion_clicks_follow_the_planted_truth(promotion: SynthResult) -> None:
    config, truth = promotion.config, promotion.truth
    rows = truth.impressions
    np.testing.assert_array_equal(rows.p_click, truth.bias_curve[rows.position] * rows.p_click_relevance)
    np.testing.assert_allclose(
        rows.p_click_relevance, sigmoid(rows.relevance.to_numpy() - config.diversity_weight * rows.neighbor_similarity),
        rtol=1e-12)
    # Realised clicks follow p_click for the promoted items (all on page 0 here) and the others on both pages,
    # within 4 standard deviations.
    frame = pd.DataFrame({"click": promotion.impressions.click, "p": rows.p_click,
                          "var": rows.p_click * (1 - rows.p_click), "promoted": rows.promoted,
                          "page": rows.position // config.page_size})
    sums = frame.groupby(["promoted", "page"]).sum()
    assert list(sums.index) == [(False, 0), (False, 1), (True, 0)]
    assert (abs(sums.click - sums.p) < 4 * np.sqrt(sums["var"])).all()
    # Promoted items are shown high whatever their relevance: on top they are less relevant than the rest.
    top = rows[rows.position < 3]
    assert top[top.promoted].relevance.mean() < top[~top.promoted].relevance.mean() - 0.3


# --- epsilon -------------------------------------------------------------------------------------------


def test_swapped_pair_share_is_epsilon() -> None:
    """120k impressions, ~57k pairs: the share's std is ~0.002; the margin is 0.02."""
    result = generate(SynthConfig(policy="epsilon", epsilon=EPSILON))
    rows = result.truth.impressions
    list_length = rows.groupby("request_id").size()
    assert (list_length == 20).all()
    n_pairs_low, n_pairs_high = 9 * len(list_length), 10 * len(list_length)  # 10 pairs at offset 0, 9 at 1
    n_swapped = rows.swapped.sum() / 2
    assert EPSILON - 0.02 < n_swapped / n_pairs_high and n_swapped / n_pairs_low < EPSILON + 0.02


def test_epsilon_swaps_adjacent_pairs_of_the_noisy_order(noisy: SynthResult, epsilon: SynthResult) -> None:
    rows = epsilon.truth.impressions
    swapped = rows.swapped.to_numpy()
    assert 0.2 < swapped.mean() < 0.4
    # Swapped rows come in pairs of adjacent slots of one list.
    runs = np.diff(np.flatnonzero(np.diff(np.r_[0, swapped.astype(int), 0])))[::2]  # lengths of runs of True
    assert (runs % 2 == 0).all()
    # Undoing each swap gives the noisy lists.
    top = np.flatnonzero(swapped)[::2]
    items = rows.product_id.to_numpy().copy()
    items[top], items[top + 1] = items[top + 1], items[top]
    np.testing.assert_array_equal(items, noisy.truth.impressions.product_id.to_numpy())
    np.testing.assert_array_equal(rows.request_id[top], rows.request_id[top + 1])
    np.testing.assert_array_equal(rows.p_click, epsilon.truth.bias_curve[rows.position] * rows.p_click_relevance)


def test_explore_swaps_by_hand() -> None:
    """Lists of 5, 2 and 1 rows; epsilon 1 swaps every pair the offsets make."""
    request = np.array([0, 0, 0, 0, 0, 1, 1, 2])
    offset = np.random.default_rng(4).integers(0, 2, size=3)
    permutation, swapped = explore_swaps(request, 1.0, np.random.default_rng(4))
    expected = {0: [1, 0, 3, 2, 4], 1: [0, 2, 1, 4, 3]}[int(offset[0])]
    expected += [6, 5] if offset[1] == 0 else [5, 6]
    np.testing.assert_array_equal(permutation, expected + [7])
    np.testing.assert_array_equal(swapped, np.asarray(expected + [7]) != np.arange(8))
    same, none = explore_swaps(request, 0.0, np.random.default_rng(4))
    np.testing.assert_array_equal(same, np.arange(8))
    assert not none.any()
    empty, flags = explore_swaps(np.zeros(0, dtype=np.int64), 0.5, np.random.default_rng(0))
    assert len(empty) == 0 and len(flags) == 0


# --- arguments, errors, files -------------------------------------------------------------------------


def test_cli_policy_flags() -> None:
    (args,) = cli.parse("synth", ["--out", "x", "--policy", "promotion", "--promoted_share", "0.2"])
    config = args.to_config()
    assert (config.policy, config.promoted_share, config.epsilon) == ("promotion", 0.2, 0.1)
    (args,) = cli.parse("synth", ["--out", "x", "--policy", "epsilon", "--epsilon", "0.05"])
    assert (args.to_config().policy, args.to_config().epsilon) == ("epsilon", 0.05)
    assert (SynthConfig().policy, SynthConfig().promoted_share, SynthConfig().epsilon) == ("noisy", 0.1, 0.1)


def test_cli_rejects_an_unknown_policy(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli.parse("synth", ["--out", "x", "--policy", "greedy"])
    assert "invalid choice: 'greedy'" in capsys.readouterr().err


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"policy": "greedy"}, r"policy must be one of \('noisy', 'promotion', 'epsilon'\), got 'greedy'"),
    ({"policy": "promotion", "promoted_share": 1.5}, r"promoted_share must be in \[0, 1\], got 1.5"),
    ({"policy": "promotion", "promoted_share": float("nan")}, r"promoted_share must be in \[0, 1\], got nan"),
    ({"policy": "epsilon", "epsilon": -0.1}, r"epsilon must be in \[0, 1\], got -0.1"),
    ({"epsilon": 0.3}, "epsilon \\(0.3\\) applies only to policy 'epsilon', not 'noisy': leave it at its default 0.1"),
    ({"policy": "epsilon", "promoted_share": 0.2}, "promoted_share \\(0.2\\) applies only to policy 'promotion'"),
])
def test_policy_config_errors(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        SynthConfig(**kwargs)
    with pytest.raises(ValueError, match=match):
        SynthArguments(out="unused", **kwargs)


def test_written_policy_files(tmp_path: Path) -> None:
    small = {"users": 60, "items": 50, "days": 1, "requests_per_day": 30, "categories": 5}
    run(SynthArguments(out=str(tmp_path / "promotion"), policy="promotion", promoted_share=0.2, **small))
    run(SynthArguments(out=str(tmp_path / "epsilon"), policy="epsilon", epsilon=0.5, **small))
    run(SynthArguments(out=str(tmp_path / "noisy"), **small))
    truth = tmp_path / "promotion" / "truth"
    promoted = pd.read_parquet(truth / "promoted_items.parquet")
    assert list(promoted.columns) == ["product_id"] and len(promoted) == 10
    rows = pd.read_parquet(truth / "impressions_truth.parquet")
    assert rows.columns[-1] == "promoted" and rows.promoted.dtype == bool
    np.testing.assert_array_equal(rows.promoted, rows.product_id.isin(promoted.product_id))
    config = json.loads((truth / "config.json").read_text())
    assert (config["policy"], config["promoted_share"], config["epsilon"]) == ("promotion", 0.2, 0.1)
    curve = json.loads((truth / "bias_curve.json").read_text())
    np.testing.assert_array_equal(rows.p_click, np.asarray(curve["bias"])[rows.position] * rows.p_click_relevance)

    rows = pd.read_parquet(tmp_path / "epsilon" / "truth" / "impressions_truth.parquet")
    assert rows.columns[-1] == "swapped" and rows.swapped.dtype == bool and rows.swapped.any()
    assert json.loads((tmp_path / "epsilon" / "truth" / "config.json").read_text())["epsilon"] == 0.5
    assert not (tmp_path / "epsilon" / "truth" / "promoted_items.parquet").exists()

    rows = pd.read_parquet(tmp_path / "noisy" / "truth" / "impressions_truth.parquet")
    assert "promoted" not in rows and "swapped" not in rows
    assert not (tmp_path / "noisy" / "truth" / "promoted_items.parquet").exists()
    assert json.loads((tmp_path / "noisy" / "truth" / "config.json").read_text())["policy"] == "noisy"


def test_replace_keeps_validation() -> None:
    """A config switched to another policy must drop the old policy's knob (it would be ignored)."""
    config = SynthConfig(policy="epsilon", epsilon=0.2, **SMALL)
    with pytest.raises(ValueError, match="applies only to policy 'epsilon'"):
        dataclasses.replace(config, policy="noisy")
    assert dataclasses.replace(config, policy="noisy", epsilon=0.1).policy == "noisy"
