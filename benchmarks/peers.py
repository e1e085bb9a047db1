"""t4r_dmt's DMT against the libraries users already know, on the same preprocessed windows.

Usage::

    OMP_NUM_THREADS=1 python benchmarks/peers.py --data DIR [--windows A:B] [--batch 256] [--epochs 1] [--repeat 1]
                                                 [--models dmt din mmoe_deepctr mmoe_rechub ple_rechub lightgbm]

``DIR`` is the output of ``t4r-dmt preprocess`` (``DIR/ranking/NNNN/{train,valid}.parquet`` and the schema).
Every model trains on the ``train`` rows of windows A..B-1 (default: all but the last) and is scored on the
``valid`` rows of window B: AUC click, AUC order, training rows/s and the peak resident memory of its own
process (each model runs in a fresh process, so ``peak_rss_mb`` includes Python and torch), with the ratios
to ``dmt``.

Equal settings: the torch models get the same inputs (target item / category / brand, the dense features,
the click / cart / order sequences of the same lengths), the same embedding widths (item 48, category 16,
brand 16, the ``dmt`` preset's; torch-rechub needs one width for all features: 48), the same batch, epochs, optimiser (torch's fused Adam, lr 1e-3) and one shared training
loop over in-memory tensors, so rows/s compares the models' forward + backward + step, not their loaders.
DeepCTR's DIN attends over the click sequence (cart / order are mean-pooled) and is single-task: it is
trained on the click label and its order AUC is its click score's. The multi-task peers use the DMT's
MMoE sizes (4 experts of 512-256-128, towers of 32). The position features are DMT's bias tower input (used
in training only); the peers do not read them, so every model predicts relevance. LightGBM (two models,
click and order) reads the scalar features and, per behaviour, the sequence length and whether the target
item / category / brand occurs in it; its rows/s is the training rows over both fits.

Writes ``benchmarks/results/peers.json`` and ``peers.md``.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import platform
import resource
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results" / "peers"
MODELS = ("dmt", "din", "mmoe_deepctr", "mmoe_rechub", "ple_rechub", "lightgbm")
TARGETS = ("click", "order")
DIMS = {"item": 48, "category": 16, "brand": 16}
EXPERTS, EXPERT_UNITS, TOWER_UNITS = 4, (512, 256, 128), (32,)


@dataclass(frozen=True)
class Settings:
    data: str
    windows: str = ""
    batch: int = 256
    epochs: int = 1
    lr: float = 1e-3
    seed: int = 0

    def __post_init__(self) -> None:
        if self.batch < 1 or self.epochs < 1:
            raise ValueError(f"--batch and --epochs must be >= 1; got {self.batch}, {self.epochs}")


# ----------------------------------------------------------------------------------------------------- data
@dataclass
class Frames:
    """The training and evaluation rows as arrays: ``scalars`` (N,), ``lists`` (N, L) right-padded with 0."""

    scalars: dict[str, np.ndarray]
    lists: dict[str, np.ndarray]
    labels: dict[str, np.ndarray]

    def __len__(self) -> int:
        return len(self.labels["click"])


@dataclass
class Data:
    train: Frames
    eval: Frames
    schema: Any
    vocab: dict[str, int]  # column -> table size
    lengths: dict[str, int]  # list column -> N
    dense: list[str]
    behaviors: list[str]


def _padded(values: Any, n: int) -> np.ndarray:
    """Oldest-first lists -> ``(N, n)`` int64 keeping the ``n`` most recent, right-padded with 0."""
    out = np.zeros((len(values), n), dtype=np.int64)
    for i, row in enumerate(values):
        tail = np.asarray(row if row is not None else [], dtype=np.int64)[-n:]
        out[i, : len(tail)] = tail
    return out


def load_data(settings: Settings) -> Data:
    import pandas as pd
    from merlin.schema import Tags

    from t4r_dmt.run_folder import load_schema
    from t4r_dmt.windows import list_windows, parse_windows, window_path

    task_dir = Path(settings.data) / "ranking"
    schema = load_schema(task_dir)
    windows = list_windows(task_dir)
    first, last = parse_windows(settings.windows) if settings.windows else (windows[0], windows[-1])
    train_windows = [w for w in windows if first <= w < last]
    if not train_windows or last not in windows:
        raise ValueError(f"--windows {settings.windows!r}: no such windows in {task_dir} (has {windows})")
    vocab = {c.name: int(c.int_domain.max) + 1 for c in schema if c.int_domain is not None and c.int_domain.max}
    lengths = {c.name: int(c.value_count.max) for c in schema if c.is_list and c.value_count is not None}
    behaviors = [b for b in ("click", "cart", "order") if f"{b}_item_id_seq" in lengths]
    dense = [c.name for c in schema.select_by_tag(Tags.CONTINUOUS) if not c.is_list and Tags.TARGET not in c.tags]
    scalar_cols = ["item_id", "item_category", "item_brand", "position_index", "position_page", *dense]
    scalar_cols = [c for c in scalar_cols if c in schema.column_names]

    def frames(paths: list[Path]) -> Frames:
        frame = pd.concat([pd.read_parquet(p) for p in paths], ignore_index=True)
        scalars = {c: frame[c].to_numpy() for c in scalar_cols}
        lists = {c: _padded(frame[c].to_numpy(), n) for c, n in lengths.items() if c in frame}
        return Frames(scalars, lists, {t: frame[t].to_numpy().astype(np.float32) for t in TARGETS})

    train = frames([window_path(task_dir, w, "train") for w in train_windows])
    evaluation = frames([window_path(task_dir, last, "valid")])
    return Data(train, evaluation, schema, vocab, lengths, dense, behaviors)


def _entity_vocab(data: Data, entity: str) -> int:
    suffix = {"item": "item_id", "category": "category", "brand": "brand"}[entity]
    names = [f"item_{'id' if entity == 'item' else entity}"] + [f"{b}_{suffix}_seq" for b in data.behaviors]
    return max(data.vocab[n] for n in names if n in data.vocab)


# ----------------------------------------------------------------------------------------- torch models
def _dmt(data: Data, settings: Settings) -> tuple[Any, Any]:
    """The ``dmt`` preset; inputs: the T4R input dict (each list at its own length)."""
    import torch

    from t4r_dmt.model import build_model
    from t4r_dmt.presets import load_preset

    model = build_model(data.schema, load_preset("dmt"))

    def inputs(frames: Frames, rows: slice) -> dict[str, torch.Tensor]:
        x = {k: torch.from_numpy(v[rows]) for k, v in frames.scalars.items()}
        x.update({k: torch.from_numpy(v[rows]) for k, v in frames.lists.items()})
        return x

    return model, inputs


def _deepctr_columns(data: Data, history: bool) -> tuple[list[Any], list[str]]:
    from deepctr_torch.inputs import DenseFeat, SparseFeat, VarLenSparseFeat

    sizes = {e: _entity_vocab(data, e) for e in DIMS}
    cols: list[Any] = [SparseFeat("item_id", sizes["item"], DIMS["item"]),
                       SparseFeat("item_category", sizes["category"], DIMS["category"]),
                       SparseFeat("item_brand", sizes["brand"], DIMS["brand"])]
    cols += [DenseFeat(d, 1) for d in data.dense]
    shared = {"item_id": "item_id", "category": "item_category", "brand": "item_brand"}
    entity = {"item_id": "item", "category": "category", "brand": "brand"}
    for b in data.behaviors:
        for suffix, table in shared.items():
            name = f"{b}_{suffix}_seq"
            # DIN's attention pairs hist_<feature> with <feature>: name the click sequence that way.
            key = f"hist_{table}" if history and b == "click" else name
            cols.append(VarLenSparseFeat(SparseFeat(key, sizes[entity[suffix]], DIMS[entity[suffix]],
                                                    embedding_name=table),
                                         maxlen=data.lengths[name], combiner="mean",
                                         length_name=f"{b}_len" if history else None))
    return cols, ["item_id", "item_category", "item_brand"]


def _deepctr_inputs(model: Any, history: bool) -> Any:
    import torch

    def inputs(frames: Frames, rows: slice) -> torch.Tensor:
        parts = []
        for name, (start, end) in model.feature_index.items():
            source = name
            if history and name.startswith("hist_"):
                source = {"hist_item_id": "click_item_id_seq", "hist_item_category": "click_category_seq",
                          "hist_item_brand": "click_brand_seq"}[name]
            if source.endswith("_len"):  # DIN's sequence lengths (events before the padding)
                values = (frames.lists[source.replace("_len", "_item_id_seq")][rows] != 0).sum(1)
            else:
                values = (frames.lists[source] if source in frames.lists else frames.scalars[source])[rows]
            values = values.astype(np.float32)
            parts.append(values.reshape(len(values), end - start))
        return torch.from_numpy(np.concatenate(parts, axis=1))

    return inputs


def _din(data: Data, settings: Settings) -> tuple[Any, Any]:
    from deepctr_torch.models import DIN

    cols, history = _deepctr_columns(data, history=True)
    model = DIN(cols, history, dnn_hidden_units=(256, 128), seed=settings.seed)
    return model, _deepctr_inputs(model, history=True)


def _mmoe_deepctr(data: Data, settings: Settings) -> tuple[Any, Any]:
    from deepctr_torch.models import MMOE

    cols, _ = _deepctr_columns(data, history=False)
    model = MMOE(cols, num_experts=EXPERTS, expert_dnn_hidden_units=EXPERT_UNITS, gate_dnn_hidden_units=(),
                 tower_dnn_hidden_units=TOWER_UNITS, task_names=TARGETS, seed=settings.seed)
    return model, _deepctr_inputs(model, history=False)


def _rechub_features(data: Data) -> list[Any]:
    from torch_rechub.basic.features import DenseFeature, SequenceFeature, SparseFeature

    sizes = {e: _entity_vocab(data, e) for e in DIMS}
    # torch-rechub concatenates embeddings along the feature axis: every feature must have one width.
    dims = dict.fromkeys(DIMS, DIMS["item"])
    feats: list[Any] = [SparseFeature("item_id", sizes["item"], dims["item"]),
                        SparseFeature("item_category", sizes["category"], dims["category"]),
                        SparseFeature("item_brand", sizes["brand"], dims["brand"])]
    feats += [DenseFeature(d) for d in data.dense]
    shared = {"item_id": ("item_id", "item"), "category": ("item_category", "category"),
              "brand": ("item_brand", "brand")}
    for b in data.behaviors:
        for suffix, (table, entity) in shared.items():
            feats.append(SequenceFeature(f"{b}_{suffix}_seq", sizes[entity], dims[entity], pooling="mean",
                                         shared_with=table, padding_idx=0))
    return feats


def _rechub_inputs(features: list[Any]) -> Any:
    import torch

    def inputs(frames: Frames, rows: slice) -> dict[str, torch.Tensor]:
        out = {}
        for f in features:
            values = frames.lists[f.name] if f.name in frames.lists else frames.scalars[f.name]
            out[f.name] = torch.from_numpy(values[rows])
        return out

    return inputs


def _mmoe_rechub(data: Data, settings: Settings) -> tuple[Any, Any]:
    from torch_rechub.models.multi_task import MMOE

    feats = _rechub_features(data)
    expert = {"dims": list(EXPERT_UNITS)}
    model = MMOE(feats, ["classification"] * 2, EXPERTS, expert, [{"dims": list(TOWER_UNITS)}] * 2)
    return model, _rechub_inputs(feats)


def _ple_rechub(data: Data, settings: Settings) -> tuple[Any, Any]:
    from torch_rechub.models.multi_task import PLE

    feats = _rechub_features(data)
    # 4 experts like the MMoE: 1 specific per task + 2 shared, one extraction level.
    model = PLE(feats, ["classification"] * 2, n_level=1, n_expert_specific=1, n_expert_shared=2,
                expert_params={"dims": list(EXPERT_UNITS)}, tower_params_list=[{"dims": list(TOWER_UNITS)}] * 2)
    return model, _rechub_inputs(feats)


BUILDERS = {"dmt": _dmt, "din": _din, "mmoe_deepctr": _mmoe_deepctr, "mmoe_rechub": _mmoe_rechub,
            "ple_rechub": _ple_rechub}


def _loss_and_scores(name: str, model: Any, x: Any, y: Any, training: bool) -> tuple[Any, Any]:
    """``(loss, (B, 2) probabilities)`` of one batch, whatever the model's output convention."""
    import torch
    from torch.nn import functional as F

    labels = torch.stack([y[t] for t in TARGETS], dim=1)
    if name == "dmt":
        if training:
            return model(x, targets=y, training=True)["loss"], None
        out = model(x)
        return None, torch.stack([out["p_click"], out["p_order"]], dim=1)
    probs = model(x).reshape(len(labels), -1)  # deepctr / rechub heads end in a sigmoid
    if probs.shape[1] == 1:  # DIN: one task (click); its score ranks orders too
        loss = F.binary_cross_entropy(probs[:, 0], labels[:, 0])
        probs = probs.repeat(1, 2)
    else:
        loss = F.binary_cross_entropy(probs, labels, reduction="none").mean(0).sum()
    if hasattr(model, "get_regularization_loss"):  # deepctr's embedding L2, part of its own fit
        loss = loss + model.get_regularization_loss()
    return loss, probs


