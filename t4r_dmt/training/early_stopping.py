"""Choosing the epochs of each training window on its own latest requests (``--early_stopping_tail``).

The time-window loop trains on window t and evaluates on window t+1; how long to train on t must be chosen
without looking at t+1. With ``early_stopping_tail = s`` the loop (:class:`t4r_dmt.training.loop.TimeWindowLoop`)

1. splits window t's ``train.parquet`` into a head and a held-out tail, the latest share ``s`` of its requests
   (:func:`split_tail`; whole requests, so a list is never cut);
2. trains on the head for up to ``num_train_epochs`` epochs with one optimizer and one learning-rate schedule
   over all of them, as the HF Trainer trains ``num_train_epochs`` epochs;
3. after every epoch scores the tail and keeps a copy of the weights when its loss is the lowest so far
   (:class:`BestEpoch`, a ``TrainerCallback``); after ``early_stopping_patience`` epochs without a lower one it
   stops training. The loss is ``early_stopping_metric`` (:func:`heldout_criterion`): the click logloss
   (``click``, the default), or the sum of the click and order normalised entropies (``click_order``), so that
   a multi-task model's epochs also answer to its rarer order task;
4. restores the best epoch's weights before window t+1 is evaluated, and records that epoch as the window's
   ``epochs`` in ``metrics.json``.

Nothing of window t+1 is read until then. The tail is not trained on: the model of window t learns from the
head alone.

Why not ``transformers.EarlyStoppingCallback``: it needs ``load_best_model_at_end``, an evaluation and a saved
checkpoint (weights and optimizer, on disk) after every epoch, and T4R's Trainer evaluates the one
``eval_dataset_or_path`` it holds; the callback here keeps the best weights in memory and scores the tail
with the loop's own predictor.

"Latest" is by ``request_id``: the ranking rows carry no request time, and the request ids of the logs this
package reads grow with time (the synthetic and the sampled-negative logs number requests in time order).
Where a format hashes its ids (JD's text ids), the tail is a fixed pseudo-random share of the requests: still
disjoint from the training rows and from window t+1, but not the latest.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import torch
from transformers import TrainerCallback, TrainerControl, TrainerState, TrainingArguments

from t4r_dmt.metrics.ranking import logloss

logger = logging.getLogger(__name__)

#: The record key of the chosen epochs (``metrics.json``, one per window).
EPOCHS_KEY = "epochs"

#: What the held-out tail scores (``--early_stopping_metric``), see :func:`heldout_criterion`.
EARLY_STOPPING_METRICS: tuple[str, ...] = ("click", "click_order")


def split_tail(path: Path, share: float, out_dir: Path) -> tuple[Path, Path]:
    """Write ``out_dir/head.parquet`` and ``out_dir/tail.parquet``: the rows of ``path`` split by request.

    The tail holds every row of the last ``max(1, round(share * R))`` of the R distinct request ids in
    ascending order (text ids: in text order); the head holds the others, in file order.

    Parameters
    ----------
    path: a window's ``train.parquet`` (N rows).
    share: the tail's share of the requests, in (0, 0.5].
    out_dir: where to write the two files (overwritten).

    Returns
    -------
    ``(head, tail)`` paths; their rows partition the N rows of ``path``.
    """
    if not 0 < share <= 0.5:
        raise ValueError(f"early_stopping_tail must be in (0, 0.5]; got {share!r}")
    table = pq.read_table(path)
    requests = pc.unique(table.column("request_id")).sort()
    n_tail = max(1, round(share * len(requests)))
    if len(requests) - n_tail < 1:
        raise ValueError(f"{path}: {len(requests)} request(s) cannot be split into training rows and a held-out "
                         f"tail (early_stopping_tail={share})")
    in_tail = pc.is_in(table.column("request_id"), value_set=requests.slice(len(requests) - n_tail))
    out_dir.mkdir(parents=True, exist_ok=True)
    head, tail = out_dir / "head.parquet", out_dir / "tail.parquet"
    pq.write_table(table.filter(pc.invert(in_tail)), head)
    pq.write_table(table.filter(in_tail), tail)
    return head, tail


def heldout_dir(output_dir: str, rank: int) -> Path:
    """Where rank ``rank`` keeps the head and tail of the current training window (overwritten each window)."""
    return Path(output_dir) / "heldout" / f"rank_{rank:03d}"


def click_logloss(labels: pa.Array | np.ndarray, p_click: np.ndarray) -> float:
    """Held-out click logloss ``(N,), (N,) -> float`` (a NaN prediction or loss counts as +inf: never the best)."""
    if _diverged(p_click):
        return math.inf
    loss = logloss(np.asarray(labels), np.asarray(p_click, dtype=np.float64))
    return loss if math.isfinite(loss) else math.inf


def _diverged(*probs: np.ndarray) -> bool:
    """True when a prediction is NaN or infinite (a diverged model, which the metrics would refuse)."""
    return not all(np.isfinite(np.asarray(p, dtype=np.float64)).all() for p in probs)


def normalized_entropy(labels: np.ndarray, probs: np.ndarray) -> float:
    """Logloss ``(N,), (N,) -> float`` divided by the entropy of the labels' own rate (He et al., ADKDD 2014).

    1 is the score of predicting the base rate for every row, lower is better, and tasks with very different
    positive rates become comparable. NaN when the labels are empty or all of one class (no entropy to divide).
    """
    labels = np.asarray(labels, dtype=np.float64)
    if len(labels) == 0:
        return math.nan
    rate = float(labels.mean())
    if rate in (0.0, 1.0):
        return math.nan
    base = -(rate * math.log(rate) + (1.0 - rate) * math.log1p(-rate))
    return logloss(labels, np.asarray(probs, dtype=np.float64)) / base


def heldout_criterion(metric: str, click: np.ndarray, order: np.ndarray, p_click: np.ndarray,
                      p_order: np.ndarray, order_rows: np.ndarray | None = None) -> float:
    """The held-out loss that chooses the epochs (lower is better; NaN or infinite counts as +inf).

    Parameters
    ----------
    metric: ``"click"``: the click logloss. ``"click_order"``: the click normalised entropy plus the order one
        (:func:`normalized_entropy`); where the tail holds no order (or only orders) the order term is left
        out and the click one alone is returned.
    click, order: (N,) 0/1 labels of the held-out rows.
    p_click, p_order: (N,) the model's probabilities.
    order_rows: (N,) bool, the rows the order task is trained on (``loss.order_label = "cvr"``: the clicked
        rows); None: every row.
    """
    if metric not in EARLY_STOPPING_METRICS:
        raise ValueError(f"early_stopping_metric must be one of {EARLY_STOPPING_METRICS}; got {metric!r}")
    if metric == "click":
        return click_logloss(click, p_click)
    if _diverged(p_click, p_order):
        return math.inf
    loss = normalized_entropy(np.asarray(click), np.asarray(p_click))
    rows = slice(None) if order_rows is None else np.asarray(order_rows, dtype=bool)
    order_term = normalized_entropy(np.asarray(order)[rows], np.asarray(p_order)[rows])
    if math.isnan(order_term):
        logger.warning("the held-out tail has no order to score (or only orders): its epochs follow clicks alone")
    else:
        loss += order_term
    return loss if math.isfinite(loss) else math.inf


class BestEpoch(TrainerCallback):
    """Keeps the weights of the epoch whose held-out loss is lowest; stops after ``patience`` worse epochs.

    Parameters
    ----------
    heldout_loss: scores the current model on the held-out rows (lower is better); called once per epoch.
    patience: epochs without a lower loss after which training stops (>= 1).

    Attributes
    ----------
    losses: the held-out loss after each epoch so far.
    best_epoch: 1-based epoch of the lowest loss (the first of equal ones); 0 before the first epoch ends.
    """

    def __init__(self, heldout_loss: Callable[[], float], patience: int = 1) -> None:
        if patience < 1:
            raise ValueError(f"early_stopping_patience must be a positive integer; got {patience!r}")
        self.heldout_loss = heldout_loss
        self.patience = patience
        self.losses: list[float] = []
        self.best_epoch = 0
        self._best_state: dict[str, torch.Tensor] | None = None

    def on_epoch_end(self, args: TrainingArguments, state: TrainerState, control: TrainerControl,
                     model: torch.nn.Module | None = None, **kwargs: Any) -> TrainerControl:
        if model is None:
            raise ValueError("BestEpoch needs the model the Trainer trains")
        loss = self.heldout_loss()
        self.losses.append(loss)
        epoch = len(self.losses)
        if self.best_epoch == 0 or loss < self.losses[self.best_epoch - 1]:
            self.best_epoch = epoch
            self._best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        elif epoch - self.best_epoch >= self.patience:
            control.should_training_stop = True
        logger.info("epoch %d: held-out loss %.5f (best: epoch %d)", epoch, loss, self.best_epoch)
        return control

    def restore(self, model: torch.nn.Module) -> None:
        """Load the best epoch's weights into ``model`` (nothing to do when the last epoch was the best)."""
        if self._best_state is None:
            raise RuntimeError("no epoch has finished: there are no best weights to restore")
        if self.best_epoch != len(self.losses):
            model.load_state_dict(self._best_state)
