"""LoggedBiasFeatures: BiasFeatures for logs that record each impression's neighbours themselves (JD).

The same outputs, tags and schema properties as :class:`BiasFeatures` (``position_index`` = position + 1,
``position_page`` = page + 1, ``neighbor_category_seq`` of exactly 6 codes in the shared category vocabulary),
but the neighbours' categories are read from a raw list column of the row (JD's ``near_expo_seq_c3``) instead of
being looked up among the other impressions of the request: a sampled log keeps one impression per request.

A logged list shorter than 6 is padded with 0 at its end (the log does not say which side is missing); a
longer one is cut to its first 6.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from merlin.dag.selector import ColumnSelector

from t4r_dmt.preprocess.lists import flat_to_list, list_to_flat, new_frame, to_numpy
from t4r_dmt.preprocess.ops.bias_features import BiasFeatures
from t4r_dmt.schema import NEIGHBOR_CATEGORY_SEQ, NEIGHBOR_OFFSETS, PAD_CODE


class LoggedBiasFeatures(BiasFeatures):
    """Position, page and logged neighbour-category features.

    Input columns: ``position``, ``page`` (int64) and ``neighbor_category_seq`` (raw categories, lists of up to
    6). Outputs as :class:`BiasFeatures`: ``position_index``, ``position_page`` (rows,) and
    ``neighbor_category_seq`` (rows, 6), int64, tagged CATEGORICAL + "bias".

    Parameters
    ----------
    categorify, max_position_index, max_position_page, vocabulary
        As :class:`BiasFeatures`.
    """

    def transform(self, col_selector: ColumnSelector, df: Any) -> Any:
        position = to_numpy(df["position"]).astype(np.int64, copy=False)
        page = to_numpy(df["page"]).astype(np.int64, copy=False)
        values, offsets = list_to_flat(df[NEIGHBOR_CATEGORY_SEQ])
        codes = self.categorify.encode(self.vocabulary, values)
        width = len(NEIGHBOR_OFFSETS)
        n = len(position)
        lengths = np.minimum(np.diff(offsets), width)
        row = np.repeat(np.arange(n), lengths)
        slot = np.arange(int(lengths.sum())) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        neighbors = np.full((n, width), PAD_CODE, dtype=np.int64)
        neighbors[row, slot] = codes[np.repeat(offsets[:-1], lengths) + slot]
        out_offsets = np.arange(0, n * width + 1, width, dtype=np.int64)
        return new_frame(
            {
                "position_index": position + 1,
                "position_page": page + 1,
                NEIGHBOR_CATEGORY_SEQ: flat_to_list(neighbors.reshape(-1), out_offsets, like=df),
            },
            like=df,
        )

    def column_mapping(self, col_selector: ColumnSelector) -> dict[str, list[str]]:
        return {
            "position_index": ["position"],
            "position_page": ["page"],
            NEIGHBOR_CATEGORY_SEQ: [NEIGHBOR_CATEGORY_SEQ],
        }