def train_torch(name: str, data: Data, settings: Settings) -> dict[str, Any]:
    import torch

    torch.manual_seed(settings.seed)
    model, inputs = BUILDERS[name](data, settings)
    optimizer = torch.optim.Adam(model.parameters(), lr=settings.lr, fused=True)  # one kernel per tensor, every model
    n = len(data.train)
    rng = np.random.default_rng(settings.seed)
    model.train()
    start = time.perf_counter()
    for _ in range(settings.epochs):
        order = rng.permutation(n)
        for begin in range(0, n, settings.batch):
            rows = order[begin: begin + settings.batch]
            x = inputs(data.train, rows)
            y = {t: torch.from_numpy(data.train.labels[t][rows]) for t in TARGETS}
            loss, _ = _loss_and_scores(name, model, x, y, training=True)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    seconds = time.perf_counter() - start
    flops = _train_flops_per_row(name, model, inputs, data.train, settings.batch)
    model.eval()
    scores = []
    with torch.no_grad():
        for begin in range(0, len(data.eval), 4096):
            rows = np.arange(begin, min(begin + 4096, len(data.eval)))
            y = {t: torch.from_numpy(data.eval.labels[t][rows]) for t in TARGETS}
            scores.append(_loss_and_scores(name, model, inputs(data.eval, rows), y, training=False)[1].numpy())
    probs = np.concatenate(scores)
    return {"seconds": seconds, "rows": n * settings.epochs, "scores": probs, "train_flops_per_row": flops,
            "parameters": sum(p.numel() for p in model.parameters())}


