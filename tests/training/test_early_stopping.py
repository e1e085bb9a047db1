"""Epochs chosen per window on the training window's own latest requests (``--early_stopping_tail``)."""

from __future__ import annotations

import json
import math
import shutil

import numpy as np
import pandas as pd
import pytest
import torch
from model_fixtures import tiny_config
from torch import nn
from transformers import TrainerControl, TrainerState
from window_loop_spies import spy_reads_per_window, train_tiny

from t4r_dmt.training import loop as loop_module
from t4r_dmt.training.arguments import DataArguments, RunTrainingArguments
from t4r_dmt.training.early_stopping import (
    BestEpoch,
    click_logloss,
    heldout_criterion,
    normalized_entropy,
    split_tail,
)

TAIL = 0.25
EPOCHS = 3


# --- the split ------------------------------------------------------------------------------------------------

def test_split_tail_holds_out_the_latest_whole_requests(data_dir, tmp_path) -> None:
    path = data_dir / "ranking" / "0001" / "train.parquet"
    head, tail = split_tail(path, TAIL, tmp_path / "split")
    rows, head_rows, tail_rows = (pd.read_parquet(p) for p in (path, head, tail))
    requests = np.sort(rows["request_id"].unique())
    assert len(requests) == 40
    assert sorted(tail_rows["request_id"].unique()) == list(requests[-10:])  # the last quarter of the ids
    assert set(head_rows["request_id"]).isdisjoint(tail_rows["request_id"])  # whole requests on one side
    assert len(head_rows) + len(tail_rows) == len(rows)
    pd.testing.assert_frame_equal(head_rows, rows[~rows["request_id"].isin(requests[-10:])].reset_index(drop=True))
    # A small share still holds out one request; a window of one request cannot be split.
    _, one = split_tail(path, 0.001, tmp_path / "one")
    assert pd.read_parquet(one)["request_id"].nunique() == 1
    single = tmp_path / "single.parquet"
    rows[rows["request_id"] == requests[0]].to_parquet(single)
    with pytest.raises(ValueError, match="1 request\\(s\\) cannot be split"):
        split_tail(single, TAIL, tmp_path / "single")
    for share in (0.0, -0.1, 0.6):
        with pytest.raises(ValueError, match="early_stopping_tail must be in \\(0, 0.5\\]"):
            split_tail(path, share, tmp_path / "bad")


def test_click_logloss_never_prefers_a_diverged_model() -> None:
    assert click_logloss(np.array([1, 0]), np.array([0.5, 0.5])) == pytest.approx(math.log(2))
    assert click_logloss(np.array([], dtype=np.int64), np.array([])) == math.inf
    assert click_logloss(np.array([1, 0]), np.array([np.nan, 0.5])) == math.inf  # diverged: skipped, no crash


def test_normalized_entropy_is_one_at_the_base_rate_and_nan_without_two_classes() -> None:
    labels = np.array([1, 0, 0, 0])
    assert normalized_entropy(labels, np.full(4, 0.25)) == pytest.approx(1.0)
    # A better-than-base-rate model scores below 1: logloss / H(0.25).
    probs = np.array([0.7, 0.1, 0.2, 0.1])
    base = -(0.25 * math.log(0.25) + 0.75 * math.log(0.75))
    expected = -np.mean([math.log(0.7), math.log(0.9), math.log(0.8), math.log(0.9)]) / base
    assert normalized_entropy(labels, probs) == pytest.approx(expected)
    assert math.isnan(normalized_entropy(np.zeros(3), np.full(3, 0.1)))
    assert math.isnan(normalized_entropy(np.ones(3), np.full(3, 0.9)))
    assert math.isnan(normalized_entropy(np.array([]), np.array([])))


