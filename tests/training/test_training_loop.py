"""The incremental time-window loop: train on t, evaluate on t+1; resume; predict; argument errors."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest
from model_fixtures import FixtureSpec, write_ranking_fixture
from window_loop_spies import assert_same_windows, interrupt_window

from t4r_dmt.compat import merlin_loader
from t4r_dmt.training.arguments import DataArguments, RunTrainingArguments
from t4r_dmt.windows import list_windows, parse_windows, select_windows


def _train(data_dir, config_file, out, report_to=(), **data_kwargs):
    from t4r_dmt.commands.train import run

    data = DataArguments(data=str(data_dir), out=str(out), config=str(config_file), **data_kwargs)
    targs = RunTrainingArguments(output_dir=str(out / "trainer"), report_to=list(report_to), seed=7,
                                 disable_tqdm=True, logging_steps=1,
                                 per_device_train_batch_size=32, per_device_eval_batch_size=64)
    return run(data, targs)


def test_loop_over_three_windows_writes_valid_results(data_dir, config_file, tmp_path):
    from t4r_dmt.metrics.results import RunResults, validate_metrics_json

    result = _train(data_dir, config_file, tmp_path / "run", report_to=["tensorboard"])
    run_dir = tmp_path / "run"
    assert list((run_dir / "trainer").rglob("events.out.tfevents.*")), "no TensorBoard logs"
    saved = json.loads((run_dir / "metrics.json").read_text())
    validate_metrics_json(saved, str(run_dir / "metrics.json"))
    assert saved["task"] == "ranking" and saved["model"] == "tiny_dmt"
    assert [(w["train_window"], w["eval_window"]) for w in saved["windows"]] == [(1, 2), (2, 3)]
    valid_rows = [len(pd.read_parquet(data_dir / "ranking" / f"{w:04d}" / "valid.parquet")) for w in (2, 3)]
    assert [w["n_rows"] for w in saved["windows"]] == valid_rows
    for window in saved["windows"]:
        assert window["logloss_click"] > 0
    # The recorded metrics are those of the saved weights: rescoring window 3's valid file with the checkpoint of
    # window 2 (predict) gives the same AUC as sklearn computes.
    from sklearn.metrics import roc_auc_score

    from t4r_dmt.training.predict import PredictArguments
    from t4r_dmt.training.predict import run as predict

    predict(PredictArguments(run=str(run_dir), data=str(data_dir), window=3, split="valid",
                             out=str(tmp_path / "scores.parquet")))
    scores = pd.read_parquet(tmp_path / "scores.parquet")
    labels = pd.read_parquet(data_dir / "ranking" / "0003" / "valid.parquet", columns=["click"])["click"]
    assert saved["windows"][1]["auc_click"] == pytest.approx(roc_auc_score(labels, scores["p_click"]), abs=1e-6)
    avg = saved["average"]["auc_click"]
    assert avg == pytest.approx(sum(w["auc_click"] for w in saved["windows"]) / 2)
    assert result["average"]["auc_click"] == pytest.approx(avg)
    assert (run_dir / "metrics.csv").exists() and (run_dir / "plots" / "auc_click.png").exists()
    assert (run_dir / "checkpoints" / "window_0001" / "model.pt").exists()
    assert (run_dir / "checkpoints" / "window_0002" / "model.pt").exists()
    assert RunResults.load(run_dir).windows[0]["train_window"] == 1
    # A second run into the same folder needs --overwrite or --resume.
    with pytest.raises(FileExistsError, match="--overwrite or --resume"):
        _train(data_dir, config_file, run_dir)


def test_resume_after_interrupted_window_gives_same_metrics(data_dir, config_file, tmp_path, monkeypatch):
    full = _train(data_dir, config_file, tmp_path / "full")["windows"]
    undo = interrupt_window(monkeypatch, 2)
    with pytest.raises(KeyboardInterrupt):
        _train(data_dir, config_file, tmp_path / "resumed")
    partial = json.loads((tmp_path / "resumed" / "metrics.json").read_text())
    assert [w["train_window"] for w in partial["windows"]] == [1]
    undo()
    resumed = _train(data_dir, config_file, tmp_path / "resumed", resume=True)["windows"]
    assert len(full) == 2
    assert_same_windows(full, resumed)


def test_predict_scores_every_impression(data_dir, config_file, tmp_path):
    from t4r_dmt.training.predict import PredictArguments
    from t4r_dmt.training.predict import run as predict

    run_dir = tmp_path / "run"
    _train(data_dir, config_file, run_dir, windows="1:2")
    out = tmp_path / "scores.csv"
    summary = predict(PredictArguments(run=str(run_dir), data=str(data_dir), window=3, out=str(out)))
    scores = pd.read_csv(out)
    raw = pd.read_parquet(data_dir / "ranking" / "0003" / "train.parquet")
    assert summary == {"rows": len(raw), "out": str(out), "checkpoint_window": 1}
    assert list(scores.columns) == ["request_id", "product_id", "p_click", "p_order", "score"]
    assert scores["request_id"].tolist() == raw["request_id"].tolist()
    assert scores["product_id"].tolist() == raw["product_id"].tolist()
    assert scores[["p_click", "p_order", "score"]].stack().between(0, 1).all()
    with pytest.raises(FileNotFoundError, match="config.json is missing"):
        predict(PredictArguments(run=str(tmp_path / "nothing"), data=str(data_dir), window=3,
                                 out=str(tmp_path / "x.csv")))
    import shutil

    shutil.rmtree(run_dir / "checkpoints")
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        predict(PredictArguments(run=str(run_dir), data=str(data_dir), window=3, out=str(tmp_path / "x.csv")))
    with pytest.raises(ValueError, match="must end in .parquet or .csv"):
        PredictArguments(run="r", data="d", window=3, out="x.txt")
    assert not (tmp_path / "x.csv").exists()


def test_window_selection_and_errors(data_dir, tmp_path):
    assert list_windows(data_dir / "ranking") == [1, 2, 3]
    assert select_windows([1, 2, 3], "") == [1, 2, 3]
    assert select_windows([1, 2, 3], "2:3") == [2, 3]
    with pytest.raises(ValueError, match=r"window\(s\) \[4\] not found"):
        select_windows([1, 2, 3], "2:4")
    assert parse_windows("1:4") == (1, 4)
    for bad in ("3:3", "0:2", "a:b", "1-4", "1:2:3"):
        with pytest.raises(ValueError, match="--windows"):
            parse_windows(bad)
    with pytest.raises(FileNotFoundError, match="run `t4r-dmt preprocess` first"):
        list_windows(tmp_path / "missing")
    (tmp_path / "one" / "0001").mkdir(parents=True)
    with pytest.raises(ValueError, match="at least 2"):
        list_windows(tmp_path / "one")


def test_data_arguments_validate():
    with pytest.raises(ValueError, match="--task must be one of"):
        DataArguments(data="d", out="o", task="ctr")
    with pytest.raises(ValueError, match="--eval_split must be one of"):
        DataArguments(data="d", out="o", eval_split="dev")
    with pytest.raises(ValueError, match="exclude each other"):
        DataArguments(data="d", out="o", resume=True, overwrite=True)
    with pytest.raises(ValueError, match="--windows"):
        DataArguments(data="d", out="o", windows="4:1")


def test_empty_evaluation_window_is_recorded_not_hung(config_file, tmp_path):
    root = tmp_path / "prep"
    write_ranking_fixture(root / "ranking", n_windows=3, spec=FixtureSpec(requests_per_window=40), seed=2)
    valid = root / "ranking" / "0002" / "valid.parquet"
    pd.read_parquet(valid).iloc[:0].to_parquet(valid, index=False)
    windows = _train(root, config_file, tmp_path / "run")["windows"]
    assert windows[0] == {"train_window": 1, "eval_window": 2, "n_rows": 0}
    assert windows[1]["n_rows"] == len(pd.read_parquet(root / "ranking" / "0003" / "valid.parquet")) > 0
    assert not math.isnan(windows[1]["auc_click"])
    saved = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert saved["average"]["auc_click"] == pytest.approx(windows[1]["auc_click"])




def test_loader_file_pads_only_when_needed_and_the_loader_sees_the_same_tensors(data_dir, tmp_path):
    import torch
    from model_fixtures import RankingFixture, load_schema, loader_batches

    schema = load_schema(data_dir / "ranking")
    source = tmp_path / "0001" / "train.parquet"
    source.parent.mkdir()
    frame = pd.read_parquet(data_dir / "ranking" / "0001" / "train.parquet")
    for column in ("cart_item_id_seq", "cart_category_seq", "cart_brand_seq"):  # users without carts
        frame[column] = [[] if i % 3 == 0 else v for i, v in enumerate(frame[column])]
    frame.to_parquet(source, index=False)
    padded = merlin_loader.loader_file(source, schema, tmp_path / "loader")
    assert padded == tmp_path / "loader" / "0001_train.parquet"
    frame, raw = pd.read_parquet(padded), pd.read_parquet(source)
    assert (frame["cart_item_id_seq"].map(len) > 0).all() and len(frame) == len(raw)
    assert frame["request_id"].tolist() == raw["request_id"].tolist()
    fixture = RankingFixture(root=data_dir / "ranking", schema=schema, schema_path=data_dir / "ranking", windows=[])
    before = loader_batches(fixture, str(source), batch_size=64, max_sequence_length=8)
    after = loader_batches(fixture, str(padded), batch_size=64, max_sequence_length=8)
    assert len(before) == len(after)
    for (x0, y0), (x1, y1) in zip(before, after, strict=True):
        assert x0.keys() == x1.keys()
        for key in x0:
            assert torch.equal(x0[key], x1[key]), key
        assert all(torch.equal(y0[k], y1[k]) for k in y0)
    # Nothing empty: the file itself.
    assert merlin_loader.loader_file(padded, schema, tmp_path / "again") == padded


def test_a_log_without_carts_and_orders_trains_and_evaluates(config_file, tmp_path):
    """Trivago has no cart or order events: those sequences are empty in every row of every batch, on which
    the merlin loader fails with KeyError: 0 unless the loop pads them."""
    root = tmp_path / "prep"
    write_ranking_fixture(root / "ranking", n_windows=3, spec=FixtureSpec(requests_per_window=40), seed=3)
    for path in sorted((root / "ranking").glob("*/*.parquet")):
        frame = pd.read_parquet(path)
        for column in [c for c in frame.columns if c.startswith(("cart_", "order_"))]:
            frame[column] = [[] for _ in range(len(frame))]
        frame.to_parquet(path, index=False)
    windows = _train(root, config_file, tmp_path / "run")["windows"]
    assert [w["eval_window"] for w in windows] == [2, 3]
    assert all(not math.isnan(w["auc_click"]) and w["logloss_click"] > 0 for w in windows)
