"""``t4r-dmt preprocess``: raw logs -> ``DIR/workflow``, ``DIR/ranking``, ``DIR/sessions``, ``DIR/stats.json``
(and ``DIR/ids`` when user or product ids are text: the text of each int64 surrogate, :mod:`t4r_dmt.data.ids`).

Everything is written into a temporary folder beside ``--out`` and renamed at the end, so a failed run
leaves no half output; an existing non-empty ``--out`` is only replaced with ``--overwrite``.
``--workers N`` starts a local Dask cluster of N single-threaded worker processes, ``--scheduler ADDR``
joins a running one (its workers must see the same file system).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path
from time import perf_counter
from typing import Any

import pandas as pd

from t4r_dmt.data import load_logs, read_impressions, read_items
from t4r_dmt.data.ids import IDS_DIR
from t4r_dmt.data.sources import check_inputs_given
from t4r_dmt.io_utils import atomic_dir, write_json
from t4r_dmt.preprocess import jd
from t4r_dmt.preprocess.arguments import PreprocessArguments
from t4r_dmt.preprocess.pipeline import RankingData, preprocess_ranking

LOG = logging.getLogger(__name__)
ARGUMENTS = (PreprocessArguments,)


def run(args: PreprocessArguments) -> dict[str, Any]:
    """Run the whole preprocessing; returns a short summary (the full stats are in stats.json)."""
    if args.format == jd.FORMAT:  # records that already hold the sequences: no event-history workflow
        return jd.run(args)
    out = Path(args.out)
    with atomic_dir(out, overwrite=args.overwrite) as tmp:
        start = perf_counter()
        data, readers = load_inputs(args)
        read_s = perf_counter() - start
        with dask_cluster(args.workers, args.scheduler) as client:
            stats = preprocess_ranking(data, tmp, args.ranking_config())
            stats["readers"] = readers
            stats["timings"]["read_s"] = round(read_s, 3)
            stats["dask"] = {"workers": args.workers, "scheduler": args.scheduler}
            if args.with_sessions:
                stats["sessions"] = _write_sessions(data.events, tmp / "sessions", args.window, client)
        if data.ids:
            data.ids.save(tmp / IDS_DIR)
            stats["text_ids"] = {column: len(data.ids.texts(column)) for column in data.ids.columns}
        write_json(tmp / "stats.json", stats)
    rows = sum(r["train"] for r in stats["rows_per_window"].values())
    LOG.info("preprocess: %d ranking rows in %d window(s) written to %s", rows, stats["windows"], out)
    return {"out": str(out), "mode": stats["mode"], "windows": stats["windows"], "ranking_rows": rows}


def load_inputs(args: PreprocessArguments) -> tuple[RankingData, dict[str, Any]]:
    """Read the logs through ``t4r_dmt.data`` (canonical frames, the texts of text ids) and the readers'
    dropped-row counts."""
    check_inputs_given({"--events": args.events, "--impressions": args.impressions, "--items": args.items})
    logs = load_logs(args.events, args.format, args.on_bad_rows, max_time_gap=args.max_time_gap)
    dropped: dict[str, Any] = {"events": dict(logs.dropped)}
    impressions = logs.impressions
    if args.impressions is not None:  # text ids of every file go into one IdTexts: a clash across files raises
        impressions, dropped["impressions"] = read_impressions(
            args.impressions, on_bad_rows=args.on_bad_rows, page_size=args.page_size, max_time_gap=args.max_time_gap,
            ids=logs.ids,
        )
    items = read_items(args.items, ids=logs.ids) if args.items is not None else None
    data = RankingData(
        events=logs.events,
        impressions=impressions,
        items=items,
        events_source=args.events,
        impressions_source=args.impressions or args.events,
        ids=logs.ids,
    )
    return data, dropped


@contextlib.contextmanager
def dask_cluster(workers: int, scheduler: str | None) -> Iterator[Any]:
    """Activate a Dask cluster for merlin (yields its client), or yield None to run in-process."""
    if not workers and not scheduler:
        yield None
        return
    from merlin.core.utils import Distributed

    if scheduler:
        from distributed import Client

        client = Client(scheduler)
        try:
            with Distributed(client=client):
                yield client
        finally:
            client.close()
        return
    with Distributed(
        cluster_type="cpu", force_new=True, n_workers=workers, threads_per_worker=1, processes=True,
        dashboard_address=":0",
    ) as distributed:
        yield distributed.client


def _write_sessions(events: pd.DataFrame, out_dir: Path, window: str, client: Any) -> dict[str, Any]:
    from t4r_dmt.preprocess.sessions import write_sessions

    return dict(write_sessions(events, out_dir, window=window, client=client))