def test_heldout_criterion_click_and_click_order(caplog) -> None:
    click, order = np.array([1, 0, 1, 0, 0, 0]), np.array([1, 0, 0, 0, 0, 0])
    p_click, p_order = np.array([0.6, 0.3, 0.5, 0.2, 0.1, 0.4]), np.array([0.3, 0.1, 0.2, 0.05, 0.1, 0.1])
    assert heldout_criterion("click", click, order, p_click, p_order) == click_logloss(click, p_click)
    both = heldout_criterion("click_order", click, order, p_click, p_order)
    assert both == pytest.approx(normalized_entropy(click, p_click) + normalized_entropy(order, p_order))
    # "cvr" orders are scored on the clicked rows only: rows 0 and 2.
    cvr = heldout_criterion("click_order", click, order, p_click, p_order, order_rows=click > 0)
    assert cvr == pytest.approx(normalized_entropy(click, p_click)
                                + normalized_entropy(np.array([1, 0]), np.array([0.3, 0.2])))
    # A tail without an order: the click term alone, and a warning saying so.
    with caplog.at_level("WARNING", logger="t4r_dmt.training.early_stopping"):
        alone = heldout_criterion("click_order", click, np.zeros(6), p_click, p_order)
    assert alone == pytest.approx(normalized_entropy(click, p_click))
    assert "no order to score" in caplog.text
    # A diverged model never wins.
    assert heldout_criterion("click_order", click, order, np.full(6, np.nan), p_order) == math.inf
    with pytest.raises(ValueError, match=r"early_stopping_metric must be one of \('click', 'click_order'\); "
                                         r"got 'order'"):
        heldout_criterion("order", click, order, p_click, p_order)


@pytest.mark.parametrize("order_label", ["ctcvr", "cvr"])
def test_the_tail_scores_orders_on_the_rows_the_order_task_trains_on(order_label, data_dir) -> None:
    from t4r_dmt.model import build_model
    from t4r_dmt.run_folder import load_schema

    model = build_model(load_schema(data_dir / "ranking"), tiny_config(loss={"order_label": order_label}))
    click, order = np.array([1, 0, 1, 0]), np.array([1, 0, 0, 0])
    rows = loop_module._order_rows(model, click, order)
    expected = [True, False, True, False] if order_label == "cvr" else [True] * 4  # cvr: the clicked rows
    assert rows is not None and rows.tolist() == expected
    assert loop_module._order_rows(nn.Linear(1, 1), click, order) is None  # no ranking loss: every row


# --- the callback ---------------------------------------------------------------------------------------------

def _epochs(losses: list[float], patience: int) -> tuple[BestEpoch, nn.Linear, int]:
    """Run ``BestEpoch`` over scripted epochs; epoch e sets the weight to e. Returns it, the model, epochs run."""
    model = nn.Linear(1, 1, bias=False)
    scripted = iter(losses)
    best = BestEpoch(lambda: next(scripted), patience)
    control = TrainerControl()
    ran = 0
    for epoch, _ in enumerate(losses, start=1):
        with torch.no_grad():
            model.weight.fill_(epoch)
        ran = epoch
        control = best.on_epoch_end(None, TrainerState(), control, model=model)  # type: ignore[arg-type]
        if control.should_training_stop:
            break
    return best, model, ran


def test_best_epoch_keeps_the_lowest_loss_and_stops_after_patience() -> None:
    best, model, ran = _epochs([0.5, 0.4, 0.45, 0.3], patience=1)
    assert (ran, best.best_epoch, best.losses) == (3, 2, [0.5, 0.4, 0.45])
    best.restore(model)
    assert float(model.weight.detach()) == 2.0  # the weights after epoch 2, not those of epoch 3
    best, model, ran = _epochs([0.5, 0.4, 0.45, 0.3], patience=2)
    assert (ran, best.best_epoch) == (4, 4)
    best.restore(model)
    assert float(model.weight.detach()) == 4.0
    best, _, _ = _epochs([math.inf, 0.7, 0.7], patience=5)  # a diverged epoch never wins; ties keep the first
    assert best.best_epoch == 2


