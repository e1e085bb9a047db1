"""The incremental time-window loop: train on window t, evaluate on window t+1, for every window.

This is the protocol of both papers (DMT trains daily and evaluates on the next day; Transformers4Rec's
incremental evaluation): the model of window t continues from the weights of window t-1, the learning-rate
schedule restarts each window, and the optimizer state is re-created each window, so a window's result
depends only on the incoming weights and the seed (which is what makes ``--resume`` exact). With
``--carry_optimizer`` the AdamW state carries on from window to window instead (a fresh one takes sign-sized
first steps at the start of every window); each checkpoint then holds it too, so ``--resume`` stays exact. With
``--early_stopping_tail`` each window trains for the epochs that its own latest requests choose
(:mod:`t4r_dmt.training.early_stopping`), never looking at window t+1.

Data-parallel (``torchrun --nproc_per_node=N -m t4r_dmt.cli train ...``): each rank trains on its own shard of
a window (rows ``i ≡ rank (mod N)``, the same number on every rank, so every rank runs the same number of
steps and DDP never waits on a missing batch); rank 0 alone evaluates, writes metrics, checkpoints and plots,
and broadcasts the window's metrics to the other ranks.

The merlin loader fails (``KeyError: 0`` in ``_convert_df_to_tensors``; :mod:`t4r_dmt.compat.merlin_loader`) on a batch whose list column is empty
in every row: a log without carts or orders (Trivago), or a short last batch of users without history. Every
file the loop hands to the merlin loader (``data_loader_engine="merlin"``, T4R's default) therefore goes
through :func:`loader_file`, which writes empty lists as ``[0]``: one padding code, which every model masks,
and the loader pads ``[]`` and ``[0]`` to the same dense tensor.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import torch
import torch.distributed as dist
from merlin.schema import Schema
from transformers import set_seed

from t4r_dmt.compat.merlin_loader import loader_file
from t4r_dmt.schema import RANKING_ID_COLUMNS
from t4r_dmt.training.arguments import DataArguments, RunTrainingArguments
from t4r_dmt.training.early_stopping import EPOCHS_KEY, BestEpoch, heldout_criterion, heldout_dir, split_tail
from t4r_dmt.windows import list_windows, n_rows, run_windows, select_windows, window_path

logger = logging.getLogger(__name__)



def world() -> tuple[int, int]:
    """``(global rank, world size)`` of this process: ``(0, 1)`` outside ``torch.distributed``."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def shard_rows(path: Path, rank: int, world_size: int, out: Path) -> Path:
    """Write this rank's share of the rows of ``path`` to ``out``.

    Rank r gets rows ``r, r + W, r + 2W, ...`` of the first ``floor(N / W) * W`` rows (the last ``N mod W`` rows
    are left out so every rank has ``floor(N / W)`` rows). Interleaving keeps each DDP step's union of rank
    batches equal to one single-process batch of ``W`` times the size when the rows are not shuffled.
    """
    if not 0 <= rank < world_size:
        raise ValueError(f"rank {rank} is outside a world of {world_size} processes")
    table = pq.read_table(path)
    per_rank = table.num_rows // world_size
    if per_rank == 0:
        raise ValueError(f"{path}: {table.num_rows} rows cannot be shared among {world_size} processes")
    out.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table.take(np.arange(rank, per_rank * world_size, world_size)), out)
    return out


def with_replay(earlier: list[Path], path: Path, out: Path) -> Path:
    """Write the rows of ``earlier`` (oldest window first) and then those of ``path`` to ``out``; returns ``out``
    (``path`` itself when there is nothing earlier). The files share the preprocessing's schema."""
    if not earlier:
        return path
    tables = [pq.read_table(p) for p in [*earlier, path]]
    out.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.concat_tables(tables), out)
    return out


def replay_path(output_dir: str, rank: int) -> Path:
    """Where rank ``rank`` keeps the current window's rows with the replayed ones (overwritten each window)."""
    return Path(output_dir) / "replay" / f"rank_{rank:03d}.parquet"


def engine_file(trainer: Any, path: Path) -> Path:
    """The file to hand ``trainer``'s loader for ``path``: ``path`` itself, or under the merlin engine its
    :func:`loader_file` copy in ``<output_dir>/loader/rank_NNN/`` (the dense engine batches empty lists)."""
    if trainer.args.data_loader_engine != "merlin":
        return path
    return loader_file(path, trainer.schema, Path(trainer.args.output_dir) / "loader" / f"rank_{world()[0]:03d}")


