"""Raw identifiers of the synthetic data: unique random ints, brand names and session UUID strings."""

from __future__ import annotations

import numpy as np

_SYLLABLES = np.array(["ka", "lo", "mi", "ne", "ru", "sa", "to", "vi", "ze", "bo", "da", "fu", "gri", "pel",
                       "xon", "ter"], dtype=object)
_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
_UUID_DASHES = (8, 13, 18, 23)


def unique_ints(n: int, high: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` distinct int64 values in [0, high), in random order: (n,)."""
    if n > high:
        raise ValueError(f"cannot draw {n} distinct values below {high}")
    return rng.choice(high, size=n, replace=False).astype(np.int64)


def brand_names(n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` distinct lowercase brand names of three syllables (or more when n needs it): (n,) object."""
    n_syl = len(_SYLLABLES)
    digits = 3
    while n_syl**digits < n:
        digits += 1
    codes = unique_ints(n, n_syl**digits, rng)
    names = np.full(n, "", dtype=object)
    for d in range(digits):  # loop over syllable slots, vectorised over brands
        names = names + _SYLLABLES[(codes // n_syl**d) % n_syl]
    return names


def random_uuids(n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` random UUID4-looking strings ("8-4-4-4-12" lowercase hex) built without a Python loop: (n,) object."""
    nibbles = rng.integers(0, 16, size=(n, 32), dtype=np.uint8)
    nibbles[:, 12] = 4  # version 4
    nibbles[:, 16] = 8 + (nibbles[:, 16] & 3)  # RFC 4122 variant
    chars = np.full((n, 36), ord("-"), dtype=np.uint8)
    keep = np.setdiff1d(np.arange(36), _UUID_DASHES)
    chars[:, keep] = _HEX[nibbles]
    return np.ascontiguousarray(chars).view("S36").ravel().astype("U36").astype(object)
