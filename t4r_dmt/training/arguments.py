"""Training arguments of ``t4r-dmt train`` (parsed by ``HfArgumentParser`` beside ``run_folder.DataArguments``)."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from typing import Any

import torch
from transformers4rec.config.trainer import T4RecTrainingArguments

import t4r_dmt.training.dense_loader  # noqa: F401  (registers --data_loader_engine dense with T4R)
from t4r_dmt.run_folder import DataArguments
from t4r_dmt.training.early_stopping import EARLY_STOPPING_METRICS

__all__ = ["RECIPE_DEFAULTS", "DataArguments", "RunTrainingArguments", "check_recipe", "ddp_defaults",
           "resolve_recipe", "resolve_weight_decay"]

#: Training arguments a preset's recipe may set (``NextItemConfig.recipe``), with the value a run takes when
#: neither the run nor its preset gives one. Their fields default to None so that a flag the run gives can be
#: told from one it leaves to the preset.
RECIPE_DEFAULTS: dict[str, object] = {
    "learning_rate": 1e-3, "num_train_epochs": 1.0, "per_device_train_batch_size": 256, "lr_scheduler_type": "linear",
}


@dataclass
class RunTrainingArguments(T4RecTrainingArguments):
    """T4R's training arguments with defaults that suit the windowed ranking loop.

    ``output_dir`` defaults to ``<out>/checkpoints`` (set by the loop); the loop writes its own per-window
    checkpoints, so the HF Trainer saves nothing itself unless asked.

    ``weight_decay`` defaults to None: the preset's ``regularisation.weight_decay`` (or ``recipe.weight_decay``; 0
    for presets without one), filled in by :func:`resolve_weight_decay`; a value given here overrides the preset
    for the run. Likewise ``learning_rate``, ``num_train_epochs``, ``per_device_train_batch_size`` and
    ``lr_scheduler_type``: left unset (None), they take ``RECIPE_DEFAULTS`` at once and the preset's recipe, where
    it has one, when the run starts (:func:`resolve_recipe`); ``preset_may_set`` lists them.
    ``early_stopping_tail`` > 0 chooses the epochs of each window (:mod:`t4r_dmt.training.early_stopping`): the
    latest ``early_stopping_tail`` of the window's requests are held out of training, the model trains up to
    ``num_train_epochs`` epochs (a whole number) on the rest, and the weights of the epoch with the lowest
    held-out loss are kept (``early_stopping_metric``: the click logloss, or with ``click_order`` the click plus
    the order normalised entropy; ``early_stopping_with_bias``: the tail scored with the bias tower's term, as
    the training loss scores clicks); training stops after ``early_stopping_patience`` epochs without a better one.
    ``replay_windows`` = K > 0 trains window t on the training rows of windows t-K .. t (those on disk), as GBDT's
    ``train_windows: "all"`` refits on every window so far; the held-out tail is cut from window t first.
    """

    output_dir: str = field(default="", metadata={"help": "Defaults to <out>/trainer."})
    per_device_train_batch_size: int | None = field(
        default=None, metadata={"help": "Batch size per device (train); default: the preset's recipe, else 256."})
    per_device_eval_batch_size: int = field(default=1024, metadata={"help": "Batch size per device (eval)."})
    learning_rate: float | None = field(
        default=None, metadata={"help": "Peak learning rate (AdamW); default: the preset's recipe, else 1e-3."})
    lr_scheduler_type: str | None = field(
        default=None,
        metadata={"help": "HF learning-rate schedule, restarted every window; default: the preset's recipe, else "
                          "linear."})
    optim: str = field(
        default="adamw_torch_fused",
        metadata={"help": "HF optimizer name; torch's fused AdamW steps the DMT 3.5x faster on CPU than adamw_hf."},
    )
    num_train_epochs: float | None = field(
        default=None, metadata={"help": "Epochs over each training window; default: the preset's recipe, else 1."})
    max_sequence_length: int | None = field(
        default=None,
        metadata={"help": "Loader padding length of list columns; default: the longest list in the schema."},
    )
    save_strategy: str = field(default="no", metadata={"help": "HF checkpointing (the loop saves per window)."})
    logging_steps: int = field(default=50, metadata={"help": "Log the training loss every N steps."})
    report_to: list[str] | None = field(
        default_factory=lambda: ["tensorboard"], metadata={"help": "HF integrations to report to."}
    )
    data_loader_engine: str = field(
        default="dense",
        metadata={"help": "T4R loader: dense (t4r_dmt's in-memory loader, ~25x faster per batch on CPU) or merlin."},
    )
    shuffle_train: bool = field(
        default=True,
        metadata={"help": "Shuffle the training rows of each window (--shuffle_train false keeps file order)."},
    )
    weight_decay: float | None = field(  # HF's float field; None: the preset's
        default=None,
        metadata={"help": "AdamW's decoupled weight decay of the dense weights; default: the preset's "
                          "regularisation.weight_decay."},
    )
    early_stopping_tail: float = field(
        default=0.0,
        metadata={"help": "Share (0, 0.5] of each training window's latest requests held out to choose the epochs "
                          "(up to --num_train_epochs, best held-out --early_stopping_metric); 0: train every epoch on all rows."},
    )
    early_stopping_metric: str = field(
        default="click",
        metadata={"help": "With --early_stopping_tail, what the tail scores: click (click logloss) or click_order "
                          "(click plus order normalised entropy, so the order task has a say in the epochs)."},
    )
    early_stopping_with_bias: bool = field(
        default=False,
        metadata={"help": "With --early_stopping_tail and a bias tower: score the tail's logged clicks with the click "
                          "probability the training loss fits (the tower's term included), not the served score, "
                          "which a debiasing tower makes position-blind."},
    )
    early_stopping_patience: int = field(
        default=1,
        metadata={"help": "With --early_stopping_tail: stop after this many epochs without a better held-out loss."},
    )
    replay_windows: int = field(
        default=0,
        metadata={"help": "Also train window t on the rows of the K windows before it (oldest first; the held-out "
                          "tail still comes from window t alone); 0: window t only."},
    )
    carry_optimizer: bool = field(
        default=False,
        metadata={"help": "Carry the AdamW state (moments, step count) from window to window, saved with each "
                          "checkpoint for --resume; false: a fresh AdamW state each window."},
    )

    def __post_init__(self) -> None:
        fields = self.__dict__  # mypy cannot type HF's no_cuda / ddp_backend fields through T4R's subclass
        unset = [name for name in RECIPE_DEFAULTS if fields[name] is None]
        fields.update({name: RECIPE_DEFAULTS[name] for name in unset})
        fields["preset_may_set"] = frozenset(unset)
        check_recipe(self.weight_decay, self.early_stopping_tail, self.early_stopping_patience,
                     fields["num_train_epochs"], self.max_steps)
        if self.early_stopping_metric not in EARLY_STOPPING_METRICS:
            raise ValueError(f"early_stopping_metric must be one of {EARLY_STOPPING_METRICS}; got "
                             f"{self.early_stopping_metric!r}")
        if isinstance(self.replay_windows, bool) or not isinstance(self.replay_windows, int) or self.replay_windows < 0:
            raise ValueError(f"replay_windows must be a whole number >= 0; got {self.replay_windows!r}")
        if fields["logging_dir"] is None and not self.output_dir:
            # HF would log TensorBoard to ./runs/<date>_<host> (relative to an output_dir that is not set
            # yet); "" leaves it to ``t4r-dmt train``, which puts it under the run folder.
            fields["logging_dir"] = ""
        # Under torchrun (WORLD_SIZE > 1) pick the backend that suits the device: NCCL on GPUs, gloo on CPU
        # (gloo outside torchrun crashes, so nothing is set for a single process).
        world_size = int(os.environ.get("WORLD_SIZE", "1"))
        no_cuda, backend = ddp_defaults(world_size, torch.cuda.is_available(), fields["no_cuda"],
                                        fields["ddp_backend"])
        fields.update(no_cuda=no_cuda, ddp_backend=backend)
        super().__post_init__()


def check_recipe(weight_decay: float | None, tail: float, patience: int, epochs: float, max_steps: int) -> None:
    """Raise ValueError, naming the argument, unless the regularisation and early-stopping arguments fit."""
    if weight_decay is not None and not 0 <= weight_decay < math.inf:
        raise ValueError(f"weight_decay must be a finite number >= 0; got {weight_decay!r}")
    if not (tail == 0 or 0 < tail <= 0.5):
        raise ValueError(f"early_stopping_tail must be 0 (off) or in (0, 0.5]; got {tail!r}")
    if isinstance(patience, bool) or not isinstance(patience, int) or patience < 1:
        raise ValueError(f"early_stopping_patience must be a positive integer; got {patience!r}")
    if tail > 0:
        if epochs < 1 or epochs != int(epochs):
            raise ValueError(f"early_stopping_tail needs a whole num_train_epochs >= 1 (the most epochs a window "
                             f"may train); got {epochs!r}")
        if max_steps > 0:
            raise ValueError("early_stopping_tail chooses whole epochs: it cannot be combined with max_steps")


def resolve_weight_decay(args: RunTrainingArguments, preset_weight_decay: float) -> None:
    """Fill ``args.weight_decay`` with the preset's when the run did not give one (in place)."""
    if args.weight_decay is None:
        args.weight_decay = preset_weight_decay


