"""A real tr.Trainer cycle (train / evaluate / predict) and the learning test on a held-out window."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.parquet as pq
import pytest
import torch
import transformers.utils.logging as hf_logging
from model_fixtures import FixtureSpec, RankingFixture, tiny_config, write_ranking_fixture
from sklearn.metrics import roc_auc_score
from transformers4rec import torch as tr
from transformers4rec.config.trainer import T4RecTrainingArguments

from t4r_dmt.model import DMTConfig, DMTTrainer, build_model


def train_example(fixture: RankingFixture, config: DMTConfig, out_dir: Path, epochs: int = 1,
                  learning_rate: float = 3e-3, seed: int = 0) -> tuple[DMTTrainer, dict[str, float]]:
    """How to train the DMT with T4R's Trainer: train on window 1, evaluate on window 2's valid split."""
    hf_logging.disable_progress_bar()
    torch.manual_seed(seed)
    model = build_model(fixture.schema, config)
    args = T4RecTrainingArguments(
        output_dir=str(out_dir), max_sequence_length=model.max_sequence_length,
        per_device_train_batch_size=64, per_device_eval_batch_size=100, learning_rate=learning_rate,
        lr_scheduler_type="constant", num_train_epochs=epochs, no_cuda=True, report_to=[],
        save_strategy="no", disable_tqdm=True, seed=seed,
    )
    trainer = DMTTrainer(model=model, args=args, schema=fixture.schema,
                         train_dataset_or_path=fixture.path(1), eval_dataset_or_path=fixture.path(2, "valid"))
    trainer.train()
    return trainer, trainer.evaluate()


@pytest.fixture(scope="module")
def fixture(tmp_path_factory: pytest.TempPathFactory) -> RankingFixture:
    return write_ranking_fixture(tmp_path_factory.mktemp("ranking"))


def test_trainer_cycle(fixture: RankingFixture, tmp_path: Path) -> None:
    trainer, metrics = train_example(fixture, tiny_config(), tmp_path / "run", epochs=2)
    assert {"eval_auc_click", "eval_auc_order", "eval_loss"} <= set(metrics)
    assert not any("/" in key for key in metrics)
    # predict returns the three scores for every row, in file order ...
    valid = pd.read_parquet(fixture.path(2, "valid"))
    out = trainer.predict(fixture.path(2, "valid"))
    preds: dict[str, Any] = out.predictions
    assert set(preds) == {"p_click", "p_order", "score"}
    assert all(v.shape == (len(valid),) for v in preds.values())
    # ... and evaluate's AUC is BinaryAUROC over the whole set (3 batches), on probabilities, not per batch.
    assert len(valid) > 2 * 100
    assert metrics["eval_auc_click"] == pytest.approx(roc_auc_score(valid["click"], preds["p_click"]), abs=1e-5)
    assert metrics["eval_auc_order"] == pytest.approx(roc_auc_score(valid["order"], preds["p_order"]), abs=1e-5)
    # A saved and reloaded model predicts exactly the same through the Trainer.
    model = trainer.model
    model.save(tmp_path / "model")
    reloaded = tr.Model.load(tmp_path / "model")
    trainer.model = reloaded
    again = trainer.predict(fixture.path(2, "valid")).predictions
    for key in preds:
        assert (again[key] == preds[key]).all()


def test_trainer_refuses_an_empty_evaluation_set(fixture: RankingFixture, tmp_path: Path) -> None:
    empty = tmp_path / "empty.parquet"
    schema = pq.read_schema(fixture.path(1))
    pq.ParquetWriter(str(empty), schema).close()  # what a window with no valid requests looks like
    model = build_model(fixture.schema, tiny_config())
    args = T4RecTrainingArguments(output_dir=str(tmp_path / "run"), max_sequence_length=8, no_cuda=True,
                                  report_to=[], disable_tqdm=True)
    trainer = DMTTrainer(model=model, args=args, schema=fixture.schema, eval_dataset_or_path=str(empty))
    with pytest.raises(ValueError, match="empty.parquet: no rows to evaluate or predict"):
        trainer.evaluate()
    with pytest.raises(ValueError, match="empty.parquet: no rows to evaluate or predict"):
        trainer.predict(str(empty))


def test_trainer_requires_metrics_on_every_batch(fixture: RankingFixture, tmp_path: Path) -> None:
    model = build_model(fixture.schema, tiny_config())
    args = T4RecTrainingArguments(output_dir=str(tmp_path), compute_metrics_each_n_steps=2, no_cuda=True,
                                  report_to=[])
    with pytest.raises(ValueError, match="compute_metrics_each_n_steps must be 1"):
        DMTTrainer(model=model, args=args, schema=fixture.schema)


def test_dmt_learns_from_the_click_sequence(tmp_path: Path) -> None:
    """The planted signal (click iff the target's category is among the clicked categories) is invisible
    without the sequences: DMT must beat the same model with ``behaviors=[]`` on the next window. Both read no
    interaction feature (which states the signal outright)."""
    spec = FixtureSpec(requests_per_window=400, n_categories=6, recent=8)
    fixture = write_ranking_fixture(tmp_path / "data", spec=spec, seed=1)
    _, dmt = train_example(fixture, tiny_config(interactions=False), tmp_path / "dmt", epochs=6, seed=1)
    _, flat = train_example(fixture, tiny_config(behaviors=[], interactions=False), tmp_path / "flat", epochs=6,
                            seed=1)
    print(f"held-out click AUC: DMT {dmt['eval_auc_click']:.3f}, without sequences {flat['eval_auc_click']:.3f}")
    assert dmt["eval_auc_click"] > 0.68
    assert dmt["eval_auc_click"] - flat["eval_auc_click"] > 0.06
