"""Where a DMT training step spends its time on CPU: the profile behind the speed-ups.

Usage::

    OMP_NUM_THREADS=1 python benchmarks/train_speed.py --data DIR [--batch 256] [--steps 20] [--tag after]

``DIR`` is the output of ``t4r-dmt preprocess``. Reads window 1's ``train`` rows through a T4R loader
(``--engine``: ``dense``, t4r_dmt's in-memory loader that ``t4r-dmt train`` uses, or T4R's ``merlin``; the
loader's time is its set-up plus one pass over the whole window, per batch), then times, per batch of the
``dmt`` preset: loading + padding (the loader),
the forward pass, the backward pass and the (fused) AdamW step; and splits the forward pass by block with
``torch.profiler`` (labels wrapped around each block's ``forward``: reading / cutting the inputs, the
embeddings, each behaviour's encoder and decoder, the multi-task block, the bias tower, the loss).
Writes ``benchmarks/results/train_speed_<tag>.json`` and prints a table.
"""

from __future__ import annotations

import argparse
import functools
import os
import platform
import statistics
import time
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


def _labelled(fn: Any, label: str) -> Any:
    import torch

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with torch.profiler.record_function(label):
            return fn(*args, **kwargs)

    return wrapper


def label_blocks(model: Any) -> list[str]:
    """Wrap the forward of each block of a built ``dmt`` model in a profiler label; return the labels."""
    import t4r_dmt.model.network as network

    labels = ["inputs", "embedding", "multitask", "bias_tower", "loss"]
    network.read_batch = _labelled(network.read_batch, "inputs")
    net = model.heads[0].body.module
    for encoder, block in zip(net.encoders, net.multitask, strict=True):
        encoder.embedding.forward = _labelled(encoder.embedding.forward, "embedding")
        block.forward = _labelled(block.forward, "multitask")
        for name, interest in encoder.interests.items():
            interest.encoder.forward = _labelled(interest.encoder.forward, f"encoder_{name}")
            interest.decoder.forward = _labelled(interest.decoder.forward, f"decoder_{name}")
            labels += [f"encoder_{name}", f"decoder_{name}"]
    if net.bias_tower is not None:
        net.bias_tower.forward = _labelled(net.bias_tower.forward, "bias_tower")
    task = model.heads[0].task
    task.loss.forward = _labelled(task.loss.forward, "loss")
    return labels


def run(data: str, batch: int = 256, steps: int = 20, warmup: int = 3, tag: str = "after",
        out_dir: Path = RESULTS, engine: str = "dense") -> dict[str, Any]:
    import torch
    from transformers4rec.torch.utils.data_utils import T4RecDataLoader

    import t4r_dmt.training.dense_loader  # noqa: F401  (registers the "dense" engine)
    from t4r_dmt.io_utils import write_json
    from t4r_dmt.model import build_model
    from t4r_dmt.presets import load_preset
    from t4r_dmt.run_folder import load_schema
    from t4r_dmt.windows import list_windows, window_path

    task_dir = Path(data) / "ranking"
    schema = load_schema(task_dir)
    torch.manual_seed(0)
    model = build_model(schema, load_preset("dmt"))
    model.train()
    path = window_path(task_dir, list_windows(task_dir)[0], "train")
    batches, n_batches, start = [], 0, time.perf_counter()
    loader = T4RecDataLoader.parse(engine).from_schema(schema, str(path), batch_size=batch,
                                                       max_sequence_length=model.max_sequence_length, shuffle=True)
    for x, y in loader:
        n_batches += 1
        if len(batches) < warmup + steps:
            batches.append((dict(x), dict(y)))
    load_s = (time.perf_counter() - start) / n_batches
    if len(batches) < warmup + steps:
        raise ValueError(f"{path} has {len(batches)} batches of {batch}; need {warmup + steps}")
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, fused=True)  # the trainer's --optim adamw_torch_fused

    def step(x: dict, y: dict) -> tuple[float, float, float]:
        t0 = time.perf_counter()
        loss = model(dict(x), targets=y, training=True)["loss"]
        t1 = time.perf_counter()
        loss.backward()
        t2 = time.perf_counter()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return t1 - t0, t2 - t1, time.perf_counter() - t2

    for x, y in batches[:warmup]:
        step(x, y)
    timed = [step(x, y) for x, y in batches[warmup:]]
    fwd, bwd, opt = (statistics.median(t[i] for t in timed) for i in range(3))

    labels = label_blocks(model)
    profiled = batches[warmup: warmup + min(steps, 5)]
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        for x, y in profiled:
            step(x, y)
    events = {e.key: e.cpu_time_total / 1e3 / len(profiled) for e in prof.key_averages()}
    forward_ms = {label: events.get(label, 0.0) for label in labels}
    top_ops = sorted(((e.key, e.self_cpu_time_total / 1e3 / len(profiled)) for e in prof.key_averages()
                      if not e.key.startswith(("encoder_", "decoder_")) and e.key not in labels),
                     key=lambda kv: -kv[1])[:12]
    total = load_s + fwd + bwd + opt
    result = {
        "tag": tag, "engine": engine, "batch": batch, "steps": steps, "rows_per_s_model": batch / (fwd + bwd + opt),
        "rows_per_s_with_loader": batch / total,
        "ms_per_batch": {"loader": load_s * 1e3, "forward": fwd * 1e3, "backward": bwd * 1e3,
                         "optimizer": opt * 1e3},
        "forward_ms_by_block": forward_ms, "top_ops_self_ms": dict(top_ops),
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(),
                    "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"), "torch": torch.__version__},
    }
    write_json(out_dir / f"train_speed_{tag}.json", result)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--tag", default="after")
    parser.add_argument("--engine", default="dense", choices=["dense", "merlin"], help="T4R data loader engine")
    args = parser.parse_args()
    r = run(args.data, args.batch, args.steps, tag=args.tag, engine=args.engine)
    print(f"rows/s: model {r['rows_per_s_model']:,.0f}, with loader {r['rows_per_s_with_loader']:,.0f}")
    for part, ms in r["ms_per_batch"].items():
        print(f"  {part:<10}{ms:8.1f} ms")
    print("forward by block (ms / batch):")
    for part, ms in r["forward_ms_by_block"].items():
        print(f"  {part:<16}{ms:8.1f}")
    print("top ops (self ms / batch):")
    for op, ms in r["top_ops_self_ms"].items():
        print(f"  {op:<40}{ms:8.1f}")


if __name__ == "__main__":
    main()
