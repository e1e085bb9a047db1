"""``t4r-dmt tune``: an Optuna study over a preset's ``search_space`` on tuning windows; the best trial is a preset.

Each trial is a ``t4r-dmt train`` run of the preset with the trial's values, over ``--windows`` (choose windows
that *precede* the ones you report: tuning on the evaluation windows makes every later comparison a lie). The
objective is the mean, over the trial's windows, of the window metrics ``--objective`` names (comma-separated,
averaged; a metric that is NaN, such as ``auc_order`` on a log without orders, is skipped); by default
``auc_click,auc_order`` for ``--task ranking`` and ``ndcg@20`` for ``--task next-item`` (whose presets' spaces
also hold their training recipe: ``recipe.learning_rate``, ``recipe.weight_decay``, ...). Trial 0 runs the
preset's own values (``--start_from_preset``), then TPE samples (``--sampler_seed``); after each window the
running objective is reported, and the median pruner stops a trial whose running value is below the median of
earlier trials at the same window (``--pruner none`` to switch off).

Writes into ``--out`` (a new folder): ``{preset}_tuned.json`` (the preset with the best values and the name
``{preset}_tuned``: ``t4r-dmt train --config OUT/dmt_tuned.json``), ``study.json`` (summary: best value and
parameters, the preset's own value ``start_value``, trial counts, settings), ``trials.csv`` (one row per trial)
and ``optimization_history.png``.

Example::

    t4r-dmt tune --data runs/demo/data --config dmt --windows 1:3 --trials 20 --out runs/tune_dmt
    t4r-dmt tune --data DIR --task next-item --config xlnet_mlm --windows 1:3 --eval_split valid --trials 8 \
        --out runs/tune_xlnet_mlm
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import math
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from t4r_dmt.commands.train import load_task_preset
from t4r_dmt.commands.train import run as run_train
from t4r_dmt.io_utils import atomic_path, write_json
from t4r_dmt.presets import Preset
from t4r_dmt.search_space import Dimension, apply_params, parse_space, start_params, tunable_fields
from t4r_dmt.training.arguments import DataArguments, RunTrainingArguments

LOG = logging.getLogger(__name__)
PRUNERS = ("median", "none")
#: ``--objective`` when none is given, per ``--task``.
DEFAULT_OBJECTIVES: dict[str, str] = {"ranking": "auc_click,auc_order", "next-item": "ndcg@20"}


@dataclass
class TuneArguments:
    """The study: budget, objective, sampler and pruner."""

    trials: int = field(default=20, metadata={"help": "Trials (training runs over --windows) in the study."})
    objective: str = field(
        default="",
        metadata={"help": "Window metrics averaged into the objective (maximised), comma-separated; default: "
                          f"{DEFAULT_OBJECTIVES}[--task]."},
    )
    sampler_seed: int = field(default=0, metadata={"help": "Seed of the TPE sampler."})
    pruner: str = field(default="median", metadata={"help": f"One of {PRUNERS}."})
    timeout_s: float = field(default=0.0, metadata={"help": "Stop starting trials after this many seconds (0: none)."})
    start_from_preset: bool = field(
        default=True,
        metadata={"help": "Run the preset's own values first (trial 0; clipped into the space), so the best trial "
                          "is never worse than the preset on the tuning windows; false: every trial sampled."},
    )

    def __post_init__(self) -> None:
        if self.trials < 1:
            raise ValueError(f"--trials must be >= 1, got {self.trials}")
        if self.pruner not in PRUNERS:
            raise ValueError(f"--pruner must be one of {PRUNERS}, got {self.pruner!r}")
        if self.timeout_s < 0:
            raise ValueError(f"--timeout_s must be >= 0, got {self.timeout_s}")
        if self.objective.strip() and not self.metrics:
            raise ValueError("--objective names no metric")

    @property
    def metrics(self) -> list[str]:
        return [m.strip() for m in self.objective.split(",") if m.strip()]


ARGUMENTS = (DataArguments, RunTrainingArguments, TuneArguments)


def objective_value(record: dict[str, Any], metrics: list[str]) -> float:
    """Mean of ``record[m]`` over ``metrics`` that are present and not NaN; NaN if none is."""
    values = [float(record[m]) for m in metrics if m in record and not math.isnan(float(record[m]))]
    return sum(values) / len(values) if values else math.nan


def run(data_args: DataArguments, training_args: RunTrainingArguments, tune_args: TuneArguments) -> dict[str, Any]:
    """Run the study; returns the summary written to ``OUT/study.json``."""
    import optuna

    preset = load_task_preset(data_args.config, data_args.task)
    if not tune_args.objective.strip():
        tune_args.objective = DEFAULT_OBJECTIVES[data_args.task]
    dimensions = parse_space(getattr(preset, "search_space", {}), f"{preset.name} search_space")
    if not dimensions:
        raise ValueError(f"preset {preset.name!r} has no search_space to tune (see t4r_dmt/search_space.py)")
    out = Path(data_args.out)
    if out.exists():
        if not data_args.overwrite:
            raise FileExistsError(f"--out {out} exists; pass --overwrite to replace it")
        shutil.rmtree(out)
    base = tunable_fields(preset)
    study = optuna.create_study(
        study_name=f"{preset.name}_tuning",
        direction="maximize",
        sampler=optuna.samplers.TPESampler(seed=tune_args.sampler_seed),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=3) if tune_args.pruner == "median"
        else optuna.pruners.NopPruner(),
    )
    if tune_args.start_from_preset:
        study.enqueue_trial(start_params(base, dimensions))
    out.mkdir(parents=True)
    scratch = Path(tempfile.mkdtemp(prefix=".trials-", dir=out))

    def objective(trial: optuna.Trial) -> float:
        params = {d.path: _suggest(trial, d) for d in dimensions}
        config = _config(preset, apply_params(base, params))
        folder = scratch / f"trial_{trial.number:04d}"
        seen: list[float] = []

        def on_window(record: dict[str, Any]) -> None:
            seen.append(objective_value(record, tune_args.metrics))
            known = [v for v in seen if not math.isnan(v)]
            if known:
                trial.report(sum(known) / len(known), step=len(seen) - 1)
            if trial.should_prune():
                raise optuna.TrialPruned(f"window {record['eval_window']}: below the median of earlier trials")

        trial_data = dataclasses.replace(data_args, out=str(folder / "run"), resume=False, overwrite=False)
        trial_training = copy.deepcopy(training_args)
        trial_training.output_dir = str(folder / "trainer")
        trial_training.logging_dir = str(folder / "trainer" / "logs")
        try:
            result = run_train(trial_data, trial_training, config, on_window)
        finally:
            shutil.rmtree(folder, ignore_errors=True)  # checkpoints of every trial would fill the disk
        value = objective_value(result["average"], tune_args.metrics)
        if math.isnan(value):
            raise ValueError(f"objective {tune_args.objective!r} is NaN: the runs report none of those metrics")
        return value

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        study.optimize(objective, n_trials=tune_args.trials, timeout=tune_args.timeout_s or None,
                       show_progress_bar=True, gc_after_trial=True)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return _write(out, study, preset, base, dimensions, data_args, tune_args)


def collect(summary: dict[str, Any], study_dir: Path, tuned: Path) -> Path:
    """Copy a finished study's tuned preset, ``study.json`` and history plot from ``study_dir`` into the flat
    folder ``tuned`` (``{preset}_tuned.json``, ``{preset}_study.json``, ``{preset}_optimization_history.png``), the
    layout ``benchmarks/paper_table.py --tuned`` and ``benchmarks/t4r_paper.py --tuned`` read; returns the preset."""
    tuned.mkdir(parents=True, exist_ok=True)
    preset = str(summary["preset"])
    target = tuned / f"{preset}_tuned.json"
    shutil.copy2(summary["tuned_preset"], target)
    shutil.copy2(study_dir / "study.json", tuned / f"{preset}_study.json")
    shutil.copy2(study_dir / "optimization_history.png", tuned / f"{preset}_optimization_history.png")
    return target


def _suggest(trial: Any, dimension: Dimension) -> Any:
    if dimension.kind == "categorical":
        return trial.suggest_categorical(dimension.path, list(dimension.choices))
    assert dimension.low is not None and dimension.high is not None
    if dimension.kind == "int":
        return trial.suggest_int(dimension.path, int(dimension.low), int(dimension.high),
                                 step=int(dimension.step or 1), log=dimension.log)
    return trial.suggest_float(dimension.path, dimension.low, dimension.high, step=dimension.step, log=dimension.log)


def _config(preset: Preset, data: dict[str, Any]) -> Preset:
    """The preset's class built from ``data`` (validated like a preset file)."""
    return type(preset).from_dict(data)


