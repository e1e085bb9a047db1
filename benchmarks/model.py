"""Speed and memory of one DMT training step (forward + backward) on CPU, at paper size and at a small size.

Usage: ``OMP_NUM_THREADS=1 python benchmarks/model.py [--steps 3] [--sizes paper small]``. Each size runs in
a fresh process, so its peak resident memory (``ru_maxrss``) is its own: ``peak_rss_mb`` is the whole process
(Python, torch and T4R included), ``step_rss_mb`` the growth of that peak during the timed steps. Rows/s is the
batch size over the median step time (optimizer step excluded). Prints a table and writes
``benchmarks/results/model.json``.

* paper: the ``dmt`` preset (d_model 80, d_ff 320, 4 heads, MMoE 4 × 512-256-128, bias tower), sequences of
  50 / 10 / 10 events, 1M items, 5k categories, 100k brands, batch 2048 (the paper's).
* small: a d_model-16 model, sequences 8 / 4 / 4, 1k items, batch 256.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import platform
import resource
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results" / "model.json"


@dataclass(frozen=True)
class Size:
    name: str
    preset_overrides: dict[str, Any]
    lengths: dict[str, int]
    n_items: int
    n_categories: int
    n_brands: int
    batch_size: int
    n_dense: int = 8
    positions: int = 100
    pages: int = 10


SIZES = {
    "paper": Size("paper", {}, {"click": 50, "cart": 10, "order": 10}, 1_000_000, 5_000, 100_000, 2048),
    "small": Size(
        "small",
        {"transformer": {"d_model": 16, "d_ff": 32, "n_heads": 2},
         "embeddings": {"item_dim": 8, "category_dim": 4, "brand_dim": 4},
         "multitask": {"expert_units": [32, 16], "tower_units": [8], "num_experts": 2}},
        {"click": 8, "cart": 4, "order": 4}, 1_000, 50, 100, 256,
    ),
}


def _schema(size: Size) -> Any:
    """A ranking schema with the contract's names and tags, and ``size``'s vocabularies and lengths."""
    import numpy as np
    from merlin.schema import ColumnSchema, Schema, Tags

    def cat(name: str, tags: list, last: int, dims: Any = None) -> ColumnSchema:
        return ColumnSchema(name, dtype=np.int64, tags=tags, properties={"domain": {"min": 0, "max": last}},
                            dims=dims)

    cols = [cat("item_id", [Tags.CATEGORICAL, Tags.ITEM, Tags.ITEM_ID], size.n_items - 1),
            cat("item_category", [Tags.CATEGORICAL, Tags.ITEM], size.n_categories - 1),
            cat("item_brand", [Tags.CATEGORICAL, Tags.ITEM], size.n_brands - 1)]
    seq = [Tags.CATEGORICAL, Tags.LIST, Tags.SEQUENCE, Tags.ITEM]
    vocab = {"item_id": size.n_items, "category": size.n_categories, "brand": size.n_brands}
    for b, n in size.lengths.items():
        for suffix, high in vocab.items():
            cols.append(cat(f"{b}_{suffix}_seq", [*seq, f"behavior_{b}"], high - 1, (None, (0, n))))
    cols += [cat("position_index", [Tags.CATEGORICAL, "bias"], size.positions),
             cat("position_page", [Tags.CATEGORICAL, "bias"], size.pages),
             cat("neighbor_category_seq", [Tags.CATEGORICAL, Tags.LIST, "bias"], size.n_categories - 1,
                 (None, (6, 6)))]
    cols += [ColumnSchema(f"dense_{i}", dtype=np.float32, tags=[Tags.CONTINUOUS]) for i in range(size.n_dense)]
    cols += [ColumnSchema(t, dtype=np.int64, tags=[Tags.TARGET, Tags.BINARY, Tags.CLASSIFICATION])
             for t in ("click", "order")]
    return Schema(cols)


def _batch(size: Size, width: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """Random padded inputs as the merlin loader gives them (every list padded to ``width``)."""
    import torch

    g = torch.Generator().manual_seed(0)
    b = size.batch_size

    def ids(high: int, *shape: int) -> torch.Tensor:
        return torch.randint(3, high, shape, generator=g)

    x = {"item_id": ids(size.n_items, b), "item_category": ids(size.n_categories, b),
         "item_brand": ids(size.n_brands, b), "position_index": ids(size.positions, b),
         "position_page": ids(size.pages, b),
         "neighbor_category_seq": torch.nn.functional.pad(ids(size.n_categories, b, 6), (0, width - 6))}
    for name, n in size.lengths.items():
        lengths = torch.randint(0, n + 1, (b, 1), generator=g)
        mask = torch.arange(width).unsqueeze(0) < lengths
        for suffix, high in {"item_id": size.n_items, "category": size.n_categories,
                             "brand": size.n_brands}.items():
            x[f"{name}_{suffix}_seq"] = ids(high, b, width) * mask
    for i in range(size.n_dense):
        x[f"dense_{i}"] = torch.randn(b, generator=g)
    y = {"click": torch.randint(0, 2, (b,), generator=g), "order": torch.zeros(b, dtype=torch.long)}
    return x, y


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: kilobytes


def measure(size_name: str, steps: int, warmup: int) -> dict[str, Any]:
    """Build the model, run ``warmup`` then ``steps`` forward+backward passes, return the numbers."""
    import torch

    from t4r_dmt.model import DMTConfig, build_model
    from t4r_dmt.presets import load_preset

    size = SIZES[size_name]
    torch.manual_seed(0)
    data = load_preset("dmt").to_dict()
    for key, value in size.preset_overrides.items():
        data[key] = {**data[key], **value}
    model = build_model(_schema(size), DMTConfig.from_dict(data))
    model.train()
    n_params = sum(p.numel() for p in model.parameters())
    x, y = _batch(size, model.max_sequence_length)
    times = []
    for i in range(warmup + steps):
        if i == warmup:
            rss_before = _rss_mb()
        start = time.perf_counter()
        loss = model(dict(x), targets=y, training=True)["loss"]
        loss.backward()
        elapsed = time.perf_counter() - start
        model.zero_grad(set_to_none=True)
        if i >= warmup:
            times.append(elapsed)
    step_s = statistics.median(times)
    return {"size": size_name, "batch_size": size.batch_size, "lengths": size.lengths, "n_items": size.n_items,
            "parameters": n_params, "step_s_median": step_s, "rows_per_s": size.batch_size / step_s,
            "peak_rss_mb": _rss_mb(), "step_rss_mb": _rss_mb() - rss_before,
            "torch_threads": torch.get_num_threads()}


def _child(size_name: str, steps: int, warmup: int, queue: Any) -> None:
    queue.put(measure(size_name, steps, warmup))


def run(sizes: list[str], steps: int = 3, warmup: int = 1, out: Path = RESULTS) -> dict[str, Any]:
    """Measure each size in its own process; write and return the results."""
    from t4r_dmt.io_utils import write_json

    unknown = [s for s in sizes if s not in SIZES]
    if unknown:
        raise ValueError(f"unknown size(s) {unknown}; choose from {sorted(SIZES)}")
    ctx = multiprocessing.get_context("spawn")
    rows = []
    for name in sizes:
        queue = ctx.Queue()
        proc = ctx.Process(target=_child, args=(name, steps, warmup, queue))
        proc.start()
        rows.append(queue.get())
        proc.join()
    summary = {"benchmark": "model forward+backward, CPU", "steps": steps, "warmup": warmup, "rows": rows,
               "machine": {"python": platform.python_version(), "processor": platform.machine(),
                           "cpus": os.cpu_count(), "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS")}}
    write_json(out, summary)
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", default=["paper", "small"], choices=sorted(SIZES))
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1)
    args = parser.parse_args()
    summary = run(args.sizes, steps=args.steps, warmup=args.warmup)
    print(f"{'size':<7}{'batch':>7}{'params':>13}{'step s':>9}{'rows/s':>10}{'peak RSS MB':>13}{'step MB':>9}")
    for r in summary["rows"]:
        print(f"{r['size']:<7}{r['batch_size']:>7}{r['parameters']:>13,}{r['step_s_median']:>9.3f}"
              f"{r['rows_per_s']:>10,.0f}{r['peak_rss_mb']:>13,.0f}{r['step_rss_mb']:>9,.0f}")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
