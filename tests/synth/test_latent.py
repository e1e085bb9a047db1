"""Tests of the latent-interest term of ``t4r-dmt synth``: vectors, relevance term, truth, off = unchanged."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from t4r_dmt.cli import parse
from t4r_dmt.synth.click_model import latent_similarity, relevance_logit
from t4r_dmt.synth.command import SynthArguments, run
from t4r_dmt.synth.config import SynthConfig
from t4r_dmt.synth.events import VIEW, sigmoid
from t4r_dmt.synth.generator import SynthResult, generate
from t4r_dmt.synth.history import History, Recent
from t4r_dmt.synth.truth import auc

SMALL = {"n_users": 300, "n_items": 200, "n_days": 2, "requests_per_day": 200, "n_categories": 12, "seed": 3}
W_LATENT = 2.0


@pytest.fixture(scope="module")
def off() -> SynthResult:
    return generate(SynthConfig(**SMALL))


@pytest.fixture(scope="module")
def on() -> SynthResult:
    return generate(SynthConfig(w_latent=W_LATENT, **SMALL))


def test_off_is_unchanged_whatever_the_latent_dim(off: SynthResult) -> None:
    """At w_latent = 0 the latent draws (whose count depends on latent_dim) never reach the main stream."""
    other = generate(SynthConfig(latent_dim=3, **SMALL))
    for name in ("events", "impressions", "items"):
        pd.testing.assert_frame_equal(getattr(off, name), getattr(other, name))
    pd.testing.assert_frame_equal(off.truth.impressions, other.truth.impressions)
    assert off.truth.oracle == other.truth.oracle
    assert "latent_similarity" not in off.truth.impressions.columns and off.truth.item_latent is None
    assert off.latent.catalog.latent.shape == (200, 8) and other.latent.catalog.latent.shape == (200, 3)


def test_latent_vectors_are_unit_and_clustered_by_category(on: SynthResult) -> None:
    catalog = on.latent.catalog
    np.testing.assert_allclose(np.linalg.norm(catalog.latent, axis=1), 1.0, rtol=1e-12)
    cosine = catalog.latent @ catalog.latent.T
    same = catalog.category[:, None] == catalog.category[None, :]
    off_diagonal = ~np.eye(catalog.n_items, dtype=bool)
    assert cosine[same & off_diagonal].mean() > 0.5
    assert abs(cosine[~same].mean()) < 0.2
    # Same-category pairs are not all alike: the vectors are finer than the categories.
    assert cosine[same & off_diagonal].std() > 0.05


def test_latent_similarity_values(on: SynthResult) -> None:
    """Decayed (1, 0.7) mean cosine over the valid views; 0 without views."""
    v = on.latent.catalog.latent
    views = Recent(item=np.array([[5, 9], [5, -1], [-1, -1]]), category=np.zeros((3, 2), dtype=np.int64),
                   valid=np.array([[True, True], [True, False], [False, False]]))
    got = latent_similarity(on.latent.catalog, np.array([1, 1, 1]), views)
    expected_first = (v[1] @ v[5] + 0.7 * v[1] @ v[9]) / 1.7
    np.testing.assert_allclose(got, [expected_first, v[1] @ v[5], 0.0], rtol=1e-12)


def test_latent_term_drives_clicks(off: SynthResult, on: SynthResult) -> None:
    """The true latent similarity predicts clicks, more so once it is weighted into the relevance."""
    auc_on = auc(on.latent.impressions.click, on.latent.impressions.latent_similarity)
    auc_off = auc(off.latent.impressions.click, off.latent.impressions.latent_similarity)
    assert auc_on > 0.75  # 0.805 measured
    assert auc_on > auc_off + 0.03  # 0.740 at w_latent = 0: it correlates with the category terms


def test_truth_records_the_term_and_the_oracle_includes_it(on: SynthResult) -> None:
    config, imp, rows = on.config, on.latent.impressions, on.truth.impressions
    np.testing.assert_array_equal(rows.latent_similarity, imp.latent_similarity)
    without = sigmoid(imp.relevance - W_LATENT * imp.latent_similarity
                      - config.diversity_weight * imp.neighbour_similarity)
    oracle = on.truth.oracle["all_days"]["auc_click_relevance_oracle"]
    assert oracle == auc(imp.click, imp.p_click_relevance)
    assert oracle > auc(imp.click, without) + 0.005  # 0.839 against 0.826 measured
    item_latent = on.truth.item_latent
    assert item_latent is not None and list(item_latent.columns) == ["product_id"] + [f"latent_{j}" for j in range(8)]
    index = pd.Series(np.arange(on.latent.catalog.n_items), index=on.latent.catalog.product_id)
    np.testing.assert_array_equal(item_latent.iloc[:, 1:].to_numpy(),
                                  on.latent.catalog.latent[index[item_latent.product_id].to_numpy()])


def test_relevance_is_recomputed_from_earlier_views(on: SynthResult) -> None:
    """relevance_logit on the organic views strictly before each request gives the logged relevance."""
    config, latent = on.config, on.latent
    organic, requests, imps = latent.organic, latent.requests, latent.impressions
    category = latent.catalog.category

    def recent(kind: int, depth: int) -> Recent:
        part = organic.select(organic.kind == kind)
        history = History.build(part.user, part.time, part.item, category[part.item])
        found = history.recent(requests.user, requests.time, depth)
        return Recent(item=found.item[imps.request], category=found.category[imps.request],
                      valid=found.valid[imps.request])

    views = recent(VIEW, config.recent_views)
    expected = relevance_logit(config, latent.catalog, latent.users, requests.user[imps.request], imps.item,
                               views, recent(1, config.recent_carts))
    np.testing.assert_allclose(imps.relevance, expected, rtol=1e-12)
    np.testing.assert_allclose(imps.latent_similarity, latent_similarity(latent.catalog, imps.item, views),
                               rtol=1e-12)
    no_latent = dataclasses.replace(config, w_latent=0.0)
    np.testing.assert_allclose(
        imps.relevance - W_LATENT * imps.latent_similarity,
        relevance_logit(no_latent, latent.catalog, latent.users, requests.user[imps.request], imps.item, views,
                        recent(1, config.recent_carts)), rtol=1e-9, atol=1e-12)


def test_views_follow_the_facet_anchors(off: SynthResult, on: SynthResult) -> None:
    """With w_latent > 0 organic views of a facet category lie closer to the user's anchor for it."""

    def closeness(result: SynthResult) -> float:
        latent = result.latent
        views = latent.organic.select(latent.organic.kind == VIEW)
        users, v = latent.users, latent.catalog.latent
        match = users.facets[views.user] == latent.catalog.category[views.item][:, None]
        hit = match.any(axis=1)
        anchor = users.facet_anchor[views.user, match.argmax(axis=1)]
        return float(np.einsum("nd,nd->n", v[views.item[hit]], v[anchor[hit]]).mean())

    assert closeness(on) > closeness(off) + 0.05


