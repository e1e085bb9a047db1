"""Speed and peak memory of reading the DMT authors' JD TFRecords (``--format jd``), stage by stage.

Stages, each in a fresh process (so its peak RSS is its own):

* ``framing``: TFRecord framing and both CRC32C checks (``iter_records``);
* ``parse``: + ``tf.train.Example`` parsing (protobuf);
* ``reader``: + the JD field mapping into Arrow tables of ``chunk_size`` rows (``JDReader``);
* ``preprocess``: ``preprocess_jd`` end to end (scratch windows, workflow fit and transform, parquet output).

The shared sample is one part file of 240 records (3.2 MB); ``--replicate K`` concatenates it K times into one
file (TFRecord files concatenate into a valid file) to measure steady-state speed and how memory follows the
chunk size. Records/s are the median of ``--repeat`` runs; the full release (667.9M + 105.4M records) is
extrapolated from the per-record time at one core.

    OMP_NUM_THREADS=1 python benchmarks/jd_read.py --replicate 1 50 --chunk_sizes 256 1024 4096 16384
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from time import perf_counter
from typing import Any

SAMPLE = Path(__file__).resolve().parents[2] / "shared" / "data" / "jd_dmt_sample" / "part-r-00000"
STAGES = ("framing", "parse", "reader", "preprocess")
FULL_RELEASE = 667_907_650 + 105_444_671
LENGTHS = {"click": 50, "cart": 10, "order": 10}


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux


def measure(stage: str, path: str, chunk_size: int) -> dict[str, Any]:
    """Run one stage over ``path`` in this process; records, seconds and RSS (MB) before / at the peak."""
    # Each stage imports only what it runs, before the baseline RSS (the preprocess stage also loads NVTabular).
    from t4r_dmt.data.jd import JDReader
    from t4r_dmt.data.tfrecord import iter_records, parse_example

    if stage == "preprocess":
        from t4r_dmt.preprocess.config import RankingConfig
        from t4r_dmt.preprocess.jd import preprocess_jd
    baseline = _peak_rss_mb()
    start = perf_counter()
    records = 0
    if stage == "framing":
        records = sum(1 for _ in iter_records(path, progress=False))
    elif stage == "parse":
        for file, index, data in iter_records(path, progress=False):
            parse_example(data, file, index)
            records += 1
    elif stage == "reader":
        reader = JDReader(path, LENGTHS, chunk_size, progress=False)
        for _ in reader:
            pass
        records = reader.records_read
    else:
        with tempfile.TemporaryDirectory() as out:
            stats = preprocess_jd(path, out, RankingConfig(window="6h"), chunk_size, progress=False)
        records = stats["records_read"]
    seconds = perf_counter() - start
    return {"stage": stage, "chunk_size": chunk_size, "records": records, "seconds": seconds,
            "records_per_s": records / seconds, "rss_baseline_mb": baseline, "rss_peak_mb": _peak_rss_mb()}


def _replicated(times: int, folder: Path) -> str:
    if times == 1:
        return str(SAMPLE)
    path = folder / f"part-x{times}"
    data = SAMPLE.read_bytes()
    with open(path, "wb") as out:  # piece by piece: a large parent would raise the workers' peak RSS (kept by exec)
        for _ in range(times):
            out.write(data)
    return str(path)


def _run_worker(stage: str, path: str, chunk_size: int) -> dict[str, Any]:
    done = subprocess.run([sys.executable, __file__, "--worker", stage, path, str(chunk_size)], check=True,
                          capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--worker", nargs=3, help=argparse.SUPPRESS)
    parser.add_argument("--replicate", type=int, nargs="+", default=[1, 50])
    parser.add_argument("--stages", nargs="+", default=list(STAGES), choices=STAGES)
    parser.add_argument("--chunk_sizes", type=int, nargs="+", default=[4096])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "jd_read.json"))
    args = parser.parse_args(argv)
    if args.worker:
        stage, path, chunk_size = args.worker
        print(json.dumps(measure(stage, path, int(chunk_size))))
        return []
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for times in args.replicate:
            path = _replicated(times, Path(tmp))
            for stage in args.stages:
                for chunk_size in args.chunk_sizes if stage in ("reader", "preprocess") else [args.chunk_sizes[0]]:
                    runs = [_run_worker(stage, path, chunk_size) for _ in range(args.repeat)]
                    median = statistics.median(r["records_per_s"] for r in runs)
                    row = {**runs[0], "replicate": times, "records_per_s": median,
                           "runs_records_per_s": [round(r["records_per_s"], 1) for r in runs],
                           "rss_peak_mb": max(r["rss_peak_mb"] for r in runs),
                           "full_release_hours": FULL_RELEASE / median / 3600}
                    results.append(row)
                    print(f"{times:>4}x {stage:<10} chunk {chunk_size:>6}: {row['records']:>7} records, "
                          f"{median:>9,.0f} rec/s (runs {row['runs_records_per_s']}), peak RSS "
                          f"{row['rss_peak_mb']:,.0f} MB (baseline {row['rss_baseline_mb']:,.0f}), full release "
                          f"{row['full_release_hours']:,.1f} h at one core", flush=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    return results


if __name__ == "__main__":
    main()
