"""``Groupby`` with a vectorised pandas path for the list / count / first / last aggregations.

On CPU, NVTabular's ``Groupby`` calls ``DataFrame.groupby(...).agg(list)``, which pandas runs in pure
Python (a Series object per group and column): about 1 s per 20k sessions and column, and the
workflow runs the graph three times (fit, dtype sampling, transform), so 70k YOOCHOOSE events took
30 s. This subclass sorts once (by the group keys, then ``sort_cols``, stably) and cuts every column at
the group boundaries, which gives the same rows, columns, order and dtypes in about 1/100 of the time.
Other aggregations, and cuDF frames, use the stock operator.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from merlin.dag import ColumnSelector
from nvtabular import ops

_FAST_AGGS = frozenset({"list", "count", "first", "last"})


class SortedGroupby(ops.Groupby):
    """``ops.Groupby`` (same arguments and output schema) with a fast pandas path; see module docstring."""

    def transform(self, col_selector: ColumnSelector, df: Any) -> Any:
        aggs = self._column_aggs(col_selector)
        if not isinstance(df, pd.DataFrame) or not len(df) or not self.ascending or aggs is None:
            return super().transform(col_selector, df)
        keys = [df[name].to_numpy() for name in self.groupby_cols]
        if any(pd.isna(key).any() for key in keys):
            return super().transform(col_selector, df)  # pandas drops null keys; keep its behaviour
        # np.lexsort: the last key is the primary one; it is stable, so ties keep the row order.
        sort_keys = [df[name].to_numpy() for name in reversed(self.sort_cols)] + keys[::-1]
        order = np.lexsort(sort_keys)
        keys = [key[order] for key in keys]
        new_group = np.zeros(len(order), dtype=bool)
        new_group[0] = True
        for key in keys:
            new_group[1:] |= key[1:] != key[:-1]
        starts = np.flatnonzero(new_group)
        ends = np.append(starts[1:], len(order))
        bounds = list(zip(starts.tolist(), ends.tolist(), strict=True))  # Python ints slice faster

        out: dict[str, Any] = {name: key[starts] for name, key in zip(self.groupby_cols, keys, strict=True)}
        sep = self.name_sep
        for col, col_aggs in aggs.items():
            values = df[col].to_numpy()[order]
            for agg in col_aggs:
                if agg == "list":
                    as_python = values.tolist()
                    out[f"{col}{sep}list"] = pd.Series(
                        [as_python[s:e] for s, e in bounds], dtype=object
                    )
                elif agg == "count":
                    counts = (pd.notna(values).cumsum(), starts, ends)
                    out[f"{col}{sep}count"] = _segment_count(*counts).astype(np.int32)
                elif agg == "first":
                    out[f"{col}{sep}first"] = values[starts]
                else:
                    out[f"{col}{sep}last"] = values[ends - 1]
        return pd.DataFrame(out)

    def _column_aggs(self, col_selector: ColumnSelector) -> dict[str, list[str]] | None:
        """Aggregations per input column, or None when one of them needs the stock path."""
        allowed = [name for name in col_selector.names if name not in self.groupby_cols]
        result: dict[str, list[str]] = {}
        for source in (self.conv_aggs, self.list_aggs):
            for col, col_aggs in source.items():
                targets = allowed if col == "__all__" else [col] if col in allowed else []
                for target in targets:
                    for agg in col_aggs:
                        if agg is list:
                            continue  # the stock op's marker for list / first / last: in list_aggs
                        if agg not in _FAST_AGGS:
                            return None
                        if agg not in result.setdefault(target, []):
                            result[target].append(agg)
        return result


def _segment_count(non_null_cumsum: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Non-null values per segment ``[starts[i], ends[i])`` from a running count, ``(G,)`` int64."""
    total = np.concatenate([[0], non_null_cumsum])
    return total[ends] - total[starts]