def test_written_latent_files(tmp_path: Path) -> None:
    small = {"users": 60, "items": 50, "days": 1, "requests_per_day": 30, "categories": 5}
    run(SynthArguments(out=str(tmp_path / "on"), w_latent=1.0, latent_dim=4, **small))
    run(SynthArguments(out=str(tmp_path / "off"), **small))
    truth = pd.read_parquet(tmp_path / "on" / "truth" / "impressions_truth.parquet")
    assert truth.columns[-1] == "latent_similarity" and truth.latent_similarity.between(-1, 1).all()
    vectors = pd.read_parquet(tmp_path / "on" / "truth" / "item_latent.parquet")
    assert vectors.shape == (50, 5) and vectors.product_id.is_monotonic_increasing
    assert not (tmp_path / "off" / "truth" / "item_latent.parquet").exists()
    assert "latent_similarity" not in pd.read_parquet(tmp_path / "off" / "truth" / "impressions_truth.parquet")


def test_max_pool_is_the_nearest_view_by_hand() -> None:
    """latent_pool "max": the largest cosine over the valid views (invalid slots ignored, none -> 0)."""
    config = SynthConfig(**SMALL)
    catalog = generate(config).latent.catalog
    v = catalog.latent
    item = np.array([0, 1, 2])
    views = Recent(item=np.array([[5, 7, -1], [9, -1, -1], [-1, -1, -1]]),
                   category=np.zeros((3, 3), dtype=np.int64),
                   valid=np.array([[True, True, False], [True, False, False], [False, False, False]]))
    got = latent_similarity(catalog, item, views, "max")
    expected = [max(v[0] @ v[5], v[0] @ v[7]), v[1] @ v[9], 0.0]
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    mean = latent_similarity(catalog, item, views, "mean")
    np.testing.assert_allclose(mean[:2], [(v[0] @ v[5] + 0.7 * v[0] @ v[7]) / 1.7, v[1] @ v[9]], rtol=1e-12)
    assert got[0] >= mean[0]


def test_max_pool_generates_its_own_relevance() -> None:
    """The generator's latent term follows latent_pool, and the truth records it."""
    result = generate(SynthConfig(w_latent=W_LATENT, latent_pool="max", **SMALL))
    imps = result.latent.impressions
    assert imps.latent_similarity.max() <= 1.0 + 1e-12
    assert result.truth.impressions["latent_similarity"].to_numpy() == pytest.approx(imps.latent_similarity)
    mean = generate(SynthConfig(w_latent=W_LATENT, **SMALL)).latent.impressions
    assert not np.allclose(imps.latent_similarity, mean.latent_similarity)


def test_cli_latent_flags() -> None:
    (args,) = parse("synth", ["--out", "x", "--latent_dim", "5", "--w_latent", "1.5", "--latent_pool", "max"])
    config = args.to_config()
    assert (config.latent_dim, config.w_latent, config.latent_pool) == (5, 1.5, "max")
    assert (SynthConfig().latent_dim, SynthConfig().w_latent, SynthConfig().latent_pool) == (8, 0.0, "mean")


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"latent_dim": 0}, "latent_dim must be >= 1, got 0"),
    ({"w_latent": -0.5}, "w_latent must be >= 0, got -0.5"),
    ({"latent_pool": "sum"}, "latent_pool must be one of \\('mean', 'max'\\), got 'sum'"),
])
def test_latent_config_errors(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        SynthConfig(**kwargs)
    with pytest.raises(ValueError, match=match):
        SynthArguments(out="unused", **kwargs)
