"""``t4r-dmt train``: train a preset on window t, evaluate on t+1, for every window of a preprocessed folder.

The preset's ``family`` (:mod:`t4r_dmt.presets`) picks the runner: the T4R Trainer loop
(:mod:`t4r_dmt.training.runner`) for ``dmt``, ``baseline`` and ``next_item``, the LightGBM refit
(:mod:`t4r_dmt.baselines.ranking.gbdt`) for ``gbdt``. Every runner walks the windows with
:func:`t4r_dmt.windows.run_windows` and writes the same run folder.

Example::

    t4r-dmt train --data runs/demo/data --config dmt --out runs/demo/dmt --windows 1:4 \\
        --per_device_train_batch_size 256 --learning_rate 1e-3 --seed 42
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from t4r_dmt.baselines.ranking.gbdt import GBDTConfig
from t4r_dmt.baselines.ranking.gbdt import run as run_gbdt
from t4r_dmt.presets import Preset, load_preset, preset_names
from t4r_dmt.run_folder import load_schema
from t4r_dmt.training.arguments import DataArguments, RunTrainingArguments
from t4r_dmt.training.runner import run as run_t4r
from t4r_dmt.windows import list_windows, select_windows

ARGUMENTS = (DataArguments, RunTrainingArguments)

#: family -> the task its models solve.
FAMILY_TASKS: dict[str, str] = {"dmt": "ranking", "baseline": "ranking", "gbdt": "ranking", "next_item": "next-item"}


def load_task_preset(name_or_path: str, task: str) -> Preset:
    """:func:`load_preset`, with an unknown name's error listing the presets of ``task`` only."""
    path = Path(name_or_path)
    if path.suffix != ".json" and not path.is_file():
        choices = preset_names(*(family for family, t in FAMILY_TASKS.items() if t == task))
        if name_or_path not in choices:
            raise ValueError(f"unknown preset {name_or_path!r} for --task {task}; choose one of "
                             f"{', '.join(choices)} or a .json file")
    return load_preset(name_or_path)


def run(data_args: DataArguments, training_args: RunTrainingArguments, config: Preset | None = None,
        on_window: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """Load ``data_args.config`` (or take ``config``, already loaded) and hand it to its family's runner; returns
    ``{"run_dir", "average", "windows"}``. ``on_window(record)`` is called after each window (see the runners)."""
    config = load_task_preset(data_args.config, data_args.task) if config is None else config
    task = FAMILY_TASKS[config.family]
    if task != data_args.task:
        raise ValueError(f"--config {data_args.config} is a {config.family} preset ({task}); "
                         f"it cannot run with --task {data_args.task}")
    if training_args.early_stopping_tail > 0 and config.family not in ("dmt", "baseline"):
        raise ValueError(f"--early_stopping_tail chooses the epochs of the dmt and baseline presets; "
                         f"--config {data_args.config} is a {config.family} preset")
    if training_args.replay_windows > 0 and config.family == "gbdt":
        raise ValueError(f"--replay_windows adds earlier windows to a neural model's training rows; the gbdt preset "
                         f"--config {data_args.config} chooses its windows with train_windows (\"all\" or \"current\")")
    if config.family == "next_item" and training_args.warmup_ratio > 0 and training_args.warmup_steps == 0:
        raise ValueError("--warmup_ratio is not applied by T4R's Trainer of the next-item models (T4R 23.12 reads "
                         "--warmup_steps only); give --warmup_steps")
    # Everything a run needs is checked before --out is created: the preset (above), the data, the windows.
    load_schema(data_args.task_dir)
    select_windows(list_windows(data_args.task_dir), data_args.windows)
    if isinstance(config, GBDTConfig):
        return run_gbdt(data_args, config, seed=training_args.seed, on_window=on_window)
    return run_t4r(data_args, training_args, config, on_window)
