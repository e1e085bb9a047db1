"""``t4r-dmt preprocess --format jd``: the DMT paper's JD TFRecords -> ``DIR/workflow``, ``DIR/ranking``, stats.

JD records already hold each impression's behaviour sequences, dense features and neighbours
(:mod:`t4r_dmt.data.jd`), so this format skips the event-history workflow and writes ranking windows directly,
in two passes over bounded chunks:

1. the records are parsed ``chunk_size`` at a time and each chunk's rows are appended, as one parquet row group,
   to a scratch file per window of the ``--window`` grid (window 1 = the window of the earliest request);
2. an ``nvt.Workflow`` is fitted on the first ``--fit_windows`` windows, then transforms every window row group
   by row group into ``DIR/ranking/NNNN/{train,valid,test}.parquet`` (valid/test by ``valid_half`` of the hashed
   request id, as every format).

The workflow (saved to ``DIR/workflow``; its ``categories/`` decode every id)::

    item_id, item_category, item_brand, item_shop, user_id, {b}_{item_id,category,brand,shop}_seq
        ─ SharedCategorify (vocabularies item, category, brand, shop, user; shared by target and sequences)
    position, page, neighbor_category_seq (raw) ─ LoggedBiasFeatures ─ position_index, position_page,
        neighbor_category_seq (6 codes in the category vocabulary), tagged bias
    jd_feature_000 .. jd_feature_614 ─ AddTags(CONTINUOUS)        (already normalised by the authors)
    {b}_time_gap_seq ─ AddTags(CONTINUOUS, LIST, SEQUENCE, behavior_b)  (seconds before the request)
    {b}_time_gap_bucket_seq ─ AddMetadata(CATEGORICAL, LIST, SEQUENCE, behavior_b; its domain)  (their log2
        buckets, computed from the seconds as the rows are split into windows; see ``_with_time_gap_buckets``)
    click, order ─ AddTags(TARGET, BINARY_CLASSIFICATION, BINARY, CLASSIFICATION)
    request_id, window, product_id, request_id_text, request_ts: passed through untagged

Column names and tags of the columns it shares with the event workflow are those of
:mod:`t4r_dmt.preprocess.workflow`; ``item_shop`` / ``{b}_shop_seq`` are tagged as the brand columns are, so a
model can embed them (the DMT model reads item, category and brand). JD has no event log, so no ``DIR/sessions``.
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import asdict
from pathlib import Path
from time import perf_counter
from typing import Any

import dask.dataframe as dd
import numpy as np
import nvtabular as nvt
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from merlin.io import Dataset
from merlin.schema import Schema, Tags
from merlin.schema.io.tensorflow_metadata import TensorflowMetadata
from nvtabular import ops as nvt_ops
from tqdm.auto import tqdm

from t4r_dmt.compat.merlin_executor import use_list_safe_executor
from t4r_dmt.data.jd import (
    DENSE_COLUMNS,
    FORMAT,
    ID_SEQUENCES,
    ITEM_SHOP,
    REQUEST_ID_TEXT,
    TIME_GAP_COLUMNS,
    JDReader,
    shop_sequence_column,
    time_gap_column,
)
from t4r_dmt.data.sources import check_inputs_given
from t4r_dmt.errors import InputError
from t4r_dmt.io_utils import atomic_dir, write_json
from t4r_dmt.preprocess.arguments import PreprocessArguments
from t4r_dmt.preprocess.candidates import check_windows
from t4r_dmt.preprocess.config import RankingConfig
from t4r_dmt.preprocess.lists import arrow_flat, cudf
from t4r_dmt.preprocess.ops import SharedCategorify
from t4r_dmt.preprocess.ops.behavior_sequences import TIME_GAP_DOMAIN, time_gap_buckets
from t4r_dmt.preprocess.ops.logged_bias_features import LoggedBiasFeatures
from t4r_dmt.preprocess.workflow import LABEL_COLUMNS, LABEL_TAGS, id_tags, id_vocabularies
from t4r_dmt.preprocess.writer import arrow_schema, write_windows
from t4r_dmt.schema import (
    BEHAVIORS,
    BIAS_COLUMNS,
    CATEGORICAL_ID_COLUMNS,
    NEIGHBOR_CATEGORY_SEQ,
    NEIGHBOR_OFFSETS,
    PASSTHROUGH_COLUMNS,
    TARGET_ITEM_COLUMNS,
    behavior_tag,
    sequence_columns,
    time_gap_bucket_column,
)
from t4r_dmt.windows import MAX_WINDOWS, window_delta, window_numbers

LOG = logging.getLogger(__name__)
__all__ = ["FORMAT", "build_jd_workflow", "output_columns", "preprocess_jd", "run"]
#: Raw columns passed through untagged (beside the contract's ``request_id``, ``window``, ``product_id``).
JD_PASSTHROUGH: tuple[str, ...] = (REQUEST_ID_TEXT, "request_ts")
_EPOCH = pd.Timestamp(0)


def run(args: PreprocessArguments) -> dict[str, Any]:
    """``t4r-dmt preprocess --format jd``: write ``args.out`` atomically; returns a short summary."""
    check_inputs_given({"--events": args.events})
    unsupported = {"--impressions": args.impressions, "--items": args.items, "--workers": args.workers or None,
                   "--scheduler": args.scheduler}
    given = [flag for flag, value in unsupported.items() if value is not None]
    if given:
        raise ValueError(f"--format jd reads ranking rows from the records themselves; {', '.join(given)} "
                         "cannot be used with it")
    if args.with_sessions:
        LOG.info("--format jd: no DIR/sessions (the JD records hold no event log)")
    out = Path(args.out)
    with atomic_dir(out, overwrite=args.overwrite) as tmp:
        stats = preprocess_jd(args.events, tmp, args.ranking_config(), args.chunk_size, args.on_bad_rows)
        write_json(tmp / "stats.json", stats)
    rows = sum(r["train"] for r in stats["rows_per_window"].values())
    LOG.info("preprocess: %d ranking rows in %d window(s) written to %s", rows, stats["windows"], out)
    return {"out": str(out), "mode": stats["mode"], "windows": stats["windows"], "ranking_rows": rows}


def preprocess_jd(
    path: str, out_dir: str | Path, config: RankingConfig, chunk_size: int = 4096, on_bad_rows: str = "raise",
    progress: bool | None = None,
) -> dict[str, Any]:
    """Write ``out_dir/workflow`` and ``out_dir/ranking`` from the JD records of ``path``; return the stats.

    Raises
    ------
    InputError
        A bad record (:class:`~t4r_dmt.data.tfrecord.RecordError`), no records, or an empty window.
    ValueError
        ``config.fit_windows`` exceeds the number of windows.
    """
    out_dir = Path(out_dir)
    scratch = out_dir / ".scratch"
    timings: dict[str, float] = {}

    start = perf_counter()
    reader = JDReader(path, config.seq_lengths, chunk_size, on_bad_rows, progress)
    raw = _split_windows(reader, scratch / "raw", config.window, path)
    timings["read_s"] = perf_counter() - start
    if config.fit_windows > len(raw.paths):
        raise ValueError(f"fit_windows={config.fit_windows} but the records span only {len(raw.paths)} window(s)")

    start = perf_counter()
    workflow = build_jd_workflow(str(scratch / "stats"), config, raw.max_position + 1, raw.max_page + 1)
    workflow.fit(_dataset(raw, list(range(1, config.fit_windows + 1)), config.seq_lengths))
    timings["fit_s"] = perf_counter() - start

    start = perf_counter()
    columns = output_columns()
    schema = workflow.output_schema
    windows = list(raw.paths)
    labels = [w for w in windows for _ in range(raw.row_groups[w])]
    disable = None if progress is None else not progress  # None: a bar on a terminal only
    with tqdm(total=len(labels), desc="jd ranking partitions", disable=disable) as bar:
        transformed = workflow.transform(_dataset(raw, windows, config.seq_lengths)).to_ddf()
        rows = write_windows(transformed, labels, out_dir / "ranking", _arrow_schema(schema, columns),
                             on_partition=bar.update)
    timings["transform_write_s"] = perf_counter() - start

    workflow.save(str(out_dir / "workflow"))
    # The text request id stays out of schema.pbtxt: Merlin's TF-metadata schema cannot hold a text column (it reads
    # back with dtype "unknown", which no loader can map); it is in the parquet files.
    described = [c for c in columns if c != REQUEST_ID_TEXT]
    TensorflowMetadata.from_merlin_schema(schema.select_by_name(described)).to_proto_text_file(
        str(out_dir / "ranking"), "schema.pbtxt")
    shutil.rmtree(scratch)
    return {
        "mode": "jd_records",
        "format": FORMAT,
        "bias_features": True,
        "window": config.window,
        "windows": len(raw.paths),
        "window_starts": raw.window_starts,
        "fit_windows": list(range(1, config.fit_windows + 1)),
        "fit_note": (f"vocabularies were fitted on windows 1..{config.fit_windows} only; ids unseen there map to the "
                     "OOV code 2. The dense features come normalised by the JD authors and are not refitted"),
        "rows_per_window": rows,
        "records_read": reader.records_read,
        "dropped": dict(reader.dropped),
        "readers": {"records": dict(reader.dropped)},
        "vocabulary_sizes": {name: int(schema[column].properties["domain"]["max"]) + 1 for name, column in
                             (("item", "item_id"), ("category", "item_category"), ("brand", "item_brand"),
                              ("shop", ITEM_SHOP), ("user", "user_id"))},
        "sessions": "not written: the JD records hold no event log",
        "config": {**asdict(config), "chunk_size": chunk_size, "on_bad_rows": on_bad_rows},
        "timings": {name: round(value, 3) for name, value in timings.items()},
    }


def output_columns() -> list[str]:
    """All output columns of the JD ranking files, in order: the event workflow's layout plus the JD extras."""
    sequences = [c for b in BEHAVIORS for c in (*sequence_columns(b), shop_sequence_column(b))]
    buckets = [time_gap_bucket_column(b) for b in BEHAVIORS]
    return [*PASSTHROUGH_COLUMNS, *JD_PASSTHROUGH, *CATEGORICAL_ID_COLUMNS, ITEM_SHOP, *sequences, *buckets,
            *BIAS_COLUMNS, *TIME_GAP_COLUMNS, *DENSE_COLUMNS, *LABEL_COLUMNS]