def _train_flops_per_row(name: str, model: Any, inputs: Any, frames: Frames, batch: int, batches: int = 4,
                         seed: int = 0) -> float:
    """Matrix-product FLOPs of forward + backward per training row (torch's ``FlopCounterMode``: mm / bmm / addmm /
    attention; element-wise work is not counted), over ``batches`` random batches: the DMT's work follows the
    sequence lengths, which grow along a window. Counted after the timed training, so it does not disturb it; the
    gradients are discarded."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    sample = np.random.default_rng(seed).permutation(len(frames))[: batch * batches]
    counter = FlopCounterMode(display=False)
    with counter:
        for rows in np.array_split(sample, max(1, -(-len(sample) // batch))):
            y = {t: torch.from_numpy(frames.labels[t][rows]) for t in TARGETS}
            loss, _ = _loss_and_scores(name, model, inputs(frames, rows), y, training=True)
            loss.backward()
    model.zero_grad(set_to_none=True)
    return counter.get_total_flops() / len(sample)


# ------------------------------------------------------------------------------------------------ lightgbm
def _gbdt_features(data: Data, frames: Frames) -> np.ndarray:
    cols = [frames.scalars[c].astype(np.float64) for c in ("item_id", "item_category", "item_brand")]
    cols += [frames.scalars[d].astype(np.float64) for d in data.dense]
    for b in data.behaviors:
        items = frames.lists[f"{b}_item_id_seq"]
        cols.append((items != 0).sum(1).astype(np.float64))
        for target, seq in (("item_id", "item_id"), ("item_category", "category"), ("item_brand", "brand")):
            hits = frames.lists[f"{b}_{seq}_seq"] == frames.scalars[target][:, None]
            cols.append(hits.sum(1).astype(np.float64))
    return np.stack(cols, axis=1)


def train_lightgbm(data: Data, settings: Settings) -> dict[str, Any]:
    import lightgbm as lgb

    x_train, x_eval = _gbdt_features(data, data.train), _gbdt_features(data, data.eval)
    scores, start = [], time.perf_counter()
    for target in TARGETS:
        model = lgb.LGBMClassifier(n_estimators=300, learning_rate=0.05, num_leaves=31, min_child_samples=50,
                                   random_state=settings.seed, n_jobs=1, verbose=-1)
        model.fit(x_train, data.train.labels[target], categorical_feature=[0, 1, 2])
        scores.append(model.predict_proba(x_eval)[:, 1])
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "rows": len(data.train), "scores": np.stack(scores, axis=1), "parameters": None}


# ------------------------------------------------------------------------------------------------- driver
def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def measure(name: str, settings: Settings) -> dict[str, Any]:
    """Train and score ``name`` in this process; returns AUCs, rows/s and peak memory."""
    from sklearn.metrics import roc_auc_score

    data = load_data(settings)
    before = _rss_mb()
    result = train_lightgbm(data, settings) if name == "lightgbm" else train_torch(name, data, settings)
    aucs = {}
    for k, target in enumerate(TARGETS):
        labels = data.eval.labels[target]
        aucs[f"auc_{target}"] = (float(roc_auc_score(labels, result["scores"][:, k]))
                                 if 0 < labels.sum() < len(labels) else float("nan"))
    rows_per_s = result["rows"] / result["seconds"]
    flops = result.get("train_flops_per_row")  # torch models only
    return {"model": name, **aucs, "train_rows": result["rows"], "train_seconds": result["seconds"],
            "rows_per_s": rows_per_s, "peak_rss_mb": _rss_mb(),
            "train_mflop_per_row": flops / 1e6 if flops else None,
            "train_gflop_per_s": flops * rows_per_s / 1e9 if flops else None,
            "train_rss_mb": _rss_mb() - before, "parameters": result["parameters"], "eval_rows": len(data.eval)}


def _child(name: str, settings: Settings, queue: Any) -> None:
    try:
        queue.put(measure(name, settings))
    except Exception as err:  # reported in the table rather than killing the whole comparison
        queue.put({"model": name, "error": f"{type(err).__name__}: {err}"})


def median_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The run with the median training speed (the lower middle one for an even count), with every run's rows/s
    under ``rows_per_s_all_runs``; a model that failed in any run is reported by its first error."""
    failed = [r for r in runs if "error" in r]
    if failed:
        return failed[0]
    ordered = sorted(runs, key=lambda r: r["rows_per_s"])
    return {**ordered[(len(ordered) - 1) // 2], "rows_per_s_all_runs": [r["rows_per_s"] for r in runs]}


def run(settings: Settings, models: tuple[str, ...] = MODELS, out: Path = RESULTS, repeat: int = 1) -> dict[str, Any]:
    """Measure each model in its own process, ``repeat`` times interleaved (the median run is reported); write
    ``out.json`` / ``out.md`` and return the results."""
    from t4r_dmt.io_utils import atomic_path, write_json

    unknown = [m for m in models if m not in MODELS]
    if unknown:
        raise ValueError(f"unknown model(s) {unknown}; choose from {list(MODELS)}")
    if repeat < 1:
        raise ValueError(f"--repeat must be >= 1, got {repeat}")
    ctx = multiprocessing.get_context("spawn")
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in models}
    for _ in range(repeat):  # interleaved, so a change of load on the machine hits every model alike
        for name in models:
            queue = ctx.Queue()
            proc = ctx.Process(target=_child, args=(name, settings, queue))
            proc.start()
            runs[name].append(queue.get())
            proc.join()
    rows = [median_run(runs[name]) for name in models]
    base = next((r for r in rows if r["model"] == "dmt" and "error" not in r), None)
    for r in rows:
        if base is not None and "error" not in r:
            r["rows_per_s_vs_dmt"] = r["rows_per_s"] / base["rows_per_s"]
            r["peak_rss_vs_dmt"] = r["peak_rss_mb"] / base["peak_rss_mb"]
            r["auc_click_minus_dmt"] = r["auc_click"] - base["auc_click"]
            r["auc_order_minus_dmt"] = r["auc_order"] - base["auc_order"]
    result = {"settings": asdict(settings), "repeat": repeat, "rows": rows,
              "machine": {"python": platform.python_version(), "processor": platform.machine(),
                          "cpus": os.cpu_count(), "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS")}}
    md = markdown(result)
    write_json(out.with_suffix(".json"), result)
    with atomic_path(out.with_suffix(".md")) as tmp:
        tmp.write_text(md + "\n")
    return result


