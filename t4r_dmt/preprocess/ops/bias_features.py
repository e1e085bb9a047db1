"""BiasFeatures: the position-bias inputs of DMT's bias tower.

* ``position_index`` = position + 1 and ``position_page`` = page + 1 (0 stays padding);
* ``neighbor_category_seq``: the categories of the 3 items ranked above the candidate, then the 3
  ranked below it, in list order (rank - 3, rank - 2, rank - 1, rank + 1, rank + 2, rank + 3), within
  the same request; 0 where the list ends. Always exactly 6 codes, encoded with the shared category
  vocabulary of the workflow's ``SharedCategorify`` (so they match ``item_category``).

The operator reads raw categories and encodes them itself through that ``SharedCategorify`` rather
than taking its encoded output: merlin.dag re-runs a node once per downstream path, and feeding this
operator from the encoder's output would encode every column of every partition twice.

Ranks come from sorting each request by ``position``; a request's rows must all be in one partition
(the ranking pipeline partitions by user, and a request belongs to one user).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from merlin.dag.selector import ColumnSelector
from merlin.schema import ColumnSchema, Schema, Tags
from nvtabular.ops.operator import Operator

from t4r_dmt.preprocess.lists import flat_to_list, new_frame, to_numpy
from t4r_dmt.preprocess.ops.shared_categorify import SharedCategorify
from t4r_dmt.schema import BIAS_TAG, NEIGHBOR_CATEGORY_SEQ, NEIGHBOR_OFFSETS


class BiasFeatures(Operator):
    """Position, page and neighbour-category features.

    Input columns: ``request_id`` (raw: int64 or text), ``position``, ``page`` (int64) and ``item_category`` (raw).
    Outputs, all int64 and tagged CATEGORICAL + "bias": ``position_index`` and ``position_page``,
    shape (rows,), and ``neighbor_category_seq``, shape (rows, 6).

    Parameters
    ----------
    categorify : SharedCategorify
        The workflow's encoder; its ``vocabulary`` encodes the neighbour categories.
    max_position_index, max_position_page : int
        Schema domain maxima (largest ``position + 1`` and ``page + 1`` in the impression log).
    vocabulary : str
        Name of the category vocabulary inside ``categorify``.
    """

    def __init__(
        self,
        categorify: SharedCategorify,
        max_position_index: int,
        max_position_page: int,
        vocabulary: str = "category",
    ) -> None:
        super().__init__()
        if vocabulary not in categorify.vocabularies:
            raise ValueError(f"vocabulary {vocabulary!r} is not one of {sorted(categorify.vocabularies)}")
        self.categorify = categorify
        self.vocabulary = vocabulary
        self.max_position_index = int(max_position_index)
        self.max_position_page = int(max_position_page)

    def transform(self, col_selector: ColumnSelector, df: Any) -> Any:
        request = to_numpy(df["request_id"])  # raw ids, int or text: only which rows share one matters
        if request.dtype.kind not in "iu":
            request = pd.factorize(request)[0]
        request = request.astype(np.int64, copy=False)
        position = to_numpy(df["position"]).astype(np.int64, copy=False)
        page = to_numpy(df["page"]).astype(np.int64, copy=False)
        category = self.categorify.encode(self.vocabulary, to_numpy(df["item_category"]))
        n = len(request)
        order = np.lexsort((position, request))
        sorted_request = request[order]
        starts = np.flatnonzero(np.r_[True, sorted_request[1:] != sorted_request[:-1]]) if n else np.zeros(0, int)
        sizes = np.diff(np.r_[starts, n])
        rank = np.arange(n) - np.repeat(starts, sizes)
        size = np.repeat(sizes, sizes)
        neighbors = np.zeros((n, len(NEIGHBOR_OFFSETS)), dtype=np.int64)
        for j, offset in enumerate(NEIGHBOR_OFFSETS):
            inside = (rank + offset >= 0) & (rank + offset < size)
            rows = np.flatnonzero(inside)
            neighbors[order[rows], j] = category[order[rows + offset]]
        offsets = np.arange(0, n * len(NEIGHBOR_OFFSETS) + 1, len(NEIGHBOR_OFFSETS), dtype=np.int64)
        return new_frame(
            {
                "position_index": position + 1,
                "position_page": page + 1,
                NEIGHBOR_CATEGORY_SEQ: flat_to_list(neighbors.reshape(-1), offsets, like=df),
            },
            like=df,
        )

    def column_mapping(self, col_selector: ColumnSelector) -> dict[str, list[str]]:
        return {
            "position_index": ["position"],
            "position_page": ["page"],
            NEIGHBOR_CATEGORY_SEQ: ["request_id", "position", "item_category"],
        }

    def _compute_dtype(self, col_schema: ColumnSchema, input_schema: Schema) -> ColumnSchema:
        is_list = col_schema.name == NEIGHBOR_CATEGORY_SEQ
        return col_schema.with_dtype(np.int64, is_list=is_list, is_ragged=False)

    def _compute_shape(self, col_schema: ColumnSchema, input_schema: Schema) -> ColumnSchema:
        if col_schema.name == NEIGHBOR_CATEGORY_SEQ:
            return col_schema.with_shape((None, len(NEIGHBOR_OFFSETS)))
        return col_schema.with_shape((None,))

    def _compute_tags(self, col_schema: ColumnSchema, input_schema: Schema) -> ColumnSchema:
        tags: list[Any] = [Tags.CATEGORICAL, BIAS_TAG]
        if col_schema.name == NEIGHBOR_CATEGORY_SEQ:
            tags.append(Tags.LIST)
        return col_schema.with_tags(tags)

    def _compute_properties(self, col_schema: ColumnSchema, input_schema: Schema) -> ColumnSchema:
        if col_schema.name == NEIGHBOR_CATEGORY_SEQ:
            cardinality, dimension = self.categorify.get_embedding_sizes([self.vocabulary])[self.vocabulary]
            return col_schema.with_properties(
                {
                    "domain": {"min": 0, "max": cardinality - 1, "name": self.vocabulary},
                    "embedding_sizes": {"cardinality": cardinality, "dimension": dimension},
                }
            )
        maximum = self.max_position_index if col_schema.name == "position_index" else self.max_position_page
        return col_schema.with_properties({"domain": {"min": 0, "max": maximum, "name": col_schema.name}})