def test_best_epoch_errors() -> None:
    with pytest.raises(ValueError, match="early_stopping_patience must be a positive integer; got 0"):
        BestEpoch(lambda: 0.0, patience=0)
    with pytest.raises(RuntimeError, match="no epoch has finished"):
        BestEpoch(lambda: 0.0).restore(nn.Linear(1, 1))


# --- the loop -------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def recipe_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("cfg") / "tiny_recipe.json"
    config = tiny_config(name="tiny_recipe", regularisation={"weight_decay": 0.05, "embedding_l2": 0.01},
                         multitask={"dropout": 0.1})
    path.write_text(json.dumps(config.to_dict()))
    return path


def _spy_heldout(monkeypatch) -> list[list[float]]:
    """Record every held-out loss the loop computes, one list per training window."""
    calls: list[list[float]] = []
    original_train, original_loss = loop_module.TimeWindowLoop._train_window, loop_module.heldout_loss

    def train_window(self, task_dir, window):
        calls.append([])
        return original_train(self, task_dir, window)

    def heldout_loss(trainer, tail, metric="click", with_bias=False):
        loss = original_loss(trainer, tail, metric, with_bias)
        calls[-1].append(loss)
        return loss

    monkeypatch.setattr(loop_module.TimeWindowLoop, "_train_window", train_window)
    monkeypatch.setattr(loop_module, "heldout_loss", heldout_loss)
    return calls


@pytest.mark.parametrize("metric", ["click", "click_order"])
def test_early_stopping_picks_the_best_held_out_epoch_and_restores_it(metric, data_dir, recipe_file, tmp_path,
                                                                      monkeypatch) -> None:
    from t4r_dmt.metrics.results import RunResults
    from t4r_dmt.model import DMTConfig, DMTTrainer, build_model
    from t4r_dmt.run_folder import load_schema
    from t4r_dmt.training.loop import load_checkpoint

    score_tail = loop_module.heldout_loss
    calls = _spy_heldout(monkeypatch)
    result = train_tiny(data_dir, recipe_file, tmp_path / "run", early_stopping_tail=TAIL, num_train_epochs=EPOCHS,
                        early_stopping_metric=metric)
    epochs = [w["epochs"] for w in result["windows"]]
    assert len(calls) == 2 and all(1 <= len(c) <= EPOCHS for c in calls)
    assert epochs == [int(np.argmin(c)) + 1 for c in calls]
    assert any(len(c) > 1 for c in calls)  # it trained past a first epoch at least once
    saved = RunResults.load(tmp_path / "run")
    assert [w["epochs"] for w in saved.windows] == epochs and "epochs" not in saved.average
    assert list(pd.read_csv(tmp_path / "run" / "metrics.csv").columns[:4]) == [
        "train_window", "eval_window", "n_rows", "epochs"]
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["training"]["weight_decay"] == 0.05  # the preset's recipe, as the run used it
    assert config["training"]["early_stopping_tail"] == TAIL
    assert config["training"]["early_stopping_metric"] == metric
    # The checkpoint of window 1 holds the chosen epoch's weights: it scores window 1's tail at the best loss.
    schema = load_schema(data_dir / "ranking")
    model = build_model(schema, DMTConfig.from_dict(json.loads(recipe_file.read_text())))
    load_checkpoint(model, tmp_path / "run", 1)
    args = RunTrainingArguments(output_dir=str(tmp_path / "score"), report_to=[], per_device_eval_batch_size=64,
                                disable_tqdm=True, max_sequence_length=model.max_sequence_length)
    _, tail = split_tail(data_dir / "ranking" / "0001" / "train.parquet", TAIL, tmp_path / "split")
    trainer = DMTTrainer(model=model, args=args, schema=schema)
    assert score_tail(trainer, tail, metric) == pytest.approx(min(calls[0]), abs=1e-9)
    if metric == "click_order":  # the sum of both tasks' normalised entropies, the tail holding orders
        frame = loop_module.predict_frame(trainer, tail)
        order_term = normalized_entropy(frame["order"].to_numpy(), frame["p_order"].to_numpy())
        assert frame["order"].sum() > 0 and order_term > 0
        assert score_tail(trainer, tail, metric) == pytest.approx(
            normalized_entropy(frame["click"].to_numpy(), frame["p_click"].to_numpy()) + order_term, abs=1e-9)


