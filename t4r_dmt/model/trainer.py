"""``DMTTrainer``: T4R's Trainer with the DMT's metric names and whole-set metrics.

T4R's ``Trainer.evaluation_loop`` names streaming metrics ``f"{prefix}_/{name}"`` (``eval_/auc_click``) and
only computes them when ``compute_metrics`` is truthy (it defaults to None) on batches where
``step % compute_metrics_each_n_steps == 0``. This subclass turns metrics on by default, requires every batch
to be accumulated (so AUCs cover the whole set), and names the results ``eval_auc_click``, ``eval_auc_order``,
``eval_loss``. Everything else is ``tr.Trainer``'s.
"""

from __future__ import annotations

from typing import Any

from transformers.trainer_utils import EvalLoopOutput
from transformers4rec import torch as tr


class DMTTrainer(tr.Trainer):
    """``tr.Trainer`` with ``compute_metrics=True`` and flat metric names (see the module docstring)."""

    def __init__(self, *args: Any, compute_metrics: Any = True, **kwargs: Any) -> None:
        super().__init__(*args, compute_metrics=compute_metrics, **kwargs)
        if self.args.compute_metrics_each_n_steps != 1:
            raise ValueError(
                "compute_metrics_each_n_steps must be 1: the AUCs are computed over every evaluation batch "
                f"(got {self.args.compute_metrics_each_n_steps})"
            )

    def evaluation_loop(self, *args: Any, **kwargs: Any) -> EvalLoopOutput:
        output = super().evaluation_loop(*args, **kwargs)
        metrics = {key.replace("_/", "_", 1): value for key, value in output.metrics.items()}
        return EvalLoopOutput(predictions=output.predictions, label_ids=output.label_ids, metrics=metrics,
                              num_samples=output.num_samples)
