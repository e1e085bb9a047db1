"""Items (categories, brands, prices, quality) and users (facets, propensity, price sensitivity).

Items are stored grouped by category (item index order = category order) so that drawing an item of a
given category is one ``searchsorted`` over a per-category cumulative distribution, for any number of
draws at once. The raw ids written to the files (``product_id``, ``category_id``, ``user_id``) are
random REES46-like numbers unrelated to that order.

Every item also has a unit vector in a hidden ``latent_dim``-dimensional space, clustered around its
category's centre (categories are coarse, the vectors finer), and every user facet an *anchor* item of
that facet's category. Both are drawn from their own generator (``latent_rng``), so the main stream,
and hence every output at ``w_latent = 0``, does not depend on them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from t4r_dmt.synth.config import SynthConfig
from t4r_dmt.synth.ids import brand_names, unique_ints

# REES46-style dotted category codes; categories beyond this list get numbered variants.
CATEGORY_CODES = (
    "electronics.smartphone", "electronics.audio.headphone", "electronics.video.tv", "electronics.clocks",
    "electronics.tablet", "electronics.camera.photo", "computers.notebook", "computers.desktop",
    "computers.peripherals.mouse", "computers.components.videocards", "appliances.kitchen.washer",
    "appliances.kitchen.refrigerators", "appliances.kitchen.microwave", "appliances.environment.vacuum",
    "appliances.environment.water_heater", "appliances.personal.hair_cutter", "apparel.shoes",
    "apparel.shoes.keds", "apparel.trousers", "apparel.jacket", "furniture.living_room.sofa",
    "furniture.bedroom.bed", "furniture.kitchen.table", "kids.toys", "kids.carriage", "auto.accessories.player",
    "auto.accessories.videoregister", "construction.tools.drill", "construction.tools.light",
    "sport.bicycle", "sport.trainer", "accessories.bag", "accessories.wallet", "country_yard.lawn_mower",
    "medicine.tools.tonometer", "stationery.cartrige",
)
NULL_CATEGORY_CODE_SHARE = 0.3  # REES46: about a third of the rows have no category_code
NULL_BRAND_SHARE = 0.12
PRICE_SIGMA = 0.35  # std of log price within a category
WITHIN_CATEGORY_POPULARITY = 0.8  # item weight inside its category = exp(this * quality)
LATENT_STREAM = 0x1A7E47  # second word of the latent generators' seed: [seed, LATENT_STREAM, part]
LATENT_SPREAD = 0.6  # std of an item's offset from its category centre (both scaled to unit expected norm)
LATENT_ITEMS, LATENT_ANCHORS, LATENT_SESSIONS = 0, 1, 2  # parts of the latent stream


@dataclass(frozen=True)
class Catalog:
    """The item catalogue; item arrays have shape (n_items,), category arrays (n_categories,).

    ``category`` is non-decreasing (items grouped by category); ``category_start[c]`` and
    ``category_stop[c]`` delimit category c's items; ``within_cdf`` is c + the cumulative share of each
    item inside its category (exactly c + 1 at the category's last item); ``latent`` (n_items,
    latent_dim) holds the items' unit vectors in the hidden interest space.
    """

    product_id: np.ndarray
    category: np.ndarray
    brand: np.ndarray
    price: np.ndarray
    log_price_z: np.ndarray
    quality: np.ndarray
    popularity: np.ndarray
    within_cdf: np.ndarray
    category_id: np.ndarray
    category_code: np.ndarray
    category_popularity: np.ndarray
    category_start: np.ndarray
    category_stop: np.ndarray
    latent: np.ndarray

    @property
    def n_items(self) -> int:
        return len(self.product_id)

    def draw_in_category(self, categories: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Draw one item of each given category, by within-category popularity: (N,) -> (N,) indices."""
        u = rng.random(len(categories))
        idx = np.searchsorted(self.within_cdf, categories + u, side="right")
        # c + u can round up to c + 1 when u is within one ulp of 1: stay inside the category.
        return np.minimum(idx, self.category_stop[categories] - 1)

    def draw_popular(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """Draw ``n`` items by global popularity: (n,) indices."""
        return np.minimum(np.searchsorted(np.cumsum(self.popularity), rng.random(n), side="right"),
                          self.n_items - 1)


@dataclass(frozen=True)
class Users:
    """Static user traits; arrays have shape (n_users,) unless noted.

    facets (n_users, K) preferred category indices, facet_weight (n_users, K) their weights (rows sum
    to 1), facet_anchor (n_users, K) an item of each facet's category (the user's taste inside it, in
    the latent space), propensity in (0, 1) (purchase propensity), price_sensitivity > 0, activity > 0 (mean 1).
    """

    user_id: np.ndarray
    facets: np.ndarray
    facet_weight: np.ndarray
    facet_anchor: np.ndarray
    propensity: np.ndarray
    price_sensitivity: np.ndarray
    activity: np.ndarray

    @property
    def n_users(self) -> int:
        return len(self.user_id)

    def facet_affinity(self, users: np.ndarray, categories: np.ndarray) -> np.ndarray:
        """Static weight of each category among its user's facets: (N,), (N,) -> (N,) in [0, 1]."""
        match = self.facets[users] == categories[:, None]
        return np.asarray((self.facet_weight[users] * match).sum(axis=1))

    def draw_facet(self, users: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Draw one preferred category per user by facet weight: (N,) -> (N,) category indices."""
        cum = np.cumsum(self.facet_weight[users], axis=1)
        k = (cum < rng.random(len(users))[:, None]).sum(axis=1)
        k = np.minimum(k, self.facets.shape[1] - 1)
        return np.asarray(self.facets[users, k])


def latent_rng(config: SynthConfig, part: int) -> np.random.Generator:
    """A generator of the latent stream, independent of the main ``default_rng(config.seed)``."""
    return np.random.default_rng([config.seed, LATENT_STREAM, part])


def latent_vectors(config: SynthConfig, category: np.ndarray, n_categories: int) -> np.ndarray:
    """Unit item vectors normalize(centre[category] + LATENT_SPREAD * noise): (n_items,) -> (n_items, latent_dim)."""
    rng = latent_rng(config, LATENT_ITEMS)
    scale = 1.0 / np.sqrt(config.latent_dim)
    centre = scale * rng.standard_normal((n_categories, config.latent_dim))
    vector = centre[category] + LATENT_SPREAD * scale * rng.standard_normal((len(category), config.latent_dim))
    return np.asarray(vector / np.linalg.norm(vector, axis=1, keepdims=True))


def make_catalog(config: SynthConfig, rng: np.random.Generator) -> Catalog:
    """Draw the catalogue: Zipf category popularity, nested brands, lognormal prices per category."""
    n_cat, n_items = config.n_categories, config.n_items
    category_popularity = 1.0 / np.arange(1, n_cat + 1)
    category_popularity /= category_popularity.sum()
    # Every category gets one item, the rest follow category popularity; sorting groups items by category.
    extra = rng.choice(n_cat, size=n_items - n_cat, p=category_popularity)
    category = np.sort(np.concatenate([np.arange(n_cat), extra])).astype(np.int64)
    counts = np.bincount(category, minlength=n_cat)
    category_stop = np.cumsum(counts)
    category_start = category_stop - counts

    quality = rng.standard_normal(n_items)
    weight = np.exp(WITHIN_CATEGORY_POPULARITY * quality)
    cum = np.cumsum(weight)
    before = np.concatenate([[0.0], cum])[category_start][category]
    total = (cum[category_stop - 1] - np.concatenate([[0.0], cum])[category_start])[category]
    share_cum = (cum - before) / total
    share_cum[category_stop - 1] = 1.0  # exact, so categories never overlap in within_cdf
    within_cdf = category + share_cum
    within_share = weight / total
    popularity = category_popularity[category] * within_share
    popularity /= popularity.sum()

    log_price_mean = rng.uniform(np.log(5.0), np.log(800.0), size=n_cat)
    log_price = log_price_mean[category] + PRICE_SIGMA * rng.standard_normal(n_items)
    price = np.round(np.exp(log_price), 2)
    log_price_z = (np.log(price) - np.log(price).mean()) / np.log(price).std()

    brands_per_category = 1 + rng.poisson(3.0, size=n_cat)
    names = brand_names(int(brands_per_category.sum()), rng)
    brand_offset = np.cumsum(brands_per_category) - brands_per_category
    brand_index = brand_offset[category] + (rng.random(n_items) * brands_per_category[category]).astype(np.int64)
    brand = names[brand_index]
    brand[rng.random(n_items) < NULL_BRAND_SHARE] = None

    codes = [CATEGORY_CODES[c % len(CATEGORY_CODES)] + ("" if c < len(CATEGORY_CODES) else f"_{c}")
             for c in range(n_cat)]
    category_code = np.array(codes, dtype=object)
    category_code[rng.random(n_cat) < NULL_CATEGORY_CODE_SHARE] = None
    # 19-digit ids like REES46's 2053013555631882655.
    category_id = 2_053_013_550_000_000_000 + unique_ints(n_cat, 10**10, rng)
    product_id = 1_000_000 + unique_ints(n_items, 99_000_000, rng)
    return Catalog(
        product_id=product_id, category=category, brand=brand, price=price, log_price_z=log_price_z,
        quality=quality, popularity=popularity, within_cdf=within_cdf, category_id=category_id,
        category_code=category_code, category_popularity=category_popularity,
        category_start=category_start, category_stop=category_stop,
        latent=latent_vectors(config, category, n_cat),
    )


def make_users(config: SynthConfig, catalog: Catalog, rng: np.random.Generator) -> Users:
    """Draw users: facets by category popularity with Dirichlet weights, propensity, price sensitivity."""
    n = config.n_users
    k = config.facets_per_user
    facets = rng.choice(len(catalog.category_id), size=(n, k), p=catalog.category_popularity).astype(np.int64)
    facet_weight = rng.dirichlet(np.ones(k), size=n)
    propensity = rng.beta(2.0, 5.0, size=n)
    price_sensitivity = rng.lognormal(0.0, 0.4, size=n)
    activity = rng.lognormal(0.0, 0.6, size=n)
    activity /= activity.mean()
    user_id = 500_000_000 + unique_ints(n, 99_000_000, rng)
    anchor = catalog.draw_in_category(facets.ravel(), latent_rng(config, LATENT_ANCHORS)).reshape(n, k)
    return Users(user_id=user_id, facets=facets, facet_weight=facet_weight, facet_anchor=anchor,
                 propensity=propensity, price_sensitivity=price_sensitivity, activity=activity)