def build_jd_workflow(stats_path: str, config: RankingConfig, max_position_index: int,
                      max_position_page: int) -> nvt.Workflow:
    """The (unfitted) JD ranking workflow of the module docstring.

    ``max_position_index`` / ``max_position_page``: the largest ``pos + 1`` / ``page + 1`` of the records
    (schema domains of the bias features).
    """
    vocabularies = id_vocabularies()
    vocabularies["shop"] = [ITEM_SHOP, *(shop_sequence_column(b) for b in BEHAVIORS)]
    tags = id_tags()
    tags[ITEM_SHOP] = list(tags[TARGET_ITEM_COLUMNS["brand"]])  # an item attribute, as the brand
    for behavior in BEHAVIORS:
        tags[shop_sequence_column(behavior)] = [Tags.LIST, Tags.SEQUENCE, Tags.ITEM, behavior_tag(behavior)]
    encoder = SharedCategorify(vocabularies, freq_threshold=config.freq_threshold, out_path=stats_path,
                               column_tags=tags)
    ids = [c for columns in vocabularies.values() for c in columns]
    outputs: Any = [*PASSTHROUGH_COLUMNS, *JD_PASSTHROUGH] + (ids >> encoder)
    outputs += ["position", "page", NEIGHBOR_CATEGORY_SEQ] >> LoggedBiasFeatures(
        encoder, max_position_index, max_position_page)
    for behavior in BEHAVIORS:
        outputs += [time_gap_column(behavior)] >> nvt_ops.AddTags(
            [Tags.CONTINUOUS, Tags.LIST, Tags.SEQUENCE, behavior_tag(behavior)])
        outputs += [time_gap_bucket_column(behavior)] >> nvt_ops.AddMetadata(
            tags=[Tags.CATEGORICAL, Tags.LIST, Tags.SEQUENCE, behavior_tag(behavior)],
            properties={"domain": dict(TIME_GAP_DOMAIN)})
    outputs += list(DENSE_COLUMNS) >> nvt_ops.AddTags([Tags.CONTINUOUS])
    outputs += LABEL_COLUMNS >> nvt_ops.AddTags(LABEL_TAGS)
    return use_list_safe_executor(nvt.Workflow(outputs))


