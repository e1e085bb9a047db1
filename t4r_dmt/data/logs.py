"""``load_logs``: read any supported public format into the canonical events / impressions tables."""

from __future__ import annotations

import os
from collections.abc import Callable

from t4r_dmt.data import diginetica, otto, rees46, retailrocket, taobao, trivago, yoochoose
from t4r_dmt.data.reader import Logs
from t4r_dmt.data.validate import DEFAULT_MAX_TIME_GAP, check_on_bad_rows, parse_time_gap

_LOADERS: dict[str, Callable[..., Logs]] = {
    "rees46": rees46.load,
    "yoochoose": yoochoose.load,
    "diginetica": diginetica.load,
    "taobao": taobao.load,
    "retailrocket": retailrocket.load,
    "otto": otto.load,
    "trivago": trivago.load,
}
FORMATS: tuple[str, ...] = tuple(_LOADERS)


def load_logs(path: str | os.PathLike[str], fmt: str = "rees46", on_bad_rows: str = "raise",
              page_size: int | None = None, max_time_gap: str = DEFAULT_MAX_TIME_GAP) -> Logs:
    """Read logs of format ``fmt`` into canonical events (and impressions where the format has them).

    Parameters
    ----------
    path:
        A file, a glob, or a folder (the format's files inside it, recursively).
    fmt:
        One of :data:`FORMATS`; see each format's module for how its fields map.
    on_bad_rows:
        "raise": the first bad row raises :class:`~t4r_dmt.errors.InputError` naming the file, the
        column, the place (``line N`` of a text file in its own numbering, the header being line 1;
        ``row N``, 0-based, of a parquet file) and the value, and saying how many rows are bad;
        "drop": bad rows are left out and counted by reason in ``Logs.dropped`` (also logged at INFO).
    page_size:
        Items per page for impressions whose page is not in the data; None: the format's own (Trivago: 25,
        a clickout's list being one results page; the others: 10).
    max_time_gap:
        A duration: rows apart from the bulk of their log by a longer stretch without rows are bad
        rows ("time far outside the log").

    Returns
    -------
    :class:`Logs` (events, impressions or None, dropped counts).
    """
    if fmt not in _LOADERS:
        raise ValueError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    check_on_bad_rows(on_bad_rows)
    if page_size is not None and page_size < 1:
        raise ValueError(f"page_size must be >= 1; got {page_size}")
    parse_time_gap(max_time_gap)
    pages = {} if page_size is None else {"page_size": page_size}
    return _LOADERS[fmt](path, on_bad_rows=on_bad_rows, max_time_gap=max_time_gap, **pages)
