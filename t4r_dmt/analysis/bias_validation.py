"""Bias validation on synthetic data: does the bias tower learn the planted position curve, and does a
debiased served score rank by true relevance better?

* ``position_curve``: the bias tower's log examination per position (``BiasTower.examination_curve``: the
  logit ``y_b`` for the additive form, ``log sigmoid(y_b)`` for the multiplicative one, ``min(y_b, 0)`` for
  "pbm"), every other input (page, target and neighbour categories) taken from the data's rows and averaged:
  for position p every row is re-scored with ``position_index = p + 1`` and the page the data shows at p.
* ``spearman`` of that curve against ``truth/bias_curve.json`` (the planted examination probability), and
  ``max_log_ratio``: the largest error of the learned curve in log space, both curves aligned at position 0.
* ``relevance_ndcg``: NDCG@k of a served score within each request, with the planted click relevance
  ``p_click_relevance`` of ``truth/impressions_truth.parquet`` as the gain (not the position-biased clicks).
* ``relevance_auc``: the served score's AUC against the relevance oracle: the expected AUC over clicks drawn
  from ``p_click_relevance`` alone, as if every impression were examined (no position bias).
* ``promoted_overrating``: on ``--policy promotion`` data, how much more the served score puts the promoted
  items in its top k than the true relevance does (0 for an unbiased score).
* ``run_position_curve``: ``position_curve`` of a run's last checkpoint (NaN without a bias tower).
* ``fitted_curve``: the maximum-likelihood examination curve of logged clicks *given* a relevance estimate (the
  multiplicative click model with the relevance held fixed): with the planted relevance it is the best any
  tower can do on those rows (their sampling noise); with a model's served relevance, the curve its tower
  converges to, whose excess over that floor is the confounding the model's relevance leaves.
* ``validate_run``: all of them, for one run folder of ``t4r-dmt train``; ``compare_runs``: a run against a
  run without a bias tower on the same data.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from scipy.stats import spearmanr

from t4r_dmt.errors import InputError
from t4r_dmt.metrics.ranking import ndcg_at_k
from t4r_dmt.model.bias import BiasTower
from t4r_dmt.model.features import NEIGHBORS, PAGE, POSITION

TRUTH_FILE = "impressions_truth.parquet"
TRUTH_COLUMNS = ["request_id", "product_id", "p_click_relevance"]
PROMOTED = "promoted"  # the truth's column of ``t4r-dmt synth --policy promotion``
PREDICTIONS = "predictions"  # how an error names the scored impressions (an in-memory frame)
KEY = ["request_id", "product_id"]


@dataclass(frozen=True)
class BiasValidation:
    """One run against the planted truth.

    ``spearman``: of the learned position curve vs the planted one, and ``max_log_ratio`` (see
    ``max_log_ratio``), both NaN without a bias tower; ``learned_curve``: (P,) the learned log examination
    per position 0..P-1; ``planted_curve``: (P,) the planted examination probability; ``relevance_ndcg``:
    NDCG@k of the served score against true relevance and ``promoted_overrating`` (NaN unless the truth
    has promoted items), both averaged over the evaluated windows; ``k``: their cut-off; ``relevance_auc``:
    the served score's AUC against the relevance oracle (``relevance_auc``), averaged over the windows.
    """

    spearman: float
    max_log_ratio: float
    learned_curve: list[float]
    planted_curve: list[float]
    relevance_ndcg: float
    promoted_overrating: float
    k: int = 10
    relevance_auc: float = float("nan")

    def to_dict(self) -> dict[str, Any]:
        return {"spearman": self.spearman, "max_log_ratio": self.max_log_ratio, "learned_curve": self.learned_curve,
                "planted_curve": self.planted_curve, f"relevance_ndcg@{self.k}": self.relevance_ndcg,
                f"promoted_overrating@{self.k}": self.promoted_overrating, "relevance_auc": self.relevance_auc}


def load_bias_curve(truth_dir: str | Path) -> np.ndarray:
    """The planted curve ``bias[position]`` (P,) of ``truth_dir/bias_curve.json`` (positions 0..P-1)."""
    path = Path(truth_dir) / "bias_curve.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: is {truth_dir} the truth/ folder of `t4r-dmt synth`?")
    data = json.loads(path.read_text())
    for key in ("position", "bias"):
        if key not in data:
            raise InputError(str(path), f"has no {key!r} list", column=key)
    positions = np.asarray(data["position"], dtype=np.int64)
    if not np.array_equal(positions, np.arange(len(positions))):
        raise InputError(str(path), "positions must be 0, 1, ..., P-1", column="position")
    return np.asarray(data["bias"], dtype=np.float64)


def spearman(learned: np.ndarray, planted: np.ndarray) -> float:
    """Spearman rank correlation of two (P,) curves; NaN if either is constant."""
    learned, planted = np.asarray(learned, dtype=np.float64), np.asarray(planted, dtype=np.float64)
    if learned.shape != planted.shape or learned.ndim != 1:
        raise ValueError(f"curves must be 1-D of one length; got {learned.shape} and {planted.shape}")
    if np.ptp(learned) == 0 or np.ptp(planted) == 0:
        return float("nan")
    return float(spearmanr(learned, planted).statistic)


def max_log_ratio(learned_log: np.ndarray, planted: np.ndarray) -> float:
    """The largest error of a learned log-examination curve, both curves aligned at position 0.

    ``max_p |(learned_log[p] - learned_log[0]) - (log planted[p] - log planted[0])|`` over (P,) curves: 0 when
    the learned curve is the planted one up to a constant (the bias tower cannot tell its level from the
    relevance's); NaN when the learned curve has a NaN (no bias tower).
    """
    learned, planted = np.asarray(learned_log, dtype=np.float64), np.asarray(planted, dtype=np.float64)
    if learned.shape != planted.shape or learned.ndim != 1 or len(learned) == 0:
        raise ValueError(f"curves must be 1-D of one length >= 1; got {learned.shape} and {planted.shape}")
    if not (planted > 0).all():
        raise ValueError(f"the planted examination curve must be > 0 everywhere, got {planted.tolist()}")
    if np.isnan(learned).any():
        return float("nan")
    log_planted = np.log(planted)
    return float(np.max(np.abs((learned - learned[0]) - (log_planted - log_planted[0]))))


def _mode(values: pd.Series) -> int:
    return int(values.mode().iloc[0])


def _pages_by_position(frame: pd.DataFrame, n_positions: int) -> np.ndarray:
    """The most frequent ``position_page`` code at each position 0..P-1 (P,), else ``p // 10 + 1``."""
    pages = np.arange(n_positions) // 10 + 1
    seen = frame.groupby(POSITION)[PAGE].agg(_mode)
    for code, page in seen.items():
        if 1 <= int(code) <= n_positions:
            pages[int(code) - 1] = int(page)
    return pages


def position_curve(bias_tower: BiasTower, frame: pd.DataFrame, n_positions: int) -> np.ndarray:
    """Mean learned log examination per position (``BiasTower.examination_curve`` over the frame's rows).

    Parameters
    ----------
    bias_tower: a trained ``BiasTower``; its ``examination_log`` is in the form's scale (multiplicative:
        ``log sigmoid(y_b)``; pbm: ``min(y_b, 0)``; additive: ``y_b``, as ``sigma(u + y_b) ~ e^y_b sigma(u)`` for small click rates).
    frame: ranking rows with ``position_index``, ``position_page``, ``item_category`` and
        ``neighbor_category_seq`` (N rows).
    n_positions: P, the number of positions to read out (0..P-1).

    Returns
    -------
    (P,) float64: for position p, the tower's log examination averaged over all N rows re-scored at p.
    """
    missing = [c for c in (POSITION, PAGE, NEIGHBORS, "item_category") if c not in frame.columns]
    if missing:
        raise ValueError(f"position_curve: frame lacks column(s) {missing}")
    if len(frame) == 0 or n_positions < 1:
        raise ValueError("position_curve needs at least one row and one position")
    neighbors = np.zeros((len(frame), 6), dtype=np.int64)
    for i, values in enumerate(frame[NEIGHBORS]):
        row = np.asarray(values if values is not None else [], dtype=np.int64)[:6]
        neighbors[i, : len(row)] = row
    category = torch.as_tensor(frame["item_category"].to_numpy(dtype=np.int64))
    positions = torch.arange(1, n_positions + 1)  # position p is code p + 1
    pages = torch.as_tensor(_pages_by_position(frame, n_positions), dtype=torch.long)
    curve = bias_tower.examination_curve(torch.as_tensor(neighbors), category, positions, pages)
    return np.asarray(curve.double().numpy())


def fitted_curve(click: np.ndarray, relevance: np.ndarray, position: np.ndarray, n_positions: int) -> np.ndarray:
    """Maximum-likelihood log examination per position, the relevance held fixed (PAL's click model).

    For each position p, ``argmax_e sum_i c_i log(q_i e) + (1 - c_i) log(1 - q_i e)`` over its rows, with
    ``e`` in ``(0, 1 / max q_i]`` (``scipy.optimize.minimize_scalar``, bounded, on log e down to -20): a
    one-dimensional concave problem per position.

    Parameters
    ----------
    click: (N,) 0/1 logged clicks.
    relevance: (N,) click probability if examined, q_i in [0, 1] (clipped into [1e-9, 1 - 1e-9]).
    position: (N,) 0-based list positions; rows at ``n_positions`` or deeper are ignored.
    n_positions: P.

    Returns
    -------
    (P,) float64 log examination; NaN at a position without rows.
    """
    from scipy.optimize import minimize_scalar

    click, relevance = np.asarray(click, dtype=np.float64), np.asarray(relevance, dtype=np.float64)
    position = np.asarray(position)
    if not len(click) == len(relevance) == len(position):
        raise ValueError(f"fitted_curve: click, relevance and position must have one length; got {len(click)}, "
                         f"{len(relevance)}, {len(position)}")
    if n_positions < 1:
        raise ValueError(f"fitted_curve: n_positions must be >= 1, got {n_positions}")
    if not np.isin(click, (0.0, 1.0)).all():
        raise ValueError("fitted_curve: click must be 0 or 1")
    if np.isnan(relevance).any() or (relevance < 0).any() or (relevance > 1).any():
        raise ValueError("fitted_curve: relevance must be probabilities in [0, 1]")
    if (position < 0).any():
        raise ValueError(f"fitted_curve: positions are 0-based, got {int(position.min())}")
    q = np.clip(relevance, 1e-9, 1 - 1e-9)
    curve = np.full(n_positions, np.nan)
    for p in range(n_positions):
        rows = position == p
        if not rows.any():
            continue
        c, qp = click[rows], q[rows]

        def neg_log_likelihood(log_e: float, c: np.ndarray = c, qp: np.ndarray = qp) -> float:
            pe = np.minimum(qp * np.exp(log_e), 1 - 1e-12)
            return float(-(c * np.log(pe) + (1 - c) * np.log1p(-pe)).sum())

        curve[p] = minimize_scalar(neg_log_likelihood, bounds=(-20.0, -float(np.log(qp.max()))),
                                   method="bounded", options={"xatol": 1e-6}).x
    return curve


def _join_truth(predictions: pd.DataFrame, truth: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """``predictions`` (request_id, product_id, score) with the truth's ``columns`` of each impression.

    Raises ``InputError`` for a missing column, an impression the truth repeats, or a scored impression
    without its truth row (naming the first such row and its request id).
    """
    for frame, file, needed in ((predictions, PREDICTIONS, [*KEY, "score"]), (truth, TRUTH_FILE, [*KEY, *columns])):
        missing = [c for c in needed if c not in frame.columns]
        if missing:
            raise InputError(file, f"has no {missing[0]!r} column", column=missing[0])
    repeated = truth.duplicated(KEY).to_numpy()
    if repeated.any():
        row = int(np.flatnonzero(repeated)[0])
        raise InputError(TRUTH_FILE, "repeats an impression (request_id, product_id)", column="product_id", row=row,
                         value=_plain(truth["product_id"].iloc[row]))
    joined = predictions[[*KEY, "score"]].merge(truth[[*KEY, *columns]], on=KEY, how="left", validate="many_to_one")
    lost = joined[columns[0]].isna().to_numpy()
    if lost.any():
        row = int(np.flatnonzero(lost)[0])
        raise InputError(TRUTH_FILE, "has no row for a scored impression", column="request_id", row=row,
                         value=_plain(joined["request_id"].iloc[row]))
    return joined


def _plain(value: Any) -> Any:
    """A numpy scalar as the Python value (an id in an error message reads ``5``, not ``np.int64(5)``)."""
    return value.item() if isinstance(value, np.generic) else value


def relevance_ndcg(predictions: pd.DataFrame, truth: pd.DataFrame, k: int = 10) -> float:
    """NDCG@k of ``predictions.score`` within each request, gain = planted ``p_click_relevance``.

    ``predictions``: ``request_id, product_id, score``; ``truth``: ``request_id, product_id,
    p_click_relevance``. Every prediction must find its truth row.
    """
    return _relevance_ndcg_of(_join_truth(predictions, truth, ["p_click_relevance"]), k)


def _relevance_ndcg_of(joined: pd.DataFrame, k: int) -> float:
    """``relevance_ndcg`` of predictions already joined with their truth (``_join_truth``)."""
    return ndcg_at_k(joined["p_click_relevance"].to_numpy(), joined["score"].to_numpy(),
                     joined["request_id"].to_numpy(), k)


def relevance_auc(predictions: pd.DataFrame, truth: pd.DataFrame) -> float:
    """The served score's AUC against the relevance oracle: its expected ROC AUC over clicks drawn from the
    planted ``p_click_relevance`` alone (every impression examined, no position bias).

    Each impression counts once as a positive with weight p and once as a negative with weight 1 - p
    (``sklearn.metrics.roc_auc_score`` with sample weights): the expected concordant pairs over the expected
    pairs, ties one half (each row also meets its own negative copy, a tie: a term of order 1/N). A score
    ordered like ``p_click_relevance`` reaches the oracle's own value (0.78 on the default synthetic data); a
    score that carries the position's effect falls below it.

    ``predictions``: ``request_id, product_id, score``; ``truth``: ``request_id, product_id,
    p_click_relevance``. Every prediction must find its truth row; NaN when every p is 0 or every p is 1.
    """
    return _relevance_auc_of(_join_truth(predictions, truth, ["p_click_relevance"]))


def _relevance_auc_of(joined: pd.DataFrame) -> float:
    """``relevance_auc`` of predictions already joined with their truth (``_join_truth``)."""
    from sklearn.metrics import roc_auc_score

    p = joined["p_click_relevance"].to_numpy(dtype=np.float64)
    if not ((p > 0).any() and (p < 1).any()):
        return float("nan")
    score = joined["score"].to_numpy(dtype=np.float64)
    labels = np.r_[np.ones(len(p)), np.zeros(len(p))]
    return float(roc_auc_score(labels, np.r_[score, score], sample_weight=np.r_[p, 1.0 - p]))


def _promoted_in_top(request: np.ndarray, score: np.ndarray, promoted: np.ndarray, k: int,
                     n_requests: int) -> np.ndarray:
    """Promoted items among each request's k highest scores: (N,) codes 0..R-1, (N,), (N,) bool -> (R,).

    Ties keep the rows' order, so two equal score columns pick the same items."""
    order = np.lexsort((-score, request))
    code = request[order]
    rank = np.arange(len(order)) - np.searchsorted(code, code, side="left")
    top = rank < k
    return np.bincount(code[top], weights=promoted[order][top].astype(np.float64), minlength=n_requests)


def promoted_overrating(predictions: pd.DataFrame, truth: pd.DataFrame, k: int = 10) -> float:
    """How much more a served score puts promoted items in its top k than the true relevance does.

    Over the requests with at least one promoted candidate, the mean of (share of promoted items among the
    top k by ``predictions.score``) - (share of promoted items among the top k by the planted
    ``p_click_relevance``); a share is taken of min(k, list length) items. ~0 for an unbiased score; > 0 for
    a model that learned the logging policy's promotion as relevance. NaN when no request has a promoted item.

    Parameters
    ----------
    predictions: ``request_id, product_id, score`` (N rows).
    truth: ``request_id, product_id, p_click_relevance, promoted`` of ``t4r-dmt synth --policy promotion``.
    k: the cut-off.

    Raises
    ------
    InputError: the truth has no ``promoted`` column (not promotion data), or a prediction finds no truth row.
    """
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    if PROMOTED not in truth.columns:
        raise InputError(TRUTH_FILE, "has no 'promoted' column: it is not the truth of `t4r-dmt synth --policy "
                         "promotion`", column=PROMOTED)
    return _promoted_overrating_of(_join_truth(predictions, truth, ["p_click_relevance", PROMOTED]), k)


def _promoted_overrating_of(joined: pd.DataFrame, k: int) -> float:
    """``promoted_overrating`` of predictions already joined with their truth (``_join_truth``, with
    ``promoted``)."""
    codes, uniques = pd.factorize(joined["request_id"])
    promoted = joined[PROMOTED].to_numpy(dtype=bool)
    n = len(uniques)
    size = np.minimum(np.bincount(codes, minlength=n), k)
    served = _promoted_in_top(codes, joined["score"].to_numpy(dtype=np.float64), promoted, k, n)
    true = _promoted_in_top(codes, joined["p_click_relevance"].to_numpy(dtype=np.float64), promoted, k, n)
    with_promoted = np.bincount(codes, weights=promoted.astype(np.float64), minlength=n) > 0
    if not with_promoted.any():
        return float("nan")
    return float(np.mean((served - true)[with_promoted] / size[with_promoted]))


def _bias_tower(model: torch.nn.Module) -> BiasTower | None:
    for module in model.modules():
        tower = getattr(module, "bias_tower", None)
        if isinstance(tower, BiasTower):
            return tower
    return None


def read_truth(truth_dir: str | Path) -> pd.DataFrame:
    """``truth_dir/impressions_truth.parquet``: the columns the validation reads (``promoted`` where present)."""
    import pyarrow.parquet as pq

    path = Path(truth_dir) / TRUTH_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: is {truth_dir} the truth/ folder of `t4r-dmt synth`?")
    names = pq.read_schema(path).names
    missing = [c for c in TRUTH_COLUMNS if c not in names]
    if missing:
        raise InputError(str(path), f"has no {missing[0]!r} column", column=missing[0])
    return pd.read_parquet(path, columns=TRUTH_COLUMNS + ([PROMOTED] if PROMOTED in names else []))


def validate_run(run_dir: str | Path, data_dir: str | Path, truth_dir: str | Path, k: int = 10) -> BiasValidation:
    """Bias validation of one ``t4r-dmt train`` ranking run over the synthetic data it was trained on.

    The relevance NDCG and the promoted over-rating (on promotion data) score window t+1's ``valid`` split
    with the weights after window t (the loop's own protocol) and average over the windows; the position
    curve reads the last checkpoint's bias tower on the last window's rows.
    """
    from t4r_dmt.training.predict import PredictArguments, last_checkpoint
    from t4r_dmt.training.predict import run as predict
    from t4r_dmt.windows import list_windows

    run_dir, data_dir = Path(run_dir), Path(data_dir)
    planted = load_bias_curve(truth_dir)
    truth = read_truth(truth_dir)
    task_dir = data_dir / "ranking"
    windows = list_windows(task_dir)
    last = last_checkpoint(run_dir)
    ndcgs, aucs, overratings = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        for t in windows[:-1]:
            if t > last or not (run_dir / "checkpoints" / f"window_{t:04d}" / "model.pt").exists():
                continue
            out = Path(tmp) / f"{t}.parquet"
            predict(PredictArguments(run=str(run_dir), data=str(data_dir), window=t + 1, out=str(out),
                                     split="valid", checkpoint_window=t))
            joined = _join_truth(pd.read_parquet(out), truth, [c for c in truth.columns if c not in KEY])
            ndcgs.append(_relevance_ndcg_of(joined, k))
            aucs.append(_relevance_auc_of(joined))
            if PROMOTED in truth.columns:
                overratings.append(_promoted_overrating_of(joined, k))
    learned = run_position_curve(run_dir, data_dir, len(planted))
    has_tower = not np.isnan(learned).any()
    return BiasValidation(
        spearman=spearman(learned, planted) if has_tower else float("nan"),
        max_log_ratio=max_log_ratio(learned, planted),
        learned_curve=[float(v) for v in learned], planted_curve=[float(v) for v in planted],
        relevance_ndcg=_mean(ndcgs), promoted_overrating=_mean(overratings), k=k, relevance_auc=_mean(aucs),
    )


def run_position_curve(run_dir: str | Path, data_dir: str | Path, n_positions: int) -> np.ndarray:
    """The learned log examination per position 0..P-1 of a ranking run's last checkpoint (``position_curve``
    of its bias tower over the rows of the data's last window), (P,); all NaN when the model has no bias tower."""
    from t4r_dmt.run_folder import load_schema
    from t4r_dmt.training.predict import last_checkpoint, load_run_model
    from t4r_dmt.windows import list_windows, window_path

    run_dir, task_dir = Path(run_dir), Path(data_dir) / "ranking"
    model, _ = load_run_model(run_dir, load_schema(task_dir), last_checkpoint(run_dir))
    tower = _bias_tower(model)
    if tower is None:
        return np.full(n_positions, np.nan)
    rows = pd.read_parquet(window_path(task_dir, list_windows(task_dir)[-1], "train"))
    return position_curve(tower, rows, n_positions)


def _mean(values: list[float]) -> float:
    finite = [v for v in values if not np.isnan(v)]
    return float(np.mean(finite)) if finite else float("nan")


def comparison(run: BiasValidation, no_bias: BiasValidation) -> dict[str, Any]:
    """A run's validation beside a run without a bias tower on the same data, and the differences (run minus
    no-bias run) of the served-score measures: a debiasing tower should raise ``relevance_ndcg@k`` and
    ``relevance_auc`` and lower ``promoted_overrating@k``."""
    if run.k != no_bias.k:
        raise ValueError(f"compare validations of one cut-off; got k = {run.k} and {no_bias.k}")
    return {
        "run": run.to_dict(), "no_bias_run": no_bias.to_dict(),
        "difference": {f"relevance_ndcg@{run.k}": run.relevance_ndcg - no_bias.relevance_ndcg,
                       f"promoted_overrating@{run.k}": run.promoted_overrating - no_bias.promoted_overrating,
                       "relevance_auc": run.relevance_auc - no_bias.relevance_auc},
    }


def compare_runs(run_dir: str | Path, no_bias_run_dir: str | Path, data_dir: str | Path, truth_dir: str | Path,
                 k: int = 10) -> dict[str, Any]:
    """``validate_run`` of a run and of a run without a bias tower (e.g. the ``dmt_no_bias`` preset) trained on
    the same data; their ``comparison``."""
    return comparison(validate_run(run_dir, data_dir, truth_dir, k), validate_run(no_bias_run_dir, data_dir,
                                                                                     truth_dir, k))
