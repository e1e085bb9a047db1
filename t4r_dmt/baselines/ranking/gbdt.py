"""GBDT baseline (LightGBM), the first row of the paper's Table 1, under the same window protocol.

For each window t it trains one click model and one order model on ``train.parquet`` of windows 1..t (all
windows so far: a GBDT does not continue from the previous window's trees; ``train_windows: "current"`` fits
on window t alone, as much data as the neural models see per window), scores window t+1's evaluation
split and computes the same metrics as the T4R models (``ranking_metrics``): ``p_click``, ``p_order`` and
``score = Σ w_k p_k / Σ w_k`` with DMT's default weights (1, 1). Without any order in the training rows
(the Trivago log) ``p_order`` is the constant rate and ``auc_order`` is NaN.

Run it as ``t4r-dmt train --config gbdt``, or a variant of the GBDT ablation (``gbdt_current_window``,
``gbdt_no_history``, ``gbdt_current_no_history``): every config named ``gbdt`` or ``gbdt_*`` (a preset or a JSON
file) runs here; ``configs/gbdt*.json`` hold the ``GBDTConfig`` fields.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from t4r_dmt.baselines.ranking.features import GBDTFeatures, tabular_features
from t4r_dmt.model.config import CONFIG_DIR
from t4r_dmt.training.arguments import DataArguments, RunTrainingArguments

logger = logging.getLogger(__name__)

ID_COLUMNS = ["request_id", "user_id", "click", "order"]


@dataclass
class GBDTConfig:
    """LightGBM settings shared by the click and the order model."""

    name: str = "gbdt"
    n_estimators: int = 300
    learning_rate: float = 0.05
    num_leaves: int = 31
    min_child_samples: int = 50
    feature_fraction: float = 0.8
    cat_smooth: float = 50.0
    score_weights: list[float] = dataclasses.field(default_factory=lambda: [1.0, 1.0])
    train_windows: str = "all"
    """``"all"``: refit on windows 1..t; ``"current"``: on window t only."""
    target_history: bool = True
    """Build the target-in-history aggregates (``{b}_item_hits`` ..., see ``features``)."""

    def __post_init__(self) -> None:
        if self.train_windows not in ("all", "current"):
            raise ValueError(f"gbdt train_windows must be 'all' or 'current'; got {self.train_windows!r}")
        if not isinstance(self.target_history, bool):
            raise ValueError(f"gbdt target_history must be true or false; got {self.target_history!r}")
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
    def load(cls, path: str | Path) -> GBDTConfig:
        """Read a JSON file of ``GBDTConfig`` fields (unknown keys are an error)."""
        data = json.loads(Path(path).read_text())
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"{path}: unknown gbdt config key(s) {unknown}; known: {sorted(known)}")
        return cls(**data)


def _fit_one(x: pd.DataFrame, y: np.ndarray, x_eval: pd.DataFrame, categorical: list[str],
             config: GBDTConfig, seed: int) -> np.ndarray:
    """P(y = 1) of ``x_eval`` (M,) from a model fitted on ``x (N, F)``, ``y (N,)``; constant if y is."""
    rate = float(y.mean()) if len(y) else 0.0
    if len(np.unique(y)) < 2:
        return np.full(len(x_eval), rate)
    import lightgbm as lgb

    model = lgb.LGBMClassifier(
        n_estimators=config.n_estimators, learning_rate=config.learning_rate, num_leaves=config.num_leaves,
        min_child_samples=config.min_child_samples, colsample_bytree=config.feature_fraction,
        cat_smooth=config.cat_smooth, random_state=seed, n_jobs=1, verbose=-1,
    )
    model.fit(x, y, categorical_feature=categorical)
    return np.asarray(model.predict_proba(x_eval), dtype=np.float64)[:, 1]


def fit_predict(train: pd.DataFrame, evaluate: pd.DataFrame, spec: GBDTFeatures, config: GBDTConfig,
                seed: int = 0) -> pd.DataFrame:
    """Fit on ``train`` rows, score ``evaluate`` rows.

    Returns
    -------
    ``request_id, user_id, click, order`` of ``evaluate`` (M rows) with ``p_click``, ``p_order``, ``score``.
    """
    x, x_eval = tabular_features(train, spec), tabular_features(evaluate, spec)
    categorical = list(spec.categorical)
    out = evaluate[ID_COLUMNS].reset_index(drop=True).copy()
    out["p_click"] = _fit_one(x, train["click"].to_numpy(), x_eval, categorical, config, seed)
    out["p_order"] = _fit_one(x, train["order"].to_numpy(), x_eval, categorical, config, seed)
    w = np.asarray(config.score_weights, dtype=np.float64)
    out["score"] = (w[0] * out["p_click"] + w[1] * out["p_order"]) / w.sum()
    return out


def load_gbdt_config(data_args: DataArguments) -> GBDTConfig:
    """The GBDTConfig of ``--config`` (a gbdt* preset or a JSON file)."""
    path = Path(data_args.config)
    if path.suffix == ".json":
        if not path.is_file():
            raise FileNotFoundError(f"config file {path} does not exist")
        return GBDTConfig.load(path)
    preset = CONFIG_DIR / f"{path.name}.json"
    if not preset.is_file():
        known = sorted(p.stem for p in CONFIG_DIR.glob("gbdt*.json"))
        raise ValueError(f"unknown gbdt preset {data_args.config!r}; known: {', '.join(known)}")
    return GBDTConfig.load(preset)


def run(data_args: DataArguments, training_args: RunTrainingArguments) -> dict[str, Any]:
    """The window loop of ``t4r-dmt train`` for GBDT; returns ``{"run_dir", "average", "windows"}``."""
    from t4r_dmt.io_utils import write_json
    from t4r_dmt.metrics.ranking import ranking_metrics
    from t4r_dmt.training.command import load_schema, prepare_run_dir
    from t4r_dmt.training.fingerprint import FINGERPRINT_KEY, data_fingerprint
    from t4r_dmt.training.results import RunResults, plot_windows
    from t4r_dmt.training.windows import list_windows, n_rows, select_windows, window_path

    config = load_gbdt_config(data_args)
    run_dir = Path(data_args.out)
    records = prepare_run_dir(data_args)
    task_dir = data_args.task_dir
    spec = GBDTFeatures.from_schema(load_schema(task_dir), target_history=config.target_history)
    write_json(run_dir / "config.json", {"model": config.name, "config": dataclasses.asdict(config),
                                         "data": dataclasses.asdict(data_args),
                                         "training": {"seed": training_args.seed},
                                         FINGERPRINT_KEY: data_fingerprint(data_args.data, data_args.task)})
    windows = select_windows(list_windows(task_dir), data_args.windows)
    all_windows = list_windows(task_dir)
    finished = {r["train_window"] for r in records}
    columns = [*ID_COLUMNS, *spec.columns]
    for train_window, eval_window in zip(windows[:-1], windows[1:], strict=True):
        if train_window in finished:
            continue
        # Every window up to t, from the first one on disk (not only the selected range), or t alone.
        fit_windows = [w for w in all_windows if w <= train_window] if config.train_windows == "all" else [train_window]
        paths = [window_path(task_dir, w, "train") for w in fit_windows]
        train = pd.concat([pd.read_parquet(p, columns=columns) for p in paths if n_rows(p) > 0],
                          ignore_index=True)
        eval_path = window_path(task_dir, eval_window, data_args.eval_split)
        if n_rows(eval_path) == 0 or train.empty:
            logger.warning("window %d -> %d: no rows to train on or to evaluate", train_window, eval_window)
            rows, metrics = 0, dict[str, float]()
        else:
            evaluate = pd.read_parquet(eval_path, columns=columns)
            frame = fit_predict(train, evaluate, spec, config, seed=training_args.seed + train_window)
            rows, metrics = len(frame), ranking_metrics(frame)
        records.append({"train_window": train_window, "eval_window": eval_window, "n_rows": int(rows), **metrics})
        logger.info("gbdt window %d -> %d: %s", train_window, eval_window, metrics)
        RunResults(task="ranking", model=config.name, config=dataclasses.asdict(config),
                   windows=records).write(run_dir)
    results = RunResults(task="ranking", model=config.name, config=dataclasses.asdict(config), windows=records)
    results.write(run_dir)
    plot_windows(results, run_dir / "plots")
    return {"run_dir": str(run_dir), "average": results.average, "windows": records}
