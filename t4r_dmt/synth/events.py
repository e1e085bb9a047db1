"""Event arrays (index-coded, before they become the canonical DataFrame) and the organic sessions.

Organic sessions are REES46-like funnels: each session has an *intent* category drawn from its user's
facets (redrawn for every session, sometimes an exploration category), its views are mostly items of
that category, and some views are followed by a cart, some carts by a purchase or a removal.
Everything is drawn for all sessions at once (no Python loop per session or event).

With latent interest on (``w_latent > 0``), each intent view is, of ``LATENT_VIEW_DRAWS`` items drawn
from the intent category, the one closest in the latent space to the user's anchor for that facet, so
the views a user leaves are consistent with the interest the click model rewards.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from t4r_dmt.synth.catalog import LATENT_SESSIONS, Catalog, Users, latent_rng
from t4r_dmt.synth.config import SynthConfig

VIEW, CART, PURCHASE, REMOVE = 0, 1, 2, 3
EVENT_TYPES = np.array(["view", "cart", "purchase", "remove_from_cart"], dtype=object)

EXPLORE_SHARE = 0.2  # sessions whose intent is a popular category outside the user's facets
INTENT_VIEW_SHARE = 0.8  # views of an item of the session's intent category (else a popular item)
REVIEW_SHARE = 0.15  # views that return to the session's previous item
MAX_VIEWS_PER_SESSION = 50
VIEW_GAP_S = 45.0  # mean seconds between views
CART_GAP_S = 30.0  # mean seconds from view to cart
PURCHASE_GAP_S = 120.0  # mean seconds from cart to purchase
REMOVE_SHARE = 0.2  # carts neither bought nor kept: removed later
LATENT_VIEW_DRAWS = 4  # with w_latent > 0: an intent view is the closest to its anchor of this many draws


@dataclass(frozen=True)
class EventArrays:
    """Events as index arrays, all of shape (N,).

    user / item: indices into ``Users`` / ``Catalog``; time: int64 seconds since the first day's
    midnight; kind: VIEW / CART / PURCHASE / REMOVE; session: index of the ``user_session`` id.
    """

    user: np.ndarray
    item: np.ndarray
    time: np.ndarray
    kind: np.ndarray
    session: np.ndarray

    def __len__(self) -> int:
        return len(self.user)

    def select(self, mask: np.ndarray) -> EventArrays:
        """The events where ``mask`` (N,) bool is True."""
        return EventArrays(self.user[mask], self.item[mask], self.time[mask], self.kind[mask], self.session[mask])

    @staticmethod
    def concat(parts: list[EventArrays]) -> EventArrays:
        return EventArrays(*(np.concatenate([getattr(p, name) for p in parts])
                             for name in ("user", "item", "time", "kind", "session")))


@dataclass(frozen=True)
class Sessions:
    """Organic sessions, arrays of shape (S,): user index, start and last-view time (s), intent category."""

    user: np.ndarray
    start: np.ndarray
    stop: np.ndarray
    intent: np.ndarray

    def __len__(self) -> int:
        return len(self.user)


def sigmoid(x: np.ndarray) -> np.ndarray:
    """Logistic function; +-inf map to exactly 1 / 0 (rates of 0 or 1 in the config)."""
    with np.errstate(over="ignore"):
        return np.asarray(1.0 / (1.0 + np.exp(-np.asarray(x, dtype=np.float64))))


def logit(p: np.ndarray | float) -> np.ndarray:
    """Inverse of ``sigmoid``; 0 -> -inf and 1 -> +inf."""
    p = np.asarray(p, dtype=np.float64)
    with np.errstate(divide="ignore"):
        return np.asarray(np.log(p) - np.log1p(-p))


def gap_seconds(mean_s: float, n: int, rng: np.random.Generator) -> np.ndarray:
    """Integer gaps >= 1 s with roughly exponential length: (n,) int64."""
    return 1 + np.floor(rng.exponential(mean_s, size=n)).astype(np.int64)


def simulate_sessions(config: SynthConfig, catalog: Catalog, users: Users,
                      rng: np.random.Generator) -> tuple[Sessions, EventArrays]:
    """Draw every organic session and its view -> cart -> purchase / remove_from_cart events."""
    n_sessions = rng.poisson(users.activity * config.sessions_per_user_day * config.n_days)
    s_user = np.repeat(np.arange(users.n_users), n_sessions)
    n_s = len(s_user)
    # Sessions start early enough that most of them end inside the period.
    latest_start = max(config.n_seconds - 1800, 1)
    s_start = rng.integers(0, latest_start, size=n_s)
    intent = users.draw_facet(s_user, rng)
    explore = rng.random(n_s) < EXPLORE_SHARE
    intent[explore] = rng.choice(len(catalog.category_id), size=int(explore.sum()), p=catalog.category_popularity)
    n_views = np.minimum(rng.geometric(1.0 / config.views_per_session, size=n_s), MAX_VIEWS_PER_SESSION)

    # Views: session-major; times are the session start plus cumulative gaps.
    v_session = np.repeat(np.arange(n_s), n_views)
    n_v = len(v_session)
    first = np.cumsum(n_views) - n_views
    gaps = gap_seconds(VIEW_GAP_S, n_v, rng)
    gaps[first] = 0
    elapsed = np.cumsum(gaps)
    v_time = s_start[v_session] + elapsed - np.repeat(elapsed[first], n_views)
    in_intent = rng.random(n_v) < INTENT_VIEW_SHARE
    v_item = np.empty(n_v, dtype=np.int64)
    v_item[in_intent] = catalog.draw_in_category(intent[v_session[in_intent]], rng)
    v_item[~in_intent] = catalog.draw_popular(int((~in_intent).sum()), rng)
    if config.w_latent > 0:
        v_item = towards_anchor(config, catalog, users, s_user, intent, v_session, v_item, in_intent)
    # Re-views: copy the last non-re-view item of the session (the first view of a session is never one).
    review = rng.random(n_v) < REVIEW_SHARE
    review[first] = False
    source = np.maximum.accumulate(np.where(review, 0, np.arange(n_v)))
    v_item = v_item[source]
    v_user = s_user[v_session]
    s_stop = v_time[first + n_views - 1]

    # Funnel: carts depend on propensity, price and intent; purchases and removals on propensity.
    user_lift = logit(users.propensity) - logit(users.propensity).mean()
    cart_logit = (logit(config.cart_rate) + user_lift[v_user]
                  - 0.3 * users.price_sensitivity[v_user] * catalog.log_price_z[v_item]
                  + 0.5 * (catalog.category[v_item] == intent[v_session]))
    carted = rng.random(n_v) < sigmoid(cart_logit)
    c_user, c_item, c_session = v_user[carted], v_item[carted], v_session[carted]
    c_time = v_time[carted] + gap_seconds(CART_GAP_S, len(c_user), rng)
    bought = rng.random(len(c_user)) < sigmoid(logit(config.purchase_rate) + user_lift[c_user])
    p_time = c_time[bought] + gap_seconds(PURCHASE_GAP_S, int(bought.sum()), rng)
    removed = ~bought & (rng.random(len(c_user)) < REMOVE_SHARE)
    r_time = c_time[removed] + gap_seconds(PURCHASE_GAP_S, int(removed.sum()), rng)

    def part(mask: np.ndarray | slice, time: np.ndarray, kind: int, user: np.ndarray, item: np.ndarray,
             session: np.ndarray) -> EventArrays:
        return EventArrays(user[mask], item[mask], time, np.full(len(time), kind, dtype=np.int8), session[mask])

    everything = slice(None)
    events = EventArrays.concat([
        part(everything, v_time, VIEW, v_user, v_item, v_session),
        part(everything, c_time, CART, c_user, c_item, c_session),
        part(bought, p_time, PURCHASE, c_user, c_item, c_session),
        part(removed, r_time, REMOVE, c_user, c_item, c_session),
    ])
    sessions = Sessions(user=s_user, start=s_start, stop=s_stop, intent=intent)
    return sessions, events


def towards_anchor(config: SynthConfig, catalog: Catalog, users: Users, session_user: np.ndarray,
                   intent: np.ndarray, view_session: np.ndarray, view_item: np.ndarray,
                   in_intent: np.ndarray) -> np.ndarray:
    """Intent views redrawn towards the session's latent anchor: (S,) sessions, (V,) views -> (V,) items.

    The anchor is the user's facet anchor of the intent category (a fresh item of it for an exploration
    session outside the facets). Draws come from the latent stream; the main generator is not touched.
    """
    rng = latent_rng(config, LATENT_SESSIONS)
    match = users.facets[session_user] == intent[:, None]
    anchor = users.facet_anchor[session_user, match.argmax(axis=1)]
    outside = ~match.any(axis=1)
    anchor[outside] = catalog.draw_in_category(intent[outside], rng)
    rows = np.flatnonzero(in_intent)
    session = view_session[rows]
    draws = catalog.draw_in_category(np.repeat(intent[session], LATENT_VIEW_DRAWS), rng)
    draws = draws.reshape(len(rows), LATENT_VIEW_DRAWS)
    closeness = np.einsum("nkd,nd->nk", catalog.latent[draws], catalog.latent[anchor[session]])
    item = view_item.copy()
    item[rows] = draws[np.arange(len(rows)), closeness.argmax(axis=1)]
    return item
