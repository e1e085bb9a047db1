"""Data-parallel training: ``torchrun --nproc_per_node=2 -m t4r_dmt.cli train`` on CPU (gloo).

The 2-process run (batch B per rank, rows not shuffled, no dropout) must give the same weights and metrics as
one process with batch 2B: every DDP step averages the gradients of the two ranks' batches, whose union is
the single process's batch. The ranks' shards must be disjoint and cover the window.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter

import pandas as pd
import pyarrow.parquet as pq
import pytest
import torch
from model_fixtures import FixtureSpec, tiny_config, write_ranking_fixture

from t4r_dmt.training.arguments import DataArguments, RunTrainingArguments, ddp_defaults
from t4r_dmt.training.loop import shard_path, shard_rows, world

ROW_KEY = ["request_id", "item_id"]


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("ddp")
    write_ranking_fixture(root / "data" / "ranking", n_windows=2, spec=FixtureSpec(requests_per_window=40), seed=1)
    config = root / "tiny_nodrop.json"
    config.write_text(json.dumps(tiny_config(transformer={"dropout": 0.0}, bias={"dropout": 0.0}).to_dict()))
    return root


def _assert_same_weights(first: dict[str, torch.Tensor], second: dict[str, torch.Tensor]) -> None:
    """Every parameter within float tolerance, but for the key bias of each attention (``in_proj_bias`` is
    [query, key, value]): softmax over the keys is unchanged by a bias added to all of them, so its gradient is
    exactly 0 and what it gets is rounding noise, which Adam's normalised step turns into full-size steps whose
    sign depends on the summation order of the CPU's kernels (seen: 1.06e-5 apart on an AMD EPYC)."""
    assert first.keys() == second.keys()
    for name, value in first.items():
        other = second[name]
        if name.endswith("attention.in_proj_bias"):
            d = len(value) // 3
            value, other = torch.cat([value[:d], value[2 * d:]]), torch.cat([other[:d], other[2 * d:]])
        torch.testing.assert_close(value, other, atol=1e-5, rtol=1e-4, msg=name)


def _args(per_device: int) -> list[str]:
    return ["--per_device_train_batch_size", str(per_device), "--shuffle_train", "false", "--seed", "3",
            "--report_to", "none", "--disable_tqdm", "true", "--logging_steps", "1"]


def test_two_processes_match_one_and_see_disjoint_rows(setup):
    root = setup
    ddp_out, single_out = root / "ddp", root / "single"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           "-m", "t4r_dmt.cli", "train", "--data", str(root / "data"), "--out", str(ddp_out),
           "--config", str(root / "tiny_nodrop.json"), *_args(16)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]

    from t4r_dmt.commands.train import run

    run(DataArguments(data=str(root / "data"), out=str(single_out), config=str(root / "tiny_nodrop.json")),
        RunTrainingArguments(output_dir=str(single_out / "trainer"), per_device_train_batch_size=32,
                             shuffle_train=False, seed=3, report_to=[], disable_tqdm=True))

    # Each rank trained on its own half of window 1 (320 rows, even): together every row exactly once.
    train = pd.read_parquet(root / "data" / "ranking" / "0001" / "train.parquet", columns=ROW_KEY)
    shards = [pd.read_parquet(shard_path(str(ddp_out / "trainer"), r), columns=ROW_KEY) for r in (0, 1)]
    assert len(shards[0]) == len(shards[1]) == len(train) // 2
    assert _rows(shards[0]) + _rows(shards[1]) == _rows(train)
    assert _rows(shards[0]) != _rows(shards[1])

    # Only rank 0 wrote the run folder, and the result matches one process with the doubled batch.
    assert json.loads((ddp_out / "config.json").read_text())["world_size"] == 2
    weights = [torch.load(out / "checkpoints" / "window_0001" / "model.pt", weights_only=True)
               for out in (ddp_out, single_out)]
    _assert_same_weights(*weights)
    # Per-row scores of the evaluation window agree too. Rank metrics (AUC, NDCG) are deliberately not
    # compared: near-tied scores whose last bits depend on the CPU's float kernels can swap places, so a
    # rank metric may differ between two correct runs (seen: ndcg@10 0.6007 vs 0.6078 on an AMD EPYC).
    from t4r_dmt.training.predict import PredictArguments
    from t4r_dmt.training.predict import run as predict

    scores = []
    for out in (ddp_out, single_out):
        predict(PredictArguments(run=str(out), data=str(root / "data"), window=2, split="valid",
                                 out=str(out / "scores.parquet")))
        scores.append(pd.read_parquet(out / "scores.parquet"))
    assert len(scores[0]) == len(scores[1]) > 0
    pd.testing.assert_frame_equal(scores[0][["request_id", "product_id"]], scores[1][["request_id", "product_id"]])
    for key in ("p_click", "p_order", "score"):
        assert scores[0][key].to_numpy() == pytest.approx(scores[1][key].to_numpy(), abs=1e-4), key
    metrics = [json.loads((out / "metrics.json").read_text())["windows"][0] for out in (ddp_out, single_out)]
    assert metrics[0]["logloss_click"] == pytest.approx(metrics[1]["logloss_click"], abs=1e-4)
    assert metrics[0]["n_rows"] == metrics[1]["n_rows"] > 0


