"""Preprocessing speed: ``t4r-dmt preprocess`` (1 process, 2 Dask workers) vs plain pandas.

For each size (synthetic events from ``t4r_dmt.synth``, about as many impressions as events) every
variant reads the canonical parquet files, builds the same ranking rows (behaviour sequences,
candidate attributes, bias features, dense features, labels, shared vocabularies fitted on window 1,
normalisation) and writes per-window parquet files. Each variant runs in its own process; peak memory
is the largest summed RSS of that process and its children (the Dask workers), sampled every 50 ms.
With ``--repeat N`` the variants run N times, interleaved, and the median run of each is reported (the
lower middle one for even N; every run's time is kept in the JSON).

The plain pandas variant is what one writes without NVTabular (it builds the feature set of before the
interaction features and as-of item rates: fewer columns than the workflow, so its time is a lower bound): merge each request with its user's
events, filter ``time < request time``, ``groupby().tail(N)`` and ``agg(list)``; ``merge_asof`` for
candidate attributes; ``explode`` / ``map`` for the vocabularies. ``--check`` first verifies on a
small data set that it produces the same rows as the workflow.

Usage: ``.venv/bin/python benchmarks/preprocess.py [--events 1000000 5000000] [--repeat 2] [--check]``
Writes ``benchmarks/results/preprocess.json``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

BEHAVIORS = {"click": "view", "cart": "cart", "order": "purchase"}
LENGTHS = {"click": 50, "cart": 10, "order": 10}
HORIZONS = {"1d": pd.Timedelta(days=1), "7d": pd.Timedelta(days=7), "30d": pd.Timedelta(days=30)}
VARIANTS = ("t4r_dmt_1_process", "t4r_dmt_2_workers", "plain_pandas")
RESULTS = Path(__file__).resolve().parent / "results" / "preprocess.json"


# ---------------------------------------------------------------------------------------------------
# The plain pandas implementation
# ---------------------------------------------------------------------------------------------------
def plain_pandas(events: pd.DataFrame, impressions: pd.DataFrame, out: Path, smoothing: float = 20.0) -> int:
    imps = impressions.reset_index(drop=True).copy()
    imps["window"] = (imps["event_time"].dt.floor("1d") - imps["event_time"].min().floor("1d")).dt.days + 1
    imps["row"] = np.arange(len(imps))
    # Candidate attributes: latest event of the item strictly before the request.
    attrs = events[["event_time", "product_id", "category_id", "brand", "price"]].sort_values("event_time", kind="stable")
    joined = pd.merge_asof(imps.sort_values("event_time"), attrs, on="event_time", by="product_id",
                           allow_exact_matches=False).sort_values("row")
    imps["item_category"] = joined["category_id"].fillna(-1).astype(np.int64).to_numpy()
    imps["item_brand"] = joined["brand"].to_numpy()
    imps["item_price"] = joined["price"].to_numpy()
    del attrs, joined
    _item_rates(imps, smoothing)
    done = {b: events.loc[events["event_type"] == t, ["user_id", "event_time", "product_id", "category_id", "brand",
                                                        "price"]] for b, t in BEHAVIORS.items()}
    # One window at a time (Python lists of ids are large): statistics come from window 1.
    first = _window_rows(imps[imps["window"] == 1], done)
    category_mean = first.groupby("item_category")["item_price"].mean()
    first["item_price_to_category"] = first["item_price"] / first["item_category"].map(category_mean)
    vocabularies = _fit_vocabularies(first)
    moments = _fit_moments(first)
    for window in sorted(imps["window"].unique()):
        rows = first if window == 1 else _window_rows(imps[imps["window"] == window], done)
        if window != 1:
            rows["item_price_to_category"] = rows["item_price"] / rows["item_category"].map(category_mean)
        _encode(rows, vocabularies)
        _normalise(rows, moments)
        _write(rows, out / f"{window:04d}")
        del rows
    return len(imps)


def _window_rows(chunk: pd.DataFrame, done: dict[str, pd.DataFrame]) -> pd.DataFrame:
    rows = chunk.copy()
    history = _history_features(done, rows).reindex(rows["row"])
    for column in history.columns:
        values = history[column]
        if column.endswith("_seq"):
            values = values.map(lambda v: v if isinstance(v, list) else [])
        elif "count" in column:
            values = values.fillna(0)
        rows[column] = values.to_numpy()
    _neighbors(rows)
    return rows


def _history_features(done: dict[str, pd.DataFrame], chunk: pd.DataFrame) -> pd.DataFrame:
    """Sequences and history counts of one window's impressions, indexed by impression row."""
    requests = chunk.drop_duplicates("request_id")[["request_id", "user_id", "event_time"]]
    per_request = pd.DataFrame(index=requests["request_id"])
    result = pd.DataFrame(index=chunk["row"])
    for behavior, events in done.items():
        merged = requests.merge(events, on="user_id", suffixes=("", "_ev"))
        merged = merged[merged["event_time_ev"] < merged["event_time"]].sort_values(
            ["request_id", "event_time_ev"], kind="stable")
        grouped = merged.groupby("request_id")
        for name, delta in HORIZONS.items():
            recent = merged["event_time_ev"] >= merged["event_time"] - delta
            per_request[f"user_{behavior}_count_{name}"] = recent.groupby(merged["request_id"]).sum()
        if behavior == "order":
            per_request["user_purchase_power"] = grouped["price"].mean()
        tail = grouped.tail(LENGTHS[behavior]).groupby("request_id")
        for column, field in (("item_id_seq", "product_id"), ("category_seq", "category_id"), ("brand_seq", "brand")):
            per_request[f"{behavior}_{column}"] = tail[field].agg(list)
        for key, field in (("item", "product_id"), ("category", "category_id")):
            left = "product_id" if key == "item" else "item_category"
            pairs = chunk[["row", "user_id", left, "event_time"]].merge(
                events[["user_id", field, "event_time"]], left_on=["user_id", left], right_on=["user_id", field],
                suffixes=("", "_ev"))
            pairs = pairs[pairs["event_time_ev"] < pairs["event_time"]]
            result[f"user_{key}_{behavior}_count"] = pairs.groupby("row").size().reindex(chunk["row"]).to_numpy()
    expanded = per_request.reindex(chunk["request_id"])
    for column in per_request.columns:
        result[column] = expanded[column].to_numpy()
    return result


