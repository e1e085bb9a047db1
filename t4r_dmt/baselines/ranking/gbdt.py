"""GBDT baseline (LightGBM), the first row of the paper's Table 1, under the same window protocol.

For each window t it trains one click model and one order model on ``train.parquet`` of windows 1..t (all
windows so far: a GBDT does not continue from the previous window's trees; ``train_windows: "current"`` fits
on window t alone, as much data as the neural models see per window), scores window t+1's evaluation
split and computes the same metrics as the T4R models (``ranking_metrics``): ``p_click``, ``p_order`` and
``score = Σ w_k p_k / Σ w_k`` with DMT's default weights (1, 1). Without any order in the training rows
(the Trivago log) ``p_order`` is the constant rate and ``auc_order`` is NaN.

Run it as ``t4r-dmt train --config gbdt``, or a variant of the GBDT ablation (``gbdt_current_window``,
``gbdt_no_history``, ``gbdt_current_no_history``): every preset of family ``gbdt`` (``t4r_dmt/configs/gbdt*.json``
or a JSON file with ``"family": "gbdt"``) runs here.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from t4r_dmt.baselines.ranking.features import GBDTFeatures, tabular_features
from t4r_dmt.fingerprint import FINGERPRINT_KEY, data_fingerprint
from t4r_dmt.model.config import config_from_dict
from t4r_dmt.run_folder import DataArguments, load_schema, run_folder
from t4r_dmt.schema import RANKING_ID_COLUMNS
from t4r_dmt.search_space import check_space
from t4r_dmt.windows import list_windows, n_rows, run_windows, select_windows, window_path

logger = logging.getLogger(__name__)

ID_COLUMNS = list(RANKING_ID_COLUMNS)


@dataclass
class GBDTConfig:
    """LightGBM settings shared by the click and the order model."""

    name: str = "gbdt"
    family: str = "gbdt"
    n_estimators: int = 300
    learning_rate: float = 0.05
    num_leaves: int = 31
    min_child_samples: int = 50
    feature_fraction: float = 0.8
    cat_smooth: float = 50.0
    score_weights: list[float] = dataclasses.field(default_factory=lambda: [1.0, 1.0])
    train_windows: str = "all"
    """``"all"``: refit on windows 1..t; ``"current"``: on window t only."""
    interactions: bool = True
    """Read the user-candidate interaction features (tagged ``interaction``; false: the ablation)."""
    search_space: dict[str, Any] = dataclasses.field(default_factory=dict)
    """What ``t4r-dmt tune`` may change (``t4r_dmt.search_space``): field -> distribution."""

    def __post_init__(self) -> None:
        if self.family != "gbdt":
            raise ValueError(f"a GBDTConfig has family 'gbdt'; got {self.family!r}")
        if self.train_windows not in ("all", "current"):
            raise ValueError(f"gbdt train_windows must be 'all' or 'current'; got {self.train_windows!r}")
        if not isinstance(self.interactions, bool):
            raise ValueError(f"gbdt interactions must be true or false; got {self.interactions!r}")
        check_space(self, "gbdt search_space")
        for name in ("n_estimators", "num_leaves", "min_child_samples"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"gbdt {name} must be a positive integer; got {value!r}")
        if not 0 < self.learning_rate <= 1:
            raise ValueError(f"gbdt learning_rate must be in (0, 1]; got {self.learning_rate!r}")
        if not 0 < self.feature_fraction <= 1:
            raise ValueError(f"gbdt feature_fraction must be in (0, 1]; got {self.feature_fraction!r}")
        if len(self.score_weights) != 2 or any(w < 0 for w in self.score_weights) or sum(self.score_weights) <= 0:
            raise ValueError(f"gbdt score_weights needs two values >= 0 with a positive sum; "
                             f"got {self.score_weights!r}")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GBDTConfig:
        """Build from a dict of ``GBDTConfig`` fields (unknown keys are an error)."""
        return config_from_dict(cls, data, kind="gbdt ")


class GBDTModels:
    """The click and the order model fitted on one training set; a label without both classes is a constant."""

    def __init__(self, train: pd.DataFrame, spec: GBDTFeatures, config: GBDTConfig, seed: int) -> None:
        x = tabular_features(train, spec)
        self.spec, self.config = spec, config
        self.click = _fit_one(x, train["click"].to_numpy(), list(spec.categorical), config, seed)
        self.order = _fit_one(x, train["order"].to_numpy(), list(spec.categorical), config, seed)

    def predict(self, evaluate: pd.DataFrame) -> pd.DataFrame:
        """``request_id, user_id, click, order`` of ``evaluate`` (M rows) with ``p_click``, ``p_order``,
        ``score = Σ w_k p_k / Σ w_k``."""
        x_eval = tabular_features(evaluate, self.spec)
        out = evaluate[ID_COLUMNS].reset_index(drop=True).copy()
        out["p_click"] = _predict_one(self.click, x_eval)
        out["p_order"] = _predict_one(self.order, x_eval)
        w = np.asarray(self.config.score_weights, dtype=np.float64)
        out["score"] = (w[0] * out["p_click"] + w[1] * out["p_order"]) / w.sum()
        return out


def _fit_one(x: pd.DataFrame, y: np.ndarray, categorical: list[str], config: GBDTConfig, seed: int) -> Any:
    """A LightGBM classifier fitted on ``x (N, F)``, ``y (N,)``; the rate of ``y`` (a float) if y is constant."""
    rate = float(y.mean()) if len(y) else 0.0
    if len(np.unique(y)) < 2:
        return rate
    import lightgbm as lgb

    model = lgb.LGBMClassifier(
        n_estimators=config.n_estimators, learning_rate=config.learning_rate, num_leaves=config.num_leaves,
        min_child_samples=config.min_child_samples, colsample_bytree=config.feature_fraction,
        cat_smooth=config.cat_smooth, random_state=seed, n_jobs=1, verbose=-1,
    )
    model.fit(x, y, categorical_feature=categorical)
    return model


def _predict_one(model: Any, x_eval: pd.DataFrame) -> np.ndarray:
    """P(y = 1) of ``x_eval`` (M,)."""
    if isinstance(model, float):
        return np.full(len(x_eval), model)
    return np.asarray(model.predict_proba(x_eval), dtype=np.float64)[:, 1]


def fit_predict(train: pd.DataFrame, evaluate: pd.DataFrame, spec: GBDTFeatures, config: GBDTConfig,
                seed: int = 0) -> pd.DataFrame:
    """Fit on ``train`` rows, score ``evaluate`` rows (:meth:`GBDTModels.predict`)."""
    return GBDTModels(train, spec, config, seed).predict(evaluate)


def run(data_args: DataArguments, config: GBDTConfig, seed: int = 42,
        on_window: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """The window loop of ``t4r-dmt train`` for GBDT; returns ``{"run_dir", "average", "windows"}``.
    ``on_window(record)`` is called after each window's record is written (as the T4R runner's)."""
    from t4r_dmt.io_utils import write_json

    run_dir = Path(data_args.out)
    task_dir = data_args.task_dir
    spec = GBDTFeatures.from_schema(load_schema(task_dir), interactions=config.interactions)
    all_windows = list_windows(task_dir)
    windows = select_windows(all_windows, data_args.windows)
    with run_folder(data_args) as done:
        write_json(run_dir / "config.json", {"model": config.name, "config": dataclasses.asdict(config),
                                             "data": dataclasses.asdict(data_args), "training": {"seed": seed},
                                             FINGERPRINT_KEY: data_fingerprint(data_args.data, data_args.task)})
        return _run(data_args, config, seed, spec, all_windows, windows, done, on_window)


def _run(data_args: DataArguments, config: GBDTConfig, seed: int, spec: GBDTFeatures, all_windows: list[int],
         windows: list[int], done: list[dict[str, Any]],
         on_window: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    from t4r_dmt.metrics.ranking import ranking_metrics
    from t4r_dmt.metrics.results import RunResults, plot_windows

    run_dir, task_dir = Path(data_args.out), data_args.task_dir
    columns = [*ID_COLUMNS, *spec.columns]
    fitted: dict[int, GBDTModels | None] = {}

    def fit(train_window: int) -> None:
        # Every window up to t, from the first one on disk (not only the selected range), or t alone.
        fit_windows = [w for w in all_windows if w <= train_window] if config.train_windows == "all" else [train_window]
        frames = [pd.read_parquet(p, columns=columns)
                  for p in (window_path(task_dir, w, "train") for w in fit_windows) if n_rows(p) > 0]
        fitted.clear()
        fitted[train_window] = (GBDTModels(pd.concat(frames, ignore_index=True), spec, config, seed + train_window)
                                if frames else None)

    def evaluate(train_window: int, eval_window: int) -> tuple[int, dict[str, float]]:
        eval_path = window_path(task_dir, eval_window, data_args.eval_split)
        models = fitted[train_window]
        if models is None or n_rows(eval_path) == 0:
            logger.warning("window %d -> %d: no rows to train on or to evaluate", train_window, eval_window)
            return 0, {}
        frame = models.predict(pd.read_parquet(eval_path, columns=columns))
        return len(frame), ranking_metrics(frame)

    def write(records: list[dict[str, Any]]) -> None:
        RunResults(task="ranking", model=config.name, config=dataclasses.asdict(config), windows=records).write(run_dir)
        if on_window is not None:
            on_window(records[-1])

    records = run_windows(windows, fit, evaluate, done=done, on_window_end=write, name=config.name)
    results = RunResults(task="ranking", model=config.name, config=dataclasses.asdict(config), windows=records)
    results.write(run_dir)
    plot_windows(results, run_dir / "plots")
    return {"run_dir": str(run_dir), "average": results.average, "windows": records}
