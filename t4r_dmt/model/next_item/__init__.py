"""Session-based next-item models (``t4r-dmt train --task next-item``), built from T4R's own blocks.

The model is T4R's session-based meta-architecture (Moreira et al., RecSys 2021):
``TabularSequenceFeatures`` (item id + optional side features, aggregated, projected to ``d_model`` and
masked by the training approach) -> MLP -> sequence body -> ``NextItemPredictionTask`` with weight tying.
The body is a HF transformer through T4R's configs (XLNet, BERT, GPT-2, ELECTRA ...) or the paper's GRU
baseline. One concept per module:

* ``config``: ``NextItemConfig`` and its choices (``BODIES``, ``MASKINGS``, ``BODY_MASKINGS``, ``AGGREGATIONS``);
* ``body``: the transformer or GRU body, and the XLNet causal-mask fix (``CausalXLNetModel``);
* ``gru``: the GRU body as a ``tr.Block``;
* ``masking``: T4R's maskings with the padding hidden from attention;
* ``aggregation``: the paper's element-wise merge (``ItemMultipliedSum``);
* ``rtd``: ELECTRA's replaced token detection head;
* ``build``: ``build_next_item_model(schema, config)``.

Two corrections to T4R 23.12, both following the paper's setup: causal LM with XLNet uses
``attn_type="uni"`` (``body``), and ``masking="rtd"`` trains a discriminator (``rtd``). Training and
evaluation (``evaluate_next_item``) are in ``t4r_dmt.training.next_item``.
"""

from __future__ import annotations

from t4r_dmt.model.next_item.aggregation import ItemMultipliedSum
from t4r_dmt.model.next_item.body import CausalXLNetModel
from t4r_dmt.model.next_item.build import build_next_item_model, select_features
from t4r_dmt.model.next_item.config import (
    AGGREGATIONS,
    BODIES,
    BODY_MASKINGS,
    ITEM_ID_COLUMN,
    MASKINGS,
    TRANSFORMERS,
    NextItemConfig,
    RecipeConfig,
)
from t4r_dmt.model.next_item.gru import GRUSequenceEncoder, gru_block
from t4r_dmt.model.next_item.rtd import ReplacedTokenDetectionHead

__all__ = [
    "AGGREGATIONS",
    "BODIES",
    "BODY_MASKINGS",
    "ITEM_ID_COLUMN",
    "MASKINGS",
    "TRANSFORMERS",
    "CausalXLNetModel",
    "GRUSequenceEncoder",
    "ItemMultipliedSum",
    "NextItemConfig",
    "RecipeConfig",
    "ReplacedTokenDetectionHead",
    "build_next_item_model",
    "gru_block",
    "select_features",
]
