"""The logging policy: the order in which each request's candidates are shown (``SynthConfig.policy``).

Every policy starts from the same noisy relevance estimate of each candidate, drawn by ``rank_and_sample``
from the main stream: ``policy_score = relevance + policy_noise * N(0, 1)``. Then:

* ``noisy``: each list sorted by ``policy_score``, highest first (the original policy).
* ``promotion``: a fixed set of ``round(promoted_share * n_items)`` items (``promoted_items``; uniform over
  the catalogue, without replacement) is shown first in every list it appears in, whatever its relevance:
  the promoted candidates take the top slots, ordered among themselves by ``policy_score``, then the rest
  by ``policy_score``. Clicks still follow the planted truth, so a position-blind model over-rates them.
* ``epsilon``: the noisy order, then random exploration: each list gets an offset ``o`` (0 or 1, a fair
  coin) that splits its positions into non-overlapping adjacent pairs ``(o, o+1), (o+2, o+3), ...`` (a
  position left over at either end is in no pair), and each pair is swapped with probability ``epsilon``,
  independently. ``epsilon = 0`` is the noisy policy.

The promoted set and the exploration draws come from their own generators (``policy_rng``), never from the
main stream, so the policy changes only the order of the lists (and what follows from it: positions,
clicks, feedback events), and ``noisy`` writes the bytes of the generator without this module.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from t4r_dmt.synth.config import SynthConfig

POLICY_STREAM = 0x9011C7  # second word of the policy generators' seed: [seed, POLICY_STREAM, part]
POLICY_PROMOTED, POLICY_SWAPS = 0, 1  # parts of the policy stream


@dataclass(frozen=True)
class ListOrder:
    """How the candidates are shown: ``order`` (N,) indexes the candidates so that rows come request-major,
    top position first; ``swapped`` (N,) bool, per shown row, marks both rows of an exploration swap."""

    order: np.ndarray
    swapped: np.ndarray


def policy_rng(config: SynthConfig, part: int) -> np.random.Generator:
    """A generator of the policy stream, independent of the main ``default_rng(config.seed)``."""
    return np.random.default_rng([config.seed, POLICY_STREAM, part])


def promoted_items(config: SynthConfig) -> np.ndarray:
    """The promoted items as a mask over item indices: (n_items,) bool.

    ``round(promoted_share * n_items)`` items drawn uniformly without replacement under ``promotion``;
    none under the other policies.
    """
    mask = np.zeros(config.n_items, dtype=bool)
    if config.policy != "promotion":
        return mask
    n_promoted = int(round(config.promoted_share * config.n_items))
    mask[policy_rng(config, POLICY_PROMOTED).choice(config.n_items, size=n_promoted, replace=False)] = True
    return mask


def list_order(config: SynthConfig, request: np.ndarray, policy_score: np.ndarray,
               promoted: np.ndarray) -> ListOrder:
    """Order the candidates of every request by ``config.policy``.

    Parameters
    ----------
    request: (N,) request index of each candidate, non-decreasing (request-major).
    policy_score: (N,) the noisy relevance estimate (higher = shown higher).
    promoted: (N,) bool, whether each candidate is a promoted item (used by ``promotion`` only).

    Returns
    -------
    ``ListOrder`` with ``order`` (N,) and ``swapped`` (N,).
    """
    if config.policy == "promotion":
        order = np.lexsort((-policy_score, ~promoted, request))
    else:
        order = np.lexsort((-policy_score, request))
    if config.policy != "epsilon":
        return ListOrder(order=order, swapped=np.zeros(len(order), dtype=bool))
    permutation, swapped = explore_swaps(request[order], config.epsilon, policy_rng(config, POLICY_SWAPS))
    return ListOrder(order=order[permutation], swapped=swapped)


def explore_swaps(request: np.ndarray, epsilon: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Swap non-overlapping adjacent pairs of every list with probability ``epsilon``.

    Parameters
    ----------
    request: (N,) request of each row of ranked lists, non-decreasing (each list's rows top first).
    epsilon: the swap probability of a pair, in [0, 1].
    rng: the draws: one offset per list (``integers(0, 2)``), then one uniform per row (a pair uses its
        first row's), a fixed number whatever ``epsilon`` is.

    Returns
    -------
    (permutation (N,), swapped (N,) bool): ``rows[permutation]`` are the lists after the swaps; ``swapped``
    marks both rows of each swapped pair (in the new order, the same two slots).
    """
    n = len(request)
    new_list = np.r_[True, request[1:] != request[:-1]] if n else np.zeros(0, dtype=bool)
    first = np.flatnonzero(new_list)  # (R,) first row of each list
    offset = rng.integers(0, 2, size=len(first))
    u = rng.random(n)
    group = np.cumsum(new_list) - 1  # (N,) list of each row
    shifted = np.arange(n) - first[group] - offset[group]  # position within the list, minus the offset
    pair_top = (shifted >= 0) & (shifted % 2 == 0) & np.r_[~new_list[1:], False][:n]
    top = np.flatnonzero(pair_top & (u < epsilon))
    permutation = np.arange(n)
    permutation[top], permutation[top + 1] = top + 1, top
    swapped = np.zeros(n, dtype=bool)
    swapped[top] = swapped[top + 1] = True
    return permutation, swapped
