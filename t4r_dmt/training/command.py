"""``t4r-dmt train``: the incremental time-window loop over preprocessed windows.

Example::

    t4r-dmt train --data runs/demo/data --config dmt --out runs/demo/dmt --windows 1:4 \
        --per_device_train_batch_size 256 --learning_rate 1e-3 --seed 42

The arguments (preset, data folder, windows) are checked before ``--out`` is created; the run then holds
the exclusive claim on ``--out`` (:mod:`t4r_dmt.output_lock`), and a run that fails before it has saved a
checkpoint or a metric removes what it created, so the corrected command can simply be run again.
Everything the run writes, TensorBoard logs included, goes under ``--out``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from merlin.schema.io.tensorflow_metadata import TensorflowMetadata

from t4r_dmt.io_utils import write_json
from t4r_dmt.output_lock import claim_output
from t4r_dmt.training.arguments import DataArguments, RunTrainingArguments
from t4r_dmt.training.fingerprint import FINGERPRINT_KEY, data_fingerprint
from t4r_dmt.training.loop import TimeWindowLoop, max_list_length, predict_frame, world
from t4r_dmt.training.windows import list_windows, select_windows

logger = logging.getLogger(__name__)

ARGUMENTS = (DataArguments, RunTrainingArguments)

# Ranking model families that are not T4R models run their own window loop over the same files and metrics:
# family -> module whose ``run(data_args, training_args) -> dict`` returns what ``run`` below returns. A config
# (preset name or JSON file) belongs to a family when its name is the family's or starts with "<family>_".
EXTERNAL_FAMILIES: dict[str, str] = {"gbdt": "t4r_dmt.baselines.ranking.gbdt"}


def external_loop(config: str) -> str | None:
    """The module that trains ``config`` when it is not a T4R model (``gbdt``, ``gbdt_no_history``,
    ``path/gbdt_x.json``), else None."""
    stem = Path(config).stem
    return next((module for family, module in EXTERNAL_FAMILIES.items()
                 if stem == family or stem.startswith(f"{family}_")), None)


def load_schema(task_dir: Path) -> Any:
    """Read ``task_dir/schema.pbtxt`` into a Merlin schema."""
    if not (task_dir / "schema.pbtxt").exists():
        raise FileNotFoundError(f"{task_dir / 'schema.pbtxt'} is missing: run `t4r-dmt preprocess` first")
    return TensorflowMetadata.from_proto_text_file(str(task_dir)).to_merlin_schema()


def prepare_run_dir(data_args: DataArguments) -> list[dict[str, Any]]:
    """Create the run folder; return the window records already finished (with ``--resume``)."""
    from t4r_dmt.training.results import RunResults

    run_dir = Path(data_args.out)
    exists = run_dir.exists() and any(run_dir.iterdir())
    if data_args.resume:
        if not (run_dir / "metrics.json").exists():
            logger.info("--resume: %s has no finished window yet; starting from the first", run_dir)
            return []
        return list(RunResults.load(run_dir).windows)
    if exists and not data_args.overwrite:
        raise FileExistsError(f"run folder {run_dir} already exists; pass --overwrite or --resume")
    if exists:
        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)  # an existing empty folder is used as it is
    return []


def check_arguments(data_args: DataArguments) -> None:
    """Check what a run needs before anything is written: the config (a preset or a JSON file, parsed),
    the data folder (the task's schema) and the ``--windows`` range (against the window folders).

    Raises
    ------
    ValueError, FileNotFoundError
        Naming the bad argument (an unknown preset lists every preset of the task).
    """
    load_run_config(data_args)
    load_schema(data_args.task_dir)
    select_windows(list_windows(data_args.task_dir), data_args.windows)


def preset_names(task: str) -> list[str]:
    """Every preset of ``task`` (``configs/*.json``; next-item presets say ``"task": "next-item"``)."""
    from t4r_dmt.model.config import CONFIG_DIR

    names = []
    for path in sorted(CONFIG_DIR.glob("*.json")):
        with contextlib.suppress(ValueError, OSError):
            if (json.loads(path.read_text()).get("task", "ranking") == "next-item") == (task == "next-item"):
                names.append(path.stem)
    return names


def load_run_config(data_args: DataArguments) -> Any:
    """The parsed config of ``--config``: DMTConfig, GBDTConfig or NextItemConfig, by task and family."""
    path = Path(data_args.config)
    if not path.is_file():
        if path.suffix == ".json" or os.sep in data_args.config:
            raise FileNotFoundError(f"config file {path} does not exist")
        if data_args.config not in preset_names(data_args.task):
            raise ValueError(f"unknown preset {data_args.config!r} for --task {data_args.task}; choose one of "
                             f"{', '.join(preset_names(data_args.task))} or a .json file")
    if data_args.task != "ranking":
        from t4r_dmt.training.next_item import NextItemConfig

        return NextItemConfig.load(data_args.config)
    if external_loop(data_args.config) is not None:
        from t4r_dmt.baselines.ranking.gbdt import load_gbdt_config

        return load_gbdt_config(data_args)
    from t4r_dmt.model import load_config

    return load_config(data_args.config)


@contextlib.contextmanager
def run_folder(data_args: DataArguments, owner: bool = True) -> Iterator[list[dict[str, Any]]]:
    """Claim ``--out`` and set it up (:func:`prepare_run_dir`, whose finished windows it yields) for the
    duration of a run.

    If the block fails before the run saved a checkpoint or a metric, what the run created is removed (a
    folder that existed empty is left empty), so the corrected command can be run again as it is. Only
    the ``owner`` process (rank 0 under torchrun) claims and prepares; the others yield nothing.
    """
    if not owner:
        yield []
        return
    run_dir = Path(data_args.out)
    with claim_output(run_dir):
        existed = run_dir.is_dir()
        done = prepare_run_dir(data_args)
        try:
            yield done
        except BaseException:
            if not has_results(run_dir):
                shutil.rmtree(run_dir, ignore_errors=True)
                if existed:
                    run_dir.mkdir()
                logger.info("the run failed before saving anything: %s is as it was", run_dir)
            raise


def has_results(run_dir: Path) -> bool:
    """True once a run folder holds a checkpoint or metrics (something a failure must not delete)."""
    return (run_dir / "metrics.json").exists() or any((run_dir / "checkpoints").glob("window_*/model.pt"))


def run(data_args: DataArguments, training_args: RunTrainingArguments) -> dict[str, Any]:
    """Train and evaluate over the windows; returns the averaged metrics and the run folder."""
    check_arguments(data_args)
    external = external_loop(data_args.config) if data_args.task == "ranking" else None
    if external is not None:
        import importlib

        with run_folder(data_args):
            return dict(importlib.import_module(external).run(data_args, training_args))
    # Touching world_size sets up torch.distributed under torchrun (no-op for a single process).
    if training_args.world_size > 1 and data_args.task != "ranking":
        raise ValueError("data-parallel training (torchrun) supports --task ranking only")
    rank, _ = world()
    with run_folder(data_args, owner=rank == 0) as done:
        return _run(data_args, training_args, done)


def _run(data_args: DataArguments, training_args: RunTrainingArguments, done: list[dict[str, Any]]
         ) -> dict[str, Any]:
    from t4r_dmt.training.results import RunResults, plot_windows

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

    from transformers import set_seed

    set_seed(training_args.seed)
    model_name, config_dict, model, evaluate = _build(data_args, schema)
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


def _build(data_args: DataArguments, schema: Any) -> tuple[str, dict[str, Any], Any, Any]:
    """(preset name, config dict, model, evaluate function) for the run's task."""
    if data_args.task == "ranking":
        from t4r_dmt.model import build_model, load_config

        config = load_config(data_args.config)
        return Path(data_args.config).stem, config.to_dict(), build_model(schema, config), evaluate_ranking
    from t4r_dmt.training.next_item import NextItemConfig, build_next_item_model, evaluate_next_item

    nconfig = NextItemConfig.load(data_args.config)
    return nconfig.name, nconfig.to_dict(), build_next_item_model(schema, nconfig), evaluate_next_item


def evaluate_ranking(trainer: Any, eval_path: Path) -> tuple[int, dict[str, float]]:
    """Window-level ranking metrics (DESIGN.md names) of the trainer's model on ``eval_path``."""
    from t4r_dmt.metrics.ranking import ranking_metrics

    frame = predict_frame(trainer, eval_path)
    return len(frame), ranking_metrics(frame)


def _jsonable(value: Any) -> bool:
    return value is None or isinstance(value, (str, int, float, bool, list, dict))
