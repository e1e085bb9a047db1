"""The one place where the plain DMT modules are adapted to Transformers4Rec.

* ``DMTBody`` (a ``tr.Block``): wraps ``RankingNetwork`` and reports its fixed output size, which ``tr.Head``
  needs.
* ``RankingTask`` (a ``tr.PredictionTask``): the loss, the eval outputs and the metrics. In training or
  testing it returns ``{"loss", "labels" (B, K), "predictions" (B, K) = σ(u_k)}``; the training loss adds
  ``aux_weight`` times the network's auxiliary loss (DIEN's; 0 for the other kinds) and the network's embedding
  L2 penalty (``regularisation.embedding_l2``). In inference a dict of
  ``p_click``, ``p_order`` and ``score`` = ``Σ w_k σ(u_k) / Σ w_k``, each ``(B,)``. Its metrics are
  ``BinaryAUROC`` on probabilities (T4R's ``BinaryClassificationTask`` rounds them first), updated per batch
  and computed once over the whole evaluation set: ``auc_click``, ``auc_order``. With
  ``loss.order_label = "cvr"`` the order head estimates P(order | click): ``p_order`` is that post-click
  probability and ``auc_order`` is computed over clicked impressions only.
* ``DMTHead`` (a ``tr.Head``): overrides only ``forward``, because T4R's Head hands each task the one target
  column named by ``task.target_name`` while the DMT loss needs both labels at once (the "cvr" order loss is
  masked by the click label).
"""

from __future__ import annotations

import math
from typing import Any, cast

import torch
from merlin.schema import Schema
from torchmetrics.classification import BinaryAUROC
from transformers4rec import torch as tr

from t4r_dmt.model.loss import MultiTaskLoss
from t4r_dmt.model.network import RankingNetwork, RankingOutput


def _identity(x: torch.Tensor) -> torch.Tensor:
    return x


class DMTBody(tr.Block):
    """``tr.Block`` around ``RankingNetwork``: ``dict[str, Tensor] -> RankingOutput``; output size ``[None, K + 1]``.

    ``inputs.schema`` is the schema of the columns the network reads (what ``tr.Model.input_schema`` reports).
    """

    def __init__(self, network: RankingNetwork, schema: Schema) -> None:
        super().__init__(network, cast(list[int], [None, network.num_tasks + 1]))
        self.set_schema(schema.select_by_name(network.spec.input_columns))

    @property
    def inputs(self) -> DMTBody:
        return self

    def output_size(self, input_size: Any = None) -> list[int | None]:
        return list(self._output_size)

    def forward(self, inputs: dict[str, torch.Tensor], **kwargs: Any) -> RankingOutput:
        return self.module(inputs)


