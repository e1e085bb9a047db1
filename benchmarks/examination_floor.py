"""How close can a bias tower's curve get to the planted one? The sampling floor and the confounding, measured.

A tower's learned examination curve (``max |log ratio|`` against ``truth/bias_curve.json``) has two errors
besides the training itself: the clicks' sampling noise, and the relevance its model misses, which a policy that
orders lists by relevance moves into the position effect. For each ``WORK/seedS`` of ``paper_table.py --work``
(``raw/``, ``data/``, ``runs/PRESET``) this fits the examination curve by maximum likelihood
(``t4r_dmt.analysis.fitted_curve``) on the training rows of every window the run's last checkpoint trained on:

* ``oracle``: with the planted relevance ``p_click_relevance``: the floor that sampling noise sets on those rows;
* ``model``: with the run's served click probability (its last checkpoint): the curve the tower converges to
  given the relevance it has; its excess over the floor is the confounding;

* ``inputs``: with a relevance read from the model's own inputs by regression on the truth
  (:func:`inputs_relevance`: LightGBM on every scalar input of the rows, the target the planted relevance
  logit, predicted out of fold): the curve a click model would reach if it learned from its inputs all the
  relevance they carry; between ``oracle`` and ``model``, it says whether the confounding is in the data's
  inputs or in what the model learns from the clicks;

beside the tower's own learned curve, and ``oracle_all_days``: the floor on every impression of ``raw/``; and
``oracle_monotone`` / ``model_monotone`` / ``inputs_monotone``: the fits made non-increasing down the list
(:func:`monotone_fit`), the floor and the convergence point of a ``bias.kind monotone`` tower. ``r2`` is the
share of the planted relevance logit's variance that the run's served logit explains (a linear fit, so a
scale or level error costs nothing) and the out-of-fold R² of ``inputs``.

Usage: ``python benchmarks/examination_floor.py --work WORK --seeds 5 --preset dmt_bias_multiplicative
--out benchmarks/results/examination_floor.json``
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.isotonic import IsotonicRegression

from t4r_dmt.analysis import fitted_curve, load_bias_curve, max_log_ratio, run_position_curve
from t4r_dmt.io_utils import write_json
from t4r_dmt.metrics.seeds import mean_std
from t4r_dmt.synth.events import logit, sigmoid

#: columns of a ranking window that are not model inputs, or that are the position the curve is fitted on
NOT_INPUTS = ("request_id", "window", "product_id", "user_id", "click", "order", "position_index", "position_page")
CATEGORICAL_INPUTS = ("item_id", "item_category", "item_brand", "last_click_category")


def _window_rows(run: Path, data: Path, tmp: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The training rows of windows 1..T, T the run's last checkpoint, as two aligned frames: ``click``,
    ``position`` (0-based), ``request_id``, ``product_id`` and the last checkpoint's ``p_click``; and every scalar
    input of the rows (:func:`_scalar_inputs`)."""
    from t4r_dmt.training.predict import PredictArguments, last_checkpoint
    from t4r_dmt.training.predict import run as predict
    from t4r_dmt.windows import list_windows, window_path

    last = last_checkpoint(run)
    frames, inputs = [], []
    for t in [w for w in list_windows(data / "ranking") if w <= last]:
        out = tmp / f"{t}.parquet"
        predict(PredictArguments(run=str(run), data=str(data), window=t, out=str(out), split="train",
                                 checkpoint_window=last))
        scored = pd.read_parquet(out, columns=["request_id", "product_id", "p_click"])
        rows = pd.read_parquet(window_path(data / "ranking", t, "train"))
        frames.append(scored.assign(position=rows["position_index"].to_numpy() - 1, click=rows["click"].to_numpy()))
        inputs.append(_scalar_inputs(rows))
    return pd.concat(frames, ignore_index=True), pd.concat(inputs, ignore_index=True)


def _scalar_inputs(rows: pd.DataFrame) -> pd.DataFrame:
    """Every scalar input of ranking ``rows`` (N rows), plus ``last_click_category``, the category of the user's
    most recent click (-1 without one)."""
    scalar = rows[[c for c in rows.columns if c not in NOT_INPUTS and rows[c].dtype != object]].copy()
    scalar["last_click_category"] = [int(s[-1]) if len(s) else -1 for s in rows["click_category_seq"]]
    return scalar


def inputs_relevance(inputs: pd.DataFrame, relevance: np.ndarray, groups: np.ndarray, seed: int = 0,
                     folds: int = 5) -> np.ndarray:
    """The planted click probability ``relevance`` (N,) as far as the ``inputs`` (N rows) carry it: a LightGBM
    regression of its logit on them, predicted out of fold (``GroupKFold`` over ``groups``, the request ids, so a
    list is never split), returned as probabilities (N,)."""
    import lightgbm as lgb
    from sklearn.model_selection import GroupKFold

    target = _clipped_logit(relevance)
    predicted = np.empty(len(target))
    categorical = [c for c in CATEGORICAL_INPUTS if c in inputs.columns]
    for train, held_out in GroupKFold(n_splits=folds).split(inputs, target, groups):
        model = lgb.LGBMRegressor(n_estimators=600, learning_rate=0.05, num_leaves=63, min_child_samples=20,
                                  random_state=seed, n_jobs=1, verbose=-1)
        model.fit(inputs.iloc[train], target[train], categorical_feature=categorical)
        predicted[held_out] = model.predict(inputs.iloc[held_out])
    return sigmoid(predicted)