def _item_rates(imps: pd.DataFrame, a: float) -> None:
    per = imps.groupby(["product_id", "window"]).agg(imps_=("click", "size"), clicks=("click", "sum"),
                                                    orders=("order", "sum")).reset_index()
    totals = per.groupby("window")[["imps_", "clicks", "orders"]].sum().cumsum().shift(1).fillna(0)
    per = per.sort_values(["product_id", "window"])
    cum = per.groupby("product_id")[["imps_", "clicks", "orders"]].cumsum() - per[["imps_", "clicks", "orders"]]
    per[["p_imps", "p_clicks", "p_orders"]] = cum.to_numpy()
    rows = imps[["product_id", "window"]].merge(per, on=["product_id", "window"], how="left")
    prior = totals.reindex(imps["window"]).to_numpy()
    prior_ctr = np.where(prior[:, 0] > 0, prior[:, 1] / np.maximum(prior[:, 0], 1), 0.0)
    prior_cvr = np.where(prior[:, 1] > 0, prior[:, 2] / np.maximum(prior[:, 1], 1), 0.0)
    imps["item_ctr"] = (rows["p_clicks"].to_numpy() + a * prior_ctr) / (rows["p_imps"].to_numpy() + a)
    imps["item_cvr"] = (rows["p_orders"].to_numpy() + a * prior_cvr) / (rows["p_clicks"].to_numpy() + a)


def _neighbors(imps: pd.DataFrame) -> None:
    ranked = imps.sort_values(["request_id", "position"])
    shifted = [ranked.groupby("request_id")["item_category"].shift(-k) for k in (-3, -2, -1, 1, 2, 3)]
    imps["neighbor_raw"] = pd.concat(shifted, axis=1).reindex(imps.index).to_numpy().tolist()


def _entities() -> dict[str, list[str]]:
    entities = {"item": ["product_id"], "category": ["item_category"], "brand": ["item_brand"], "user": ["user_id"]}
    for behavior in BEHAVIORS:
        entities["item"].append(f"{behavior}_item_id_seq")
        entities["category"].append(f"{behavior}_category_seq")
        entities["brand"].append(f"{behavior}_brand_seq")
    return entities


def _fit_vocabularies(rows: pd.DataFrame) -> dict[str, pd.Index]:
    vocabularies = {}
    for name, columns in _entities().items():
        seen = pd.concat([rows[c].explode() if c.endswith("_seq") else rows[c] for c in columns])
        vocabularies[name] = pd.Index(seen.dropna().value_counts().index)
    return vocabularies


