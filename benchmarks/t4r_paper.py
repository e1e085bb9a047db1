"""The Transformers4Rec paper's session-based comparison (Moreira et al., RecSys 2021, Table 2) on your sessions.

Protocol (the paper's): the sessions are cut into time windows (a day; an hour for the short REES46 head),
each model trains incrementally (window t continues from the weights of t-1; the non-neural baselines add
window t to their history), and predicts the last item of every session of window t+1 over the full
catalogue; window t+1's sessions are split 50:50 into valid (for tuning) and test (reported). NDCG@20,
HR@20 (= recall@20) and MRR@20 are averaged over the windows ("average over time"), then over seeds
(mean ± std).

Models: popularity and V-SkNN (:mod:`t4r_dmt.baselines`), the paper's GRU baseline, and the transformers
through T4R's configs (``t4r_dmt/configs/<preset>.json``); the side-information variants need a data set with
side features (REES46: category, brand, behaviour, time).

Usage::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/t4r_paper.py \
        --data ../shared/data/yoochoose_rsc15_100k --format yoochoose \
        --models popularity v-sknn gru_clm xlnet_clm gpt2_clm xlnet_mlm --seeds 2 --out benchmarks/results

(the committed ``benchmarks/results/t4r_paper_yoochoose.md``: ~45 min on one shared core).

Each neural row trains with its preset's recipe (``recipe`` in the preset file: learning rate, epochs, batch,
weight decay, schedule). At equal budget: ``--tune_trials N --tune_windows 1:3`` first runs ``t4r-dmt tune --task
next-item`` with N trials for every neural row (objective NDCG@20 on the valid split of the tuning windows, seed
42) into ``--tuned`` (default ``WORK/tuned``); ``--tuned DIR`` runs each row's ``DIR/<preset>_tuned.json``;
``--report_from 4`` averages only the evaluation windows from 4 on (after those the studies evaluated).

``--data`` is a raw log (read with ``--format``, cut into ``--window`` windows) or the output folder of
``t4r-dmt preprocess`` (its ``sessions/`` is used as is). Writes ``OUT/t4r_paper_<dataset>.json`` and
``.md`` (the table; ``t4r_paper_<dataset>_tuned.*`` with ``--tuned``) and prints the table; the runs (metrics.json per model and seed) go to ``--work``
(default ``runs/t4r_paper_<dataset>``, git-ignored).
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(ROOT))

from t4r_dmt.io_utils import atomic_path, write_json  # noqa: E402

logger = logging.getLogger("t4r_paper")

METRICS = ("ndcg@20", "recall@20", "mrr@20")
GROUPS = ("Baselines", "Transformers (item id only)", "Side information (XLNet CLM)")


@dataclass(frozen=True)
class ModelSpec:
    """One row of the table.

    Attributes
    ----------
    label: row label (the paper's name).
    kind: ``t4r`` (a ``t4r_dmt/configs/<preset>.json`` next-item preset trained by the T4R loop), ``popularity``
        or ``v-sknn``.
    preset: preset name (``t4r`` rows only).
    group: table section, one of ``GROUPS``.

    The training recipe (learning rate, epochs, batch size, weight decay, schedule) is the preset's ``recipe``.
    """

    label: str
    kind: str
    group: str
    preset: str = ""


#: The comparison, in table order. The presets' recipes (batch 128, linear decay restarted each window) were
#: tuned by hand on YOOCHOOSE-100k's valid split, 1 seed (benchmarks/results/t4r_paper_yoochoose_tuning.md):
#: learning rate 5e-3 beat 1e-2 for both XLNet-CLM (NDCG@20 .2403 vs .2064) and the GRU (.2344 vs
#: .2191), and 10 epochs beat 5 for the GRU (.2191 vs .2104 at 1e-2). Masked models (mlm, plm, rtd)
#: keep 20 epochs: a session gives them fewer targets per pass than causal LM.
MODELS: dict[str, ModelSpec] = {spec.preset or spec.kind: spec for spec in (
    ModelSpec("Popularity", "popularity", GROUPS[0]),
    ModelSpec("V-SkNN", "v-sknn", GROUPS[0]),
    ModelSpec("GRU (CLM)", "t4r", GROUPS[0], "gru_clm"),
    ModelSpec("GPT-2 (CLM)", "t4r", GROUPS[1], "gpt2_clm"),
    ModelSpec("XLNet (CLM)", "t4r", GROUPS[1], "xlnet_clm"),
    ModelSpec("XLNet (MLM)", "t4r", GROUPS[1], "xlnet_mlm"),
    ModelSpec("XLNet (PLM)", "t4r", GROUPS[1], "xlnet_plm"),
    ModelSpec("XLNet (RTD)", "t4r", GROUPS[1], "xlnet_rtd"),
    ModelSpec("BERT (MLM)", "t4r", GROUPS[1], "bert_mlm"),
    ModelSpec("ELECTRA (RTD)", "t4r", GROUPS[1], "electra_rtd"),
    ModelSpec("Concat", "t4r", GROUPS[2], "xlnet_clm_concat"),
    ModelSpec("Concat + soft one-hot", "t4r", GROUPS[2], "xlnet_clm_concat_sohe"),
    ModelSpec("Element-wise", "t4r", GROUPS[2], "xlnet_clm_elementwise"),
    ModelSpec("Behaviour (view/cart/purchase)", "t4r", GROUPS[2], "xlnet_clm_behaviour"),
)}
DEFAULT_MODELS = [name for name, spec in MODELS.items() if spec.group != GROUPS[2]]
SIDE_INFO_MODELS = [name for name, spec in MODELS.items() if spec.group == GROUPS[2]]

#: The paper's Table 2 (test set, average over time), where quoted: dataset -> model -> metric -> value.
PAPER: dict[str, dict[str, dict[str, float]]] = {
    "rees46": {"xlnet_rtd": {"ndcg@20": 0.2546}, "gru4rec": {"ndcg@20": 0.2231}},
    "yoochoose": {"xlnet_rtd": {"ndcg@20": 0.3776}, "gru4rec": {"ndcg@20": 0.3442}},
}
PAPER_SIZES = {
    "rees46": "REES46 (paper): 31 daily windows (Oct 2019), trained on 15; millions of sessions",
    "yoochoose": "YOOCHOOSE (paper): 182 daily windows, trained on 90; ~1.5M sessions per month",
}


def _default_models() -> list[str]:
    return list(DEFAULT_MODELS)


@dataclass
class BenchmarkArguments:
    """Arguments of ``benchmarks/t4r_paper.py``."""

    data: str = field(metadata={"help": "Raw logs (a file, glob or folder; see --format) or a `t4r-dmt "
                                        "preprocess` output folder holding sessions/."})
    out: str = field(default="benchmarks/results", metadata={"help": "Folder for t4r_paper_<dataset>.json/.md."})
    work: str = field(default="", metadata={"help": "Folder for the sessions and runs (checkpoints included); "
                                                    "default runs/t4r_paper_<dataset> in the repository, which "
                                                    "git ignores."})
    format: str = field(default="yoochoose", metadata={"help": "Log format of --data when it is raw logs."})
    dataset: str = field(default="", metadata={"help": "Dataset name in file names and the table; default: "
                                                       "the format."})
    window: str = field(default="1d", metadata={"help": "Time window of the protocol ('1d'; '10min' for the "
                                                         "REES46 head; '7d' for the Diginetica sample)."})
    on_bad_rows: str = field(default="drop", metadata={"help": "raise or drop bad log rows."})
    models: list[str] = field(default_factory=_default_models,
                              metadata={"help": f"Rows to run, of {list(MODELS)}; 'side' adds the side-info "
                                                f"variants."})
    seeds: int = field(default=1, metadata={"help": "Seeds per neural model (42, 43, ...)."})
    windows: str = field(default="", metadata={"help": "A:B windows; default: the longest run of consecutive "
                                                        "windows with >= --min_eval_sessions sessions each."})
    eval_split: str = field(default="test", metadata={"help": "valid (tuning) or test (reporting)."})
    min_eval_sessions: int = field(default=20, metadata={"help": "Evaluation windows need this many sessions."})
    epochs: float = field(default=0.0, metadata={"help": "Override every recipe's epochs (0: the recipe's)."})
    max_steps: int = field(default=-1, metadata={"help": "Cap the training steps per window (tests)."})
    tuned: str = field(default="", metadata={"help": "Folder of tuned presets: each neural row runs "
                                                     "TUNED/<preset>_tuned.json (required for every neural row "
                                                     "asked for, unless --tune_trials writes them first)."})
    tune_trials: int = field(default=0, metadata={"help": "First tune every neural row with this many trials "
                                                          "(the same budget for all) on --tune_windows."})
    tune_windows: str = field(default="", metadata={"help": "A:B: the windows the studies train and evaluate on "
                                                            "(valid split); choose them before --report_from."})
    resume: bool = field(default=False, metadata={"help": "Reuse a neural run of WORK/runs/<model>/seed<seed> "
                                                          "whose config, windows, split and seed match (resuming "
                                                          "after its last finished window); others are redone. "
                                                          "Lets the rows run as parallel processes, then one "
                                                          "--resume run gathers the table."})
    report_from: int = field(default=0, metadata={"help": "Average only the evaluation windows >= this one "
                                                          "(0: all), e.g. those after the tuning windows."})

    def __post_init__(self) -> None:
        if "side" in self.models:
            self.models = [m for m in self.models if m != "side"] + SIDE_INFO_MODELS
        unknown = [m for m in self.models if m not in MODELS]
        if unknown or not self.models:
            raise ValueError(f"unknown models {unknown}; choose from {list(MODELS)} (or 'side')")
        if self.seeds < 1:
            raise ValueError(f"--seeds must be >= 1, got {self.seeds}")
        if self.eval_split not in ("valid", "test"):
            raise ValueError(f"--eval_split must be valid or test, got {self.eval_split!r}")
        if self.min_eval_sessions < 1 or self.epochs < 0 or self.report_from < 0:
            raise ValueError("--min_eval_sessions must be >= 1, --epochs >= 0 and --report_from >= 0")
        if self.tune_trials < 0 or bool(self.tune_trials) != bool(self.tune_windows):
            raise ValueError("--tune_trials N (>= 1) and --tune_windows A:B go together")
        if self.tune_trials:
            self.tuned = self.tuned or str(Path(self.work) / "tuned")
        elif self.tuned:
            missing = [str(tuned_preset_path(self.tuned, m)) for m in self.models
                       if MODELS[m].kind == "t4r" and not tuned_preset_path(self.tuned, m).is_file()]
            if missing:
                raise FileNotFoundError(f"--tuned {self.tuned}: no tuned preset {missing} (pass --tune_trials N "
                                        f"--tune_windows A:B, or run `t4r-dmt tune --task next-item` per preset)")
        self.dataset = self.dataset or self.format
        # Not under OUT (benchmarks/results is committed): the sessions and checkpoints would land in git.
        self.work = self.work or str(ROOT / "runs" / f"t4r_paper_{self.dataset}")


def tuned_preset_path(tuned: str, name: str) -> Path:
    """Where ``--tuned`` keeps the tuned preset of row ``name``: ``TUNED/<name>_tuned.json``."""
    return Path(tuned) / f"{name}_tuned.json"


def tune_rows(args: BenchmarkArguments, data_dir: Path) -> None:
    """``t4r-dmt tune`` of every neural row without a tuned preset yet: ``--tune_trials`` trials each on the valid
    split of ``--tune_windows``; the presets, studies and history plots land in ``--tuned``."""
    from t4r_dmt.commands.tune import TuneArguments, collect
    from t4r_dmt.commands.tune import run as tune
    from t4r_dmt.training.arguments import DataArguments, RunTrainingArguments

    for name in args.models:
        if MODELS[name].kind != "t4r" or tuned_preset_path(args.tuned, name).is_file():
            continue
        work = Path(args.work) / "tuning" / name
        summary = tune(
            DataArguments(data=str(data_dir), out=str(work), config=MODELS[name].preset, task="next-item",
                          windows=args.tune_windows, eval_split="valid", overwrite=True),
            RunTrainingArguments(output_dir=str(work / "trainer"), seed=42, report_to=[], disable_tqdm=True,
                                 logging_steps=10_000, per_device_eval_batch_size=512,
                                 **training_overrides(args)),
            TuneArguments(trials=args.tune_trials))
        collect(summary, work, Path(args.tuned))


def row_preset(name: str, args: BenchmarkArguments) -> Any:
    """The preset a ``t4r`` row runs: the shipped one, or with ``--tuned`` the study's best."""
    from t4r_dmt.presets import load_preset

    return load_preset(str(tuned_preset_path(args.tuned, name)) if args.tuned else MODELS[name].preset)


def prepare_sessions(args: BenchmarkArguments) -> tuple[Path, dict[str, Any]]:
    """The ``DIR`` whose ``sessions/`` the models read, and the session statistics.

    A preprocess output (``DATA/sessions/schema.pbtxt``) is used as is; raw logs are read with
    ``t4r_dmt.data.load_logs`` and cut into ``WORK/data/sessions`` (rebuilt every run).
    """
    data = Path(args.data)
    if (data / "sessions" / "schema.pbtxt").exists():
        return data, {"source": "preprocessed", "path": str(data)}
    from t4r_dmt.data import load_logs
    from t4r_dmt.data.sources import check_inputs_given
    from t4r_dmt.preprocess.sessions import write_sessions

    check_inputs_given({"--data": args.data})
    logs = load_logs(args.data, args.format, on_bad_rows=args.on_bad_rows)
    root = Path(args.work) / "data"
    if root.exists():
        shutil.rmtree(root)
    stats = write_sessions(logs.events, root / "sessions", window=args.window)
    stats["dropped_log_rows"] = dict(logs.dropped)
    return root, stats


def default_windows(task_dir: Path, split: str, min_sessions: int) -> str:
    """``"A:B"``: the longest run of consecutive windows whose ``split`` files all hold at least
    ``min_sessions`` sessions (the earliest such run on ties), so that every evaluation is meaningful and
    near-empty windows (a partial first or last day, a quiet night hour) are left out."""
    import pyarrow.parquet as pq

    from t4r_dmt.windows import list_windows

    full = [w for w in list_windows(task_dir)
            if pq.ParquetFile(task_dir / f"{w:04d}" / f"{split}.parquet").metadata.num_rows >= min_sessions]
    best: tuple[int, int] | None = None
    start = 0
    for index in range(1, len(full) + 1):
        if index == len(full) or full[index] != full[index - 1] + 1:
            if index - start >= 2 and (best is None or full[index - 1] - full[start] > best[1] - best[0]):
                best = (full[start], full[index - 1])
            start = index
    if best is None:
        raise ValueError(f"{task_dir}: no two consecutive windows with >= {min_sessions} {split} sessions; "
                         f"use a longer --window or a smaller --min_eval_sessions")
    return f"{best[0]}:{best[1]}"


def run_model(name: str, args: BenchmarkArguments, data_dir: Path, windows: str, seed: int) -> list[dict[str, Any]]:
    """Window records of one model and seed (the runs are kept under ``WORK/runs/<model>/seed<seed>``)."""
    from t4r_dmt.metrics.results import RunResults

    spec = MODELS[name]
    run_dir = Path(args.work) / "runs" / name / f"seed{seed}"
    if spec.kind != "t4r":
        from t4r_dmt.baselines import Popularity, VSkNN, catalogue_size, evaluate_scorer
        from t4r_dmt.run_folder import load_schema

        task_dir = data_dir / "sessions"
        n_items = catalogue_size(load_schema(task_dir))
        scorer = Popularity(n_items) if spec.kind == "popularity" else VSkNN(n_items)
        records = evaluate_scorer(scorer, task_dir, windows=windows, eval_split=args.eval_split)
        RunResults(task="next-item", model=name, config=dataclasses.asdict(scorer.config),
                   windows=records).write(run_dir)
        return records
    from t4r_dmt.commands.train import run
    from t4r_dmt.training.arguments import DataArguments, RunTrainingArguments

    config = row_preset(name, args)
    resume = args.resume and same_run(run_dir, config.to_dict(), windows, args.eval_split, seed)
    result = run(
        DataArguments(data=str(data_dir), out=str(run_dir), config=spec.preset, task="next-item",
                      windows=windows, eval_split=args.eval_split, overwrite=not resume, resume=resume),
        RunTrainingArguments(output_dir=str(run_dir / "trainer"), seed=seed, report_to=[], disable_tqdm=True,
                             logging_steps=10_000, per_device_eval_batch_size=512, **training_overrides(args)),
        config,
    )
    return list(result["windows"])


def same_run(run_dir: Path, config: dict[str, Any], windows: str, eval_split: str, seed: int) -> bool:
    """Whether ``run_dir`` holds a run of ``config`` over ``windows`` / ``eval_split`` with ``seed`` (``--resume``
    reuses it); a folder without ``config.json`` or of anything else is not reused."""
    import json

    path = run_dir / "config.json"
    if not path.is_file():
        return False
    saved = json.loads(path.read_text())
    return (saved.get("config") == config and saved.get("data", {}).get("windows") == windows
            and saved.get("data", {}).get("eval_split") == eval_split and saved.get("training", {}).get("seed") == seed)


def effective_training(name: str, args: BenchmarkArguments) -> dict[str, Any]:
    """The training arguments a ``t4r`` row runs with: its preset's recipe, with ``--epochs`` and ``--max_steps``
    applied (empty for the non-neural baselines). The results record these, not the bare recipe."""
    if MODELS[name].kind != "t4r":
        return {}
    return {**row_preset(name, args).recipe.training_arguments(), **training_overrides(args)}


def training_overrides(args: BenchmarkArguments) -> dict[str, Any]:
    """The training flags every neural run gets on top of its preset's recipe: ``--max_steps``, and ``--epochs``
    where given."""
    return {"max_steps": args.max_steps, **({"num_train_epochs": args.epochs} if args.epochs else {})}


def reported(records: list[dict[str, Any]], report_from: int) -> list[dict[str, Any]]:
    """The window records averaged in the table: those evaluated on window ``report_from`` or later (all for 0)."""
    kept = [w for w in records if w["eval_window"] >= report_from]
    if not kept:
        raise ValueError(f"--report_from {report_from}: no evaluation window at or after it "
                         f"(evaluated: {[w['eval_window'] for w in records]})")
    return kept


def summarise(per_seed: list[list[dict[str, Any]]], report_from: int = 0) -> dict[str, Any]:
    """Average over time per seed (the windows from ``report_from`` on), then mean and std over seeds."""
    averages = [{m: float(np.nanmean([w[m] for w in reported(records, report_from)])) for m in METRICS}
                for records in per_seed]
    return {
        "per_seed": averages,
        "mean": {m: float(np.mean([a[m] for a in averages])) for m in METRICS},
        "std": {m: float(np.std([a[m] for a in averages])) for m in METRICS},
    }


def run(args: BenchmarkArguments) -> dict[str, Any]:
    """Run every model and seed; write and return the results (``table`` holds the markdown)."""
    started = time.perf_counter()
    data_dir, stats = prepare_sessions(args)
    task_dir = data_dir / "sessions"
    if args.tune_trials:
        tune_rows(args, data_dir)
    windows = args.windows or default_windows(task_dir, args.eval_split, args.min_eval_sessions)
    logger.info("t4r_paper: %s, windows %s, %s split, models %s", args.dataset, windows, args.eval_split, args.models)
    models: dict[str, Any] = {}
    for name in args.models:
        spec = MODELS[name]
        seeds = [42 + i for i in range(args.seeds if spec.kind == "t4r" else 1)]  # the baselines are deterministic
        tick = time.perf_counter()
        per_seed = [run_model(name, args, data_dir, windows, seed) for seed in seeds]
        models[name] = {"label": spec.label, "group": spec.group, "kind": spec.kind, "preset": spec.preset,
                        "tuned": str(tuned_preset_path(args.tuned, name)) if args.tuned and spec.kind == "t4r"
                        else "", "training": effective_training(name, args), "seeds": seeds, "windows": per_seed,
                        "seconds": round(time.perf_counter() - tick, 1), **summarise(per_seed, args.report_from)}
        logger.info("%s: %s", name, models[name]["mean"])
    results: dict[str, Any] = {
        "benchmark": "Transformers4Rec paper Table 2 (session-based next-item, incremental)",
        "dataset": args.dataset, "data": args.data, "window": args.window, "windows": windows,
        "eval_split": args.eval_split, "n_seeds": args.seeds, "sessions": _session_counts(task_dir, windows),
        "tuned": args.tuned, "tune_trials": args.tune_trials, "tune_windows": args.tune_windows,
        "resumed": args.resume,
        "report_from": args.report_from,
        "preprocess": stats, "models": models, "paper": PAPER.get(args.dataset, {}),
        "goal": goal(models), "seconds": round(time.perf_counter() - started, 1),
        "torch_threads": os.environ.get("OMP_NUM_THREADS", ""),
    }
    results["table"] = markdown_table(results)
    out = Path(args.out)
    stem = f"t4r_paper_{args.dataset}" + ("_tuned" if args.tuned else "")
    write_json(out / f"{stem}.json", {k: v for k, v in results.items() if k != "table"})
    with atomic_path(out / f"{stem}.md") as tmp:
        tmp.write_text(results["table"])
    return results


def _session_counts(task_dir: Path, windows: str) -> dict[str, int]:
    import pyarrow.parquet as pq

    first, last = (int(x) for x in windows.split(":"))
    counts = {"train": 0, "eval": 0}
    for window in range(first, last + 1):
        counts["train"] += pq.ParquetFile(task_dir / f"{window:04d}" / "train.parquet").metadata.num_rows
    counts["eval"] = counts["train"] - pq.ParquetFile(task_dir / f"{first:04d}" / "train.parquet").metadata.num_rows
    return counts


def goal(models: dict[str, Any]) -> dict[str, Any]:
    """The issue's goal: best transformer NDCG@20 >= GRU's + 10 %."""
    transformers = {n: m["mean"]["ndcg@20"] for n, m in models.items() if m["group"] == GROUPS[1]}
    if not transformers or "gru_clm" not in models:
        return {}
    best = max(transformers, key=transformers.__getitem__)
    gru = models["gru_clm"]["mean"]["ndcg@20"]
    gain = transformers[best] / gru - 1.0 if gru > 0 else math.inf
    return {"best_transformer": best, "best_ndcg@20": transformers[best], "gru_ndcg@20": gru,
            "gain": gain, "met": bool(gain >= 0.10)}


def _cell(model: dict[str, Any], metric: str) -> str:
    mean, std = model["mean"][metric], model["std"][metric]
    return f"{mean:.4f}" + (f" ± {std:.4f}" if len(model["per_seed"]) > 1 else "")


def markdown_table(results: dict[str, Any]) -> str:
    """The table, shaped like the paper's Table 2 (one data set: our metrics, then the paper's NDCG@20)."""
    paper = results["paper"]
    reported_windows = (f"; averaged over evaluation windows >= {results['report_from']}"
                        if results.get("report_from") else "")
    presets = "tuned presets (`t4r-dmt tune`)" if results.get("tuned") else "shipped presets"
    lines = [f"**{results['dataset']}**: windows {results['windows']} of {results['window']}, "
             f"{results['eval_split']} split, {results['sessions']['train']} sessions "
             f"({results['sessions']['eval']} in evaluated windows), {results['n_seeds']} seed(s) "
             f"(mean ± std over seeds of the average over time{reported_windows}), {presets}", "",
             "| group | model | NDCG@20 | HR@20 | MRR@20 | paper NDCG@20 | time (s) |",
             "|---|---|---|---|---|---|---|"]
    for group in GROUPS:
        for name, model in results["models"].items():
            if model["group"] != group:
                continue
            quoted = paper.get("gru4rec" if name == "gru_clm" else name, {}).get("ndcg@20")
            paper_cell = "—" if quoted is None else (f"{quoted:.4f}" + (" (GRU4Rec)" if name == "gru_clm" else ""))
            seconds = "—" if results.get("resumed") and model["kind"] == "t4r" else f"{model['seconds']:.0f}"
            lines.append(f"| {group} | {model['label']} | " + " | ".join(_cell(model, m) for m in METRICS)
                         + f" | {paper_cell} | {seconds} |")
    lines += tuning_record(results)
    if results["goal"]:
        g = results["goal"]
        lines += ["", f"Best transformer {results['models'][g['best_transformer']]['label']}: NDCG@20 "
                      f"{g['best_ndcg@20']:.4f} vs GRU {g['gru_ndcg@20']:.4f} ({g['gain']:+.1%}; goal +10 %: "
                      f"{'met' if g['met'] else 'not met'})."]
    return "\n".join(lines) + "\n"


def tuning_record(results: dict[str, Any]) -> list[str]:
    """Markdown lines: per tuned row, the study's objective for the preset itself (trial 0) and for the best trial,
    and what the best trial changed (from ``--tuned``'s ``<preset>_study.json``); none without ``--tuned``."""
    import json

    from t4r_dmt.search_space import get_path

    tuned = results.get("tuned")
    studies = {name: Path(tuned) / f"{name}_study.json" for name in results["models"]} if tuned else {}
    studies = {name: path for name, path in studies.items() if path.is_file()}
    if not studies:
        return []
    lines = ["", "Tuning record (valid split of the tuning windows; NDCG@20):", "",
             "| model | trials (pruned) | preset (trial 0) | best | best trial | changed by the best trial |",
             "|---|---|---|---|---|---|"]
    for name, path in studies.items():
        study = json.loads(path.read_text())
        start = study.get("start_value")
        base = load_preset_dict(results["models"][name]["preset"])
        changed = {k: v for k, v in study["best_params"].items() if _differs(get_path(base, k), v)}
        cells = ", ".join(f"{k} {_short(v)}" for k, v in changed.items()) or "nothing (the preset won)"
        lines.append(f"| {results['models'][name]['label']} | {study['trials']} ({study['pruned']}) | "
                     f"{'—' if start is None else f'{start:.4f}'} | {study['best_value']:.4f} | "
                     f"{study['best_trial']} | {cells} |")
    return lines


def load_preset_dict(name: str) -> dict[str, Any]:
    from t4r_dmt.presets import load_preset
    from t4r_dmt.search_space import tunable_fields

    return tunable_fields(load_preset(name))


def _differs(old: Any, new: Any) -> bool:
    """A tuned value differs from the preset's beyond the clipping of trial 0 (0 -> a log scale's low)."""
    if isinstance(new, float) and isinstance(old, (int, float)) and not isinstance(old, bool):
        return not math.isclose(float(old), new, rel_tol=1e-6, abs_tol=1e-5)
    return bool(old != new)


def _short(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def main() -> None:
    from transformers import HfArgumentParser

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    (args,) = HfArgumentParser(BenchmarkArguments).parse_args_into_dataclasses()
    print(run(args)["table"])


if __name__ == "__main__":
    main()