def _write(out: Path, study: Any, preset: Preset, base: dict[str, Any], dimensions: list[Dimension],
           data_args: DataArguments, tune_args: TuneArguments) -> dict[str, Any]:
    import optuna

    states = [t.state for t in study.trials]
    complete = states.count(optuna.trial.TrialState.COMPLETE)
    summary: dict[str, Any] = {
        "preset": preset.name,
        "data": data_args.data,
        "windows": data_args.windows or "all",
        "objective": tune_args.metrics,
        "trials": len(study.trials),
        "complete": complete,
        "pruned": states.count(optuna.trial.TrialState.PRUNED),
        "search_space": {d.path: dataclasses.asdict(d) for d in dimensions},
        "sampler_seed": tune_args.sampler_seed,
    }
    if complete == 0:
        write_json(out / "study.json", summary)
        raise ValueError(f"no trial of {preset.name!r} completed; see {out / 'study.json'}")
    best = study.best_trial
    tuned = apply_params(base, best.params)
    tuned["name"] = f"{preset.name}_tuned"
    _config(preset, tuned)  # the written preset loads
    write_json(out / f"{preset.name}_tuned.json", tuned)
    first = study.trials[0]
    # The preset's own value (trial 0 with --start_from_preset): what the study gained over it.
    start_value = first.value if tune_args.start_from_preset and first.state == optuna.trial.TrialState.COMPLETE \
        else None
    summary.update(best_value=best.value, best_params=best.params, best_trial=best.number, start_value=start_value,
                   tuned_preset=str(out / f"{preset.name}_tuned.json"))
    write_json(out / "study.json", summary)
    with atomic_path(out / "trials.csv") as tmp:
        study.trials_dataframe().to_csv(tmp, index=False)
    _plot(study, out / "optimization_history.png")
    LOG.info("tune %s: best %s = %.4f (trial %d of %d, %d pruned); preset %s", preset.name, tune_args.objective,
             best.value, best.number, len(study.trials), summary["pruned"], summary["tuned_preset"])
    return summary


def _plot(study: Any, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from optuna.visualization.matplotlib import plot_optimization_history

    figure = plot_optimization_history(study).get_figure(root=True)
    assert figure is not None
    with atomic_path(path) as tmp:
        figure.savefig(tmp, dpi=110, bbox_inches="tight", format="png")
    plt.close(figure)