def train_loader(trainer: Any, path: Path, shuffle: bool) -> Any:
    """The merlin training loader of ``trainer``'s arguments over ``path``, reading every row of it.

    T4R's own ``get_train_dataloader`` always shuffles and, under DDP, shards by partition using the *local*
    rank (wrong across several machines); here the file is already this rank's shard.
    """
    from transformers4rec.torch.utils.data_utils import T4RecDataLoader

    args = trainer.args
    return T4RecDataLoader.parse(args.data_loader_engine).from_schema(
        trainer.schema, str(path), args.per_device_train_batch_size,
        max_sequence_length=args.max_sequence_length, drop_last=args.dataloader_drop_last, shuffle=shuffle,
        shuffle_buffer_size=args.shuffle_buffer_size, global_rank=None, global_size=None, device=trainer.device,
    )


def checkpoint_dir(run_dir: Path, window: int) -> Path:
    """Folder of the checkpoint written after training on ``window``."""
    return run_dir / "checkpoints" / f"window_{window:04d}"


#: The optimizer state beside a checkpoint's weights (``--carry_optimizer``); ``{}`` when none existed yet.
OPTIMIZER_FILE = "optimizer.pt"


def save_checkpoint(model: torch.nn.Module, run_dir: Path, window: int) -> Path:
    """Save the weights after training on ``window`` (atomically: a folder renamed into place)."""
    from t4r_dmt.io_utils import atomic_path

    folder = checkpoint_dir(run_dir, window)
    folder.mkdir(parents=True, exist_ok=True)
    with atomic_path(folder / "model.pt") as tmp:
        torch.save(model.state_dict(), tmp)
    return folder


def save_optimizer(optimizer: torch.optim.Optimizer | None, run_dir: Path, window: int) -> None:
    """Save the optimizer state after training on ``window`` beside its weights (``--carry_optimizer``), for
    :func:`load_optimizer`; ``{}`` where none was created yet."""
    from t4r_dmt.io_utils import atomic_path

    with atomic_path(checkpoint_dir(run_dir, window) / OPTIMIZER_FILE) as tmp:
        torch.save({} if optimizer is None else optimizer.state_dict(), tmp)


def load_checkpoint(model: torch.nn.Module, run_dir: Path, window: int) -> None:
    """Load the weights saved after training on ``window`` into ``model``."""
    path = checkpoint_dir(run_dir, window) / "model.pt"
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: cannot resume after window {window}")
    model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))


def load_optimizer(trainer: Any, run_dir: Path, window: int) -> None:
    """Restore the optimizer state saved after ``window`` into ``trainer`` (``--carry_optimizer`` resume): the
    trainer's optimizer is created over its model and loaded, or left unset where none existed yet."""
    path = checkpoint_dir(run_dir, window) / OPTIMIZER_FILE
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: window {window} was trained without --carry_optimizer; resume "
                                f"with --carry_optimizer false, or start the run again")
    state = torch.load(path, map_location="cpu", weights_only=True)
    trainer.optimizer = None
    if state:
        trainer.create_optimizer()
        trainer.optimizer.load_state_dict(state)


def predict_frame(trainer: Any, path: Path) -> pd.DataFrame:
    """Score every row of ``path`` with the trainer's model, in file order.

    Returns
    -------
    pd.DataFrame
        ``request_id, user_id, click, order`` read from the file (N rows) and the model's ``p_click,
        p_order, score`` (each (N,)).
    """
    readable = engine_file(trainer, path)
    preds = trainer.predict(str(readable)).predictions if world()[1] == 1 else _predict_here(trainer, readable)
    if not isinstance(preds, dict) or not {"p_click", "p_order", "score"} <= set(preds):
        raise TypeError("the model's eval forward must return a dict with p_click, p_order and score")
    frame = pd.read_parquet(path, columns=list(RANKING_ID_COLUMNS))
    for key in ("p_click", "p_order", "score"):
        values = np.asarray(preds[key], dtype=np.float64).reshape(-1)
        if len(values) != len(frame):
            raise RuntimeError(f"{path}: {len(frame)} rows but {len(values)} predictions for {key}")
        frame[key] = values
    return frame


