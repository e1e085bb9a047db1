"""The planted click and order model, the logging policy that orders each list, and the sampling.

For candidate i of request r (user u, time t), with the user's latest views / carts strictly before t:

    relevance_i = click_intercept + w_last_category [cat_i == category of the last view]
                + w_recent_category sum_k 0.7^k [cat_i == category of the k-th latest view]
                + w_recent_item [item_i among the latest views] + w_cart_category [cat_i carted]
                + w_cart_item [item_i carted] + w_facet facet_weight(u, cat_i)
                + w_quality quality_i - w_price price_sensitivity_u z(log price_i)
                + w_latent sum_k 0.7^k cos(v_i, v_view_k) / sum_k 0.7^k   (0 without earlier views;
                  latent_pool "max": max_k cos(v_i, v_view_k) instead)
    p_click_relevance_i = sigmoid(relevance_i - diversity_weight * neighbour_similarity_i)
    p_click_i = bias[position_i] * p_click_relevance_i
    p_order_i = p_click_i * sigmoid(order_intercept + w_order_cart_item [item_i carted]
                + w_order_cart_category [cat_i carted] + logit(propensity_u)
                - w_order_price price_sensitivity_u z(log price_i))

``neighbour_similarity`` weighs same-category items 1, 2 and 3 positions away (above or below) by 1,
1/2 and 1/4: crowded lists are clicked less. ``v`` are the items' hidden unit vectors (``Catalog.latent``);
the latent term is added only when ``w_latent > 0``. The logging policy (``t4r_dmt.synth.policy``) orders
each list from relevance plus Gaussian noise, so positions are confounded with relevance, as in a real
production log; whatever the policy, the click model above applies at the position shown.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from t4r_dmt.synth.catalog import Catalog, Users
from t4r_dmt.synth.config import SynthConfig
from t4r_dmt.synth.events import logit, sigmoid
from t4r_dmt.synth.history import Recent
from t4r_dmt.synth.policy import list_order
from t4r_dmt.synth.requests import Candidates

RECENT_DECAY = 0.7  # weight of the k-th latest view's category: RECENT_DECAY ** k
NEIGHBOUR_WEIGHTS = (1.0, 0.5, 0.25)  # same-category neighbours 1, 2, 3 positions away


@dataclass(frozen=True)
class Impressions:
    """Ordered impressions (request-major, then position), arrays of shape (N,).

    request: request index; item: item index; position: 0 = top; relevance: the list-free relevance
    logit; latent_similarity: the latent term before its weight w_latent (computed whatever w_latent
    is); neighbour_similarity: weighted count of same-category neighbours; position_bias: bias at the
    position; p_click_relevance, p_click, p_order_given_click, p_order: planted probabilities;
    click, order: sampled outcomes (bool, order implies click).
    """

    request: np.ndarray
    item: np.ndarray
    position: np.ndarray
    relevance: np.ndarray
    latent_similarity: np.ndarray
    neighbour_similarity: np.ndarray
    position_bias: np.ndarray
    p_click_relevance: np.ndarray
    p_click: np.ndarray
    p_order_given_click: np.ndarray
    p_order: np.ndarray
    click: np.ndarray
    order: np.ndarray
    promoted: np.ndarray
    swapped: np.ndarray


def position_bias(config: SynthConfig) -> np.ndarray:
    """Planted examination probability per position: (list_length,), 1 at the top, decreasing."""
    position = np.arange(config.list_length)
    return np.asarray((1.0 + position) ** -config.bias_exponent
                      * config.page_decay ** (position // config.page_size))


def _any_equal(values: np.ndarray, table: np.ndarray) -> np.ndarray:
    """[values[i] in table[i, :]]: (N,), (N, K) -> (N,) bool (-1 entries of table never match)."""
    return np.asarray((table == values[:, None]).any(axis=1))


def latent_similarity(catalog: Catalog, item: np.ndarray, views: Recent, pool: str = "mean") -> np.ndarray:
    """Cosine between each candidate and its latest views, pooled: (N,), rows (N, depth) -> (N,).

    ``pool`` "mean": the k-th latest view weighs RECENT_DECAY ** k (vectors are unit, so the mean cosine is
    the dot product with the weighted mean of the views' vectors); "max": the largest cosine over the
    views. A candidate without earlier views scores 0.
    """
    depth = views.item.shape[1]
    candidate = catalog.latent[item]
    if pool == "max":
        best = np.full(len(item), -np.inf)
        for k in range(depth):  # a loop over depth (<= recent_views), not over rows
            cosine = np.einsum("nd,nd->n", catalog.latent[np.maximum(views.item[:, k], 0)], candidate)
            best = np.where(views.valid[:, k], np.maximum(best, cosine), best)
        return np.asarray(np.where(np.isfinite(best), best, 0.0))
    profile = np.zeros((len(item), catalog.latent.shape[1]))
    total = np.zeros(len(item))
    for k in range(depth):
        weight = RECENT_DECAY**k * views.valid[:, k]
        profile += weight[:, None] * catalog.latent[np.maximum(views.item[:, k], 0)]
        total += weight
    dot = np.einsum("nd,nd->n", profile, candidate)
    return np.asarray(np.divide(dot, total, out=np.zeros(len(item)), where=total > 0))


def relevance_logit(config: SynthConfig, catalog: Catalog, users: Users, user: np.ndarray,
                    item: np.ndarray, views: Recent, carts: Recent) -> np.ndarray:
    """List-free relevance logit of each candidate: (N,) user, (N,) item, Recent rows (N, depth) -> (N,)."""
    category = catalog.category[item]
    decay = RECENT_DECAY ** np.arange(views.category.shape[1])
    recent_category = ((views.category == category[:, None]) * decay).sum(axis=1)
    indicators = np.asarray(
        config.click_intercept
        + config.w_last_category * (views.category[:, 0] == category)
        + config.w_recent_category * recent_category
        + config.w_recent_item * _any_equal(item, views.item)
        + config.w_cart_category * _any_equal(category, carts.category)
        + config.w_cart_item * _any_equal(item, carts.item)
        + config.w_facet * users.facet_affinity(user, category)
        + config.w_quality * catalog.quality[item]
        - config.w_price * users.price_sensitivity[user] * catalog.log_price_z[item]
    )
    if config.w_latent == 0:  # skipped, not multiplied by 0: the sums stay bit-identical to the model without it
        return indicators
    return np.asarray(indicators + config.w_latent * latent_similarity(catalog, item, views, config.latent_pool))


def order_given_click(config: SynthConfig, catalog: Catalog, users: Users, user: np.ndarray,
                      item: np.ndarray, carts: Recent) -> np.ndarray:
    """Probability of an order once clicked: (N,) user, (N,) item, carts rows (N, depth) -> (N,)."""
    category = catalog.category[item]
    return sigmoid(
        config.order_intercept
        + config.w_order_cart_item * _any_equal(item, carts.item)
        + config.w_order_cart_category * _any_equal(category, carts.category)
        + logit(users.propensity[user])
        - config.w_order_price * users.price_sensitivity[user] * catalog.log_price_z[item]
    )


def neighbour_similarity(request: np.ndarray, category: np.ndarray) -> np.ndarray:
    """Weighted count of same-category items up to 3 positions above or below: (N,), (N,) -> (N,).

    Rows must be sorted by (request, position).
    """
    n = len(request)
    similarity = np.zeros(n)
    for distance, weight in enumerate(NEIGHBOUR_WEIGHTS, start=1):
        if distance >= n:
            break
        same = (request[distance:] == request[:-distance]) & (category[distance:] == category[:-distance])
        similarity[distance:] += weight * same  # the item `distance` above
        similarity[:-distance] += weight * same  # the item `distance` below
    return similarity


def rank_and_sample(config: SynthConfig, catalog: Catalog, users: Users, candidates: Candidates,
                    request_user: np.ndarray, views: Recent, carts: Recent, promoted: np.ndarray,
                    rng: np.random.Generator) -> Impressions:
    """Order each request's candidates by the logging policy, then apply and sample the truth.

    ``request_user`` (R,) maps requests to users; ``views`` / ``carts`` are per request (R, depth);
    ``promoted`` (n_items,) bool marks the promoted items (``policy.promoted_items``).
    """
    request, item = candidates.request, candidates.item
    user = request_user[request]
    cart_rows, view_rows = _rows(carts, request), _rows(views, request)
    rel = relevance_logit(config, catalog, users, user, item, view_rows, cart_rows)
    latent = latent_similarity(catalog, item, view_rows, config.latent_pool)
    p_order_click = order_given_click(config, catalog, users, user, item, cart_rows)
    policy_score = rel + config.policy_noise * rng.standard_normal(len(item))
    shown = list_order(config, request, policy_score, promoted[item])
    order = shown.order
    request, item, rel, latent = request[order], item[order], rel[order], latent[order]
    p_order_click = p_order_click[order]
    position = np.arange(len(request)) - np.searchsorted(request, request, side="left")

    similarity = neighbour_similarity(request, catalog.category[item])
    bias = position_bias(config)[position]
    p_rel = sigmoid(rel - config.diversity_weight * similarity)
    p_click = bias * p_rel
    click = rng.random(len(item)) < p_click
    ordered = click & (rng.random(len(item)) < p_order_click)
    return Impressions(
        request=request, item=item, position=position, relevance=rel, latent_similarity=latent,
        neighbour_similarity=similarity,
        position_bias=bias, p_click_relevance=p_rel, p_click=p_click, p_order_given_click=p_order_click,
        p_order=p_click * p_order_click, click=click, order=ordered, promoted=promoted[item],
        swapped=shown.swapped,
    )


def _rows(recent: Recent, index: np.ndarray) -> Recent:
    """Recent rows repeated per candidate: (R, depth) -> (N, depth)."""
    return Recent(item=recent.item[index], category=recent.category[index], valid=recent.valid[index])
