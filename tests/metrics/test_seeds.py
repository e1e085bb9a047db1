"""Seed summaries of the results tables."""

from __future__ import annotations

import math

import pytest

from t4r_dmt.metrics.seeds import mean_std, relaimpr


def test_relaimpr_is_the_papers() -> None:
    # The paper's Table 1: DMT 0.6855 vs DNN 0.6703 -> +8.93 %.
    assert relaimpr(0.6855, 0.6703) == pytest.approx(8.9254, abs=1e-3)
    assert relaimpr(0.6703, 0.6703) == 0.0
    assert math.isnan(relaimpr(0.7, 0.5))
    assert math.isnan(relaimpr(math.nan, 0.6))
    assert mean_std([1.0, 3.0, math.nan]) == (2.0, pytest.approx(math.sqrt(2)))
    assert mean_std([2.0]) == (2.0, 0.0)
    assert all(math.isnan(v) for v in mean_std([math.nan]))
