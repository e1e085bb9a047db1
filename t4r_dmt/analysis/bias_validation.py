"""Bias validation on synthetic data: does the bias tower learn the planted position curve, and does a
debiased served score rank by true relevance better?

* ``position_curve``: the bias tower's logit per position, every other input (page, target and neighbour
  categories) taken from the data's rows and averaged: for position p every row is re-scored with
  ``position_index = p + 1`` and the page the data shows at p.
* ``spearman`` of that curve against ``truth/bias_curve.json`` (the planted examination probability).
* ``relevance_ndcg``: NDCG@k of a served score within each request, with the planted click relevance
  ``p_click_relevance`` of ``truth/impressions_truth.parquet`` as the gain (not the position-biased clicks).
* ``validate_run``: both, for one run folder of ``t4r-dmt train``.
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
from t4r_dmt.model.features import NEIGHBORS, PAGE, POSITION
from t4r_dmt.model.inputs import BiasBatch

TRUTH_COLUMNS = ["request_id", "product_id", "p_click_relevance"]


@dataclass(frozen=True)
class BiasValidation:
    """``spearman``: of the learned position curve vs the planted one (NaN without a bias tower);
    ``learned_curve``, ``planted_curve``: (P,) per position 0..P-1; ``relevance_ndcg``: NDCG@10 of the
    served score against true relevance, averaged over the evaluated windows."""

    spearman: float
    learned_curve: list[float]
    planted_curve: list[float]
    relevance_ndcg: float

    def to_dict(self) -> dict[str, Any]:
        return {"spearman": self.spearman, "learned_curve": self.learned_curve,
                "planted_curve": self.planted_curve, "relevance_ndcg@10": self.relevance_ndcg}


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


def position_curve(bias_tower: torch.nn.Module, frame: pd.DataFrame, n_positions: int) -> np.ndarray:
    """Mean bias logit per position.

    Parameters
    ----------
    bias_tower: a trained ``BiasTower`` (``(BiasBatch, category (B,)) -> (B,)``).
    frame: ranking rows with ``position_index``, ``position_page``, ``item_category`` and
        ``neighbor_category_seq`` (N rows).
    n_positions: P, the number of positions to read out (0..P-1).

    Returns
    -------
    (P,) float64: for position p, the tower's logit averaged over all N rows re-scored at p.
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
    neighbor_t = torch.as_tensor(neighbors)
    pages = _pages_by_position(frame, n_positions)
    curve = np.zeros(n_positions)
    was_training = bias_tower.training
    bias_tower.eval()
    with torch.no_grad():
        for p in range(n_positions):
            position = torch.full((len(frame),), p + 1, dtype=torch.long)
            page = torch.full((len(frame),), int(pages[p]), dtype=torch.long)
            curve[p] = float(bias_tower(BiasBatch(position, page, neighbor_t), category).mean())
    bias_tower.train(was_training)
    return curve


def relevance_ndcg(predictions: pd.DataFrame, truth: pd.DataFrame, k: int = 10) -> float:
    """NDCG@k of ``predictions.score`` within each request, gain = planted ``p_click_relevance``.

    ``predictions``: ``request_id, product_id, score``; ``truth``: ``request_id, product_id,
    p_click_relevance``. Every prediction must find its truth row.
    """
    joined = predictions[["request_id", "product_id", "score"]].merge(
        truth[TRUTH_COLUMNS], on=["request_id", "product_id"], how="left", validate="many_to_one")
    lost = joined["p_click_relevance"].isna()
    if lost.any():
        row = joined[lost].iloc[0]
        raise InputError("impressions_truth.parquet", "has no row for a scored impression", column="request_id",
                         row=int(np.flatnonzero(lost.to_numpy())[0]), value=int(row["request_id"]))
    return ndcg_at_k(joined["p_click_relevance"].to_numpy(), joined["score"].to_numpy(),
                     joined["request_id"].to_numpy(), k)


def _bias_tower(model: torch.nn.Module) -> torch.nn.Module | None:
    for module in model.modules():
        tower = getattr(module, "bias_tower", None)
        if isinstance(tower, torch.nn.Module):
            return tower
    return None


def validate_run(run_dir: str | Path, data_dir: str | Path, truth_dir: str | Path, k: int = 10) -> BiasValidation:
    """Bias validation of one ``t4r-dmt train`` ranking run over the synthetic data it was trained on.

    The relevance NDCG scores window t+1's ``valid`` split with the weights after window t (the loop's own
    protocol) and averages over the windows; the position curve reads the last checkpoint's bias tower on
    the last window's rows.
    """
    from t4r_dmt.run_folder import load_schema
    from t4r_dmt.training.predict import PredictArguments, last_checkpoint, load_run_model
    from t4r_dmt.training.predict import run as predict
    from t4r_dmt.windows import list_windows, window_path

    run_dir, data_dir = Path(run_dir), Path(data_dir)
    planted = load_bias_curve(truth_dir)
    truth = pd.read_parquet(Path(truth_dir) / "impressions_truth.parquet", columns=TRUTH_COLUMNS)
    task_dir = data_dir / "ranking"
    windows = list_windows(task_dir)
    last = last_checkpoint(run_dir)
    scores = []
    with tempfile.TemporaryDirectory() as tmp:
        for t in windows[:-1]:
            if t > last or not (run_dir / "checkpoints" / f"window_{t:04d}" / "model.pt").exists():
                continue
            out = Path(tmp) / f"{t}.parquet"
            predict(PredictArguments(run=str(run_dir), data=str(data_dir), window=t + 1, out=str(out),
                                     split="valid", checkpoint_window=t))
            scores.append(relevance_ndcg(pd.read_parquet(out), truth, k))
    model, _ = load_run_model(run_dir, load_schema(task_dir), last)
    tower = _bias_tower(model)
    learned = np.full(len(planted), np.nan)
    rho = float("nan")
    if tower is not None:
        rows = pd.read_parquet(window_path(task_dir, windows[-1], "train"))
        learned = position_curve(tower, rows, len(planted))
        rho = spearman(learned, planted)
    return BiasValidation(rho, [float(v) for v in learned], [float(v) for v in planted],
                          float(np.mean(scores)) if scores else float("nan"))