def _clipped_logit(p: np.ndarray) -> np.ndarray:
    """Logit of probabilities (N,) clipped into [1e-6, 1 - 1e-6], so a rate of 0 or 1 stays finite."""
    return logit(np.clip(np.asarray(p, dtype=np.float64), 1e-6, 1 - 1e-6))


def explained_share(predicted: np.ndarray, relevance: np.ndarray) -> float:
    """Share of the variance of the relevance logit (N,) that a linear function of ``predicted``'s logit explains."""
    return float(np.corrcoef(_clipped_logit(predicted), _clipped_logit(relevance))[0, 1] ** 2)


def monotone_fit(curve: np.ndarray, click: pd.Series, position: pd.Series) -> np.ndarray:
    """``curve`` (P,) log examination made non-increasing in the position: the weighted isotonic regression
    (``sklearn.isotonic.IsotonicRegression``) with each position weighted by its clicks, which approximates the
    maximum-likelihood curve under the constraint (a position's log-rate variance is about 1 / its clicks)."""
    weights = np.bincount(np.asarray(position), weights=np.asarray(click, dtype=float), minlength=len(curve))
    weights = np.maximum(weights[: len(curve)], 1e-9)
    index = np.arange(len(curve))
    return np.asarray(IsotonicRegression(increasing=False).fit(index, curve, sample_weight=weights).predict(index))


def floor_of_seed(seed_dir: Path, preset: str) -> dict[str, Any]:
    """The fits and the learned curve of ``seed_dir/runs/preset``, as max |log ratio| and curves, and the
    explained shares ``r2``."""
    truth_dir, data, run = seed_dir / "raw" / "truth", seed_dir / "data", seed_dir / "runs" / preset
    planted = load_bias_curve(truth_dir)
    n = len(planted)
    truth = pd.read_parquet(truth_dir / "impressions_truth.parquet",
                            columns=["request_id", "product_id", "position", "p_click_relevance"])
    with tempfile.TemporaryDirectory() as tmp:
        rows, inputs = _window_rows(run, data, Path(tmp))
    rows = pd.concat([rows, inputs], axis=1)
    rows = rows.merge(truth[["request_id", "product_id", "p_click_relevance"]], on=["request_id", "product_id"],
                      how="inner", validate="many_to_one")
    impressions = pd.read_parquet(seed_dir / "raw" / "impressions.parquet", columns=["request_id", "product_id",
                                                                                      "click"])
    every = impressions.merge(truth, on=["request_id", "product_id"], validate="one_to_one")
    probe = inputs_relevance(rows[inputs.columns], rows["p_click_relevance"].to_numpy(), rows["request_id"].to_numpy())
    curves = {
        "learned": run_position_curve(run, data, n),
        "oracle": fitted_curve(rows["click"], rows["p_click_relevance"], rows["position"], n),
        "model": fitted_curve(rows["click"], rows["p_click"], rows["position"], n),
        "inputs": fitted_curve(rows["click"], probe, rows["position"], n),
        "oracle_all_days": fitted_curve(every["click"].astype(float), every["p_click_relevance"], every["position"], n),
    }
    for kind in ("oracle", "model", "inputs"):
        curves[f"{kind}_monotone"] = monotone_fit(curves[kind], rows["click"], rows["position"])
    r2 = {"model": explained_share(rows["p_click"].to_numpy(), rows["p_click_relevance"].to_numpy()),
          "inputs": explained_share(probe, rows["p_click_relevance"].to_numpy())}
    return {"rows": len(rows), "rows_all_days": len(every), "r2": r2,
            "max_log_ratio": {k: max_log_ratio(v, planted) for k, v in curves.items()},
            "curves": {k: [float(x) for x in v] for k, v in curves.items()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--work", type=Path, required=True, help="paper_table.py --work folder (seed0, seed1, ...)")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--preset", default="dmt_bias_multiplicative", help="the run folder under runs/")
    parser.add_argument("--out", type=Path, required=True, help="JSON output")
    args = parser.parse_args()
    per_seed = {s: floor_of_seed(args.work / f"seed{s}", args.preset) for s in range(args.seeds)}
    kinds = ("learned", "model", "inputs", "oracle", "oracle_all_days", "model_monotone", "inputs_monotone",
             "oracle_monotone")
    print(f"max |log ratio| against the planted curve, {args.preset}, {args.work}")
    print("| seed | rows | learned (tower) | fit, model's relevance | fit, inputs' relevance | fit, planted relevance "
          "| same, all days | monotone fits: model's | inputs' | planted | R² model | R² inputs |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for s, r in per_seed.items():
        print(f"| {s} | {r['rows']} | " + " | ".join(f"{r['max_log_ratio'][k]:.3f}" for k in kinds)
              + f" | {r['r2']['model']:.3f} | {r['r2']['inputs']:.3f} |")
    summary = {k: list(mean_std([r["max_log_ratio"][k] for r in per_seed.values()])) for k in kinds}
    r2 = {k: list(mean_std([r["r2"][k] for r in per_seed.values()])) for k in ("model", "inputs")}
    print("| mean ± std | | " + " | ".join(f"{m:.3f} ± {s:.3f}" for m, s in (*summary.values(), *r2.values())) + " |")
    write_json(args.out, {"work": str(args.work), "preset": args.preset, "mean_std": summary, "r2": r2,
                          "per_seed": {str(s): r for s, r in per_seed.items()}})


if __name__ == "__main__":
    main()
