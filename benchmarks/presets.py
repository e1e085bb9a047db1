"""Quality of the DMT presets against the planted truth (the model issue's table).

Usage::

    python benchmarks/presets.py [--presets dmt dmt_no_bias dmt_trans dmt_single_task] [--seeds 1]
                                 [--epochs 1] [--out benchmarks/results/presets]

Generates the default synthetic data (``t4r-dmt synth``), preprocesses it once, trains every preset with the
incremental time-window loop, and reports each preset's average click / order AUC next to the truth's oracles,
with the share of the relevance-only oracle's AUC lift it captures: (AUC - 0.5) / (oracle - 0.5).
Prints a markdown table and writes ``OUT.json`` and ``OUT.md``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from t4r_dmt.io_utils import atomic_path, write_json

DEFAULT_PRESETS = ("dmt", "dmt_no_bias", "dmt_trans", "dmt_single_task")
RESULTS = Path(__file__).resolve().parent / "results" / "presets"


def lift_share(auc: float, oracle: float) -> float:
    """Share of the oracle's AUC lift over random that ``auc`` captures."""
    return (auc - 0.5) / (oracle - 0.5)


def run(presets: tuple[str, ...] = DEFAULT_PRESETS, seeds: int = 1, epochs: float = 1.0,
        users: int = 2000, items: int = 1000, days: int = 4, requests_per_day: int = 1500,
        out: Path = RESULTS) -> dict[str, Any]:
    from t4r_dmt.commands.train import run as train
    from t4r_dmt.preprocess.arguments import PreprocessArguments
    from t4r_dmt.preprocess.command import run as preprocess
    from t4r_dmt.synth.command import SynthArguments
    from t4r_dmt.synth.command import run as synth
    from t4r_dmt.training.arguments import DataArguments, RunTrainingArguments

    rows: dict[str, list[dict[str, float]]] = {p: [] for p in presets}
    oracles: list[dict[str, float]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(seeds):
            root = Path(tmp) / f"seed{seed}"
            synth(SynthArguments(out=str(root / "raw"), users=users, items=items, days=days,
                                 requests_per_day=requests_per_day, seed=seed))
            preprocess(PreprocessArguments(events=str(root / "raw" / "events.parquet"),
                                           impressions=str(root / "raw" / "impressions.parquet"),
                                           items=str(root / "raw" / "items.parquet"), out=str(root / "data"),
                                           with_sessions=False))
            oracle = json.loads((root / "raw" / "truth" / "oracle.json").read_text())
            oracles.append({"click": oracle["all_days"]["auc_click_relevance_oracle"],
                            "click_with_position": oracle["all_days"]["auc_click_oracle"],
                            "order": oracle["all_days"]["auc_order_oracle"],
                            "popularity": oracle["auc_click_popularity"]})
            for preset in presets:
                start = time.perf_counter()
                result = train(
                    DataArguments(data=str(root / "data"), out=str(root / "runs" / preset), config=preset),
                    RunTrainingArguments(output_dir=str(root / "runs" / preset / "trainer"), seed=seed,
                                         num_train_epochs=epochs, report_to=[], disable_tqdm=True),
                )
                avg = result["average"]
                rows[preset].append({"auc_click": avg["auc_click"], "auc_order": avg["auc_order"],
                                     "ndcg@10": avg["ndcg@10"], "seconds": time.perf_counter() - start})
    oracle_click = statistics.mean(o["click"] for o in oracles)
    oracle_order = statistics.mean(o["order"] for o in oracles)
    table = [{
        "preset": preset,
        "auc_click": statistics.mean(r["auc_click"] for r in runs),
        "auc_order": statistics.mean(r["auc_order"] for r in runs),
        "ndcg@10": statistics.mean(r["ndcg@10"] for r in runs),
        "lift_click": statistics.mean(lift_share(r["auc_click"], oracle_click) for r in runs),
        "lift_order": statistics.mean(lift_share(r["auc_order"], oracle_order) for r in runs),
        "train_seconds": statistics.median(r["seconds"] for r in runs),
    } for preset, runs in rows.items()]
    result = {"seeds": seeds, "epochs": epochs, "oracle": {"auc_click_relevance": oracle_click,
              "auc_order": oracle_order, "auc_click_popularity": statistics.mean(o["popularity"] for o in oracles)},
              "presets": table, "per_seed": rows}
    md = markdown(result)
    print(md)
    write_json(out.with_suffix(".json"), result)
    with atomic_path(out.with_suffix(".md")) as tmp_md:
        tmp_md.write_text(md + "\n")
    return result


def markdown(result: dict[str, Any]) -> str:
    o = result["oracle"]
    lines = [
        f"Synthetic data, {result['seeds']} seed(s), {result['epochs']:g} epoch(s) per window; oracle AUC click "
        f"(relevance only) {o['auc_click_relevance']:.4f}, order {o['auc_order']:.4f}, popularity click "
        f"{o['auc_click_popularity']:.4f}.",
        "",
        "| preset | AUC click | AUC order | NDCG@10 | lift share click | lift share order | train s |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in result["presets"]:
        lines.append(f"| {r['preset']} | {r['auc_click']:.4f} | {r['auc_order']:.4f} | {r['ndcg@10']:.4f} | "
                     f"{r['lift_click']:.2f} | {r['lift_order']:.2f} | {r['train_seconds']:.0f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--presets", nargs="+", default=list(DEFAULT_PRESETS))
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--epochs", type=float, default=1.0)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    run(tuple(args.presets), args.seeds, args.epochs, out=args.out)


if __name__ == "__main__":
    main()
