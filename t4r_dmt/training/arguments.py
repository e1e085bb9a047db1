"""Argument dataclasses of ``t4r-dmt train`` and ``t4r-dmt predict`` (parsed by ``HfArgumentParser``)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import torch
from transformers4rec.config.trainer import T4RecTrainingArguments

import t4r_dmt.training.dense_loader  # noqa: F401  (registers --data_loader_engine dense with T4R)

TASKS = ("ranking", "next-item")
EVAL_SPLITS = ("valid", "test", "train")


@dataclass
class DataArguments:
    """Where the data and the run live, and which windows the loop walks."""

    data: str = field(metadata={"help": "Output folder of `t4r-dmt preprocess` (has ranking/ and sessions/)."})
    out: str = field(metadata={"help": "Run folder: metrics.json, metrics.csv, plots/, checkpoints/, config.json."})
    config: str = field(
        default="dmt",
        metadata={"help": "Model preset name (configs/<name>.json) or a path to a config JSON file."},
    )
    windows: str = field(
        default="",
        metadata={"help": "A:B (inclusive): train on t and evaluate on t+1 for t in A..B-1. Default: all windows."},
    )
    task: str = field(default="ranking", metadata={"help": f"One of {TASKS}."})
    eval_split: str = field(
        default="valid", metadata={"help": f"File of window t+1 to evaluate on, one of {EVAL_SPLITS}."}
    )
    resume: bool = field(default=False, metadata={"help": "Continue after the last finished window of --out."})
    overwrite: bool = field(default=False, metadata={"help": "Replace an existing run folder."})

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise ValueError(f"--task must be one of {TASKS}, got {self.task!r}")
        if self.eval_split not in EVAL_SPLITS:
            raise ValueError(f"--eval_split must be one of {EVAL_SPLITS}, got {self.eval_split!r}")
        if self.resume and self.overwrite:
            raise ValueError("--resume and --overwrite exclude each other")
        if self.windows:
            parse_windows(self.windows)  # fail fast on a malformed range

    @property
    def task_dir(self) -> Path:
        return Path(self.data) / ("ranking" if self.task == "ranking" else "sessions")


def parse_windows(text: str) -> tuple[int, int]:
    """Parse ``"A:B"`` into ``(A, B)`` with ``1 <= A < B``."""
    parts = text.split(":")
    if len(parts) != 2 or not all(p.strip().isdigit() for p in parts):
        raise ValueError(f"--windows must look like A:B (e.g. 1:4), got {text!r}")
    first, last = int(parts[0]), int(parts[1])
    if not 1 <= first < last:
        raise ValueError(f"--windows A:B needs 1 <= A < B (train on A..B-1, evaluate on A+1..B), got {text!r}")
    return first, last


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
