"""Ratio: one column divided by another (NaN where the denominator is 0 or missing).

Used for the candidate's price relative to its category's mean price (that mean is a JoinGroupby
statistic fitted on the training windows).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from merlin.dag.selector import ColumnSelector
from merlin.schema import ColumnSchema, Schema
from nvtabular.ops.operator import Operator

from t4r_dmt.preprocess.lists import new_frame, to_numpy


class Ratio(Operator):
    """``name = numerator / denominator`` as float64, shape (rows,).

    Parameters
    ----------
    numerator, denominator : str
        Input column names.
    name : str
        Output column name.
    """

    def __init__(self, numerator: str, denominator: str, name: str) -> None:
        super().__init__()
        self.numerator = numerator
        self.denominator = denominator
        self.name = name

    def transform(self, col_selector: ColumnSelector, df: Any) -> Any:
        top = to_numpy(df[self.numerator]).astype(np.float64)
        bottom = to_numpy(df[self.denominator]).astype(np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            ratio = np.where(bottom > 0, top / np.where(bottom > 0, bottom, 1.0), np.nan)
        return new_frame({self.name: ratio}, like=df)

    def column_mapping(self, col_selector: ColumnSelector) -> dict[str, list[str]]:
        return {self.name: [self.numerator, self.denominator]}

    def _compute_dtype(self, col_schema: ColumnSchema, input_schema: Schema) -> ColumnSchema:
        return col_schema.with_dtype(np.float64, is_list=False, is_ragged=False)

    def _compute_tags(self, col_schema: ColumnSchema, input_schema: Schema) -> ColumnSchema:
        return col_schema

    def _compute_properties(self, col_schema: ColumnSchema, input_schema: Schema) -> ColumnSchema:
        return col_schema