def resolve_recipe(args: RunTrainingArguments, recipe: dict[str, Any]) -> None:
    """Apply a preset's recipe (``RecipeConfig.training_arguments()``) to the arguments the run left unset, in
    place: ``weight_decay`` as :func:`resolve_weight_decay`, the ``RECIPE_DEFAULTS`` fields where
    ``args.preset_may_set`` lists them. A flag the run gave wins."""
    from transformers.trainer_utils import SchedulerType

    resolve_weight_decay(args, float(recipe.get("weight_decay", 0.0)))
    for name in RECIPE_DEFAULTS:
        if recipe.get(name) is not None and name in getattr(args, "preset_may_set", ()):
            value = recipe[name]
            setattr(args, name, SchedulerType(value) if name == "lr_scheduler_type" else value)


def ddp_defaults(world_size: int, cuda: bool, no_cuda: bool, backend: str | None) -> tuple[bool, str | None]:
    """``(no_cuda, ddp_backend)`` for a run of ``world_size`` processes: CPU and gloo without a GPU, NCCL
    with one; a single process keeps what it was given (gloo outside torchrun crashes)."""
    if world_size <= 1:
        return no_cuda, backend
    no_cuda = no_cuda or not cuda
    return no_cuda, backend or ("gloo" if no_cuda else "nccl")
