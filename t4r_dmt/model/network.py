"""RankingNetwork: DMT and its Table 1 baselines (DNN, DIN, DIEN) as one plain ``nn.Module``.

No T4R in here (``t4r.py`` adapts it). Its parts are chosen from the config at construction and named by role:

* ``encoders``: the ``MultiBehaviorEncoder`` (entity embeddings, one interest extractor per behaviour, of the
  kind ``config.interest.kind`` names); one per task for the "single_task" ablation, else one;
* ``multitask``: the multi-task block above each encoder (``config.multitask.kind``);
* ``bias_tower``: the position-bias tower, when the schema has bias features; a ``SelectiveBiasTower`` when
  ``config.bias.inputs`` leaves some inputs out.

``inputs dict -> RankingBatch -> encoders -> multitask -> task logits u (B, K)``, plus the bias logit
``y_b (B,)``, the extractors' auxiliary loss (DIEN's; 0 for the others) and, in training, the embedding L2
penalty (``config.regularisation.embedding_l2``; ``MultiBehaviorEncoder.embedding_norm``) and the weighted
co-occurrence loss of the entity embeddings (``config.catalogue``; ``cooccurrence.CooccurrenceLoss``).
"""

from __future__ import annotations

from typing import Any, NamedTuple, cast

import torch
from torch import nn

from t4r_dmt.model.bias import BiasTower
from t4r_dmt.model.bias_inputs import SelectiveBiasTower
from t4r_dmt.model.config import BIAS_INPUTS, DMTConfig
from t4r_dmt.model.cooccurrence import CooccurrenceLoss
from t4r_dmt.model.dropout import swap_dropouts
from t4r_dmt.model.features import FeatureSpec
from t4r_dmt.model.inputs import read_batch
from t4r_dmt.model.multi_behavior import MultiBehaviorEncoder
from t4r_dmt.model.multitask import build_multitask


class RankingOutput(NamedTuple):
    """``task_logits (B, K)`` relevance logits u_k; ``bias_logit (B,)`` y_b, or None without a bias tower;
    ``aux_loss ()`` the interest extractors' auxiliary loss (DIEN's; 0 for every other kind);
    ``embedding_penalty ()`` the weighted embedding L2 (``regularisation.embedding_l2``), None in evaluation
    or when it is 0; ``catalogue_loss ()`` λ times the co-occurrence loss of the entity embeddings
    (``config.catalogue.weight``), None in evaluation or when λ is 0."""

    task_logits: torch.Tensor
    bias_logit: torch.Tensor | None
    aux_loss: torch.Tensor
    embedding_penalty: torch.Tensor | None = None
    catalogue_loss: torch.Tensor | None = None


def build_bias_tower(spec: FeatureSpec, config: DMTConfig) -> BiasTower | None:
    """The bias tower ``config.bias`` describes, or None when the schema has no bias features.

    All of ``BIAS_INPUTS`` give a ``BiasTower``; fewer (the Table 5 ablations) a ``SelectiveBiasTower``, whose
    parameters are drawn twice: those presets were first trained with a full tower drawn and then replaced
    by this one, and drawing again keeps their initial values and the random stream after them (dropout
    masks) those of the runs in ``benchmarks/results``.
    """
    if spec.bias is None:
        return None
    b = config.bias
    sizes = (spec.bias.n_positions, spec.bias.n_pages, spec.n_categories)
    options: dict[str, Any] = {"kind": b.kind, "form": b.form, "zero_init": b.zero_init,
                               "target_features": b.target_features, "lr_multiplier": b.lr_multiplier}
    if set(b.inputs) == set(BIAS_INPUTS):
        return BiasTower(*sizes, b.embedding_dim, b.units, b.dropout, **options)
    tower = SelectiveBiasTower(*sizes, b.embedding_dim, b.units, b.dropout, b.inputs, **options)
    tower.reset_parameters()
    return tower


class RankingNetwork(nn.Module):
    """Parameters
    ----------
    spec: column names and sizes read from the schema.
    config: the model configuration; ``config.fast_dropout`` turns every ``nn.Dropout`` inside (the HF
        encoders' included) into a ``BitsDropout``.

    Shapes: ``dict[str, Tensor]`` (T4R's padded inputs) ``-> RankingOutput``.
    """

    def __init__(self, spec: FeatureSpec, config: DMTConfig) -> None:
        super().__init__()
        single = config.multitask.kind == "single_task"
        if single and config.interest.kind != "transformer":
            raise ValueError("the baselines share one network between the tasks: multitask.kind 'single_task' "
                             "is a DMT ablation only")
        self.spec = spec
        self.num_tasks = len(spec.targets)
        n_networks = self.num_tasks if single else 1
        tasks_per_network = 1 if single else self.num_tasks
        encoders = [MultiBehaviorEncoder(spec, config) for _ in range(n_networks)]
        self.shared_size: int = encoders[0].out_size  # width D of the multi-task block's input
        self.encoders = nn.ModuleList(encoders)
        self.multitask = nn.ModuleList(
            build_multitask(config.multitask, self.shared_size, tasks_per_network) for _ in encoders
        )
        self.bias_tower = build_bias_tower(spec, config)
        self.embedding_l2 = float(config.regularisation.embedding_l2)
        self.catalogue_weight = float(config.catalogue.weight)
        self.cooccurrence = (CooccurrenceLoss(config.catalogue.temperature, config.catalogue.max_pairs)
                             if self.catalogue_weight > 0 else None)
        if config.fast_dropout:
            swap_dropouts(self)

    def forward(self, inputs: dict[str, torch.Tensor]) -> RankingOutput:
        batch = read_batch(inputs, self.spec)
        logits, aux_losses = [], []
        for encoder, block in zip(self.encoders, self.multitask, strict=True):
            shared, aux = encoder(batch)  # (B, D), ()
            logits.append(block(shared))  # (B, K / n_networks)
            aux_losses.append(aux)
        bias_logit = None
        if self.bias_tower is not None and batch.bias is not None:
            bias_logit = self.bias_tower(batch.bias, batch.category)
        penalty = None
        if self.training and self.embedding_l2 > 0:
            norms = [cast(MultiBehaviorEncoder, e).embedding_norm(batch) for e in self.encoders]  # own tables each
            penalty = self.embedding_l2 / batch.item.shape[0] * sum(norms[1:], norms[0])
        catalogue = None
        if self.training and self.cooccurrence is not None:
            losses = [self.cooccurrence(cast(MultiBehaviorEncoder, e).sequence_tokens(batch)) for e in self.encoders]
            catalogue = self.catalogue_weight * sum(losses[1:], losses[0])
        return RankingOutput(torch.cat(logits, dim=1), bias_logit, sum(aux_losses[1:], aux_losses[0]), penalty,
                             catalogue)