def _encode(rows: pd.DataFrame, vocabularies: dict[str, pd.Index]) -> None:
    for name, columns in _entities().items():
        vocabulary = vocabularies[name]
        for column in columns + (["neighbor_raw"] if name == "category" else []):
            target = {"product_id": "item_id", "neighbor_raw": "neighbor_category_seq"}.get(column, column)
            if column.endswith("_seq") or column == "neighbor_raw":
                lists = rows[column]
                flat = lists[lists.map(len) > 0].explode()  # an empty list would explode to one NaN
                codes = np.where(flat.isna(), 0 if column == "neighbor_raw" else 1,
                                 vocabulary.get_indexer(flat) + 3)  # -1 (unknown) + 3 = 2 = OOV
                encoded = pd.Series(codes, index=flat.index).groupby(level=0).agg(list).reindex(rows.index)
                rows[target] = encoded.map(lambda v: v if isinstance(v, list) else [])
            else:
                values = rows[column]
                rows[target] = np.where(values.isna(), 1, vocabulary.get_indexer(values) + 3)
    rows["position_index"] = rows["position"] + 1
    rows["position_page"] = rows["page"] + 1


def _dense(rows: pd.DataFrame) -> dict[str, pd.Series]:
    """Filled and log-transformed dense columns, before standardisation."""
    logged = [c for c in rows.columns if c.startswith("user_") and c != "user_id"] + ["item_price"]
    out = {}
    for column in logged + ["item_price_to_category", "item_ctr", "item_cvr"]:
        values = rows[column].astype(float).fillna(1.0 if column == "item_price_to_category" else 0.0)
        out[column] = np.log1p(values) if column in logged or column == "item_price_to_category" else values
    return out


def _fit_moments(rows: pd.DataFrame) -> dict[str, tuple[float, float]]:
    return {column: (values.mean(), values.std()) for column, values in _dense(rows).items()}


def _normalise(rows: pd.DataFrame, moments: dict[str, tuple[float, float]]) -> None:
    for column, values in _dense(rows).items():
        mean, std = moments[column]
        rows[column] = ((values - mean) / (std if std > 0 else 1.0)).astype(np.float32)
    rows.rename(columns={"item_price": "item_log_price"}, inplace=True)


def _write(rows: pd.DataFrame, folder: Path) -> None:
    rows = rows.drop(columns=["row", "neighbor_raw", "event_time", "position", "page"])
    valid = pd.util.hash_array(rows["request_id"].to_numpy(), categorize=False) % 2 == 0
    folder.mkdir(parents=True, exist_ok=True)
    rows.to_parquet(folder / "train.parquet", index=False)
    rows[valid].to_parquet(folder / "valid.parquet", index=False)
    rows[~valid].to_parquet(folder / "test.parquet", index=False)


