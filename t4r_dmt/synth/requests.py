"""Ranking requests (who is shown a list, when) and their candidate sets.

Most requests happen inside an organic session (the user is browsing, so the latest views carry a
fresh intent); the rest at random times. Each request's candidates are drawn from a mixture of the
user's recent intent (categories of the latest views), globally popular items and uniform random
items, deduplicated within the request; the logging policy orders them later (``click_model``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from t4r_dmt.synth.catalog import Catalog, Users
from t4r_dmt.synth.config import SynthConfig
from t4r_dmt.synth.events import Sessions
from t4r_dmt.synth.history import Recent

IN_SESSION_SLACK_S = 60  # an in-session request may come up to a minute after the session's last view
DRAWS_PER_SLOT = 3  # candidates drawn per list slot before deduplication


@dataclass(frozen=True)
class Requests:
    """Requests sorted by (time, user): user index and time (s), arrays of shape (R,)."""

    user: np.ndarray
    time: np.ndarray

    def __len__(self) -> int:
        return len(self.user)


@dataclass(frozen=True)
class Candidates:
    """Deduplicated candidates, request-major, arrays of shape (N,): request index and item index."""

    request: np.ndarray
    item: np.ndarray


def make_requests(config: SynthConfig, users: Users, sessions: Sessions, rng: np.random.Generator) -> Requests:
    """Place ``config.n_requests`` requests: inside random organic sessions or at random times."""
    n = config.n_requests
    in_session = rng.random(n) < config.in_session_request_share
    if len(sessions) == 0:
        in_session[:] = False
    user = np.empty(n, dtype=np.int64)
    time = np.empty(n, dtype=np.int64)
    k = int(in_session.sum())
    s = rng.integers(0, max(len(sessions), 1), size=k)
    span = sessions.stop[s] - sessions.start[s] + IN_SESSION_SLACK_S
    user[in_session] = sessions.user[s]
    time[in_session] = sessions.start[s] + np.floor(rng.random(k) * span).astype(np.int64)
    m = n - k
    user[~in_session] = rng.choice(users.n_users, size=m, p=users.activity / users.activity.sum())
    time[~in_session] = rng.integers(0, config.n_seconds, size=m)
    time = np.minimum(time, config.n_seconds - 1)
    order = np.lexsort((user, time))
    return Requests(user=user[order], time=time[order])


def draw_candidates(config: SynthConfig, catalog: Catalog, users: Users, requests: Requests, views: Recent,
                    rng: np.random.Generator) -> Candidates:
    """Draw up to ``list_length`` distinct candidates per request from the intent/popular/random mixture.

    ``views`` (R, depth) are the requests' latest views; an intent draw picks one of their categories
    at random (one of the user's facets when there is no view yet). A list comes out shorter than
    ``list_length`` only when the draws hold too few distinct items (tiny catalogues).
    """
    n_req, width = len(requests), config.list_length * DRAWS_PER_SLOT
    n_draws = n_req * width
    draw_request = np.repeat(np.arange(n_req), width)
    kind = rng.random(n_draws)
    is_intent = kind < config.intent_candidate_share
    is_popular = ~is_intent & (kind < config.intent_candidate_share + config.popular_candidate_share)
    is_random = ~is_intent & ~is_popular
    item = np.empty(n_draws, dtype=np.int64)

    intent_request = draw_request[is_intent]
    n_valid = views.valid.sum(axis=1)[intent_request]
    column = np.floor(rng.random(len(intent_request)) * n_valid).astype(np.int64)
    category = views.category[intent_request, np.minimum(column, views.category.shape[1] - 1)]
    no_history = n_valid == 0
    category[no_history] = users.draw_facet(requests.user[intent_request[no_history]], rng)
    item[is_intent] = catalog.draw_in_category(category, rng)
    item[is_popular] = catalog.draw_popular(int(is_popular.sum()), rng)
    item[is_random] = rng.integers(0, catalog.n_items, size=int(is_random.sum()))

    # Keep each (request, item) pair's first draw, in draw order, then the first list_length per request.
    _, first = np.unique(draw_request * np.int64(catalog.n_items) + item, return_index=True)
    first = np.sort(first)
    kept_request = draw_request[first]
    group_start = np.searchsorted(kept_request, kept_request, side="left")
    keep = (np.arange(len(first)) - group_start) < config.list_length
    return Candidates(request=kept_request[keep], item=item[first[keep]])
