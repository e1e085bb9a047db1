"""The GBDT baseline's feature table: the ranking columns the neural models read, one number per feature.

* categorical: ``item_id``, ``item_category``, ``item_brand`` (LightGBM categorical splits on the codes);
* dense: every CONTINUOUS scalar column of the schema, the user-candidate interaction features
  (``Interactions``, tagged ``interaction``) included — the same feature set as every neural preset;
  ``interactions=False`` leaves the tagged columns out (the ablation).

Bias features (position, page, neighbours) are left out: the served score must not depend on the slot the
item will be shown in (DMT uses them in training only), so GBDT gets the same information DMT serves with.
Behaviour sequences are not flattened here: what GBDT knows of them is what the interaction features say.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from merlin.schema import Schema, Tags

from t4r_dmt.schema import INTERACTION_TAG, TARGET_ITEM_COLUMNS

CATEGORICAL: tuple[str, ...] = tuple(TARGET_ITEM_COLUMNS.values())


@dataclass(frozen=True)
class GBDTFeatures:
    """Column lists read from a schema: ``categorical`` and ``dense``."""

    categorical: tuple[str, ...]
    dense: tuple[str, ...]

    @classmethod
    def from_schema(cls, schema: Schema, interactions: bool = True) -> GBDTFeatures:
        names = set(schema.column_names)
        missing = [c for c in CATEGORICAL if c not in names]
        if missing:
            raise ValueError(f"schema lacks the target item column(s) {missing} (see DESIGN.md)")
        dense = tuple(c.name for c in schema.select_by_tag(Tags.CONTINUOUS)
                      if not c.is_list and Tags.TARGET not in c.tags
                      and (interactions or INTERACTION_TAG not in c.tags))
        return cls(CATEGORICAL, dense)

    @property
    def columns(self) -> list[str]:
        """Every column the table reads from a ranking file."""
        return [*self.categorical, *self.dense]


def tabular_features(frame: pd.DataFrame, spec: GBDTFeatures) -> pd.DataFrame:
    """``frame`` (one ranking file's rows) -> the numeric feature table, one row per impression."""
    missing = [c for c in spec.columns if c not in frame.columns]
    if missing:
        raise ValueError(f"ranking file lacks column(s) {missing}")
    out = {c: frame[c].to_numpy().astype(np.int64) for c in spec.categorical}
    for c in spec.dense:
        out[c] = frame[c].to_numpy().astype(np.float32)
    return pd.DataFrame(out, index=frame.index)