# ---------------------------------------------------------------------------------------------------
# Harness
# ---------------------------------------------------------------------------------------------------
def make_data(n_events: int, folder: Path) -> dict[str, int]:
    from t4r_dmt.synth.config import SynthConfig
    from t4r_dmt.synth.generator import generate

    users = max(200, n_events // 40)  # ~40 events per user over 4 days
    result = generate(SynthConfig(n_users=users, n_items=max(1000, users // 5), n_days=4,
                                  requests_per_day=max(100, n_events // 80), seed=0))
    result.events.to_parquet(folder / "events.parquet")
    result.impressions.to_parquet(folder / "impressions.parquet")
    return {"events": len(result.events), "impressions": len(result.impressions)}


def run_variant(variant: str, data: Path, out: Path) -> int:
    """One measured run (inside its own process)."""
    events = pd.read_parquet(data / "events.parquet")
    impressions = pd.read_parquet(data / "impressions.parquet")
    if variant == "plain_pandas":
        return plain_pandas(events, impressions, out)
    from merlin.core.utils import Distributed

    from t4r_dmt.preprocess.config import RankingConfig
    from t4r_dmt.preprocess.pipeline import RankingData, preprocess_ranking

    config = RankingConfig(events_per_bucket=max(50_000, len(events) // 4))
    if variant == "t4r_dmt_2_workers":
        with Distributed(cluster_type="cpu", force_new=True, n_workers=2, threads_per_worker=1,
                         dashboard_address=":0"):
            preprocess_ranking(RankingData(events, impressions), out, config, progress=False)
    else:
        preprocess_ranking(RankingData(events, impressions), out, config, progress=False)
    return len(impressions)


def measure(variant: str, data: Path) -> dict[str, float]:
    import psutil

    with tempfile.TemporaryDirectory(dir=data) as out:
        start = time.perf_counter()
        process = subprocess.Popen([sys.executable, __file__, "--run", variant, "--data", str(data), "--into", out],
                                   stdout=subprocess.PIPE, text=True)
        peak = _watch_memory(psutil.Process(process.pid), process)
        stdout, _ = process.communicate()
        wall = time.perf_counter() - start
        if process.returncode:
            raise RuntimeError(f"{variant} failed with exit code {process.returncode}")
    rows = int(stdout.strip().splitlines()[-1])
    return {"wall_s": round(wall, 2), "rows": rows, "rows_per_s": round(rows / wall), "peak_rss_mb": round(peak / 2**20)}


def _watch_memory(root, process) -> int:
    peak = 0
    while process.poll() is None:
        try:
            total = root.memory_info().rss + sum(c.memory_info().rss for c in root.children(recursive=True))
        except Exception:  # a child may exit between listing and reading
            continue
        peak = max(peak, total)
        time.sleep(0.05)
    return peak


def check_equal(folder: Path) -> None:
    """The plain pandas rows equal the workflow's on a small data set."""
    folder.mkdir(parents=True)
    make_data(20_000, folder)
    for variant in ("t4r_dmt_1_process", "plain_pandas"):
        (folder / variant).mkdir()
        run_variant(variant, folder, folder / variant)
    mine = pd.read_parquet(folder / "t4r_dmt_1_process" / "ranking" / "0002" / "train.parquet")
    theirs = pd.read_parquet(folder / "plain_pandas" / "0002" / "train.parquet")
    key = ["request_id", "product_id"]
    mine, theirs = mine.sort_values(key).reset_index(drop=True), theirs.sort_values(key).reset_index(drop=True)
    for column in ("click", "order", "user_click_count_7d", "item_log_price"):
        np.testing.assert_allclose(mine[column].astype(float), theirs[column].astype(float), rtol=1e-4, atol=1e-4,
                                   err_msg=column)
    lengths = [mine["click_item_id_seq"].map(len).tolist(), theirs["click_item_id_seq"].map(len).tolist()]
    assert lengths[0] == lengths[1], "click sequence lengths differ"
    print("check: plain pandas rows match the workflow's (sequence lengths, labels, dense features)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, nargs="+", default=[1_000_000, 5_000_000])
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    parser.add_argument("--check", action="store_true", help="verify plain pandas == workflow on small data first")
    parser.add_argument("--repeat", type=int, default=1, help="runs per variant (interleaved); the median is reported")
    parser.add_argument("--output", type=Path, default=RESULTS)
    parser.add_argument("--run", choices=VARIANTS, help=argparse.SUPPRESS)
    parser.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--into", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run:
        print(run_variant(args.run, args.data, args.into))
        return
    with tempfile.TemporaryDirectory() as scratch:
        if args.check:
            check_equal(Path(scratch) / "check")
        results = []
        for n_events in args.events:
            data = Path(scratch) / f"data_{n_events}"
            data.mkdir()
            sizes = make_data(n_events, data)
            runs: dict[str, list[dict[str, float]]] = {variant: [] for variant in args.variants}
            for _ in range(args.repeat):  # interleaved, so a burst of load on the host hits every variant
                for variant in args.variants:
                    runs[variant].append(measure(variant, data))
            for variant, measured in runs.items():
                best = sorted(measured, key=lambda m: m["wall_s"])[(len(measured) - 1) // 2]  # the median run
                row = {"target_events": n_events, **sizes, "variant": variant, **best,
                       "wall_s_all_runs": [m["wall_s"] for m in measured]}
                results.append(row)
                print(f"{n_events:>10,} events {variant:<20} {row['rows_per_s']:>9,} rows/s "
                      f"{row['wall_s']:>8.1f} s  peak {row['peak_rss_mb']:>6,} MB", flush=True)
    baseline = {r["target_events"]: r["rows_per_s"] for r in results if r["variant"] == "plain_pandas"}
    for row in results:
        if row["target_events"] in baseline:
            row["speedup_vs_plain_pandas"] = round(row["rows_per_s"] / baseline[row["target_events"]], 2)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps({"machine": _machine(), "results": results}, indent=2) + "\n")
    print(f"wrote {args.output}")


def _machine() -> dict[str, object]:
    import os
    import platform

    return {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform()}


if __name__ == "__main__":
    main()