def _arrow_schema(schema: Schema, columns: list[str]) -> pa.Schema:
    """The writer's parquet schema (:func:`arrow_schema`), with the text request id as a string column."""
    numeric = arrow_schema(schema, [c for c in columns if c != REQUEST_ID_TEXT])
    return numeric.insert(columns.index(REQUEST_ID_TEXT), pa.field(REQUEST_ID_TEXT, pa.string()))


class _RawWindows:
    """Scratch files of raw rows, one per window, and what was learnt while writing them."""

    def __init__(self) -> None:
        self.paths: dict[int, Path] = {}
        self.row_groups: dict[int, int] = {}
        self.window_starts: list[str] = []
        self.max_position = 0
        self.max_page = 0


def _split_windows(reader: JDReader, folder: Path, window: str, source: str) -> _RawWindows:
    """Append each chunk's rows to the scratch file of their window, one row group per (chunk, window)."""
    folder.mkdir(parents=True, exist_ok=True)
    writers: dict[int, pq.ParquetWriter] = {}
    row_groups: dict[int, int] = {}
    raw = _RawWindows()
    try:
        for table in map(_with_time_gap_buckets, reader):
            # Window numbers on the grid counted from the epoch; renumbered from the earliest one at the end.
            keys = window_numbers(table.column("request_ts").to_numpy(), window, _EPOCH)
            raw.max_position = max(raw.max_position, int(np.max(table.column("position").to_numpy())))
            raw.max_page = max(raw.max_page, int(np.max(table.column("page").to_numpy())))
            for key in np.unique(keys):
                if key not in writers:
                    writers[key] = pq.ParquetWriter(folder / f"grid-{key}.parquet", table.schema)
                    row_groups[key] = 0
                writers[key].write_table(table.filter(pa.array(keys == key)))
                row_groups[key] += 1
    finally:
        for writer in writers.values():
            writer.close()
    if not writers:
        raise InputError(str(source), "no JD records were read (every record was dropped)" if reader.records_read
                         else "no JD records in these files")
    first = min(writers)
    numbers = np.array(sorted(writers)) - first + 1
    if numbers[-1] > MAX_WINDOWS:
        raise InputError(str(source), f"the records span {numbers[-1]} windows of {window}; at most {MAX_WINDOWS} "
                                      "fit the folder layout: choose a longer --window")
    starts = pd.date_range(_EPOCH + (first - 1) * window_delta(window), periods=int(numbers[-1]),
                           freq=window_delta(window))
    check_windows(numbers, starts, str(source), "records")
    raw.window_starts = [str(s) for s in starts]
    for key, number in zip(sorted(writers), numbers, strict=True):
        raw.paths[int(number)] = folder / f"grid-{key}.parquet"
        raw.row_groups[int(number)] = row_groups[key]
    return raw