def _rows(frame: pd.DataFrame) -> Counter:
    return Counter(map(tuple, frame.to_numpy().tolist()))


def test_shard_rows_interleaves_and_equalises(tmp_path):
    path = tmp_path / "rows.parquet"
    pd.DataFrame({"x": range(7)}).to_parquet(path)
    parts = [pd.read_parquet(shard_rows(path, r, 3, tmp_path / f"r{r}.parquet"))["x"].tolist() for r in range(3)]
    assert parts == [[0, 3], [1, 4], [2, 5]]  # row 6 (7 mod 3) is left out so every rank has 2 rows
    assert pq.ParquetFile(tmp_path / "r0.parquet").metadata.num_rows == 2


def test_shard_rows_errors(tmp_path):
    path = tmp_path / "rows.parquet"
    pd.DataFrame({"x": range(2)}).to_parquet(path)
    with pytest.raises(ValueError, match="outside a world of 2"):
        shard_rows(path, 2, 2, tmp_path / "o.parquet")
    with pytest.raises(ValueError, match="2 rows cannot be shared among 3 processes"):
        shard_rows(path, 0, 3, tmp_path / "o.parquet")


def test_single_process_world_and_backend(tmp_path, monkeypatch):
    assert world() == (0, 1)
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert RunTrainingArguments(output_dir=str(tmp_path)).ddp_backend is None
    assert ddp_defaults(1, cuda=False, no_cuda=False, backend=None) == (False, None)
    assert ddp_defaults(2, cuda=False, no_cuda=False, backend=None) == (True, "gloo")
    assert ddp_defaults(2, cuda=True, no_cuda=False, backend=None) == (False, "nccl")
    assert ddp_defaults(2, cuda=True, no_cuda=True, backend=None) == (True, "gloo")
    assert ddp_defaults(2, cuda=True, no_cuda=False, backend="gloo") == (False, "gloo")


def test_finish_distributed_tears_the_group_down(tmp_path):
    """Every rank leaves through a barrier and destroy_process_group: a rank exiting with gloo's threads alive
    aborts ("terminate called without an active exception", pytorch/pytorch#190489)."""
    import torch.distributed as dist

    from t4r_dmt.training.runner import finish_distributed

    store = dist.FileStore(str(tmp_path / "store"), 1)
    dist.init_process_group("gloo", store=store, rank=0, world_size=1)
    assert world() == (0, 1) and dist.is_initialized()
    finish_distributed()
    assert not dist.is_initialized()


def test_two_processes_choose_the_same_epochs_as_one(setup):
    """With --early_stopping_tail every rank trains its shard of the head and stops after the same epoch (rank 0
    scores the tail and broadcasts): the epochs kept and the weights are those of one process with batch 2B."""
    root = setup
    ddp_out, single_out = root / "ddp_es", root / "single_es"
    early = ["--early_stopping_tail", "0.25", "--num_train_epochs", "3"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           "-m", "t4r_dmt.cli", "train", "--data", str(root / "data"), "--out", str(ddp_out),
           "--config", str(root / "tiny_nodrop.json"), *_args(16), *early]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]

    from t4r_dmt.commands.train import run

    # One thread, as each rank has: with two, CPU kernels sum in another order and the weights drift past the
    # tolerance (the test passed or failed with the thread count an earlier test had left).
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        run(DataArguments(data=str(root / "data"), out=str(single_out), config=str(root / "tiny_nodrop.json")),
            RunTrainingArguments(output_dir=str(single_out / "trainer"), per_device_train_batch_size=32,
                                 shuffle_train=False, seed=3, report_to=[], disable_tqdm=True,
                                 early_stopping_tail=0.25, num_train_epochs=3))
    finally:
        torch.set_num_threads(threads)
    epochs = [json.loads((out / "metrics.json").read_text())["windows"][0]["epochs"] for out in (ddp_out, single_out)]
    assert epochs[0] == epochs[1]
    weights = [torch.load(out / "checkpoints" / "window_0001" / "model.pt", weights_only=True)
               for out in (ddp_out, single_out)]
    _assert_same_weights(*weights)
