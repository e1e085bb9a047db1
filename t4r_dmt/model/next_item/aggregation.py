"""How the session features are merged into one vector per position (``NextItemConfig.aggregation``)."""

from __future__ import annotations

from typing import Any

import torch
from transformers4rec.torch.tabular.aggregation import ElementwiseFeatureAggregation

from t4r_dmt.model.next_item.config import ITEM_ID_COLUMN, NextItemConfig


class ItemMultipliedSum(ElementwiseFeatureAggregation):
    """The paper's element-wise merge: (sum of the side feature embeddings) x the item embedding.

    T4R's ``element-wise-sum-item-multi`` computes the same but reads ``schema.item_id_column_name``,
    which merlin-core 23.08's ``Schema`` lacks (``AttributeError`` on the first batch).

    Parameters
    ----------
    item_column: name of the item id feature.
    """

    def __init__(self, item_column: str) -> None:
        super().__init__()
        self.item_column = item_column

    def forward(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        """``{name: (B, L, D)}`` -> ``(B, L, D)``."""
        self._expand_non_sequential_features(inputs)
        self._check_input_shapes_equal(inputs)
        side = [value for name, value in inputs.items() if name != self.item_column]
        return inputs[self.item_column] * torch.stack(side).sum(dim=0)

    def forward_output_size(self, input_size: dict[str, Any]) -> Any:
        self._check_inputs_last_dim_equal(input_size)
        return self._get_agg_output_size(input_size, list(input_size.values())[0][-1])


def build_aggregation(config: NextItemConfig) -> Any:
    """The aggregation ``TabularSequenceFeatures`` takes: a T4R registry name, or ``ItemMultipliedSum``."""
    if config.aggregation == "element-wise-sum-item-multi":
        return ItemMultipliedSum(ITEM_ID_COLUMN)
    return config.aggregation
