"""GPU checks (``@pytest.mark.gpu``; skipped without CUDA) and the GPU benchmark's CPU-side arithmetic."""

from __future__ import annotations

import json
import math
import sys

import pytest
import torch
from model_fixtures import FixtureSpec, loader_batches, tiny_config, write_ranking_fixture
from paths import BENCHMARKS

sys.path.insert(0, str(BENCHMARKS))
import gpu  # noqa: E402  (benchmarks/gpu.py)

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def test_transformer_flops_count_by_hand():
    # One behaviour of 2 events, token_dim 4 -> d 2 (projected), d_ff 3, one encoder and one decoder layer.
    project = 2 * 3 * 4 * 2
    encoder = 2 * 4 * 2 * 2 * 2 + 2 * 2 * 2 * 2 * 2 + 2 * 2 * 2 * 2 * 3
    decoder = 2 * 2 * 2 * 2 + 2 * 2 * 2 * 2 * 2 + 2 * 2 * 2 * 2 + 2 * 2 * 2 * 3
    assert gpu.transformer_flops_per_row({"click": 2}, 4, 2, 3, 1, 1) == project + encoder + decoder
    assert gpu.transformer_flops_per_row({"a": 2, "b": 2}, 4, 2, 3, 1, 1) == 2 * (project + encoder + decoder)


def test_peak_table_and_skip_without_gpu(tmp_path):
    assert gpu.peak_tflops("NVIDIA H100 80GB HBM3", "bfloat16") == 989.0
    assert gpu.peak_tflops("NVIDIA A100-SXM4-40GB", "float32") == 19.5
    assert gpu.peak_tflops("Some Future GPU", "float32") is None
    if not torch.cuda.is_available():
        assert gpu.run(batch=8, steps=1, warmup=0, out=tmp_path / "gpu.json") is None
        assert not (tmp_path / "gpu.json").exists()


@pytest.fixture(scope="module")
def fixture(tmp_path_factory):
    return write_ranking_fixture(tmp_path_factory.mktemp("gpu") / "ranking", n_windows=2,
                                 spec=FixtureSpec(requests_per_window=20), seed=0)


@pytest.mark.gpu
@needs_cuda
def test_model_on_gpu_matches_cpu(fixture):
    from t4r_dmt.model import build_model

    torch.manual_seed(0)
    model = build_model(fixture.schema, tiny_config()).eval()
    x, y = loader_batches(fixture, fixture.path(1), 64, model.max_sequence_length)[0]
    with torch.no_grad():
        cpu = model(dict(x))
        cuda_model = model.to("cuda")
        gpu_out = cuda_model({k: v.cuda() for k, v in x.items()})
    for key in ("p_click", "p_order", "score"):
        torch.testing.assert_close(gpu_out[key].cpu(), cpu[key], atol=1e-4, rtol=1e-3)
    cuda_model.train()
    loss = cuda_model({k: v.cuda() for k, v in x.items()}, targets={k: v.cuda() for k, v in y.items()},
                      training=True)["loss"]
    loss.backward()
    assert math.isfinite(loss.item())
    assert all(p.grad is None or torch.isfinite(p.grad).all() for p in cuda_model.parameters())


@pytest.mark.gpu
@needs_cuda
def test_training_window_on_gpu(fixture, tmp_path):
    from t4r_dmt.commands.train import run
    from t4r_dmt.training.arguments import DataArguments, RunTrainingArguments

    config = tmp_path / "tiny.json"
    config.write_text(json.dumps(tiny_config().to_dict()))
    out = tmp_path / "run"
    result = run(DataArguments(data=str(fixture.root.parent), out=str(out), config=str(config)),
                 RunTrainingArguments(output_dir=str(out / "trainer"), per_device_train_batch_size=32,
                                      report_to=[], disable_tqdm=True))
    assert result["windows"][0]["n_rows"] > 0
    assert 0.0 <= result["average"]["auc_click"] <= 1.0
    assert (out / "checkpoints" / "window_0001" / "model.pt").exists()


def test_fast_paths_equal_the_plain_computation(monkeypatch):
    """The speed-ups (length-bucketed encoder, experts as one batched product) change no value or gradient."""
    import t4r_dmt.model.buckets as buckets
    import t4r_dmt.model.interest as interest
    from t4r_dmt.model.config import TransformerConfig
    from t4r_dmt.model.multitask import MMoE

    monkeypatch.setitem(buckets.CALL_COST_TOKENS, "cpu", 0.0)  # one bucket per distinct length
    torch.manual_seed(0)
    block = interest.DeepInterestTransformer(TransformerConfig(d_model=16, d_ff=32, n_heads=2, dropout=0.0), 12, 10)
    lengths = torch.tensor([0, 3, 5, 0, 1, 2, 0, 4])
    mask = torch.arange(10).unsqueeze(0) < lengths.unsqueeze(1)
    tokens, target = torch.randn(8, 10, 12) * mask.unsqueeze(-1), torch.randn(8, 12)
    x = block.project(tokens) * block.scale + block.positions.weight.unsqueeze(0)
    plain = block.decoder(block.project(target) * block.scale, block.encoder(x, mask), mask)
    fast, _ = block(tokens, mask, target)
    torch.testing.assert_close(fast, plain, atol=1e-6, rtol=1e-5)
    params = [p for p in block.parameters() if p.requires_grad]
    grads = torch.autograd.grad(plain.sum(), params, allow_unused=True)
    fast_grads = torch.autograd.grad(fast.sum(), params, allow_unused=True)
    for g, f in zip(grads, fast_grads, strict=True):
        if g is not None:
            torch.testing.assert_close(f, g, atol=1e-6, rtol=1e-5)

    mmoe = MMoE(20, 2, 3, [16, 8], [4])
    inputs = torch.randn(5, 20)
    torch.testing.assert_close(mmoe.expert_outputs(inputs), torch.stack([e(inputs) for e in mmoe.experts], 1))
