"""Baselines of the DMT paper's Table 1 that are not T4R models.

The torch baselines (DNN, DIN, DIEN) are presets of ``build_model`` (``t4r_dmt/configs/dnn.json`` ...); GBDT
(:mod:`t4r_dmt.baselines.ranking.gbdt`) runs its own window loop over the same files and metrics and is
dispatched by ``t4r-dmt train --config gbdt``.
"""

from __future__ import annotations

from t4r_dmt.baselines.ranking.features import GBDTFeatures, tabular_features
from t4r_dmt.baselines.ranking.gbdt import GBDTConfig, fit_predict, run

__all__ = ["GBDTConfig", "GBDTFeatures", "fit_predict", "run", "tabular_features"]
