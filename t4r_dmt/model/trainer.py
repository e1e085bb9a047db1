"""``DMTTrainer``: T4R's Trainer with the DMT's metric names and whole-set metrics.

T4R's ``Trainer.evaluation_loop`` names streaming metrics ``f"{prefix}_/{name}"`` (``eval_/auc_click``) and
only computes them when ``compute_metrics`` is truthy (it defaults to None) on batches where
``step % compute_metrics_each_n_steps == 0``. This subclass turns metrics on by default, requires every batch
to be accumulated (so AUCs cover the whole set), and names the results ``eval_auc_click``, ``eval_auc_order``,
``eval_loss``. It also refuses an empty evaluation or prediction file, on which the merlin data set fails
(no row group) or its loader waits forever. Everything else is ``tr.Trainer``'s.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
from transformers.trainer_utils import EvalLoopOutput
from transformers4rec import torch as tr


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

    def __init__(self, *args: Any, compute_metrics: Any = True, **kwargs: Any) -> None:
        super().__init__(*args, compute_metrics=compute_metrics, **kwargs)
        if self.args.compute_metrics_each_n_steps != 1:
            raise ValueError(
                "compute_metrics_each_n_steps must be 1: the AUCs are computed over every evaluation batch "
                f"(got {self.args.compute_metrics_each_n_steps})"
            )

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