def _with_time_gap_buckets(table: pa.Table) -> pa.Table:
    """``table`` (a chunk of raw rows) plus ``{b}_time_gap_bucket_seq`` per behaviour: the codes of the event
    workflow (``time_gap_buckets``) of the seconds in ``{b}_time_gap_seq``, element by element; an unknown gap
    (the authors' ``unknow``, NaN) is 0, the padding code, so that event carries no time information."""
    for behavior in BEHAVIORS:
        leaves, offsets = arrow_flat(table.column(time_gap_column(behavior)).combine_chunks())
        seconds = leaves.to_numpy(zero_copy_only=False).astype(np.float64)
        known = np.isfinite(seconds)
        codes = np.zeros(len(seconds), dtype=np.int64)
        codes[known] = time_gap_buckets(np.floor(seconds[known] * 1e9).astype(np.int64))
        column = pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), pa.array(codes))
        table = table.append_column(time_gap_bucket_column(behavior), column)
    return table


def _dataset(raw: _RawWindows, windows: list[int], seq_lengths: dict[str, int]) -> Dataset:
    """The raw rows of ``windows``, one partition per scratch row group (at most ``chunk_size`` rows), with the
    ``window`` column and the list shapes (N per behaviour, 6 neighbours) in the schema."""
    parts = [dd.read_parquet(str(raw.paths[w]), split_row_groups=True).assign(window=np.int64(w)) for w in windows]
    dataset = Dataset(dd.concat(parts) if len(parts) > 1 else parts[0], cpu=True)
    lengths = {column: behavior for column, behavior, _ in ID_SEQUENCES}
    lengths.update({time_gap_column(b): b for b in BEHAVIORS})
    lengths.update({time_gap_bucket_column(b): b for b in BEHAVIORS})
    columns = []
    for column in dataset.schema:
        if column.name in lengths:
            column = column.with_shape((None, (0, seq_lengths[lengths[column.name]])))
        elif column.name == NEIGHBOR_CATEGORY_SEQ:
            column = column.with_shape((None, (0, len(NEIGHBOR_OFFSETS))))
        columns.append(column)
    dataset.schema = Schema(columns)
    if cudf is not None:  # pragma: no cover - GPU machines only
        dataset.to_gpu()
    return dataset

