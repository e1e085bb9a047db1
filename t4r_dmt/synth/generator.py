"""``generate(config) -> SynthResult``: the whole synthetic data set, in memory.

Order of the draws (all from one ``numpy.random.Generator(seed)``, so a seed fixes every byte):
catalogue, users, organic sessions, requests, candidates, logging-policy order and outcomes, feedback
events, session ids. The latent item vectors, facet anchors and latent-guided views come from
separate generators (``catalog.latent_rng``), so ``w_latent = 0`` reproduces the same bytes as a
generator without them; so do the promoted items and the exploration swaps of the logging policy
(``policy.policy_rng``), so ``policy = "noisy"`` does too. The recent-behaviour inputs of the truth are looked up from the *organic* events
strictly before each request (``History.recent``), so no outcome leaks into its own truth.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd

from t4r_dmt.synth.catalog import Catalog, Users, make_catalog, make_users
from t4r_dmt.synth.click_model import Impressions, position_bias, rank_and_sample
from t4r_dmt.synth.config import SynthConfig
from t4r_dmt.synth.events import CART, EVENT_TYPES, VIEW, EventArrays, Sessions, simulate_sessions
from t4r_dmt.synth.feedback import feedback_events
from t4r_dmt.synth.history import History
from t4r_dmt.synth.ids import random_uuids
from t4r_dmt.synth.policy import promoted_items
from t4r_dmt.synth.requests import Requests, draw_candidates, make_requests
from t4r_dmt.synth.truth import Truth, oracle_summary

logger = logging.getLogger(__name__)

EVENT_COLUMNS = ("event_time", "event_type", "product_id", "category_id", "category_code", "brand", "price",
                 "user_id", "user_session")
IMPRESSION_COLUMNS = ("request_id", "user_id", "event_time", "product_id", "position", "page", "click", "order")
TRUTH_COLUMNS = ("request_id", "position", "product_id", "p_click", "p_click_relevance", "p_order", "relevance",
                 "position_bias", "neighbor_similarity", "p_order_given_click")


@dataclass(frozen=True)
class Latent:
    """The hidden state behind the files, index-coded, for tests and analyses: catalogue (quality,
    popularity), users (facets, propensity, price sensitivity), organic sessions and their events (the
    only input of the truth's recent behaviour), requests and the ordered impressions."""

    catalog: Catalog
    users: Users
    sessions: Sessions
    organic: EventArrays
    requests: Requests
    impressions: Impressions


@dataclass(frozen=True)
class SynthResult:
    """The generated data: canonical ``events`` and ``impressions`` DataFrames, the ``items`` catalogue
    (product_id, category_id, category_code, brand, price), the planted ``truth`` and the ``latent``
    state it was drawn from. Rows of ``impressions`` and ``truth.impressions`` are aligned."""

    config: SynthConfig
    events: pd.DataFrame
    impressions: pd.DataFrame
    items: pd.DataFrame
    truth: Truth
    latent: Latent


def generate(config: SynthConfig) -> SynthResult:
    """Draw a complete synthetic data set for ``config`` (deterministic for ``config.seed``)."""
    rng = np.random.default_rng(config.seed)
    catalog = make_catalog(config, rng)
    users = make_users(config, catalog, rng)
    sessions, organic = simulate_sessions(config, catalog, users, rng)
    requests = make_requests(config, users, sessions, rng)

    def history(kind: int) -> History:
        part = organic.select(organic.kind == kind)
        return History.build(part.user, part.time, part.item, catalog.category[part.item])

    views = history(VIEW).recent(requests.user, requests.time, config.recent_views)
    carts = history(CART).recent(requests.user, requests.time, config.recent_carts)
    candidates = draw_candidates(config, catalog, users, requests, views, rng)
    promoted = promoted_items(config)
    impressions = rank_and_sample(config, catalog, users, candidates, requests.user, views, carts, promoted, rng)
    feedback = feedback_events(impressions, requests, len(sessions), rng)
    events = events_frame(config, EventArrays.concat([organic, feedback]), catalog, users, rng)
    logger.info("synth: %d users, %d items, %d sessions, %d requests, %d impressions, %d events",
                users.n_users, catalog.n_items, len(sessions), len(requests), len(impressions.item), len(events))

    day = requests.time[impressions.request] // 86_400
    oracle = oracle_summary(
        day=day, item=impressions.item, position=impressions.position, click=impressions.click,
        order=impressions.order, p_click=impressions.p_click, p_click_relevance=impressions.p_click_relevance,
        p_order=impressions.p_order, p_order_given_click=impressions.p_order_given_click, n_items=catalog.n_items,
        n_days=config.n_days,
    )
    oracle["n_requests"] = len(requests)
    oracle["n_events"] = len(events)
    oracle["eval_day"] = str(np.datetime64(config.start_date, "D") + np.timedelta64(config.n_days - 1, "D"))
    with_latent = config.w_latent > 0
    truth = Truth(bias_curve=position_bias(config),
                  impressions=truth_frame(impressions, catalog, with_latent, config.policy),
                  oracle=oracle, item_latent=item_latent_frame(catalog) if with_latent else None,
                  promoted_items=promoted_frame(catalog, promoted) if config.policy == "promotion" else None)
    return SynthResult(config=config, events=events,
                       impressions=impressions_frame(config, impressions, requests, catalog, users),
                       items=items_frame(catalog), truth=truth,
                       latent=Latent(catalog=catalog, users=users, sessions=sessions, organic=organic,
                                     requests=requests, impressions=impressions))


def _timestamps(config: SynthConfig, seconds: np.ndarray) -> np.ndarray:
    """Seconds since the first midnight -> datetime64[ns] (UTC, tz-naive): (N,) -> (N,)."""
    start = np.datetime64(config.start_date, "s")
    return np.asarray((start + seconds.astype("timedelta64[s]")).astype("datetime64[ns]"))


def events_frame(config: SynthConfig, events: EventArrays, catalog: Catalog, users: Users,
                 rng: np.random.Generator) -> pd.DataFrame:
    """The canonical events DataFrame, sorted by (event_time, user_id, event_type code)."""
    user_id = users.user_id[events.user]
    order = np.lexsort((events.kind, user_id, events.time))
    item = events.item[order]
    category = catalog.category[item]
    sessions, inverse = np.unique(events.session[order], return_inverse=True)
    return pd.DataFrame({
        "event_time": _timestamps(config, events.time[order]),
        "event_type": EVENT_TYPES[events.kind[order]],
        "product_id": catalog.product_id[item],
        "category_id": catalog.category_id[category],
        "category_code": catalog.category_code[category],
        "brand": catalog.brand[item],
        "price": catalog.price[item],
        "user_id": user_id[order],
        "user_session": random_uuids(len(sessions), rng)[inverse],
    }, columns=list(EVENT_COLUMNS))


def impressions_frame(config: SynthConfig, impressions: Impressions, requests: Requests, catalog: Catalog,
                      users: Users) -> pd.DataFrame:
    """The canonical impressions DataFrame, sorted by (request_id, position)."""
    request = impressions.request
    return pd.DataFrame({
        "request_id": request_ids(request),
        "user_id": users.user_id[requests.user[request]],
        "event_time": _timestamps(config, requests.time[request]),
        "product_id": catalog.product_id[impressions.item],
        "position": impressions.position.astype(np.int64),
        "page": (impressions.position // config.page_size).astype(np.int64),
        "click": impressions.click.astype(np.int8),
        "order": impressions.order.astype(np.int8),
    }, columns=list(IMPRESSION_COLUMNS))


def truth_frame(impressions: Impressions, catalog: Catalog, with_latent: bool = False,
                policy: str = "noisy") -> pd.DataFrame:
    """Per-impression truth, row-aligned with the impressions DataFrame; ``with_latent`` adds the
    ``latent_similarity`` column (the latent term before its weight ``w_latent``); ``policy`` "promotion"
    adds ``promoted`` (bool: the item is promoted), "epsilon" adds ``swapped`` (bool: the row is one of a
    swapped pair)."""
    frame = pd.DataFrame({
        "request_id": request_ids(impressions.request),
        "position": impressions.position.astype(np.int64),
        "product_id": catalog.product_id[impressions.item],
        "p_click": impressions.p_click,
        "p_click_relevance": impressions.p_click_relevance,
        "p_order": impressions.p_order,
        "relevance": impressions.relevance,
        "position_bias": impressions.position_bias,
        "neighbor_similarity": impressions.neighbour_similarity,
        "p_order_given_click": impressions.p_order_given_click,
    }, columns=list(TRUTH_COLUMNS))
    if with_latent:
        frame["latent_similarity"] = impressions.latent_similarity
    if policy == "promotion":
        frame["promoted"] = impressions.promoted
    if policy == "epsilon":
        frame["swapped"] = impressions.swapped
    return frame


def promoted_frame(catalog: Catalog, promoted: np.ndarray) -> pd.DataFrame:
    """The promoted items, sorted: product_id; ``promoted`` (n_items,) bool over item indices."""
    return pd.DataFrame({"product_id": np.sort(catalog.product_id[promoted])})


def item_latent_frame(catalog: Catalog) -> pd.DataFrame:
    """The items' hidden unit vectors, sorted by product_id: product_id, latent_0 ... latent_{d-1}."""
    order = np.argsort(catalog.product_id, kind="stable")
    frame = pd.DataFrame(catalog.latent[order], columns=[f"latent_{j}" for j in range(catalog.latent.shape[1])])
    frame.insert(0, "product_id", catalog.product_id[order])
    return frame


def items_frame(catalog: Catalog) -> pd.DataFrame:
    """The item catalogue in the optional items-file format, sorted by product_id."""
    order = np.argsort(catalog.product_id, kind="stable")
    category = catalog.category[order]
    return pd.DataFrame({
        "product_id": catalog.product_id[order],
        "category_id": catalog.category_id[category],
        "category_code": catalog.category_code[category],
        "brand": catalog.brand[order],
        "price": catalog.price[order],
    })


def request_ids(request: np.ndarray) -> np.ndarray:
    """Raw request ids of request indices (ids follow request time): (N,) -> (N,) int64."""
    return np.asarray(request.astype(np.int64) + 1)
