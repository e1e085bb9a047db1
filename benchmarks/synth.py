"""Speed of ``t4r-dmt synth``: events per second at ~1M events (median of 3 runs).

Usage: ``python benchmarks/synth.py [--runs 3] [--scale 12.5]``. ``--scale`` multiplies the default
users, items and requests per day (the default data set has ~85k events; 12.5x gives ~1.07M). Prints a
table and writes ``benchmarks/results/synth.json``.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from t4r_dmt.io_utils import write_json
from t4r_dmt.synth.command import write_result
from t4r_dmt.synth.config import SynthConfig
from t4r_dmt.synth.generator import generate

RESULTS = Path(__file__).resolve().parent / "results" / "synth.json"


def run(runs: int = 3, scale: float = 12.5, out: Path = RESULTS) -> dict[str, Any]:
    """Time ``generate`` and ``generate`` + writing the files ``runs`` times; write and return the medians."""
    default = SynthConfig()
    config = SynthConfig(n_users=round(default.n_users * scale), n_items=round(default.n_items * scale),
                         requests_per_day=round(default.requests_per_day * scale))
    generate_s, total_s = [], []
    for _ in range(runs):
        start = time.perf_counter()
        result = generate(config)
        generated = time.perf_counter()
        with tempfile.TemporaryDirectory() as folder:
            write_result(result, Path(folder))
        generate_s.append(generated - start)
        total_s.append(time.perf_counter() - start)
    n_events, n_impressions = len(result.events), len(result.impressions)
    summary = {
        "benchmark": "synth",
        "config": {"n_users": config.n_users, "n_items": config.n_items, "n_days": config.n_days,
                   "requests_per_day": config.requests_per_day},
        "runs": runs,
        "n_events": n_events,
        "n_impressions": n_impressions,
        "generate_s_median": statistics.median(generate_s),
        "generate_and_write_s_median": statistics.median(total_s),
        "events_per_s": n_events / statistics.median(generate_s),
        "events_per_s_with_write": n_events / statistics.median(total_s),
        "impressions_per_s_with_write": n_impressions / statistics.median(total_s),
        "machine": {"python": platform.python_version(), "processor": platform.machine()},
    }
    write_json(out, summary)
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--scale", type=float, default=12.5)
    args = parser.parse_args()
    summary = run(runs=args.runs, scale=args.scale)
    print(f"{'stage':<22}{'median s':>10}{'events/s':>14}   ({summary['n_events']:,} events, "
          f"{summary['n_impressions']:,} impressions, {summary['runs']} runs)")
    print(f"{'generate':<22}{summary['generate_s_median']:>10.2f}{summary['events_per_s']:>14,.0f}")
    print(f"{'generate + write':<22}{summary['generate_and_write_s_median']:>10.2f}"
          f"{summary['events_per_s_with_write']:>14,.0f}")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
