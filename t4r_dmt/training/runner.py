"""The runner of the T4R models (families dmt, baseline, next_item): T4R's Trainer over the time windows.

``t4r-dmt train`` (:mod:`t4r_dmt.commands.train`) picks it by the preset's family. Example::

    t4r-dmt train --data runs/demo/data --config dmt --out runs/demo/dmt --windows 1:4 \
        --per_device_train_batch_size 256 --learning_rate 1e-3 --seed 42
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from t4r_dmt.fingerprint import FINGERPRINT_KEY, data_fingerprint
from t4r_dmt.io_utils import write_json
from t4r_dmt.model.config import DMTConfig
from t4r_dmt.model.next_item import NextItemConfig
from t4r_dmt.run_folder import load_schema, run_folder
from t4r_dmt.training.arguments import (
    DataArguments,
    RunTrainingArguments,
    resolve_recipe,
    resolve_weight_decay,
)
from t4r_dmt.training.loop import TimeWindowLoop, max_list_length, predict_frame, world

logger = logging.getLogger(__name__)


def run(data_args: DataArguments, training_args: RunTrainingArguments,
        config: DMTConfig | NextItemConfig, on_window: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """Train ``config`` and evaluate it over the windows; returns the averaged metrics and the run folder.

    ``on_window(record)`` is called with each window's record once it is written (``t4r-dmt tune`` reports and
    prunes there: an exception it raises ends the run)."""

    # Touching world_size sets up torch.distributed under torchrun (no-op for a single process).
    if training_args.world_size > 1 and data_args.task != "ranking":
        raise ValueError("data-parallel training (torchrun) supports --task ranking only")
    rank, _ = world()
    with run_folder(data_args, owner=rank == 0) as done:
        return _run(data_args, training_args, config, done, on_window)


def _run(data_args: DataArguments, training_args: RunTrainingArguments, config: DMTConfig | NextItemConfig,
         done: list[dict[str, Any]], on_window: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    from t4r_dmt.metrics.results import RunResults, plot_windows

    run_dir = Path(data_args.out)
    rank, world_size = world()
    if world_size > 1:
        import torch.distributed as dist

        shared: list[Any] = [done]
        dist.broadcast_object_list(shared, src=0)  # the other ranks wait until rank 0 has set the folder up
        done = shared[0]
    schema = load_schema(data_args.task_dir)
    if not training_args.output_dir:
        training_args.output_dir = str(run_dir / "trainer")
    if not training_args.logging_dir:  # TensorBoard: under the run, not ./runs/ in the working directory
        from transformers.training_args import default_logdir

        training_args.logging_dir = os.path.join(training_args.output_dir, default_logdir())
    if training_args.max_sequence_length is None:
        training_args.max_sequence_length = max_list_length(schema)
    # The preset's recipe, unless the run gave its own flags (recorded below as the run used it).
    if isinstance(config, DMTConfig):
        resolve_weight_decay(training_args, config.regularisation.weight_decay)
    else:
        resolve_recipe(training_args, config.recipe.training_arguments())

    from transformers import set_seed

    set_seed(training_args.seed)
    model_name, config_dict, model, evaluate = _build(config, schema)
    if rank == 0:
        write_json(run_dir / "config.json", {
            "model": model_name,
            "config": config_dict,
            "data": dataclasses.asdict(data_args),
            "training": {k: v for k, v in training_args.to_dict().items() if _jsonable(v)},
            "world_size": world_size,
            FINGERPRINT_KEY: data_fingerprint(data_args.data, data_args.task),
        })

    trainer = _trainer(data_args, model, training_args, schema)

    def on_window_end(records: list[dict[str, Any]]) -> None:
        RunResults(task=data_args.task, model=model_name, config=config_dict, windows=records).write(run_dir)
        if on_window is not None:
            on_window(records[-1])

    loop = TimeWindowLoop(trainer, data_args, training_args, evaluate, on_window_end)
    records = loop.run(done)
    results = RunResults(task=data_args.task, model=model_name, config=config_dict, windows=records)
    if rank == 0:
        results.write(run_dir)
        plot_windows(results, run_dir / "plots")
        logger.info("run finished: metrics in %s, plots in %s", run_dir / "metrics.json", run_dir / "plots")
    if world_size > 1:
        finish_distributed()
    return {"run_dir": str(run_dir), "average": results.average, "windows": records}


def finish_distributed() -> None:
    """Wait for every rank (rank 0 writes the results last), then tear the process group down. A rank that
    exits while gloo's threads still run aborts ("terminate called without an active exception"), which
    torchrun reports as a failed run even though every window finished."""
    import torch.distributed as dist

    dist.barrier()
    dist.destroy_process_group()


def _trainer(data_args: DataArguments, model: Any, training_args: RunTrainingArguments, schema: Any) -> Any:
    """T4R's Trainer for the task (DMT's subclass for ranking: flat metric names, refuses empty files)."""
    if data_args.task == "ranking":
        from t4r_dmt.model import DMTTrainer

        # The model reads at most its longest behaviour sequence: pad no further than that.
        training_args.max_sequence_length = min(training_args.max_sequence_length or model.max_sequence_length,
                                                model.max_sequence_length)
        trainer = DMTTrainer(model=model, args=training_args, schema=schema, compute_metrics=False)
    else:
        import transformers4rec.torch as tr

        trainer = tr.Trainer(model=model, args=training_args, schema=schema, compute_metrics=False)
    # T4R would shard its loaders by the *local* rank (wrong across machines); the loop shards by global rank
    # and hands each rank its own file, so the loaders must read all of it.
    trainer.local_rank = trainer.global_size = None
    return trainer


def _build(config: DMTConfig | NextItemConfig, schema: Any) -> tuple[str, dict[str, Any], Any, Any]:
    """(preset name, config dict, model, evaluate function) of ``config``."""
    if isinstance(config, DMTConfig):
        from t4r_dmt.model import build_model

        return config.name, config.to_dict(), build_model(schema, config), evaluate_ranking
    from t4r_dmt.model.next_item import build_next_item_model
    from t4r_dmt.training.next_item import evaluate_next_item

    return config.name, config.to_dict(), build_next_item_model(schema, config), evaluate_next_item


def evaluate_ranking(trainer: Any, eval_path: Path) -> tuple[int, dict[str, float]]:
    """Window-level ranking metrics (DESIGN.md names) of the trainer's model on ``eval_path``."""
    from t4r_dmt.metrics.ranking import ranking_metrics

    frame = predict_frame(trainer, eval_path)
    return len(frame), ranking_metrics(frame)


def _jsonable(value: Any) -> bool:
    return value is None or isinstance(value, (str, int, float, bool, list, dict))
