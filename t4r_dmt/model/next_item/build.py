"""``build_next_item_model(schema, config)``: a next-item preset as a ``transformers4rec.torch.Model``.

T4R's session-based meta-architecture (Moreira et al., RecSys 2021): ``TabularSequenceFeatures`` (item id +
optional side features, aggregated, projected to ``d_model`` and masked by the training approach) -> MLP ->
sequence body -> ``NextItemPredictionTask`` with weight tying; with ``masking="rtd"`` the head adds the
replaced token detection discriminator.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import torch
import transformers4rec.torch as tr
from merlin.schema import Tags

from t4r_dmt.metrics.next_item import apply_ranking_metric_fix
from t4r_dmt.model.next_item.aggregation import build_aggregation
from t4r_dmt.model.next_item.body import sequence_block
from t4r_dmt.model.next_item.config import ITEM_ID_COLUMN, NextItemConfig
from t4r_dmt.model.next_item.masking import build_masking
from t4r_dmt.model.next_item.rtd import ReplacedTokenDetectionHead


def select_features(schema: Any, features: list[str]) -> Any:
    """The sub-schema of ``features``; raises ``ValueError`` naming unknown columns and the available ones."""
    missing = [name for name in features if name not in schema.column_names]
    if missing:
        raise ValueError(f"features {missing} are not in the sessions schema (columns: {schema.column_names})")
    return schema.select_by_name(features)


def build_next_item_model(schema: Any, config: NextItemConfig) -> Any:
    """Build a T4R session-based model from the sessions schema and ``config``."""
    apply_ranking_metric_fix()
    schema = select_features(schema, config.features)
    elementwise = config.aggregation != "concat"
    side_dim = config.item_dim if elementwise else config.side_embedding_dim
    continuous = schema.select_by_tag(Tags.CONTINUOUS).column_names
    if continuous and elementwise and not config.continuous_soft_embeddings:
        # T4R builds the aggregation before it would project the scalars to the item size.
        raise ValueError(f"aggregation {config.aggregation!r} needs continuous_soft_embeddings=True for the "
                         f"continuous features {continuous} (each must be an embedding of the item size)")
    post: list[Any] = []
    if config.input_dropout:
        post.append(tr.TabularDropout(dropout_rate=config.input_dropout))
    if config.layer_norm_featurewise:
        post.append("layer-norm")
    inputs = tr.TabularSequenceFeatures.from_schema(
        schema,
        max_sequence_length=config.max_sequence_length,
        aggregation=build_aggregation(config),
        d_output=config.d_model,
        masking=build_masking(config),
        post=post or None,
        embedding_dims={ITEM_ID_COLUMN: config.item_dim},
        embedding_dim_default=side_dim,
        embeddings_initializers={
            ITEM_ID_COLUMN: partial(torch.nn.init.normal_, mean=0.0, std=config.item_id_init_std)},
        continuous_soft_embeddings=config.continuous_soft_embeddings,
        soft_embedding_cardinality_default=config.soft_embedding_cardinality,
        soft_embedding_dim_default=side_dim,
    )
    body = tr.SequentialBlock(inputs, tr.MLPBlock([config.d_model]), sequence_block(config, inputs.masking))
    task = tr.NextItemPredictionTask(
        weight_tying=True, loss=torch.nn.CrossEntropyLoss(label_smoothing=config.label_smoothing),
    )
    if config.masking == "rtd":
        return tr.Model(ReplacedTokenDetectionHead(body, task, inputs=inputs,
                                                   discriminator_weight=config.rtd_discriminator_weight))
    return tr.Model(tr.Head(body, task, inputs=inputs))
