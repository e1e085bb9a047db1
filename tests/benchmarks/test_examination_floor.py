"""benchmarks/examination_floor.py: the relevance its inputs carry, learned out of fold, and its explained share."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from paths import load_benchmark

from t4r_dmt.synth.events import sigmoid as _sigmoid


def _module():
    return load_benchmark("examination_floor")


def test_explained_share_ignores_scale_and_level_of_the_logit() -> None:
    rng = np.random.default_rng(0)
    logit = rng.normal(size=500)
    module = _module()
    assert module.explained_share(_sigmoid(3.0 * logit - 1.0), _sigmoid(logit)) == pytest.approx(1.0)
    noisy = logit + rng.normal(size=500)  # half of the variance is noise: R^2 = 1 / (1 + 1)
    assert module.explained_share(_sigmoid(noisy), _sigmoid(logit)) == pytest.approx(0.5, abs=0.08)


def test_inputs_relevance_learns_what_the_inputs_carry_and_nothing_else() -> None:
    rng = np.random.default_rng(1)
    n = 4000
    inputs = pd.DataFrame({"x": rng.normal(size=n), "item_category": rng.integers(0, 5, size=n)})
    category_effect = np.array([-1.0, -0.5, 0.0, 0.5, 1.0])
    carried = 1.2 * inputs["x"].to_numpy() + category_effect[inputs["item_category"].to_numpy()]
    requests = np.repeat(np.arange(n // 20), 20)
    module = _module()
    learned = module.inputs_relevance(inputs, _sigmoid(carried), requests)
    assert learned.shape == (n,) and ((learned > 0) & (learned < 1)).all()
    assert module.explained_share(learned, _sigmoid(carried)) > 0.95
    # A relevance part the inputs do not carry is not learned: out of fold, the fit cannot memorise rows, so it
    # explains no more than the carried part's share of the variance (it fits some of the hidden part's noise
    # in fold, which costs it out of fold), and still finds the carried part.
    hidden = 2.0 * rng.normal(size=n)
    learned = module.inputs_relevance(inputs, _sigmoid(carried + hidden), requests)
    carried_share = np.var(carried) / (np.var(carried) + np.var(hidden))
    assert 0.15 < module.explained_share(learned, _sigmoid(carried + hidden)) < carried_share + 0.02
    assert module.explained_share(learned, _sigmoid(carried)) > 0.6
