"""Small raw logs shared by the tests of several packages (``tests/`` is on pytest's pythonpath).

``make_logs``: ranking events + impressions with planted ties and a planted same-second leak (the as-of rule's
test case); ``session_events``: sessions that walk an item chain, for the next-item models.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from t4r_dmt.preprocess.config import RankingConfig

#: A REES46 events file's header and four rows of the real October 2019 log (one of each event type).
REES46_HEADER = "event_time,event_type,product_id,category_id,category_code,brand,price,user_id,user_session"
REES46_ROWS = [
    "2019-10-01 00:00:04 UTC,view,44600062,2103807459595387724,,shiseido,35.79,541312140,72d76fde-8bb3",
    "2019-10-01 00:00:05 UTC,cart,3900821,2053013552326770905,appliances.environment.water_heater,aqua,"
    "33.20,554748717,9333dfbd-b87a",
    "2019-10-01 00:01:00 UTC,purchase,3900821,2053013552326770905,appliances.environment.water_heater,,"
    "0,554748717,9333dfbd-b87a",
    "2019-10-01 00:02:00 UTC,remove_from_cart,17200506,2053013559792632471,,,543.10,519107250,566511c2",
]

LENGTHS = {"click": 3, "cart": 2, "order": 2}
CONFIG = RankingConfig(click_length=3, cart_length=2, order_length=2, events_per_bucket=60)
T0 = pd.Timestamp("2020-01-01")
PAD, OOV = "<pad>", "<oov>"
# The planted leak: user 106 sees request 900 at LEAK_TIME; a view of item 14 (a candidate) is
# logged in the same second, a view of item 13 one second before.
LEAK_TIME = T0 + pd.Timedelta(hours=12)


def make_logs(seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """~300 events and ~100 impressions over 3 days, 6 users, 12 items (+ 2 planted)."""
    rng = np.random.default_rng(seed)
    n = 300
    item = rng.integers(1, 13, n)
    kind = rng.choice(["view", "cart", "purchase", "remove_from_cart"], n, p=[0.6, 0.2, 0.15, 0.05])
    seconds = np.sort(rng.integers(0, 3 * 86400, n))
    seconds[10:14] = seconds[10]  # ties: several events in the same second
    price = 10.0 * item + np.where(seconds > 86400 * 1.5, 1.0, 0.0)  # prices change on day 2
    events = pd.DataFrame(
        {
            "event_time": T0 + pd.to_timedelta(seconds, unit="s"),
            "event_type": kind,
            "product_id": item,
            "category_id": 1000 + item % 4,
            "category_code": None,
            "brand": np.array(["x", "y", None], dtype=object)[item % 3],
            "price": price,
            "user_id": rng.integers(101, 107, n),
            "user_session": "s",
        }
    )
    planted = pd.DataFrame(
        {
            "event_time": [LEAK_TIME - pd.Timedelta(seconds=1), LEAK_TIME],
            "event_type": ["view", "view"],
            "product_id": [13, 14],
            "category_id": [2000, 2001],
            "category_code": None,
            "brand": ["z", "z"],
            "price": [5.0, 6.0],
            "user_id": [106, 106],
            "user_session": "s",
        }
    )
    events = pd.concat([events, planted], ignore_index=True)
    rows = []
    for request in range(1, 25):
        size = int(rng.integers(3, 7))
        when = T0 + pd.Timedelta(seconds=int(rng.integers(0, 3 * 86400)))
        user = int(rng.integers(101, 107))
        for position, product in enumerate(rng.choice(np.arange(1, 13), size, replace=False)):
            click = int(rng.random() < 0.3)
            rows.append((request, user, when, int(product), position, position // 3, click,
                         click * int(rng.random() < 0.5)))
    for position, product in enumerate([5, 14, 13, 2]):
        rows.append((900, 106, LEAK_TIME, product, position, 0, int(product == 14), 0))
    impressions = pd.DataFrame(
        rows, columns=["request_id", "user_id", "event_time", "product_id", "position", "page", "click", "order"]
    )
    return events, impressions


SESSION_T0 = pd.Timestamp("2024-01-01")

def session_events(n_days: int = 3, sessions_per_day: int = 40, n_items: int = 24, seed: int = 0) -> pd.DataFrame:
    """Canonical events of sessions that walk an item chain (item i is followed by i + 1), all behaviours.

    Each day holds ``sessions_per_day`` sessions of 2..6 distinct items starting at a random item; the
    category is ``item % 3``, the brand ``item % 4``, and every 5th event is a cart.
    """
    rng = np.random.default_rng(seed)
    rows = []
    for day in range(n_days):
        for index in range(sessions_per_day):
            start, length = int(rng.integers(n_items)), int(rng.integers(2, 7))
            began = SESSION_T0 + pd.Timedelta(days=day, minutes=10 * index)
            for step in range(length):
                item = 100 + (start + step) % n_items
                rows.append((began + pd.Timedelta(seconds=40 * step), "cart" if len(rows) % 5 == 4 else "view",
                             item, item % 3, f"b{item % 4}", f"d{day}s{index}"))
    when, kind, item, category, brand, session = zip(*rows, strict=True)
    return pd.DataFrame({
        "event_time": pd.to_datetime(list(when)), "event_type": list(kind),
        "product_id": np.array(item, dtype=np.int64), "category_id": np.array(category, dtype=np.int64),
        "category_code": None, "brand": np.array(brand, dtype=object), "price": 1.0,
        "user_id": np.int64(1), "user_session": list(session),
    })


def parquet_logs(seed: int = 2) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``make_logs(seed)`` ready to be written to parquet and read back by the REES46 reader: one session
    name, ``category_code`` as an object column (all-None columns would otherwise be written as null type)."""
    events, impressions = make_logs(seed=seed)
    events["user_session"] = "s"
    events["category_code"] = events["category_code"].astype(object)
    return events, impressions


def spoil(rows: list[str], row: int, field: int, value: str) -> list[str]:
    """A copy of CSV ``rows`` whose ``row``-th line has ``value`` in comma-separated field ``field``."""
    spoiled = list(rows)
    fields = spoiled[row].split(",")
    fields[field] = value
    spoiled[row] = ",".join(fields)
    return spoiled
