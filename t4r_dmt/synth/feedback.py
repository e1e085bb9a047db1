"""Events logged because of clicks: a ``view`` at or after the request, ``cart`` + ``purchase`` for orders.

This is the leakage trap the preprocessing must avoid: the clicked item shows up in the user's event
history at (sometimes exactly at) the request's second, never before it.
"""

from __future__ import annotations

import numpy as np

from t4r_dmt.synth.click_model import Impressions
from t4r_dmt.synth.events import CART, PURCHASE, VIEW, EventArrays, gap_seconds
from t4r_dmt.synth.requests import Requests

SAME_SECOND_SHARE = 0.3  # clicks logged in the request's own second
CLICK_DELAY_S = 10.0  # mean extra delay of the other clicks (plus one second per position scrolled)
CART_DELAY_S = 30.0
PURCHASE_DELAY_S = 60.0


def feedback_events(impressions: Impressions, requests: Requests, first_session: int,
                    rng: np.random.Generator) -> EventArrays:
    """Events of every click and order: view (>= request time), then cart and purchase after it.

    Each request with a click gets its own ``user_session`` index ``first_session + request``.
    """
    clicked = impressions.click
    request, item = impressions.request[clicked], impressions.item[clicked]
    position = impressions.position[clicked]
    user, session = requests.user[request], first_session + request
    n = len(request)
    delay = np.where(rng.random(n) < SAME_SECOND_SHARE, 0, gap_seconds(CLICK_DELAY_S, n, rng) + position)
    view_time = requests.time[request] + delay
    ordered = impressions.order[clicked]
    cart_time = view_time[ordered] + gap_seconds(CART_DELAY_S, int(ordered.sum()), rng)
    purchase_time = cart_time + gap_seconds(PURCHASE_DELAY_S, len(cart_time), rng)
    parts = [EventArrays(user, item, view_time, np.full(n, VIEW, dtype=np.int8), session)]
    for time, kind in ((cart_time, CART), (purchase_time, PURCHASE)):
        parts.append(EventArrays(user[ordered], item[ordered], time, np.full(len(time), kind, dtype=np.int8),
                                 session[ordered]))
    return EventArrays.concat(parts)
