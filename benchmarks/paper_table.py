"""The DMT paper's comparison on your data: Table 1 (baselines), Table 4 (behaviours, multi-task) and
Table 5 (bias features), plus the bias validation on synthetic data.

Usage::

    python benchmarks/paper_table.py [--data DIR] [--seeds 5] [--ablation_seeds N] [--presets gbdt dnn ...]
                                     [--quick] [--epochs 1] [--out benchmarks/results/paper_table] [--work DIR]
                                     [--jobs N] [--behaviors click ...] [--windows A:B]
                                     [--synth policy=promotion ...] [--preprocess ctr_position_debias=true ...]

Writes ``OUT/paper_table.md`` and ``OUT/paper_table.json``.

Without ``--data`` every seed generates its own synthetic data set (``t4r-dmt synth --seed S``, the
defaults of ``benchmarks/presets.py``) and preprocesses it; with ``--data`` (the output of
``t4r-dmt preprocess``) every seed trains on that same data with another model seed. Every preset runs the
incremental window loop of ``t4r-dmt train`` over all windows; a table cell is the mean ± std over seeds of
the run's window-averaged metric. RelaImpr is the paper's: ``((AUC(model) - 0.5) / (AUC(DNN) - 0.5) - 1)``
in percent, per seed (against DNN's run of the same seed), then averaged. Data without orders (Trivago)
reports the click task only (order cells read "n/a").

Table 1 and the GBDT ablation run ``--seeds`` seeds; the DMT ablations (behaviours, multi-task, bias) run the
first ``--ablation_seeds`` of them (default: all), after every Table 1 run. The GBDT ablation isolates why
GBDT leads on our data: ``gbdt`` refits each window on every window so far and reads target-in-history
counts; ``gbdt_current_window`` fits on window t only (the rows a neural model sees in its window),
``gbdt_no_history`` drops the target-in-history aggregates, ``gbdt_current_no_history`` both.

On synthetic data, runs whose truth/ is known add the bias validation (``t4r_dmt.analysis``): Spearman and
max |log ratio| of the bias tower's per-position curve against the planted one, NDCG@10 of the served score
against the planted click relevance and, on ``--synth policy=promotion`` data, the over-rating of the
promoted items. ``--synth KEY=VALUE ...`` passes further ``t4r-dmt synth`` arguments to every seed's data, ``--preprocess
KEY=VALUE ...`` further ``t4r-dmt preprocess`` arguments.

Prints the markdown of every table.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import math
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from t4r_dmt.io_utils import atomic_path, write_json
from t4r_dmt.metrics.seeds import mean_std, relaimpr

TABLE1 = ("gbdt", "dnn", "din", "dien", "dmt_trans", "dmt")
GBDT_VARIANTS = ("gbdt_current_window", "gbdt_no_history", "gbdt_current_no_history")  # presets in t4r_dmt/configs/
GBDT_ABLATION = ("gbdt", *GBDT_VARIANTS, "dnn", "dmt")
BEHAVIOUR_ABLATION = ("dmt_click", "dmt_click_cart", "dmt")
MULTITASK_ABLATION = ("dmt_single_task", "dmt_shared_bottom", "dmt")
BIAS_ABLATION = ("dmt_no_bias", "dmt_bias_position", "dmt_bias_page", "dmt_bias_neighbors", "dmt_bias_paper",
                 "dmt_bias_additive", "dmt_bias_multiplicative", "dmt_bias_monotone", "dmt")
ALL_PRESETS = tuple(dict.fromkeys(TABLE1 + GBDT_ABLATION + BEHAVIOUR_ABLATION + MULTITASK_ABLATION
                                   + BIAS_ABLATION))
FULL_SEED_PRESETS = frozenset(TABLE1 + GBDT_ABLATION)
"""Presets run over every seed; the others over the first ``ablation_seeds``."""
TABLES: dict[str, tuple[str, tuple[str, ...]]] = {
    "table1": ("Table 1: baselines", TABLE1),
    "gbdt": ("GBDT ablation: training windows and target-in-history features", GBDT_ABLATION),
    "behaviors": ("Table 4a: behaviour sequences", BEHAVIOUR_ABLATION),
    "multitask": ("Table 4b: multi-task learning", MULTITASK_ABLATION),
    "bias": ("Table 5: bias features", BIAS_ABLATION),
}
LABELS = {"gbdt": "GBDT", "dnn": "DNN", "din": "DIN", "dien": "DIEN", "dmt_trans": "DMT_trans", "dmt": "DMT",
          "dmt_click": "click", "dmt_click_cart": "click + cart", "dmt_single_task": "no MTL",
          "dmt_shared_bottom": "shared bottom", "dmt_no_bias": "none", "dmt_bias_position": "position index",
          "dmt_bias_page": "position page", "dmt_bias_neighbors": "neighbours",
          "dmt_bias_additive": "additive, scalar per position / page",
          "dmt_bias_multiplicative": "multiplicative (PAL), scalar per position / page",
          "dmt_bias_monotone": "multiplicative (PAL), monotone curve over positions",
          "dmt_bias_paper": "all: the paper's MLP tower",
          "gbdt_current_window": "GBDT, window t only", "gbdt_no_history": "GBDT, no target-in-history",
          "gbdt_current_no_history": "GBDT, window t only, no target-in-history"}
TABLE_LABELS = {"gbdt": {"gbdt": "GBDT (windows 1..t, target-in-history)"},
                "behaviors": {"dmt": "click + cart + order (DMT)"},
                "multitask": {"dmt": "MMoE (DMT)"},
                "bias": {"dmt": "DMT: {form} {kind} per position / page, observation dropout {observation_dropout}"}}
METRICS = ("auc_click", "auc_order", "ndcg@10")
RESULTS = Path(__file__).resolve().parent / "results" / "paper_table"
SYNTH_DEFAULT = {"users": 2000, "items": 1000, "days": 4, "requests_per_day": 1500}
SYNTH_QUICK = {"users": 150, "items": 80, "days": 3, "requests_per_day": 60}

logger = logging.getLogger("paper_table")


def _prepare_synthetic(root: Path, seed: int, size: dict[str, Any],
                       preprocessing: dict[str, Any] | None = None) -> tuple[Path, Path]:
    from t4r_dmt.preprocess.arguments import PreprocessArguments
    from t4r_dmt.preprocess.command import run as preprocess
    from t4r_dmt.synth.command import SynthArguments
    from t4r_dmt.synth.command import run as synth

    raw, data = root / "raw", root / "data"
    if not (data / "ranking" / "schema.pbtxt").exists():
        synth(SynthArguments(out=str(raw), seed=seed, overwrite=True, **size))
        preprocess(PreprocessArguments(events=str(raw / "events.parquet"),
                                       impressions=str(raw / "impressions.parquet"),
                                       items=str(raw / "items.parquet"), out=str(data), with_sessions=False,
                                       overwrite=True, **(preprocessing or {})))
    return data, raw / "truth"


def restrict_behaviors(data: Path, behaviors: tuple[str, ...], presets: tuple[str, ...],
                       work: Path) -> tuple[Path, dict[str, str]]:
    """A view of ``data`` whose schema keeps only the sequences of ``behaviors`` and one config per preset
    that reads only those (data without carts or orders, like Trivago's, has all-empty lists there, which
    the merlin loader cannot batch). Returns (data view, preset -> config path or name)."""
    from merlin.schema.io.tensorflow_metadata import TensorflowMetadata

    from t4r_dmt.model.config import DMTConfig
    from t4r_dmt.presets import load_preset
    from t4r_dmt.run_folder import load_schema
    from t4r_dmt.schema import BEHAVIORS

    unknown = sorted(set(behaviors) - set(BEHAVIORS))
    if not behaviors or unknown:
        raise ValueError(f"--behaviors must name some of {BEHAVIORS}; got {list(behaviors)}")
    view = work / "data_view" / "ranking"
    view.mkdir(parents=True, exist_ok=True)
    schema = load_schema(data / "ranking")
    dropped = [c.name for c in schema if c.name.endswith("_seq")
               and any(c.name.startswith(f"{b}_") for b in BEHAVIORS if b not in behaviors)]
    for folder in sorted((data / "ranking").iterdir()):
        if folder.is_dir() and not (view / folder.name).exists():
            _copy_window(folder, view / folder.name, dropped)
    TensorflowMetadata.from_merlin_schema(schema.excluding_by_name(dropped)).to_proto_text_file(str(view))
    configs: dict[str, str] = {}
    for preset in presets:
        config = load_preset(preset)
        if not isinstance(config, DMTConfig):  # GBDT reads no sequence
            configs[preset] = preset
            continue
        config.behaviors = [b for b in config.behaviors if b in behaviors]
        path = work / "configs" / f"{preset}.json"
        write_json(path, config.to_dict())
        configs[preset] = str(path)
    return view.parent, configs


def _copy_window(source: Path, target: Path, dropped: list[str]) -> None:
    """Copy one window folder without the ``dropped`` columns (empty lists stay empty: the training loop
    pads them for the merlin loader, ``t4r_dmt.compat.merlin_loader.loader_file``)."""
    import pyarrow.parquet as pq

    target.mkdir(parents=True)
    for path in sorted(source.glob("*.parquet")):
        table = pq.read_table(path)
        with atomic_path(target / path.name) as tmp:
            pq.write_table(table.drop([c for c in dropped if c in table.column_names]), tmp)


def _train(data: Path, run_dir: Path, preset: str, seed: int, epochs: float,
           windows: str = "", recipe: Recipe | None = None) -> dict[str, float]:
    from t4r_dmt.commands.train import run as train
    from t4r_dmt.metrics.results import RunResults
    from t4r_dmt.training.arguments import DataArguments, RunTrainingArguments

    recipe = recipe or Recipe()
    if not ((run_dir / "metrics.json").exists() and (run_dir / "done").exists()):  # else: finished earlier
        train(DataArguments(data=str(data), out=str(run_dir), config=preset, overwrite=True, windows=windows),
              RunTrainingArguments(output_dir=str(run_dir / "trainer"), seed=seed, report_to=[], disable_tqdm=True,
                                   **recipe.training(preset, epochs)))
        (run_dir / "done").touch()
    results = RunResults.load(run_dir)
    if not recipe.report_after:
        return dict(results.average)
    reported = [w for w in results.windows if int(w["eval_window"]) > recipe.report_after]
    if not reported:
        raise ValueError(f"--report_after {recipe.report_after}: no evaluation window after it in {run_dir}")
    keys = [k for k, v in reported[0].items() if isinstance(v, float)]
    return {k: float(np.nanmean([float(w.get(k, math.nan)) for w in reported])) for k in keys}


@dataclass(frozen=True)
class Recipe:
    """How every neural run trains and what is reported: ``early_stopping_tail`` > 0 picks each window's epochs
    (up to ``max_epochs``) on that share of the training window; ``replay_windows`` K > 0 trains window t on
    windows t-K..t (GBDT refits on its ``train_windows`` and ignores both); ``carry_optimizer`` carries the AdamW
    state from window to window; ``early_stopping_metric`` is what the tail scores (``click`` or ``click_order``),
    ``early_stopping_with_bias`` whether with the bias tower's term;
    ``report_after`` W > 0 averages the evaluation windows after W only (the windows
    up to W were used for tuning)."""

    early_stopping_tail: float = 0.0
    max_epochs: int = 4
    report_after: int = 0
    replay_windows: int = 0
    carry_optimizer: bool = False
    early_stopping_metric: str = "click"
    early_stopping_with_bias: bool = False

    def training(self, preset: str, epochs: float) -> dict[str, Any]:
        """The ``RunTrainingArguments`` of a run of ``preset`` that the recipe sets: a neural preset (families
        ``dmt`` and ``baseline``) with a tail chooses up to ``max_epochs`` and replays; GBDT trains ``epochs``."""
        from t4r_dmt.presets import load_preset

        neural = load_preset(preset).family in ("dmt", "baseline")
        tail = self.early_stopping_tail if neural else 0.0
        return {"early_stopping_tail": tail, "num_train_epochs": self.max_epochs if tail > 0 else epochs,
                "replay_windows": self.replay_windows if neural else 0,
                "carry_optimizer": self.carry_optimizer and neural, "early_stopping_metric": self.early_stopping_metric,
                "early_stopping_with_bias": self.early_stopping_with_bias and neural}


def _one_run(job: tuple[Path, Path | None, Path, str, int, float, str, str, Recipe]) -> dict[str, float]:
    """Train one (preset, seed) and, with a truth folder, validate it: the record of one table cell."""
    from t4r_dmt.analysis import validate_run
    from t4r_dmt.presets import load_preset

    data, truth, run_dir, preset, seed, epochs, config, windows, recipe = job
    cached = run_dir / "record.json"
    if cached.exists():  # finished by an earlier call with the same --work
        return {k: (math.nan if v is None else float(v)) for k, v in json.loads(cached.read_text()).items()}
    start = time.perf_counter()
    record = {k: float(v) for k, v in _train(data, run_dir, config, seed, epochs, windows, recipe).items()}
    record["seconds"] = time.perf_counter() - start
    if truth is not None and load_preset(preset).family != "gbdt":
        check = validate_run(run_dir, data, truth)
        record["spearman"] = check.spearman
        record["max_log_ratio"] = check.max_log_ratio
        record["relevance_ndcg@10"] = check.relevance_ndcg
        record["relevance_auc"] = check.relevance_auc
        record["promoted_overrating@10"] = check.promoted_overrating
    write_json(cached, {k: (None if math.isnan(v) else v) for k, v in record.items()})
    logger.info("seed %d %s: %s", seed, preset, {k: round(v, 4) for k, v in record.items()})
    return record


def _use_threads(threads: int) -> None:
    """Pool initializer: a worker computes on ``threads`` threads (torch's intra-op pool and OpenMP)."""
    import torch

    os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = str(threads)
    torch.set_num_threads(threads)


def run_jobs(jobs: list[tuple[Any, ...]], n_jobs: int,
             work: Callable[[Any], dict[str, float]] | None = None) -> list[dict[str, float]]:
    """``work`` (default ``_one_run``) of every job, in order, on ``n_jobs`` processes (spawned) sharing the
    cores: each gets ``cpu_count // n_jobs`` threads. Left at torch's default, every process would start a
    thread per core; two jobs on two cores then ran about 8x slower than with one thread each (one 4x-data run,
    measured). ``work`` must be a module-level function (the workers import it)."""
    work = work or _one_run
    if n_jobs <= 1:
        return [work(job) for job in jobs]
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    threads = max(1, (os.cpu_count() or 1) // n_jobs)
    with ProcessPoolExecutor(n_jobs, mp_context=multiprocessing.get_context("spawn"), initializer=_use_threads,
                             initargs=(threads,)) as pool:
        return list(pool.map(work, jobs))


def run_benchmark(presets: tuple[str, ...] = ALL_PRESETS, seeds: int = 5, data: Path | None = None,
                  quick: bool = False, epochs: float = 1.0, out: Path = RESULTS,
                  work: Path | None = None, jobs: int = 1,
                  behaviors: tuple[str, ...] | None = None, ablation_seeds: int | None = None,
                  windows: str = "", recipe: Recipe | None = None, tuned: Path | None = None,
                  tune_trials: int = 0, tune_windows: str = "",
                  synth: dict[str, Any] | None = None,
                  preprocessing: dict[str, Any] | None = None) -> dict[str, Any]:
    """Train every preset for every seed (the DMT ablations for the first ``ablation_seeds``); write
    ``out/paper_table.json`` and ``.md``; return the JSON object. ``synth``: further ``t4r-dmt synth``
    arguments of the synthetic data (e.g. ``{"policy": "promotion"}``); ``preprocessing``: further
    ``t4r-dmt preprocess`` arguments of it (e.g. ``{"ctr_position_debias": True}``)."""
    from t4r_dmt.presets import preset_names

    unknown = [p for p in presets if p not in preset_names()]
    if unknown:
        raise ValueError(f"unknown preset(s) {unknown}; known: {', '.join(ALL_PRESETS)}")
    ablation_seeds = seeds if ablation_seeds is None else ablation_seeds
    if seeds < 1 or jobs < 1 or not 1 <= ablation_seeds <= seeds:
        raise ValueError(f"--seeds and --jobs must be >= 1 and --ablation_seeds in 1..seeds; got {seeds}, {jobs} "
                         f"and {ablation_seeds}")
    if (synth or preprocessing) and data is not None:
        raise ValueError("--synth / --preprocess describe the generated data; they cannot go with --data")
    if data is not None and not (Path(data) / "ranking" / "schema.pbtxt").exists():
        raise FileNotFoundError(f"{data}/ranking/schema.pbtxt is missing: pass the output of t4r-dmt preprocess")
    size = {**(SYNTH_QUICK if quick else SYNTH_DEFAULT), **(synth or {})}
    runs: dict[str, list[dict[str, float]]] = {p: [] for p in presets}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(work) if work is not None else Path(tmp)
        jobs_list = []
        configs = {p: p for p in presets}
        if data is not None and behaviors:
            data, configs = restrict_behaviors(Path(data), behaviors, presets, root)
        if tune_trials:  # equal budget: every preset gets the same trials on seed 0's tuning windows
            tuned = out / "tuned"
            first = _prepare_synthetic(root / "seed0", 0, size, preprocessing) if data is None else (Path(data), None)
            studies = [(first[0], configs[p], tune_trials, tune_windows, tuned, root / "tuning" / p, recipe or Recipe())
                       for p in presets if not (tuned / f"{p}_tuned.json").exists()]
            run_jobs(studies, jobs, _tune)
        if tuned is not None:
            configs = {p: str(tuned / f"{p}_tuned.json") if (tuned / f"{p}_tuned.json").exists() else c
                       for p, c in configs.items()}
        full = [p for p in presets if p in FULL_SEED_PRESETS]
        ablations = [p for p in presets if p not in FULL_SEED_PRESETS]
        # Every Table 1 run first (all seeds), then the ablations: a run cut short still has Table 1.
        order = [(seed, p) for seed in range(seeds) for p in full]
        order += [(seed, p) for seed in range(ablation_seeds) for p in ablations]
        seed_data: dict[int, tuple[Path, Path | None]] = {}
        for seed, preset in order:
            if seed not in seed_data:
                seed_data[seed] = (_prepare_synthetic(root / f"seed{seed}", seed, size, preprocessing) if data is None
                                   else (Path(data), None))
            path, truth = seed_data[seed]
            jobs_list.append((path, truth, root / f"seed{seed}" / "runs" / preset, preset, seed, epochs,
                              configs[preset], windows, recipe or Recipe()))
        records = run_jobs(jobs_list, jobs)
        for job, record in zip(jobs_list, records, strict=True):
            runs[job[3]].append({**record, "seed": job[4]})
    label = "synthetic quick" if quick else "synthetic"
    if synth or preprocessing:
        label += " (" + ", ".join(f"--{k} {v}" for k, v in {**(synth or {}), **(preprocessing or {})}.items()) + ")"
    result = summarise(runs, seeds=seeds, epochs=epochs, data=str(data) if data is not None else label)
    result["ablation_seeds"] = ablation_seeds
    result["recipe"] = dataclasses.asdict(recipe or Recipe())
    result["presets_used"] = configs
    if windows:
        result["windows"] = windows
    md = markdown(result)
    print(md)
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "paper_table.json", result)
    with atomic_path(out / "paper_table.md") as tmp_md:
        tmp_md.write_text(md + "\n")
    return result


def _tune(job: tuple[Path, str, int, str, Path, Path, Recipe]) -> dict[str, float]:
    """``t4r-dmt tune`` of one preset, each trial trained with the recipe of the reported runs (a neural
    preset chooses its epochs by early stopping there, so it does in its trials); its tuned preset, study and
    history plot land in ``tuned/``. Returns the best objective value and the number of trials."""
    from t4r_dmt.commands.tune import TuneArguments, collect
    from t4r_dmt.commands.tune import run as tune
    from t4r_dmt.training.arguments import DataArguments, RunTrainingArguments

    data, preset, trials, windows, tuned, work, recipe = job
    summary = tune(DataArguments(data=str(data), out=str(work), config=preset, windows=windows, overwrite=True),
                   RunTrainingArguments(output_dir=str(work / "trainer"), seed=0, report_to=[], disable_tqdm=True,
                                        **recipe.training(preset, 1.0)),
                   TuneArguments(trials=trials))
    collect(summary, work, tuned)
    return {"best_value": float(summary["best_value"]), "trials": float(trials)}


def summarise(runs: dict[str, list[dict[str, float]]], seeds: int, epochs: float, data: str) -> dict[str, Any]:
    """Per-preset mean ± std over seeds, RelaImpr against DNN (when DNN ran), and the tables.

    A record's ``seed`` (when present; else its place in the list) pairs it with DNN's record of that seed.
    """
    base = {int(r.get("seed", i)): r for i, r in enumerate(runs.get("dnn", []))}
    rows: dict[str, dict[str, Any]] = {}
    for preset, records in runs.items():
        row: dict[str, Any] = {"preset": preset, "seeds": len(records)}
        keys = sorted({k for r in records for k in r} - {"seed"})
        for key in keys:
            m, s = mean_std([r.get(key, math.nan) for r in records])
            row[key] = {"mean": m, "std": s}
        paired = [(r, base[int(r.get("seed", i))]) for i, r in enumerate(records) if int(r.get("seed", i)) in base]
        if base and len(paired) == len(records):
            for task in ("click", "order"):
                m, s = mean_std([relaimpr(r[f"auc_{task}"], b[f"auc_{task}"]) for r, b in paired])
                row[f"relaimpr_{task}"] = {"mean": m, "std": s}
        rows[preset] = row
    tables = {name: [p for p in presets if p in rows] for name, (_, presets) in TABLES.items()}
    # A table of reference rows only (DNN, DMT) did not run: the GBDT ablation needs a GBDT variant.
    if not set(tables["gbdt"]) & set(GBDT_VARIANTS):
        tables["gbdt"] = []
    # Likewise an ablation table holding DMT alone, unless it carries DMT's bias validation.
    for name in ("behaviors", "multitask", "bias"):
        if tables[name] == ["dmt"] and not (name == "bias" and "spearman" in rows["dmt"]):
            tables[name] = []
    return {"data": data, "seeds": seeds, "epochs": epochs, "presets": rows, "tables": tables, "per_seed": runs}


def _cell(row: dict[str, Any], key: str, digits: int = 4, pct: bool = False) -> str:
    value = row.get(key)
    if value is None or math.isnan(value["mean"]):
        return "n/a"
    unit = "%" if pct else ""
    return f"{value['mean']:.{digits}f}{unit} ± {value['std']:.{digits}f}{unit}"


def markdown(result: dict[str, Any]) -> str:
    """All tables of ``result`` (``summarise``'s output) as markdown."""
    rows = result["presets"]
    has_truth = any("spearman" in row for row in rows.values())
    windows = f"windows {result['windows']}; " if result.get("windows") else ""
    lines = [f"Data: {result['data']}; {windows}{result['seeds']} seed(s); {result['epochs']:g} epoch(s) per "
             "window; mean ± std over seeds of the window-averaged metric; RelaImpr vs DNN."]
    for name, (title, _) in TABLES.items():
        presets = result["tables"][name]
        if not presets:
            continue
        head = "| model | AUC click | AUC order | NDCG@10 | RelaImpr click | RelaImpr order |"
        sep = "|---|---:|---:|---:|---:|---:|"
        if has_truth and name == "bias":
            head += (" Spearman (position curve) | max abs log ratio | NDCG@10 vs true relevance |"
                     " AUC vs relevance oracle | promoted over-rating@10 |")
            sep += "---:|---:|---:|---:|---:|"
        counts = sorted({rows[p]["seeds"] for p in presets})
        lines += ["", f"**{title}** ({'/'.join(map(str, counts))} seed(s))", "", head, sep]
        for preset in presets:
            row = rows[preset]
            label = TABLE_LABELS.get(name, {}).get(preset, LABELS.get(preset, preset))
            if name == "bias" and "{" in label:  # DMT's tower, as its preset has it
                from t4r_dmt.presets import load_preset

                label = label.format(**vars(load_preset(preset).bias))
            line = (f"| {label} | {_cell(row, 'auc_click')} | {_cell(row, 'auc_order')} | "
                    f"{_cell(row, 'ndcg@10')} | {_cell(row, 'relaimpr_click', 2, True)} | "
                    f"{_cell(row, 'relaimpr_order', 2, True)} |")
            if has_truth and name == "bias":
                line += (f" {_cell(row, 'spearman', 3)} | {_cell(row, 'max_log_ratio', 3)} | "
                         f"{_cell(row, 'relevance_ndcg@10')} | {_cell(row, 'relevance_auc')} | "
                         f"{_cell(row, 'promoted_overrating@10')} |")
            lines.append(line)
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=None, help="preprocessed data (default: synthetic per seed)")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--ablation_seeds", type=int, default=None,
                        help="seeds of the DMT ablations (the first N of --seeds; default: all)")
    parser.add_argument("--presets", nargs="+", default=list(ALL_PRESETS))
    parser.add_argument("--quick", action="store_true", help="tiny synthetic data (a smoke test)")
    parser.add_argument("--epochs", type=float, default=1.0)
    parser.add_argument("--out", type=Path, default=RESULTS, help="writes OUT/paper_table.md and .json")
    parser.add_argument("--behaviors", nargs="+", default=None,
                        help="with --data: read only these behaviour sequences (Trivago: click)")
    parser.add_argument("--jobs", type=int, default=1,
                        help="runs trained in parallel processes, each on cpu_count // jobs threads")
    parser.add_argument("--windows", default="", help="A:B: train on t, evaluate on t+1 for t in A..B-1 "
                        "(default: all windows)")
    parser.add_argument("--work", type=Path, default=None, help="keep data and runs here (resumable)")
    parser.add_argument("--early_stopping_tail", type=float, default=0.0,
                        help="neural presets: choose each window's epochs on this tail of its training rows")
    parser.add_argument("--max_epochs", type=int, default=4, help="the most epochs early stopping may keep")
    parser.add_argument("--replay_windows", type=int, default=0,
                        help="neural presets: train window t on windows t-K..t (GBDT: its train_windows)")
    parser.add_argument("--carry_optimizer", action="store_true",
                        help="neural presets: carry the AdamW state from window to window")
    parser.add_argument("--early_stopping_metric", default="click", choices=["click", "click_order"],
                        help="what the held-out tail scores: click logloss, or click plus order normalised entropy")
    parser.add_argument("--early_stopping_with_bias", action="store_true",
                        help="neural presets with a bias tower: score the tail's clicks with the tower's term")
    parser.add_argument("--report_after", type=int, default=0,
                        help="average only the evaluation windows after this one (those up to it tuned the presets)")
    parser.add_argument("--tuned", type=Path, default=None, help="use DIR/<preset>_tuned.json where it exists")
    parser.add_argument("--tune_trials", type=int, default=0,
                        help="first tune every preset with this many trials (same budget for all) on seed 0's "
                             "--tune_windows; the tuned presets go to OUT/tuned/")
    parser.add_argument("--tune_windows", default="", help="A:B: the tuning windows (before --report_after)")
    parser.add_argument("--synth", nargs="+", default=[], metavar="KEY=VALUE",
                        help="further t4r-dmt synth arguments of the synthetic data, e.g. policy=promotion")
    parser.add_argument("--preprocess", nargs="+", default=[], metavar="KEY=VALUE",
                        help="further t4r-dmt preprocess arguments of it, e.g. ctr_position_debias=true")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    run_benchmark(tuple(args.presets), args.seeds, args.data, args.quick, args.epochs, args.out, args.work,
                  args.jobs, tuple(args.behaviors) if args.behaviors else None, args.ablation_seeds, args.windows,
                  Recipe(args.early_stopping_tail, args.max_epochs, args.report_after, args.replay_windows,
                         args.carry_optimizer, args.early_stopping_metric, args.early_stopping_with_bias), args.tuned, args.tune_trials,
                  args.tune_windows, parse_synth(args.synth), parse_preprocess(args.preprocess))