def markdown(result: dict[str, Any]) -> str:
    s = result["settings"]
    first = next((r for r in result["rows"] if "error" not in r), {})
    lines = [f"Batch {s['batch']}, {s['epochs']} epoch(s), {first.get('train_rows', '?')} training rows, "
             f"{first.get('eval_rows', '?')} evaluation rows, OMP_NUM_THREADS="
             f"{result['machine']['OMP_NUM_THREADS']}; rows/s: the median of {result.get('repeat', 1)} run(s).", "",
             "| model | AUC click | AUC order | train rows/s | MFLOP / row | GFLOP/s | peak RSS MB | rows/s ÷ dmt "
             "| RSS ÷ dmt |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in result["rows"]:
        if "error" in r:
            lines.append(f"| {r['model']} | error: {r['error']} | | | | | | | |")
            continue
        mflop, gflops = r.get("train_mflop_per_row"), r.get("train_gflop_per_s")
        lines.append(f"| {r['model']} | {r['auc_click']:.4f} | {r['auc_order']:.4f} | {r['rows_per_s']:,.0f} | "
                     f"{f'{mflop:.1f}' if mflop else '-'} | {f'{gflops:.1f}' if gflops else '-'} | "
                     f"{r['peak_rss_mb']:,.0f} | {r.get('rows_per_s_vs_dmt', float('nan')):.2f} | "
                     f"{r.get('peak_rss_vs_dmt', float('nan')):.2f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, help="output folder of `t4r-dmt preprocess`")
    parser.add_argument("--windows", default="", help="A:B: train on windows A..B-1, evaluate on B")
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--repeat", type=int, default=1, help="runs per model, interleaved; the median is reported")
    args = parser.parse_args()
    result = run(Settings(args.data, args.windows, args.batch, args.epochs), tuple(args.models), args.out,
                 args.repeat)
    print(markdown(result))


if __name__ == "__main__":
    main()
