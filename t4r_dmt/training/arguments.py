"""Training arguments of ``t4r-dmt train`` (parsed by ``HfArgumentParser`` beside ``run_folder.DataArguments``)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import torch
from transformers4rec.config.trainer import T4RecTrainingArguments

import t4r_dmt.training.dense_loader  # noqa: F401  (registers --data_loader_engine dense with T4R)
from t4r_dmt.run_folder import DataArguments

__all__ = ["DataArguments", "RunTrainingArguments", "ddp_defaults"]


@dataclass
class RunTrainingArguments(T4RecTrainingArguments):
    """T4R's training arguments with defaults that suit the windowed ranking loop.

    ``output_dir`` defaults to ``<out>/checkpoints`` (set by the loop); the loop writes its own per-window
    checkpoints, so the HF Trainer saves nothing itself unless asked.
    """

    output_dir: str = field(default="", metadata={"help": "Defaults to <out>/trainer."})
    per_device_train_batch_size: int = field(default=256, metadata={"help": "Batch size per device (train)."})
    per_device_eval_batch_size: int = field(default=1024, metadata={"help": "Batch size per device (eval)."})
    learning_rate: float = field(default=1e-3, metadata={"help": "Peak learning rate (AdamW)."})
    optim: str = field(
        default="adamw_torch_fused",
        metadata={"help": "HF optimizer name; torch's fused AdamW steps the DMT 3.5x faster on CPU than adamw_hf."},
    )
    num_train_epochs: float = field(default=1.0, metadata={"help": "Epochs over each training window."})
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

    def __post_init__(self) -> None:
        fields = self.__dict__  # mypy cannot type HF's no_cuda / ddp_backend fields through T4R's subclass
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


def ddp_defaults(world_size: int, cuda: bool, no_cuda: bool, backend: str | None) -> tuple[bool, str | None]:
    """``(no_cuda, ddp_backend)`` for a run of ``world_size`` processes: CPU and gloo without a GPU, NCCL
    with one; a single process keeps what it was given (gloo outside torchrun crashes)."""
    if world_size <= 1:
        return no_cuda, backend
    no_cuda = no_cuda or not cuda
    return no_cuda, backend or ("gloo" if no_cuda else "nccl")