class RankingTask(tr.PredictionTask):
    """Parameters
    ----------
    loss: the multi-task loss (holds λ_k, positive weights, the order label mode).
    score_weights: w_k of the ranking score.
    targets: label column per task, in logit order.
    aux_weight: weight of the network's auxiliary loss in the training loss (``interest.aux_loss_weight``).

    ``score_logged`` (False): in inference, ``p_<task>`` and ``score`` are the click probabilities the training
    loss fits, the bias tower's term included (``MultiTaskLoss.logged_probabilities``), instead of σ(u_k). The
    held-out tail of early stopping is scored this way with ``--early_stopping_with_bias``: its clicks are logged
    at their positions, which the served σ(u_k) of a debiasing tower leaves out. No effect without a tower.
    """

    loss: MultiTaskLoss
    score_logged: bool = False
    score_weights: torch.Tensor

    def __init__(self, loss: MultiTaskLoss, score_weights: list[float], targets: tuple[str, ...],
                 aux_weight: float = 0.0) -> None:
        if not aux_weight >= 0:
            raise ValueError(f"aux_weight must be >= 0; got {aux_weight!r}")
        # summary_type=None: the inputs are a RankingOutput, never a sequence to summarise.
        super().__init__(loss=loss, metrics=[BinaryAUROC() for _ in targets], task_name="ranking",
                         summary_type=None,  # type: ignore[arg-type]
                         forward_to_prediction_fn=_identity)
        self.targets = tuple(targets)
        self.target_dim = len(targets)
        self.aux_weight = float(aux_weight)
        self.register_buffer("score_weights", torch.tensor(score_weights, dtype=torch.float32))

    def stack_labels(self, targets: Any) -> torch.Tensor:
        """``{"click": (B,), "order": (B,)} -> (B, K)`` float."""
        if not isinstance(targets, dict) or any(t not in targets for t in self.targets):
            found = sorted(targets) if isinstance(targets, dict) else type(targets).__name__
            raise ValueError(f"the DMT loss needs targets {list(self.targets)}; got {found}")
        first = targets[self.targets[0]]
        return torch.stack([targets[t].reshape(first.shape[0]).float() for t in self.targets], dim=1)

    def scores(self, logits: torch.Tensor, probs: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """``(B, K)`` logits (or the probabilities ``probs``, when given) -> ``p_<task>`` and ``score``, each
        ``(B,)``."""
        probs = torch.sigmoid(logits) if probs is None else probs
        out = {f"p_{t}": probs[:, k] for k, t in enumerate(self.targets)}
        w = self.score_weights.to(probs.dtype)
        out["score"] = (probs * w).sum(dim=1) / w.sum()
        return out

    def forward(  # type: ignore[override]
        self, inputs: RankingOutput, targets: Any = None, training: bool = False, testing: bool = False
    ) -> dict[str, Any]:
        if training or testing:
            labels = self.stack_labels(targets)
            loss = self.loss(inputs.task_logits, inputs.bias_logit, labels, training=training)
            if training and self.aux_weight > 0:
                loss = loss + self.aux_weight * inputs.aux_loss
            if training and inputs.embedding_penalty is not None:
                loss = loss + inputs.embedding_penalty
            if training and inputs.catalogue_loss is not None:
                loss = loss + inputs.catalogue_loss
            return {"loss": loss, "labels": labels, "predictions": torch.sigmoid(inputs.task_logits)}
        if self.score_logged and inputs.bias_logit is not None:
            return self.scores(inputs.task_logits, self.loss.logged_probabilities(inputs.task_logits,
                                                                                  inputs.bias_logit))
        return self.scores(inputs.task_logits)

    def calculate_metrics(  # type: ignore[override]
        self, predictions: torch.Tensor, targets: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        """Accumulate one batch: ``predictions`` and ``targets`` ``(B, K)``. The AUCs are computed over all
        accumulated rows by ``compute_metrics``; rows masked out of a task's loss ("cvr" orders without a
        click) are left out of its AUC too."""
        mask = self.loss.row_mask(targets.float()) > 0
        with torch.no_grad():
            for k, metric in enumerate(self.auc_metrics):
                keep = mask[:, k]
                metric.update(predictions[keep, k].float(), targets[keep, k].int())
        return {}

    @property
    def auc_metrics(self) -> list[BinaryAUROC]:
        return [cast(BinaryAUROC, m) for m in self.metrics]

    def compute_metrics(self, **kwargs: Any) -> dict[str, float | torch.Tensor]:  # type: ignore[override]
        return {f"auc_{t}": _auc(metric) for t, metric in zip(self.targets, self.auc_metrics, strict=True)}


def _auc(metric: BinaryAUROC) -> torch.Tensor:
    """The metric's AUC, or NaN when undefined (nothing accumulated, or one class only)."""
    nan = torch.tensor(math.nan)
    if not metric.update_called:
        return nan
    target = metric.target if isinstance(metric.target, torch.Tensor) else torch.cat(list(metric.target))
    if target.numel() == 0 or bool(target.min() == target.max()):
        return nan
    return metric.compute()


class DMTHead(tr.Head):
    """A head with one ``RankingTask`` that receives every target at once."""

    def __init__(self, body: DMTBody, task: RankingTask) -> None:
        super().__init__(body, task)

    @property
    def task(self) -> RankingTask:
        return self.prediction_task_dict["ranking"]  # type: ignore[return-value]

    def forward(  # type: ignore[override]
        self, body_outputs: Any, training: bool = False, testing: bool = False, targets: Any = None,
        call_body: bool = False, **kwargs: Any,
    ) -> dict[str, Any]:
        outputs = self.body(body_outputs) if call_body else body_outputs
        result = self.task(outputs, targets=targets, training=training, testing=testing)
        if training or testing:
            name = self.task.task_name
            return {"loss": result["loss"], "labels": {name: result["labels"]},
                    "predictions": {name: result["predictions"]}}
        return result
