"""Choosing the epochs of each training window on its own latest requests (``--early_stopping_tail``).

The time-window loop trains on window t and evaluates on window t+1; how long to train on t must be chosen
without looking at t+1. With ``early_stopping_tail = s`` the loop (:class:`t4r_dmt.training.loop.TimeWindowLoop`)

1. splits window t's ``train.parquet`` into a head and a held-out tail, the latest share ``s`` of its requests
   (:func:`split_tail`; whole requests, so a list is never cut);
2. trains on the head for up to ``num_train_epochs`` epochs with one optimizer and one learning-rate schedule
   over all of them, as the HF Trainer trains ``num_train_epochs`` epochs;
3. after every epoch scores the tail and keeps a copy of the weights when its click logloss is the lowest so
   far (:class:`BestEpoch`, a ``TrainerCallback``); after ``early_stopping_patience`` epochs without a lower
   one it stops training;
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
    """Held-out click logloss ``(N,), (N,) -> float`` (NaN or infinite losses count as +inf: never the best)."""
    loss = logloss(np.asarray(labels), np.asarray(p_click, dtype=np.float64))
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
        logger.info("epoch %d: held-out click logloss %.5f (best: epoch %d)", epoch, loss, self.best_epoch)
        return control

    def restore(self, model: torch.nn.Module) -> None:
        """Load the best epoch's weights into ``model`` (nothing to do when the last epoch was the best)."""
        if self._best_state is None:
            raise RuntimeError("no epoch has finished: there are no best weights to restore")
        if self.best_epoch != len(self.losses):
            model.load_state_dict(self._best_state)
