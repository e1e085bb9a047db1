"""``DMTTrainer``: T4R's Trainer with the DMT's metric names and whole-set metrics.

T4R's ``Trainer.evaluation_loop`` names streaming metrics ``f"{prefix}_/{name}"`` (``eval_/auc_click``) and
only computes them when ``compute_metrics`` is truthy (it defaults to None) on batches where
``step % compute_metrics_each_n_steps == 0``. This subclass turns metrics on by default, requires every batch
to be accumulated (so AUCs cover the whole set), and names the results ``eval_auc_click``, ``eval_auc_order``,
``eval_loss``. It also refuses an empty evaluation or prediction file, on which the merlin data set fails
(no row group) or its loader waits forever.

Two hooks of the optimisation differ from ``tr.Trainer``'s:

* ``create_optimizer``: the ``args.weight_decay`` group holds the dense weights only
  (:func:`decay_parameter_names`); HF 4.30 also decays the embedding tables, and its test ``"bias" not in name``
  would spare every weight of the DMT's bias tower. The parameters of a module with an ``lr_multiplier`` other
  than 1 (the bias tower's ``bias.lr_multiplier``) get groups of their own with ``lr = learning_rate · multiplier``
  (:func:`lr_multipliers`); the scheduler scales every group alike.
* ``create_scheduler``: the warm-up is ``args.get_warmup_steps(...)``, so ``--warmup_ratio`` works; T4R 23.12's
  own ``create_scheduler`` passes ``args.warmup_steps`` alone and silently ignores the ratio.

Everything else is ``tr.Trainer``'s.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import torch
from torch import nn
from transformers import Trainer
from transformers.trainer_utils import EvalLoopOutput
from transformers4rec import torch as tr

#: Layers whose parameters are never decayed: normalisation scales and shifts, and embedding tables (a row
#: should shrink only when a batch reads it: ``regularisation.embedding_l2``).
NO_DECAY_LAYERS: tuple[type[nn.Module], ...] = (nn.LayerNorm, nn.Embedding)


def decay_parameter_names(model: nn.Module) -> list[str]:
    """Names of ``model``'s parameters that weight decay applies to: every parameter but those of a
    ``NO_DECAY_LAYERS`` module and those whose own name is ``bias`` (layer biases)."""
    skip = {f"{prefix}.{name}" if prefix else name
            for prefix, module in model.named_modules() if isinstance(module, NO_DECAY_LAYERS)
            for name, _ in module.named_parameters(recurse=False)}
    return [name for name, _ in model.named_parameters()
            if name not in skip and name.rsplit(".", 1)[-1] != "bias"]


def lr_multipliers(model: nn.Module) -> dict[str, float]:
    """Parameter name -> learning-rate multiplier, for the parameters of every module whose ``lr_multiplier``
    attribute is a number other than 1 (a module inside another takes its own)."""
    multipliers: dict[str, float] = {}
    for prefix, module in model.named_modules():
        value = getattr(module, "lr_multiplier", None)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            for name, _ in module.named_parameters(prefix=prefix):
                multipliers[name] = float(value)
    return {name: value for name, value in multipliers.items() if value != 1.0}


def _require_rows(path: Any) -> None:
    """Raise ValueError if ``path`` (a parquet file or a folder of them) holds no rows."""
    if not isinstance(path, (str, os.PathLike)):
        return
    target = Path(path)
    files = sorted(target.glob("*.parquet")) if target.is_dir() else [target]
    if all(f.is_file() for f in files) and sum(pq.ParquetFile(f).metadata.num_rows for f in files) == 0:
        raise ValueError(f"{target}: no rows to evaluate or predict")


class DMTTrainer(tr.Trainer):
    """``tr.Trainer`` with ``compute_metrics=True`` and flat metric names (see the module docstring)."""

    optimizer: Any
    lr_scheduler: Any

    def __init__(self, *args: Any, compute_metrics: Any = True, **kwargs: Any) -> None:
        super().__init__(*args, compute_metrics=compute_metrics, **kwargs)
        if self.args.compute_metrics_each_n_steps != 1:
            raise ValueError(
                "compute_metrics_each_n_steps must be 1: the AUCs are computed over every evaluation batch "
                f"(got {self.args.compute_metrics_each_n_steps})"
            )

    def create_optimizer(self) -> torch.optim.Optimizer:
        """The optimizer of ``args`` over two groups: :func:`decay_parameter_names` with ``args.weight_decay``,
        every other trainable parameter without decay; then, per :func:`lr_multipliers` value m, the same two
        (those not empty) of the parameters it names, with ``lr = args.learning_rate · m``."""
        if self.optimizer is None:
            if self.args.weight_decay is None:  # RunTrainingArguments' "the preset's", not filled in
                raise ValueError("weight_decay is None: give a number (t4r-dmt train fills in the preset's "
                                 "regularisation.weight_decay)")
            decay = set(decay_parameter_names(self.model))
            multipliers = lr_multipliers(self.model)
            trainable = [(name, p) for name, p in self.model.named_parameters() if p.requires_grad]
            groups: list[dict[str, Any]] = []
            for m in [1.0, *sorted(set(multipliers.values()))]:
                share = [(name, p) for name, p in trainable if multipliers.get(name, 1.0) == m]
                lr = {} if m == 1.0 else {"lr": self.args.learning_rate * m}
                groups += [
                    {"params": [p for name, p in share if name in decay], "weight_decay": self.args.weight_decay,
                     **lr},
                    {"params": [p for name, p in share if name not in decay], "weight_decay": 0.0, **lr},
                ]
            groups = groups[:2] + [g for g in groups[2:] if g["params"]]
            optimizer_cls, optimizer_kwargs = Trainer.get_optimizer_cls_and_kwargs(self.args)
            self.optimizer = optimizer_cls(groups, **optimizer_kwargs)
        return self.optimizer

    def create_scheduler(self, num_training_steps: int, optimizer: Any = None) -> Any:
        """T4R's scheduler with HF's warm-up rule: ``warmup_steps``, else ``ceil(warmup_ratio * steps)``."""
        if self.lr_scheduler is None:
            self.lr_scheduler = self.get_scheduler(
                self.args.lr_scheduler_type,
                optimizer=self.optimizer if optimizer is None else optimizer,
                num_warmup_steps=self.args.get_warmup_steps(num_training_steps),
                num_training_steps=num_training_steps,
                num_cycles=self.args.learning_rate_num_cosine_cycles_by_epoch * self.args.num_train_epochs,
            )
        return self.lr_scheduler

    def get_eval_dataloader(self, eval_dataset: Any = None) -> Any:
        if self.eval_dataloader is None:
            _require_rows(self.eval_dataset_or_path)
        return super().get_eval_dataloader(eval_dataset)

    def get_test_dataloader(self, test_dataset: Any = None) -> Any:
        if self.test_dataloader is None:
            _require_rows(test_dataset if test_dataset is not None else self.test_dataset_or_path)
        return super().get_test_dataloader(test_dataset)

    def evaluation_loop(self, dataloader: Any, *args: Any, **kwargs: Any) -> EvalLoopOutput:
        if len(dataloader) == 0:
            raise ValueError("no rows to evaluate or predict (the merlin loader would wait forever)")
        output = super().evaluation_loop(dataloader, *args, **kwargs)
        metrics = {key.replace("_/", "_", 1): value for key, value in output.metrics.items()}
        return EvalLoopOutput(predictions=output.predictions, label_ids=output.label_ids, metrics=metrics,
                              num_samples=output.num_samples)