def _predict_here(trainer: Any, path: Path) -> dict[str, np.ndarray]:
    """Score ``path`` in this process alone (``trainer.predict`` gathers across ranks under DDP)."""
    from transformers4rec.torch.utils.data_utils import T4RecDataLoader

    args = trainer.args
    loader = T4RecDataLoader.parse(args.data_loader_engine).from_schema(
        trainer.schema, str(path), args.per_device_eval_batch_size, max_sequence_length=args.max_sequence_length,
        shuffle=False, global_rank=None, global_size=None, device=trainer.device,
    )
    model = trainer.model
    was_training = model.training
    model.eval()
    parts: dict[str, list[np.ndarray]] = {}
    with torch.no_grad():
        for inputs, _ in loader:
            inputs = {k: v.to(args.device) for k, v in inputs.items()}
            for key, value in model(inputs).items():
                parts.setdefault(key, []).append(value.detach().cpu().numpy())
    model.train(was_training)
    return {key: np.concatenate(values) for key, values in parts.items()}


@dataclasses.dataclass
class TimeWindowLoop:
    """Train on t, evaluate on t+1, for the selected windows.

    Parameters
    ----------
    trainer:
        A ``transformers4rec.torch.Trainer`` around the model; its datasets are set per window.
    data_args, training_args:
        Parsed command-line arguments.
    evaluate:
        ``evaluate(trainer, eval_path) -> (n_rows, metrics)`` for one evaluation window.
    on_window_end:
        Called after each finished window with the list of window records so far (writes metrics files).
    """

    trainer: Any
    data_args: DataArguments
    training_args: RunTrainingArguments
    evaluate: Callable[[Any, Path], tuple[int, dict[str, float]]]
    on_window_end: Callable[[list[dict[str, Any]]], None]

    def run(self, done: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
        """Run the remaining windows; ``done`` holds the records of windows finished by an earlier run."""
        task_dir = self.data_args.task_dir
        windows = select_windows(list_windows(task_dir), self.data_args.windows)
        records = list(done or [])
        if records:
            last = max(int(r["train_window"]) for r in records)
            load_checkpoint(self.trainer.model, Path(self.data_args.out), last)
            if self.training_args.carry_optimizer:
                load_optimizer(self.trainer, Path(self.data_args.out), last)
            logger.info("resuming after window %d", last)
        rank = world()[0]
        return run_windows(windows, self._fit, self._evaluate, done=records,
                           on_window_end=self.on_window_end if rank == 0 else None,
                           name=str(getattr(self.trainer.model, "name", None) or "t4r"))

    def _fit(self, window: int) -> dict[str, Any]:
        """Train on ``window`` (continuing from the current weights); rank 0 then saves a checkpoint.

        Returns the window's training facts: ``{"epochs": chosen}`` with ``early_stopping_tail``, else ``{}``."""
        task_dir = self.data_args.task_dir
        rank, world_size = world()
        train_path = window_path(task_dir, window, "train")
        facts: dict[str, Any] = {}
        if n_rows(train_path) < world_size:
            logger.warning("window %d has %d training rows for %d process(es): the weights carry over "
                           "unchanged", window, n_rows(train_path), world_size)
        else:
            facts = self._train_window(task_dir, window)
        if rank == 0:
            save_checkpoint(self.trainer.model, Path(self.data_args.out), window)
            if self.training_args.carry_optimizer:
                save_optimizer(self.trainer.optimizer, Path(self.data_args.out), window)
        return facts

    def _evaluate(self, train_window: int, eval_window: int) -> tuple[int, dict[str, float]]:
        """Rank 0 scores window ``eval_window`` and broadcasts ``(rows, metrics)`` to the other ranks."""
        eval_path = window_path(self.data_args.task_dir, eval_window, self.data_args.eval_split)
        rank, world_size = world()
        outcome: list[Any] = [0, {}]
        if rank == 0:
            if n_rows(eval_path) == 0:
                # An empty evaluation set has no metric; the merlin loader would wait forever on it.
                logger.warning("%s has no rows: window %d is not evaluated", eval_path, eval_window)
            else:
                outcome = list(self.evaluate(self.trainer, eval_path))
        if world_size > 1:
            dist.broadcast_object_list(outcome, src=0)  # also holds the other ranks until rank 0 is done
        return int(outcome[0]), outcome[1]

    def _train_window(self, task_dir: Path, window: int) -> dict[str, Any]:
        """Train on ``window``'s rows; with ``early_stopping_tail`` on its head only, for the epochs its held-out
        tail chooses (:mod:`t4r_dmt.training.early_stopping`), returning ``{"epochs": chosen}``."""
        # Same seed stream whether or not the run was resumed: seed + window.
        set_seed(self.training_args.seed + window)
        path = window_path(task_dir, window, "train")
        rank, world_size = world()
        heldout = None
        if self.training_args.early_stopping_tail > 0:
            path, heldout = split_tail(path, self.training_args.early_stopping_tail,
                                       heldout_dir(self.training_args.output_dir, rank))
        if self.training_args.replay_windows > 0:
            earlier = [w for w in list_windows(task_dir) if window - self.training_args.replay_windows <= w < window]
            path = with_replay([window_path(task_dir, w, "train") for w in earlier], path,
                               replay_path(self.training_args.output_dir, rank))
        if world_size > 1:
            path = shard_rows(path, rank, world_size, shard_path(self.training_args.output_dir, rank))
        path = engine_file(self.trainer, path)
        self.trainer.train_dataset_or_path = str(path)
        self.trainer.train_dataloader = train_loader(self.trainer, path, self.training_args.shuffle_train)
        if not self.training_args.carry_optimizer:
            self.trainer.optimizer = None  # fresh AdamW state; weights carry over
        self.trainer.reset_lr_scheduler()  # the schedule restarts each window
        if heldout is None:
            self.trainer.train()
            return {}
        tail = heldout
        metric, with_bias = self.training_args.early_stopping_metric, self.training_args.early_stopping_with_bias
        best = BestEpoch(lambda: heldout_loss(self.trainer, tail, metric, with_bias),
                         self.training_args.early_stopping_patience)
        self.trainer.add_callback(best)
        try:
            self.trainer.train()
        finally:
            self.trainer.remove_callback(best)
        best.restore(self.trainer.model)
        logger.info("window %d: kept epoch %d of %d (held-out %s loss %s)", window, best.best_epoch,
                    len(best.losses), metric, ", ".join(f"{loss:.5f}" for loss in best.losses))
        return {EPOCHS_KEY: best.best_epoch}


def heldout_loss(trainer: Any, tail: Path, metric: str = "click", with_bias: bool = False) -> float:
    """``metric`` (:func:`~t4r_dmt.training.early_stopping.heldout_criterion`) of ``trainer``'s model on the
    held-out rows ``tail``: lower is better, NaN counts as +inf. ``with_bias``: the tail is scored with the
    click probabilities the training loss fits (``RankingTask.score_logged``), the bias tower's term included.

    Every rank trains the same weights; rank 0 scores and broadcasts, so every rank stops after the same epoch.
    """
    rank, world_size = world()
    outcome: list[Any] = [math.inf]
    if rank == 0:
        task = _ranking_task(trainer.model)
        if task is not None:
            task.score_logged = with_bias
        try:
            scores = _predict_here(trainer, engine_file(trainer, tail))
        finally:
            if task is not None:
                task.score_logged = False
        labels = pq.read_table(tail, columns=["click", "order"])
        click, order = (labels.column(name).to_numpy() for name in ("click", "order"))
        order_rows = _order_rows(trainer.model, click, order)
        outcome = [heldout_criterion(metric, click, order, scores["p_click"].reshape(-1),
                                     scores["p_order"].reshape(-1), order_rows)]
    if world_size > 1:
        dist.broadcast_object_list(outcome, src=0)
    return float(outcome[0])


def _ranking_task(model: Any) -> Any | None:
    """The first head task of ``model`` with the ranking loss (``RankingTask``), or None (another model)."""
    for head in getattr(model, "heads", []):
        task = getattr(head, "task", None)
        if hasattr(getattr(task, "loss", None), "row_mask"):
            return task
    return None


def _order_rows(model: Any, click: np.ndarray, order: np.ndarray) -> np.ndarray | None:
    """``(N,), (N,) -> (N,)`` bool: the rows ``model``'s order task trains on, as its loss's ``row_mask`` says
    (every row for "ctcvr", the clicked ones for "cvr"); None for a model without a ranking loss (every row)."""
    task = _ranking_task(model)
    if task is None:
        return None
    labels = torch.as_tensor(np.stack([click, order], axis=1), dtype=torch.float32)
    return task.loss.row_mask(labels)[:, 1].numpy() > 0


def shard_path(output_dir: str, rank: int) -> Path:
    """Where rank ``rank`` keeps its shard of the current training window (overwritten each window)."""
    return Path(output_dir) / "shards" / f"rank_{rank:03d}.parquet"


def max_list_length(schema: Schema) -> int:
    """The longest ``value_count.max`` over the list columns of ``schema`` (the loader's padding length)."""
    lengths = [
        int(col.value_count.max)
        for col in schema
        if col.is_list and col.value_count is not None and col.value_count.max
    ]
    return max(lengths) if lengths else 1
