"""``SynthConfig``: every knob of the synthetic generator, validated at construction.

The defaults are sized for the demo (synth -> preprocess -> 3 training windows on 2 CPU cores in a few
minutes): 2,000 users, 1,000 items, 4 days, 30k impressions and ~21k events per day. The planted
effects' weights are here too, so a test or a benchmark can switch one off and see it vanish.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

LATENT_POOLS = ("mean", "max")  # how the latent term pools the cosines to the latest views
POLICIES = ("noisy", "promotion", "epsilon")  # logging policies (t4r_dmt.synth.policy)
DEFAULT_PROMOTED_SHARE = 0.1
DEFAULT_EPSILON = 0.1


@dataclass(frozen=True)
class SynthConfig:
    """Sizes, behaviour rates and planted effect weights of one synthetic data set.

    Sizes
    -----
    n_users, n_items, n_days, seed, start_date ("YYYY-MM-DD", the first day, UTC),
    n_categories (leaf categories, Zipf-popular), facets_per_user (preferred categories per user).

    Organic sessions (REES46-like view -> cart -> purchase funnels)
    ---------------------------------------------------------------
    sessions_per_user_day: mean sessions per user and day (users differ by a lognormal activity).
    views_per_session: mean views per session (geometric, at least 1).
    cart_rate: mean probability that a view is followed by a cart; purchase_rate: that a cart is bought.

    Ranking impression log
    ----------------------
    requests_per_day: ranked lists shown per day; list_length candidates each, pages of page_size.
    in_session_request_share: share of requests placed inside an organic session (the rest at random
    times); intent/popular/random_candidate_share: mixture the candidates are drawn from.
    policy_noise: std of the logging policy's noise on its relevance estimate (higher = less confounding).
    policy: how the lists are ordered (``t4r_dmt.synth.policy``): "noisy" (by relevance + noise, the default),
    "promotion" (a fixed set of promoted_share of the items first in every list, then by relevance + noise)
    or "epsilon" (the noisy order, then each non-overlapping adjacent pair swapped with probability
    epsilon). promoted_share and epsilon apply to their policy only: under another one they must keep
    their defaults (a value given there would be ignored). "noisy" leaves every data byte unchanged.

    Planted click model: p_click = bias[position] * sigmoid(relevance - diversity_weight * neighbours)
    -------------------------------------------------------------------------------------------------
    bias[position] = (1 + position) ** -bias_exponent * page_decay ** page.
    relevance = click_intercept + w_last_category [candidate in the category of the last view]
    + w_recent_category (decayed count of recent views in its category) + w_recent_item [viewed item]
    + w_cart_category + w_cart_item [carted before] + w_facet * static facet weight
    + w_quality * item quality - w_price * user price sensitivity * z(log price)
    + w_latent * latent similarity (0.7^k-weighted mean cosine, in a hidden latent_dim-dimensional item
    space, between the candidate and the latest views; 0 without views). w_latent = 0 (the default)
    switches it off and leaves every output byte-identical; > 0 also steers organic views of a facet
    towards that user's facet anchor item in the latent space. latent_pool "max" replaces the decayed
    mean by the largest cosine over the latest views (the nearest recent view): an interest that depends
    on which part of a diverse history matches the candidate, which a mean of the history cannot say.
    recent_views / recent_carts: how many of the latest events before the request count.

    Planted order model: p_order = p_click * sigmoid(order_intercept + w_order_cart_item
    [item carted before] + w_order_cart_category + logit(user propensity) - w_order_price * z(log price)).
    """

    n_users: int = 2000
    n_items: int = 1000
    n_days: int = 4
    seed: int = 0
    start_date: str = "2019-10-01"
    n_categories: int = 40
    facets_per_user: int = 4
    sessions_per_user_day: float = 2.0
    views_per_session: float = 4.0
    cart_rate: float = 0.03
    purchase_rate: float = 0.3
    requests_per_day: int = 1500
    list_length: int = 20
    page_size: int = 10
    in_session_request_share: float = 0.7
    intent_candidate_share: float = 0.4
    popular_candidate_share: float = 0.3
    random_candidate_share: float = 0.3
    policy_noise: float = 2.0
    policy: str = "noisy"
    promoted_share: float = DEFAULT_PROMOTED_SHARE
    epsilon: float = DEFAULT_EPSILON
    bias_exponent: float = 0.7
    page_decay: float = 0.85
    recent_views: int = 10
    recent_carts: int = 10
    click_intercept: float = -2.0
    w_last_category: float = 1.6
    w_recent_category: float = 0.4
    w_recent_item: float = 0.8
    w_cart_category: float = 0.4
    w_cart_item: float = 0.8
    w_facet: float = 0.1
    w_quality: float = 0.35
    w_price: float = 0.3
    latent_dim: int = 8
    w_latent: float = 0.0
    latent_pool: str = "mean"
    diversity_weight: float = 0.35
    order_intercept: float = -0.6
    w_order_cart_item: float = 1.5
    w_order_cart_category: float = 0.5
    w_order_price: float = 0.5

    def __post_init__(self) -> None:
        positive_ints = ("n_users", "n_items", "n_days", "n_categories", "facets_per_user",
                         "requests_per_day", "list_length", "page_size", "recent_views", "recent_carts", "latent_dim")
        for name in positive_ints:
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.seed < 0:
            raise ValueError(f"seed must be >= 0, got {self.seed}")
        if self.n_categories > self.n_items:
            raise ValueError(f"n_categories ({self.n_categories}) must not exceed n_items ({self.n_items}): "
                             "every category needs at least one item")
        if self.list_length > self.n_items:
            raise ValueError(f"list_length ({self.list_length}) must not exceed n_items ({self.n_items})")
        if self.n_days > 1000:
            raise ValueError(f"n_days must be <= 1000, got {self.n_days}")
        try:
            dt.date.fromisoformat(self.start_date)
        except ValueError:
            raise ValueError(f"start_date must be YYYY-MM-DD, got {self.start_date!r}") from None
        for name in ("sessions_per_user_day", "views_per_session"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        if self.views_per_session < 1:
            raise ValueError(f"views_per_session must be >= 1 (every session has a view), "
                             f"got {self.views_per_session}")
        probabilities = ("cart_rate", "purchase_rate", "in_session_request_share", "intent_candidate_share",
                         "popular_candidate_share", "random_candidate_share", "page_decay")
        for name in probabilities:
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)}")
        if self.page_decay == 0.0:
            raise ValueError("page_decay must be > 0 (a zero would make every item below page 1 unclickable)")
        shares = self.intent_candidate_share + self.popular_candidate_share + self.random_candidate_share
        if abs(shares - 1.0) > 1e-9:
            raise ValueError(f"intent/popular/random_candidate_share must sum to 1, got {shares:g}")
        if self.latent_pool not in LATENT_POOLS:
            raise ValueError(f"latent_pool must be one of {LATENT_POOLS}, got {self.latent_pool!r}")
        self._check_policy()
        for name in ("policy_noise", "bias_exponent", "diversity_weight", "w_latent"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")

    def _check_policy(self) -> None:
        if self.policy not in POLICIES:
            raise ValueError(f"policy must be one of {POLICIES}, got {self.policy!r}")
        for name, default, owner in (("promoted_share", DEFAULT_PROMOTED_SHARE, "promotion"),
                                     ("epsilon", DEFAULT_EPSILON, "epsilon")):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {value}")
            if self.policy != owner and value != default:
                raise ValueError(f"{name} ({value}) applies only to policy {owner!r}, not {self.policy!r}: "
                                 f"leave it at its default {default}")

    @property
    def n_seconds(self) -> int:
        """Length of the simulated period in seconds."""
        return self.n_days * 86_400

    @property
    def n_requests(self) -> int:
        """Total ranked lists over the whole period."""
        return self.requests_per_day * self.n_days