def test_early_stopping_never_reads_the_evaluation_window(data_dir, config_file, tmp_path, monkeypatch) -> None:
    """Shuffled labels in every evaluation file change the metrics, not the chosen epochs or the weights; while
    a window trains, no file of another window is read."""
    spoiled = tmp_path / "spoiled_data"
    shutil.copytree(data_dir, spoiled)
    rng = np.random.default_rng(0)
    for window in ("0002", "0003"):
        path = spoiled / "ranking" / window / "valid.parquet"
        frame = pd.read_parquet(path)
        frame["click"] = rng.permutation(frame["click"].to_numpy())
        frame.to_parquet(path, index=False)
    reads = spy_reads_per_window(monkeypatch)
    runs = {}
    for name, root in (("clean", data_dir), ("spoiled", spoiled)):
        reads.clear()
        runs[name] = train_tiny(root, config_file, tmp_path / f"run_{name}", early_stopping_tail=TAIL,
                                num_train_epochs=EPOCHS)
        for window, paths in reads.items():
            sources = {p for p in paths if str(root) in p}  # the data folder's files (the rest: head / tail copies)
            assert sources == {str(root / "ranking" / f"{window:04d}" / "train.parquet")}, sources
            assert all(str(root) in p or str(tmp_path / f"run_{name}") in p for p in paths)
    assert [w["epochs"] for w in runs["clean"]["windows"]] == [w["epochs"] for w in runs["spoiled"]["windows"]]
    assert runs["clean"]["windows"][0]["auc_click"] != runs["spoiled"]["windows"][0]["auc_click"]
    for window in (1, 2):
        clean, spoilt = (torch.load(tmp_path / f"run_{n}" / "checkpoints" / f"window_{window:04d}" / "model.pt")
                         for n in ("clean", "spoiled"))
        assert all(torch.equal(clean[k], spoilt[k]) for k in clean)


# --- the arguments --------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("kwargs", "match"), [
    ({"early_stopping_tail": -0.1}, r"early_stopping_tail must be 0 \(off\) or in \(0, 0.5\]; got -0.1"),
    ({"early_stopping_tail": 0.6}, r"early_stopping_tail must be 0 \(off\) or in \(0, 0.5\]; got 0.6"),
    ({"early_stopping_tail": 0.1, "num_train_epochs": 1.5}, "early_stopping_tail needs a whole num_train_epochs"),
    ({"early_stopping_tail": 0.1, "num_train_epochs": 0.5}, "early_stopping_tail needs a whole num_train_epochs"),
    ({"early_stopping_tail": 0.1, "max_steps": 10}, "cannot be combined with max_steps"),
    ({"early_stopping_patience": 0}, "early_stopping_patience must be a positive integer; got 0"),
    ({"weight_decay": -0.01}, "weight_decay must be a finite number >= 0; got -0.01"),
    ({"early_stopping_metric": "auc"}, r"early_stopping_metric must be one of \('click', 'click_order'\); got 'auc'"),
])
def test_argument_errors(kwargs, match, tmp_path) -> None:
    with pytest.raises(ValueError, match=match):
        RunTrainingArguments(output_dir=str(tmp_path), report_to=[], **kwargs)


