"""``build_model(schema, config)``: any DMT preset as a ``transformers4rec.torch.Model``."""

from __future__ import annotations

import logging

from merlin.schema import Schema
from transformers4rec import torch as tr

from t4r_dmt.model.config import DMTConfig
from t4r_dmt.model.features import FeatureSpec
from t4r_dmt.model.loss import MultiTaskLoss
from t4r_dmt.model.network import RankingNetwork
from t4r_dmt.model.t4r import DMTBody, DMTHead, RankingTask

LOG = logging.getLogger(__name__)


def build_model(schema: Schema, config: DMTConfig) -> tr.Model:
    """Build the model ``config`` describes, with sizes read from ``schema``.

    Parameters
    ----------
    schema: Merlin schema of the preprocessed ranking output (``DIR/ranking/schema.pbtxt``); a
        ``merlin_standard_lib`` schema is converted.
    config: e.g. ``t4r_dmt.presets.load_preset("dmt")``; ``config.interest.kind`` picks DMT or a Table 1
        baseline, ``config.fast_dropout`` the dropout layers (see ``RankingNetwork``).

    Returns
    -------
    ``tr.Model`` whose ``max_sequence_length`` is the longest list it reads (pass it to
    ``T4RecTrainingArguments(max_sequence_length=...)``) and whose ``dmt_config`` is ``config.to_dict()``.
    In training/testing its forward returns T4R's ``{"loss", "labels", "predictions"}``; in inference
    ``{"p_click", "p_order", "score"}``, each ``(B,)``.
    """
    if not isinstance(config, DMTConfig):
        raise ValueError(f"config must be a DMTConfig (see t4r_dmt.presets.load_preset); got {type(config).__name__}")
    if not isinstance(schema, Schema):
        from transformers4rec.torch.utils.data_utils import to_core_schema

        schema = to_core_schema(schema)
    spec = FeatureSpec.from_schema(schema, config)
    loss = MultiTaskLoss(config.loss.task_weights, config.loss.pos_weights, config.loss.order_label,
                         config.bias.unbiased_loss_term, config.bias.form, config.bias.observation_dropout)
    network = RankingNetwork(spec, config)
    task = RankingTask(loss, config.score_weights, spec.targets, config.interest.aux_loss_weight)
    model = tr.Model(DMTHead(DMTBody(network, schema), task), max_sequence_length=spec.max_sequence_length,
                     name=config.name)
    model.__dict__["dmt_config"] = config.to_dict()  # a plain attribute, saved with the model
    n_params = sum(p.numel() for p in model.parameters() if p.requires_grad)
    LOG.info("built %s: behaviours %s, bias tower %s, %d trainable parameters", config.name,
             [b.name for b in spec.behaviors], "on" if spec.bias else "off", n_params)
    return model