def parse_synth(items: list[str]) -> dict[str, Any]:
    """``["policy=promotion", "w_latent=2"]`` -> ``{"policy": "promotion", "w_latent": 2.0}``: each value typed
    as the ``SynthArguments`` field it sets."""
    from t4r_dmt.synth.command import SynthArguments

    return _parse_fields(items, SynthArguments, "--synth")


def parse_preprocess(items: list[str]) -> dict[str, Any]:
    """``["ctr_position_debias=true"]`` -> ``{"ctr_position_debias": True}``, typed as ``PreprocessArguments``."""
    from t4r_dmt.preprocess.arguments import PreprocessArguments

    return _parse_fields(items, PreprocessArguments, "--preprocess")


def _parse_fields(items: list[str], arguments: type, flag: str) -> dict[str, Any]:
    """KEY=VALUE items as the dataclass fields (with scalar defaults) they set; never the output or seed."""
    fields = {f.name: f for f in dataclasses.fields(arguments)
              if f.name not in ("out", "seed", "overwrite") and isinstance(f.default, (bool, int, float, str))}
    parsed: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or key not in fields:
            raise ValueError(f"{flag} {item!r}: expected KEY=VALUE, KEY one of {', '.join(fields)}")
        kind = type(fields[key].default)
        if kind is bool:
            if value.lower() not in ("true", "false"):
                raise ValueError(f"{flag} {item!r}: {key} takes true or false")
            parsed[key] = value.lower() == "true"
        else:
            parsed[key] = kind(value)
    return parsed

if __name__ == "__main__":
    main()