@pytest.mark.parametrize("form", ["additive", "multiplicative", "pbm"])
def test_with_bias_the_tail_is_scored_with_the_click_probability_the_loss_fits(form, data_dir, tmp_path) -> None:
    from transformers4rec.torch.utils.data_utils import T4RecDataLoader

    from t4r_dmt.model import DMTTrainer, build_model
    from t4r_dmt.run_folder import load_schema

    schema = load_schema(data_dir / "ranking")
    torch.manual_seed(0)
    model = build_model(schema, tiny_config(bias={"form": form, "kind": "scalar"}))
    network, task = model.heads[0].body.module, model.heads[0].task
    with torch.no_grad():  # a clear position effect: the logged and the served probabilities differ
        network.bias_tower.positions.weight.copy_(-0.4 * torch.arange(network.bias_tower.positions.num_embeddings,
                                                                      dtype=torch.float32).unsqueeze(1))
    args = RunTrainingArguments(output_dir=str(tmp_path / "score"), report_to=[], per_device_eval_batch_size=64,
                                disable_tqdm=True, max_sequence_length=model.max_sequence_length)
    _, tail = split_tail(data_dir / "ranking" / "0001" / "train.parquet", TAIL, tmp_path / "split")
    trainer = DMTTrainer(model=model, args=args, schema=schema)
    served = loop_module.heldout_loss(trainer, tail)
    logged = loop_module.heldout_loss(trainer, tail, with_bias=True)
    assert task.score_logged is False  # reset after scoring
    # By hand: the network's u and y_b on the tail, through the loss's own form, then the click logloss.
    frame = pd.read_parquet(tail)
    model.eval()
    outputs = []
    for inputs, _ in T4RecDataLoader.parse(args.data_loader_engine).from_schema(
            schema, str(loop_module.engine_file(trainer, tail)), 64, max_sequence_length=model.max_sequence_length,
            shuffle=False, global_rank=None, global_size=None, device=trainer.device):
        with torch.no_grad():
            out = network(inputs)
        outputs.append(task.loss.logged_probabilities(out.task_logits, out.bias_logit)[:, 0])
    p_click = torch.cat(outputs).numpy()
    assert logged == pytest.approx(click_logloss(frame["click"].to_numpy(), p_click), rel=1e-5)
    assert abs(logged - served) > 1e-3
    # Without a bias tower the flag changes nothing.
    torch.manual_seed(0)
    plain = DMTTrainer(model=build_model(schema, tiny_config(bias={"enabled": "off"})), args=args, schema=schema)
    assert loop_module.heldout_loss(plain, tail, with_bias=True) == loop_module.heldout_loss(plain, tail)


def test_defaults_keep_todays_loop_and_take_the_presets_weight_decay(tmp_path) -> None:
    from t4r_dmt.training.arguments import resolve_weight_decay

    args = RunTrainingArguments(output_dir=str(tmp_path), report_to=[])
    assert (args.early_stopping_tail, args.weight_decay, args.early_stopping_with_bias) == (0.0, None, False)
    resolve_weight_decay(args, 0.01)
    assert args.weight_decay == 0.01
    given = RunTrainingArguments(output_dir=str(tmp_path), report_to=[], weight_decay=0.0)
    resolve_weight_decay(given, 0.01)
    assert given.weight_decay == 0.0  # a run's own --weight_decay wins, 0 included


def test_early_stopping_is_refused_for_other_families(data_dir, tmp_path) -> None:
    from t4r_dmt.commands.train import run

    with pytest.raises(ValueError, match="--early_stopping_tail chooses the epochs of the dmt and baseline presets"):
        run(DataArguments(data=str(data_dir), out=str(tmp_path / "run"), config="gbdt"),
            RunTrainingArguments(output_dir=str(tmp_path / "t"), report_to=[], early_stopping_tail=0.1,
                                 num_train_epochs=2))
    assert not (tmp_path / "run").exists()


def test_warmup_ratio_is_refused_where_t4rs_trainer_would_ignore_it(data_dir, tmp_path) -> None:
    from t4r_dmt.commands.train import run

    with pytest.raises(ValueError, match="--warmup_ratio is not applied by T4R's Trainer of the next-item models"):
        run(DataArguments(data=str(data_dir), out=str(tmp_path / "run"), config="gru_clm", task="next-item"),
            RunTrainingArguments(output_dir=str(tmp_path / "t"), report_to=[], warmup_ratio=0.1))
    assert not (tmp_path / "run").exists()
