"""The GBDT baseline's feature table: the ranking columns flattened to one number per feature.

* categorical: ``item_id``, ``item_category``, ``item_brand`` (LightGBM categorical splits on the codes);
* dense: every CONTINUOUS column of the schema;
* per behaviour b present in the file: ``{b}_len`` (events in the sequence) and, for the target's item,
  category and brand, how often it occurs in the sequence (``{b}_item_hits`` ...) and whether the most
  recent event matches the target category (``{b}_last_category``); ``target_history=False`` leaves these
  target-match aggregates out and keeps ``{b}_len`` (the GBDT ablation of the paper comparison).

Bias features (position, page, neighbours) are left out: the served score must not depend on the slot the
item will be shown in (DMT uses them in training only), so GBDT gets the same information DMT serves with.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from merlin.schema import Schema, Tags

from t4r_dmt.schema import BEHAVIORS, FIRST_VALUE_CODE, SEQUENCE_SUFFIXES, TARGET_ITEM_COLUMNS

CATEGORICAL: tuple[str, ...] = tuple(TARGET_ITEM_COLUMNS.values())
#: Sequence suffix -> the target item column it is matched against, and the attribute's short name.
TARGET_OF = {SEQUENCE_SUFFIXES[a]: TARGET_ITEM_COLUMNS[a] for a in SEQUENCE_SUFFIXES}
SHORT = {SEQUENCE_SUFFIXES[a]: a for a in SEQUENCE_SUFFIXES}


@dataclass(frozen=True)
class GBDTFeatures:
    """Column lists read from a schema: ``categorical``, ``dense``, ``behaviors`` present; whether the
    target-in-history aggregates are built (``target_history``)."""

    categorical: tuple[str, ...]
    dense: tuple[str, ...]
    behaviors: tuple[str, ...]
    target_history: bool = True

    @classmethod
    def from_schema(cls, schema: Schema, target_history: bool = True) -> GBDTFeatures:
        names = set(schema.column_names)
        missing = [c for c in CATEGORICAL if c not in names]
        if missing:
            raise ValueError(f"schema lacks the target item column(s) {missing} (see DESIGN.md)")
        dense = tuple(c.name for c in schema.select_by_tag(Tags.CONTINUOUS)
                      if not c.is_list and Tags.TARGET not in c.tags)
        behaviors = tuple(b for b in BEHAVIORS if all(f"{b}_{s}" in names for s in TARGET_OF))
        return cls(CATEGORICAL, dense, behaviors, target_history)

    @property
    def columns(self) -> list[str]:
        """Every column the table reads from a ranking file."""
        seq = [f"{b}_{s}" for b in self.behaviors for s in TARGET_OF]
        return [*self.categorical, *self.dense, *seq]




def sequence_aggregates(lists: pd.Series, target: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per row: sequence length, occurrences of ``target`` in it, and whether its last event equals it.

    A null or out-of-vocabulary target (code 1 or 2) matches nothing: those codes stand for many different
    values (every item unseen in the fit windows shares code 2, every missing brand code 1), so "equal codes"
    would not mean "the same item".

    Parameters
    ----------
    lists: (N,) lists of int codes, oldest first (None or empty = no history; code 0, padding, is skipped).
    target: (N,) int codes.

    Returns
    -------
    (length (N,), hits (N,), last_match (N,)), float32.
    """
    arrays = [np.asarray(v if v is not None else [], dtype=np.int64) for v in lists]
    arrays = [a[a != 0] for a in arrays]  # code 0 is padding, not an event
    lengths = np.fromiter((len(a) for a in arrays), dtype=np.int64, count=len(arrays))
    if len(target) != len(arrays):
        raise ValueError(f"{len(arrays)} lists but {len(target)} targets")
    flat = np.concatenate(arrays) if arrays else np.zeros(0, dtype=np.int64)
    row = np.repeat(np.arange(len(arrays)), lengths)
    known = target >= FIRST_VALUE_CODE
    hits = np.bincount(row, weights=((flat == target[row]) & known[row]).astype(np.float64), minlength=len(arrays))
    last = np.zeros(len(arrays), dtype=bool)
    has = lengths > 0
    ends = np.cumsum(lengths) - 1
    last[has] = (flat[ends[has]] == target[has]) & known[has]
    return lengths.astype(np.float32), hits.astype(np.float32), last.astype(np.float32)


def tabular_features(frame: pd.DataFrame, spec: GBDTFeatures) -> pd.DataFrame:
    """``frame`` (one ranking file's rows) -> the numeric feature table, one row per impression."""
    missing = [c for c in spec.columns if c not in frame.columns]
    if missing:
        raise ValueError(f"ranking file lacks column(s) {missing}")
    out = {c: frame[c].to_numpy().astype(np.int64) for c in spec.categorical}
    for c in spec.dense:
        out[c] = frame[c].to_numpy().astype(np.float32)
    for b in spec.behaviors:
        for suffix, target in TARGET_OF.items():
            length, hits, last = sequence_aggregates(frame[f"{b}_{suffix}"], out[target])
            if suffix == "item_id_seq":
                out[f"{b}_len"] = length
            if not spec.target_history:
                continue
            out[f"{b}_{SHORT[suffix]}_hits"] = hits
            if suffix == "category_seq":
                out[f"{b}_last_category"] = last
    return pd.DataFrame(out, index=frame.index)
