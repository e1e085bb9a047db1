"""The ranking half of ``t4r-dmt preprocess``: canonical logs in, ``DIR/workflow`` + ``DIR/ranking`` out.

Steps, each bounded in memory:

1. ``HistoryStore.build``: behaviour events, sorted and hashed into user buckets, on disk;
2. candidates per window (the impression log, or sampled negatives without one), on disk, one parquet
   row group per user bucket;
3. ``Workflow.fit`` on the fit windows only (vocabularies, JoinGroupby means, Normalize moments);
4. ``Workflow.transform`` partition by partition, in user-bucket order (one bucket's history and its
   sorted indexes then serve every window), each partition appended to its window's train / valid /
   test files;
5. ``Workflow.save`` (bundles vocabularies and the history) and ``ranking/schema.pbtxt``.

Dask: whatever cluster is active (``merlin.core.utils.Distributed``) runs the fit and the transforms;
without one everything runs in this process.
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from time import perf_counter
from typing import Any

import dask.dataframe as dd
import pandas as pd
from merlin.core.utils import global_dask_client
from merlin.io import Dataset
from tqdm.auto import tqdm

from t4r_dmt.compat.merlin_schema import write_schema_pbtxt
from t4r_dmt.data.canonical import canonical_rank
from t4r_dmt.data.ids import IdTexts
from t4r_dmt.errors import InputError
from t4r_dmt.preprocess.candidates import CandidateFiles, write_impression_windows
from t4r_dmt.preprocess.config import RankingConfig
from t4r_dmt.preprocess.history import HistoryStore
from t4r_dmt.preprocess.lists import cudf
from t4r_dmt.preprocess.negatives import sampled_windows
from t4r_dmt.preprocess.ops.history_operator import reuse_fit_outputs
from t4r_dmt.preprocess.workflow import build_ranking_workflow, constant_features, output_columns
from t4r_dmt.preprocess.writer import arrow_schema, write_windows

LOG = logging.getLogger(__name__)
EVENT_COLUMNS = ("event_time", "event_type", "product_id", "category_id", "brand", "price", "user_id")


@dataclass
class RankingData:
    """Canonical input frames (see the contracts), the names used for them in error messages, and the texts of
    their text user / product ids (whose int64 surrogates the frames hold)."""

    events: pd.DataFrame
    impressions: pd.DataFrame | None = None
    items: pd.DataFrame | None = None
    events_source: str = "events"
    impressions_source: str = "impressions"
    ids: IdTexts = field(default_factory=IdTexts)


def preprocess_ranking(
    data: RankingData, out_dir: str | Path, config: RankingConfig, progress: bool = True
) -> dict[str, Any]:
    """Write the ranking workflow and windows into ``out_dir`` (a fresh folder); return the stats.

    Raises
    ------
    InputError
        Missing event columns, no events, an empty window, or an invalid impression log.
    ValueError
        ``config.fit_windows`` exceeds the number of windows.
    """
    out_dir = Path(out_dir)
    scratch = out_dir / ".scratch"
    timings: dict[str, float] = {}
    _check_events(data.events, data.events_source)

    start = perf_counter()
    rank = canonical_rank(data.events)  # same-time events in one order, whatever the input's row order
    store, unused = HistoryStore.build(
        data.events, out_dir / "workflow" / "history", config.events_per_bucket, data.items, rank
    )
    timings["history_s"] = perf_counter() - start

    start = perf_counter()
    with_bias = data.impressions is not None
    if config.ctr_position_debias and not with_bias:
        raise ValueError("--ctr_position_debias needs an impression log with positions (--impressions); sampled "
                         "negatives have none")
    if data.impressions is not None:
        files = write_impression_windows(
            data.impressions, config.window, scratch / "candidates", store.n_buckets, data.impressions_source,
            config.ctr_position_debias,
        )
    else:
        files = sampled_windows(
            data.events, config.window, config.negatives, config.seed, scratch / "candidates", store.n_buckets,
            data.events_source, rank,
        )
    store.write_item_impressions(files.item_hour_counts())
    timings["candidates_s"] = perf_counter() - start
    n_windows = len(files.paths)
    if config.fit_windows > n_windows:
        raise ValueError(f"fit_windows={config.fit_windows} but the log spans only {n_windows} window(s)")

    start = perf_counter()
    workflow = build_ranking_workflow(
        str(store.root), str(scratch / "stats"), config, with_bias, files.max_position, files.max_page
    )
    # The transform reads the fit's history features of the fit windows instead of computing them again.
    with reuse_fit_outputs() as fitting:
        with fitting():
            workflow.fit(_dataset(files, list(range(1, config.fit_windows + 1))))
        timings["fit_s"] = perf_counter() - start
        constant = constant_features(workflow)
        if constant:
            LOG.warning(
                "%d dense feature(s) are constant over the fit windows 1..%d, so they are not scaled and the model "
                "sees their later values raw: %s. Fit on more windows (--fit_windows) or drop them.",
                len(constant), config.fit_windows, ", ".join(constant),
            )

        start = perf_counter()
        columns = output_columns(with_bias)
        schema = workflow.output_schema
        # Bucket-major order: one user bucket's history (and its sorted indexes) serves every window.
        labels = [(w, b) for w in files.paths for b in files.buckets[w]]  # (window, bucket) per row group
        order = sorted(range(len(labels)), key=lambda i: labels[i][::-1])
        ddf = workflow.transform(_dataset(files, list(files.paths), order)).to_ddf()
        with tqdm(total=len(order), desc="ranking partitions", disable=not progress) as bar:
            rows = write_windows(
                ddf, [labels[i][0] for i in order], out_dir / "ranking", arrow_schema(schema, columns), _in_flight(),
                on_partition=bar.update,
            )
        timings["transform_write_s"] = perf_counter() - start

    workflow.save(str(out_dir / "workflow"))
    write_schema_pbtxt(schema.select_by_name(columns), str(out_dir / "ranking"), "schema.pbtxt")
    shutil.rmtree(scratch)
    stats = _stats(config, files, with_bias, rows, unused, store.n_buckets, schema, timings)
    stats["constant_features"] = constant
    return stats


def _check_events(events: pd.DataFrame, source: str) -> None:
    missing = [c for c in EVENT_COLUMNS if c not in events.columns]
    if missing:
        raise InputError(source, "required event column is missing", column=missing[0])
    if len(events) == 0:
        raise InputError(source, "the event log has no rows")


def _dataset(files: CandidateFiles, windows: list[int], order: list[int] | None = None) -> Dataset:
    """The candidates of ``windows``, one partition per (window, user bucket) parquet row group,
    optionally reordered (``order`` lists partition indices)."""
    ddf = dd.read_parquet([str(files.paths[w]) for w in windows], split_row_groups=True)
    if order is not None:
        ddf = ddf.partitions[order]
    dataset = Dataset(ddf, cpu=True)
    if cudf is not None:  # pragma: no cover - GPU machines only
        dataset.to_gpu()
    return dataset


def _in_flight() -> int:
    """Partitions computed ahead of the writer: two per Dask worker, none without a cluster."""
    client = global_dask_client()
    if client is None:
        return 0
    return max(1, 2 * len(client.scheduler_info().get("workers", {})))


def _stats(
    config: RankingConfig,
    files: CandidateFiles,
    with_bias: bool,
    rows: dict[str, dict[str, int]],
    unused: dict[str, int],
    n_buckets: int,
    schema: Any,
    timings: dict[str, float],
) -> dict[str, Any]:
    vocabularies = {}
    for column, name in (("item_id", "item"), ("item_category", "category"), ("item_brand", "brand"),
                         ("user_id", "user")):
        vocabularies[name] = int(schema[column].properties["domain"]["max"]) + 1
    return {
        "mode": "impressions" if with_bias else "sampled_negatives",
        "bias_features": with_bias,
        "window": config.window,
        "windows": len(files.paths),
        "window_starts": files.window_starts,
        "fit_windows": list(range(1, config.fit_windows + 1)),
        "fit_note": (
            f"vocabularies, category mean prices and normalisation statistics were fitted on windows "
            f"1..{config.fit_windows} only; ids unseen there map to the OOV code 2"
        ),
        "rows_per_window": rows,
        "dropped": {**unused, **files.dropped},
        "vocabulary_sizes": vocabularies,
        "n_buckets": n_buckets,
        "config": asdict(config),
        "timings": {name: round(value, 3) for name, value in timings.items()},
    }
