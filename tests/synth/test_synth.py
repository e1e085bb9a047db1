"""Tests of ``t4r-dmt synth``: contracts, determinism, planted truth, leakage rules, argument errors."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from t4r_dmt.cli import parse
from t4r_dmt.synth.click_model import neighbour_similarity, relevance_logit
from t4r_dmt.synth.command import SynthArguments, run
from t4r_dmt.synth.config import SynthConfig
from t4r_dmt.synth.events import VIEW, sigmoid
from t4r_dmt.synth.generator import SynthResult, generate
from t4r_dmt.synth.history import History, Recent
from t4r_dmt.synth.ids import random_uuids, unique_ints
from t4r_dmt.synth.truth import auc

FILES = ("events.parquet", "impressions.parquet", "items.parquet", "truth/bias_curve.json",
         "truth/impressions_truth.parquet", "truth/oracle.json", "truth/config.json")
SMALL = {"users": 150, "items": 120, "days": 2, "requests_per_day": 100, "categories": 12}


@pytest.fixture(scope="module")
def default_result() -> SynthResult:
    """The demo-sized data set (defaults), generated once: ~0.5 s."""
    return generate(SynthConfig())


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("synth") / "data"
    run(SynthArguments(out=str(out), seed=7))
    return out


def _files(folder: Path) -> dict[str, bytes]:
    return {name: (folder / name).read_bytes() for name in FILES}


# --- determinism and files ---------------------------------------------------------------------------


def test_same_seed_gives_identical_bytes_and_another_seed_differs(tmp_path: Path) -> None:
    for name, seed in (("a", 1), ("b", 1), ("c", 2)):
        summary = run(SynthArguments(out=str(tmp_path / name), seed=seed, **SMALL))
        assert summary["out"] == str(tmp_path / name)
    first, second, other = (_files(tmp_path / name) for name in "abc")
    assert first == second
    assert first["events.parquet"] != other["events.parquet"]
    assert first["impressions.parquet"] != other["impressions.parquet"]


def test_existing_output_needs_overwrite(tmp_path: Path) -> None:
    out = tmp_path / "data"
    run(SynthArguments(out=str(out), seed=1, **SMALL))
    with pytest.raises(FileExistsError, match="--overwrite"):
        run(SynthArguments(out=str(out), seed=2, **SMALL))
    run(SynthArguments(out=str(out), seed=2, overwrite=True, **SMALL))
    config = json.loads((out / "truth" / "config.json").read_text())
    assert config["seed"] == 2 and config["n_users"] == SMALL["users"]
    assert [p.name for p in tmp_path.iterdir()] == ["data"]  # no temporary folder left behind


def test_cli_flags_map_onto_arguments() -> None:
    (args,) = parse("synth", ["--out", "x", "--users", "5", "--items", "30", "--days", "2", "--seed", "9",
                              "--categories", "4", "--overwrite"])
    config = args.to_config()
    assert (config.n_users, config.n_items, config.n_days, config.seed, config.n_categories) == (5, 30, 2, 9, 4)
    assert args.overwrite is True


# --- contracts -----------------------------------------------------------------------------------------


def test_events_contract(written: Path) -> None:
    events = pd.read_parquet(written / "events.parquet")
    expected = {"event_time": "datetime64[ns]", "event_type": "object", "product_id": "int64",
                "category_id": "int64", "category_code": "object", "brand": "object", "price": "float64",
                "user_id": "int64", "user_session": "object"}
    assert {c: str(t) for c, t in events.dtypes.items()} == expected
    assert set(events.event_type) == {"view", "cart", "purchase", "remove_from_cart"}
    assert events[["product_id", "user_id", "user_session", "event_time"]].notna().all().all()
    assert (events.price > 0).all()
    assert events.category_id.between(10**18, 10**19 - 1).all()  # 19 digits like REES46
    codes = events.category_code.dropna()
    assert 0.05 < events.category_code.isna().mean() < 0.6 and codes.str.contains(".", regex=False).all()
    assert 0.02 < events.brand.isna().mean() < 0.3
    assert events.user_session.str.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}").all()
    # One category and one brand per product, sessions belong to one user.
    per_product = events.groupby("product_id").agg(cat=("category_id", "nunique"), brand=("brand", "nunique"))
    assert per_product.cat.max() == 1 and per_product.brand.max() <= 1
    assert events.groupby("user_session").user_id.nunique().max() == 1
    assert events.event_time.min() >= pd.Timestamp("2019-10-01")
    assert events.event_time.dt.tz is None


def test_impressions_contract(written: Path) -> None:
    imp = pd.read_parquet(written / "impressions.parquet")
    expected = {"request_id": "int64", "user_id": "int64", "event_time": "datetime64[ns]", "product_id": "int64",
                "position": "int64", "page": "int64", "click": "int8", "order": "int8"}
    assert {c: str(t) for c, t in imp.dtypes.items()} == expected
    per_request = imp.groupby("request_id").agg(n=("position", "size"), top=("position", "max"),
                                                 distinct=("product_id", "nunique"),
                                                 users=("user_id", "nunique"), times=("event_time", "nunique"))
    assert (per_request.n == 20).all() and (per_request.top == 19).all() and (per_request.distinct == 20).all()
    assert (per_request.users == 1).all() and (per_request.times == 1).all()
    assert imp.duplicated(["request_id", "position"]).sum() == 0
    assert (imp.page == imp.position // 10).all()
    assert set(imp.click.unique()) == {0, 1} and (imp.order <= imp.click).all() and imp.order.sum() > 0
    items = pd.read_parquet(written / "items.parquet")
    assert list(items.columns) == ["product_id", "category_id", "category_code", "brand", "price"]
    assert set(imp.product_id) <= set(items.product_id) and items.product_id.is_unique


def test_tiny_catalogue_gives_contiguous_positions() -> None:
    result = generate(SynthConfig(n_users=20, n_items=20, n_categories=3, n_days=1, requests_per_day=30, seed=3))
    imp = result.impressions
    sizes = imp.groupby("request_id").position.agg(["size", "max", "min"])
    assert (sizes["max"] == sizes["size"] - 1).all() and (sizes["min"] == 0).all()
    assert imp.duplicated(["request_id", "product_id"]).sum() == 0
    assert result.truth.oracle["auc_click_popularity"] is None  # one day: no earlier day to fit on


# --- planted truth -------------------------------------------------------------------------------------


def test_rates_and_oracle_ordering(default_result: SynthResult) -> None:
    oracle = default_result.truth.oracle
    assert 0.05 <= oracle["click_rate"] <= 0.25
    assert 0.005 <= oracle["order_rate"] <= 0.05
    assert 0.55 <= oracle["auc_click_popularity"] <= 0.68
    assert 0.75 <= oracle["auc_click_relevance_oracle"] <= 0.87
    assert oracle["auc_click_popularity"] < oracle["auc_click_relevance_oracle"] < oracle["auc_click_oracle"] < 1
    assert 0.5 < oracle["auc_order_oracle"] < 1
    # Without the position effect the order oracle ranks worse on the logged orders, which carry it.
    assert 0.5 < oracle["auc_order_relevance_oracle"] < oracle["auc_order_oracle"]
    for key in ("auc_order_oracle", "auc_order_relevance_oracle"):
        assert 0.5 < oracle["all_days"][key] < 1
    imp = default_result.impressions
    assert oracle["click_rate"] == pytest.approx(imp.click.mean())
    assert oracle["n_impressions"] == len(imp) == 120_000
    assert oracle["n_events"] == len(default_result.events)
    # Demo sizing: 20-40k impressions per day and events of the same order.
    assert 20_000 <= len(imp) / 4 <= 40_000 and 10_000 <= len(default_result.events) / 4 <= 40_000


def test_truth_is_consistent(default_result: SynthResult) -> None:
    config, truth, imp = default_result.config, default_result.truth, default_result.impressions
    rows = truth.impressions
    assert (rows.request_id.to_numpy() == imp.request_id.to_numpy()).all()
    assert (rows.position.to_numpy() == imp.position.to_numpy()).all()
    assert (rows.product_id.to_numpy() == imp.product_id.to_numpy()).all()
    expected_bias = (1.0 + np.arange(20)) ** -0.7 * 0.85 ** (np.arange(20) // 10)
    np.testing.assert_allclose(truth.bias_curve, expected_bias, rtol=1e-12)
    assert truth.bias_curve[0] == 1.0 and (np.diff(truth.bias_curve) < 0).all()
    np.testing.assert_array_equal(rows.p_click, truth.bias_curve[rows.position] * rows.p_click_relevance)
    np.testing.assert_allclose(
        rows.p_click_relevance, sigmoid(rows.relevance.to_numpy() - config.diversity_weight * rows.neighbor_similarity),
        rtol=1e-12)
    np.testing.assert_array_equal(rows.p_order, rows.p_click * rows.p_order_given_click)
    assert (rows.p_order <= rows.p_click).all()
    # Realised outcomes follow the planted probabilities (per position bucket).
    by_position = pd.DataFrame({"click": imp.click, "p": rows.p_click, "pos": imp.position}).groupby("pos").mean()
    np.testing.assert_allclose(by_position.click, by_position.p, atol=0.02)
    assert imp.order.mean() == pytest.approx(rows.p_order.mean(), abs=0.003)


def test_written_truth_files(written: Path) -> None:
    curve = json.loads((written / "truth" / "bias_curve.json").read_text())
    assert curve["position"] == list(range(20)) and curve["bias"][0] == 1.0
    assert curve["bias"][1] == pytest.approx(2**-0.7)
    rows = pd.read_parquet(written / "truth" / "impressions_truth.parquet")
    assert list(rows.columns[:7]) == ["request_id", "position", "product_id", "p_click", "p_click_relevance",
                                      "p_order", "relevance"]
    np.testing.assert_array_equal(rows.p_click, np.array(curve["bias"])[rows.position] * rows.p_click_relevance)
    oracle = json.loads((written / "truth" / "oracle.json").read_text())
    assert oracle["eval_day"] == "2019-10-04" and oracle["n_requests"] == 6000


def test_neighbour_similarity_weights() -> None:
    request = np.array([0, 0, 0, 0, 0, 1, 1])
    category = np.array([5, 5, 7, 5, 5, 5, 5])
    # Item 0: same category at distance 1 (1.0) and 3 (0.25); the next request's items never count.
    np.testing.assert_allclose(neighbour_similarity(request, category), [1.25, 1.75, 0.0, 1.75, 1.25, 1.0, 1.0])


def test_position_is_confounded_with_relevance(default_result: SynthResult) -> None:
    rows = default_result.truth.impressions
    top, bottom = rows[rows.position < 5].relevance.mean(), rows[rows.position >= 15].relevance.mean()
    assert top > bottom + 0.5


# --- leakage: feedback after the request, truth from the past only ----------------------------------------


def test_every_click_is_logged_as_a_view_at_or_after_the_request(written: Path) -> None:
    imp = pd.read_parquet(written / "impressions.parquet")
    events = pd.read_parquet(written / "events.parquet")
    clicks = imp[imp.click == 1][["request_id", "user_id", "product_id", "event_time", "order"]]
    key = ["user_id", "product_id"]
    views = events[events.event_type == "view"][key + ["event_time"]].rename(columns={"event_time": "view_time"})
    joined = clicks.merge(views, on=key)
    delay = (joined.view_time - joined.event_time).dt.total_seconds()
    feedback = joined[(delay >= 0) & (delay <= 600)]
    assert feedback.request_id.nunique() == clicks.request_id.nunique()
    assert len(feedback.drop_duplicates(["request_id", "product_id"])) == len(clicks)
    first_delay = (feedback.view_time - feedback.event_time).dt.total_seconds().groupby(
        [feedback.request_id, feedback.product_id]).min()
    assert (first_delay == 0).mean() > 0.15  # sometimes logged in the request's own second
    # Orders: a cart and a purchase of that user and item follow the click's view.
    orders = clicks[clicks.order == 1]
    for kind in ("cart", "purchase"):
        done = events[events.event_type == kind][key + ["event_time"]].rename(columns={"event_time": "t"})
        after = orders.merge(done, on=key)
        after = after[(after.t > after.event_time) & (after.t <= after.event_time + pd.Timedelta("1h"))]
        assert after.drop_duplicates(["request_id", "product_id"]).shape[0] == len(orders)


def test_history_lookup_is_strictly_before() -> None:
    history = History.build(user=np.array([0, 0, 0, 1]), time=np.array([10, 20, 30, 5]),
                            item=np.array([100, 200, 300, 400]), category=np.array([1, 2, 3, 4]))
    recent = history.recent(user=np.array([0, 0, 1, 2]), time=np.array([30, 31, 5, 50]), depth=2)
    # User 0 at t=30: the event at exactly 30 is not history; user 1 at t=5: nothing yet; user 2 unknown.
    np.testing.assert_array_equal(recent.item, [[200, 100], [300, 200], [-1, -1], [-1, -1]])
    np.testing.assert_array_equal(recent.category, [[2, 1], [3, 2], [-1, -1], [-1, -1]])
    empty = History.build(*(np.zeros(0, dtype=np.int64) for _ in range(4))).recent(np.array([0]), np.array([9]), 3)
    assert not empty.valid.any() and (empty.item == -1).all()


def test_truth_uses_only_organic_events_before_the_request(default_result: SynthResult) -> None:
    """Recompute the relevance of 40 requests by brute force from the organic events strictly before them."""
    config, latent = default_result.config, default_result.latent
    organic, requests, imps = latent.organic, latent.requests, latent.impressions
    category = latent.catalog.category
    for r in np.linspace(0, len(requests) - 1, 40).astype(int):
        user, time = requests.user[r], requests.time[r]

        def last(kind: int, depth: int, user: int = user, time: int = time) -> Recent:
            mask = (organic.user == user) & (organic.kind == kind) & (organic.time < time)
            idx = np.flatnonzero(mask)
            idx = idx[np.argsort(organic.time[idx], kind="stable")][::-1][:depth]
            item = np.full(depth, -1)
            item[: len(idx)] = organic.item[idx]
            cat = np.where(item >= 0, category[np.maximum(item, 0)], -1)
            return Recent(item=item[None, :], category=cat[None, :], valid=(item >= 0)[None, :])

        rows = np.flatnonzero(imps.request == r)
        views, carts = last(VIEW, config.recent_views), last(1, config.recent_carts)
        n = len(rows)
        tiled = [Recent(item=np.repeat(x.item, n, 0), category=np.repeat(x.category, n, 0),
                        valid=np.repeat(x.valid, n, 0)) for x in (views, carts)]
        expected = relevance_logit(config, latent.catalog, latent.users, np.full(n, user), imps.item[rows], *tiled)
        np.testing.assert_allclose(imps.relevance[rows], expected, rtol=1e-12)


def test_relevance_depends_on_recent_behaviour_more_than_on_static_facets(default_result: SynthResult) -> None:
    """From the files alone: 'candidate in the category of the last view before the request' beats the facets."""
    events, imp, items = default_result.events, default_result.impressions, default_result.items
    views = events[events.event_type == "view"][["user_id", "event_time", "category_id"]]
    requests = imp.drop_duplicates("request_id")[["request_id", "user_id", "event_time"]]
    last = pd.merge_asof(requests.sort_values("event_time"),
                         views.sort_values("event_time").rename(columns={"category_id": "last_category"}),
                         on="event_time", by="user_id", allow_exact_matches=False)
    frame = imp.merge(last[["request_id", "last_category"]], on="request_id", how="left")
    frame["category"] = frame.product_id.map(items.set_index("product_id").category_id)
    recent_auc = auc(frame.click, (frame.category == frame.last_category).astype(float))
    latent = default_result.latent
    user_index = pd.Series(np.arange(latent.users.n_users), index=latent.users.user_id)[frame.user_id].to_numpy()
    item_index = pd.Series(np.arange(latent.catalog.n_items), index=latent.catalog.product_id)[frame.product_id]
    facet = latent.users.facet_affinity(user_index, latent.catalog.category[item_index.to_numpy()])
    facet_auc = auc(frame.click, facet)
    assert recent_auc > facet_auc + 0.03
    assert recent_auc > 0.65


def test_orders_depend_on_cart_history(default_result: SynthResult) -> None:
    latent = default_result.latent
    rows = default_result.truth.impressions
    carted = np.zeros(len(rows), dtype=bool)
    organic = latent.organic
    cart_rows = organic.kind == 1
    carts = History.build(organic.user[cart_rows], organic.time[cart_rows], organic.item[cart_rows],
                          latent.catalog.category[organic.item[cart_rows]])
    imps, requests = latent.impressions, latent.requests
    recent = carts.recent(requests.user[imps.request], requests.time[imps.request], 10)
    carted = (recent.item == imps.item[:, None]).any(axis=1)
    assert carted.sum() > 50
    assert rows.p_order_given_click[carted].mean() > rows.p_order_given_click[~carted].mean() + 0.15


# --- helpers -------------------------------------------------------------------------------------------


def test_auc_values() -> None:
    assert auc(np.array([0, 1, 0, 1]), np.array([0.1, 0.9, 0.2, 0.8])) == 1.0
    assert auc(np.array([0, 1, 0, 1]), np.array([0.9, 0.1, 0.8, 0.2])) == 0.0
    assert auc(np.array([0, 1]), np.array([0.5, 0.5])) == 0.5
    assert np.isnan(auc(np.array([1, 1]), np.array([0.1, 0.2])))


def test_ids() -> None:
    rng = np.random.default_rng(0)
    values = unique_ints(50, 60, rng)
    assert len(set(values.tolist())) == 50 and values.min() >= 0 and values.max() < 60
    with pytest.raises(ValueError, match="cannot draw 5 distinct values below 4"):
        unique_ints(5, 4, rng)
    uuids = random_uuids(3, np.random.default_rng(0))
    assert all(re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}", u) for u in uuids)
    assert list(uuids) == list(random_uuids(3, np.random.default_rng(0)))


# --- error paths ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"users": 0}, "--users must be >= 1, got 0"),
    ({"items": 0}, "--items must be >= 1"),
    ({"days": -1}, "--days must be >= 1"),
    ({"requests_per_day": 0}, "--requests_per_day must be >= 1"),
    ({"list_length": 0}, "--list_length must be >= 1"),
    ({"page_size": 0}, "--page_size must be >= 1"),
    ({"categories": 0}, "--categories must be >= 1"),
    ({"out": " "}, "--out must name an output folder"),
    ({"seed": -1}, "seed must be >= 0"),
    ({"items": 10, "categories": 11}, r"n_categories \(11\) must not exceed n_items \(10\)"),
    ({"items": 15, "categories": 5}, r"list_length \(20\) must not exceed n_items \(15\)"),
    ({"days": 1001}, "n_days must be <= 1000"),
    ({"start_date": "2019-13-01"}, "start_date must be YYYY-MM-DD"),
])
def test_argument_errors(kwargs: dict, match: str) -> None:
    args = {"out": "unused"} | kwargs
    with pytest.raises(ValueError, match=match):
        SynthArguments(**args)


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"recent_views": 0}, "recent_views must be >= 1"),
    ({"facets_per_user": 0}, "facets_per_user must be >= 1"),
    ({"sessions_per_user_day": 0.0}, "sessions_per_user_day must be > 0"),
    ({"views_per_session": 0.5}, r"views_per_session must be >= 1"),
    ({"cart_rate": 1.5}, r"cart_rate must be in \[0, 1\]"),
    ({"in_session_request_share": -0.1}, r"in_session_request_share must be in \[0, 1\]"),
    ({"page_decay": 0.0}, "page_decay must be > 0"),
    ({"intent_candidate_share": 0.5}, "must sum to 1, got 1.1"),
    ({"policy_noise": -1.0}, "policy_noise must be >= 0"),
    ({"bias_exponent": -0.1}, "bias_exponent must be >= 0"),
])
def test_config_errors(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        SynthConfig(**kwargs)


def test_extreme_rates_are_allowed() -> None:
    result = generate(SynthConfig(n_users=30, n_items=40, n_categories=4, n_days=1, requests_per_day=20,
                                  cart_rate=0.0, purchase_rate=1.0, policy_noise=0.0, seed=1))
    counts = result.events.event_type.value_counts()
    organic_carts = int((result.latent.organic.kind == 1).sum())
    assert organic_carts == 0 and counts.get("remove_from_cart", 0) == 0
    rows = result.truth.impressions
    # Without policy noise the log is sorted by relevance within every request.
    assert (rows.groupby("request_id").relevance.diff().dropna() <= 0).all()
