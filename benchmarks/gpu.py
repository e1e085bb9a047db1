"""DMT on a CUDA GPU: training rows/s of the whole model, and the transformer part's share of the FLOP limit.

Usage::

    python benchmarks/gpu.py [--batch 2048] [--steps 20] [--dtype float32|bfloat16] [--peak-tflops X]

* model: the ``dmt`` preset at paper size (``benchmarks/model.py``'s "paper": sequences of 50 / 10 / 10,
  1M items, bias tower), forward + backward + AdamW step per batch, timed with CUDA events.
* transformer: the three ``DeepInterestTransformer`` blocks (encoder + target-attention decoder) on full-length
  sequences (every row has N events, so the work is exactly the FLOPs counted), forward + backward. FLOPs per
  row are counted analytically (matrix products and attention scores; backward = 2 × forward) and the achieved
  rate is divided by ``--peak-tflops`` (default: the device's dense peak for ``--dtype`` from a small table,
  e.g. H100 SXM 67 fp32 / 989 bf16 TFLOP/s).

Only the model's torch modules are used (no merlin loader, no cuDF): this runs on any CUDA machine with torch,
whatever its Python. Without a GPU it says so and exits 0. Writes ``benchmarks/results/gpu.json``.
"""

from __future__ import annotations

import argparse
import platform
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

RESULTS = Path(__file__).resolve().parent / "results" / "gpu.json"
# Dense peak TFLOP/s by device-name fragment: (float32 without TF32, bfloat16 tensor cores).
PEAKS = {"H200": (67.0, 989.0), "H100": (67.0, 989.0), "A100": (19.5, 312.0), "L40S": (91.6, 362.0),
         "A10": (31.2, 125.0), "L4": (30.3, 121.0), "V100": (15.7, 125.0), "T4": (8.1, 65.0)}


def transformer_flops_per_row(lengths: dict[str, int], token_dim: int, d: int, d_ff: int, n_layers: int,
                              n_decoder_layers: int) -> float:
    """Forward FLOPs of every behaviour's encoder + decoder for one row (2 FLOPs per multiply-add)."""
    total = 0.0
    for n in lengths.values():
        project = 2 * (n + 1) * token_dim * d if token_dim != d else 0
        encoder = n_layers * (2 * 4 * n * d * d + 2 * 2 * n * n * d + 2 * 2 * n * d * d_ff)
        decoder = n_decoder_layers * (2 * 2 * d * d + 2 * 2 * n * d * d + 2 * 2 * n * d + 2 * 2 * d * d_ff)
        total += project + encoder + decoder
    return total


def peak_tflops(name: str, dtype: str) -> float | None:
    for fragment, (fp32, bf16) in PEAKS.items():
        if fragment in name:
            return bf16 if dtype == "bfloat16" else fp32
    return None


def _time_cuda(fn: Any, steps: int, warmup: int) -> float:
    """Median seconds of ``fn()`` over ``steps`` calls, after ``warmup`` calls."""
    import statistics

    import torch

    for _ in range(warmup):
        fn()
    times = []
    for _ in range(steps):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end) / 1e3)
    return statistics.median(times)


def run(batch: int = 2048, steps: int = 20, warmup: int = 3, dtype: str = "float32",
        peak: float | None = None, out: Path = RESULTS) -> dict[str, Any] | None:
    import torch

    if not torch.cuda.is_available():
        return None
    from model import SIZES, _batch, _schema  # benchmarks/model.py

    from t4r_dmt.io_utils import write_json
    from t4r_dmt.model import build_model
    from t4r_dmt.presets import load_preset

    device = torch.device("cuda")
    amp = torch.autocast("cuda", dtype=torch.bfloat16, enabled=dtype == "bfloat16")
    size = SIZES["paper"]
    size = type(size)(**{**size.__dict__, "batch_size": batch})
    config = load_preset("dmt")
    torch.manual_seed(0)
    model = build_model(_schema(size), config).to(device).train()
    x, y = _batch(size, model.max_sequence_length)
    x = {k: v.to(device) for k, v in x.items()}
    y = {k: v.to(device) for k, v in y.items()}
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)

    def model_step() -> None:
        with amp:
            loss = model(dict(x), targets=y, training=True)["loss"]
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    model_s = _time_cuda(model_step, steps, warmup)

    # The transformer part alone, on full-length sequences.
    net = model.heads[0].body.module.encoders[0]
    t = config.transformer
    token_dim = config.embeddings.token_dim
    tokens = {b: torch.randn(batch, n, token_dim, device=device) for b, n in size.lengths.items()}
    masks = {b: torch.ones(batch, n, dtype=torch.bool, device=device) for b, n in size.lengths.items()}
    target = torch.randn(batch, token_dim, device=device)

    def transformer_step() -> None:
        with amp:
            out = sum(net.interests[b](tokens[b], masks[b], target)[0].float().sum() for b in size.lengths)
        out.backward()  # type: ignore[union-attr]
        model.zero_grad(set_to_none=True)

    transformer_s = _time_cuda(transformer_step, steps, warmup)
    flops = 3 * batch * transformer_flops_per_row(size.lengths, token_dim, t.d_model, t.d_ff, t.n_layers,
                                                  t.n_decoder_layers)
    name = torch.cuda.get_device_name()
    peak = peak if peak is not None else peak_tflops(name, dtype)
    achieved = flops / transformer_s / 1e12
    result = {"device": name, "dtype": dtype, "batch": batch, "steps": steps,
              "model_rows_per_s": batch / model_s, "model_step_s": model_s,
              "transformer_rows_per_s": batch / transformer_s, "transformer_tflops": achieved,
              "peak_tflops": peak, "share_of_flop_limit": achieved / peak if peak else None,
              "torch": torch.__version__, "python": platform.python_version(),
              "note": "model torch modules only (no merlin loader / cuDF)"}
    write_json(out, result)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=2048)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--dtype", choices=["float32", "bfloat16"], default="float32")
    parser.add_argument("--peak-tflops", type=float, default=None)
    args = parser.parse_args()
    result = run(args.batch, args.steps, dtype=args.dtype, peak=args.peak_tflops)
    if result is None:
        print("no CUDA device: the GPU benchmark is skipped")
        return
    for key, value in result.items():
        print(f"{key:<24}{value}")


if __name__ == "__main__":
    main()
