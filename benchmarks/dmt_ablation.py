"""The DMT quality ablation: the ``dmt`` preset with one of its changes switched off at a time, over seeds.

Variants (each a copy of ``dmt`` with one switch; ``full`` is ``dmt`` itself):

* ``no_interactions``: ``interactions: false`` (no user-candidate match features);
* ``no_time_encoding``: ``transformer.time_encoding: none`` (no log2 time-gap buckets on the tokens);
* ``no_match_features``: ``transformer.match_features: false`` (no magnitude of the target attention);
* ``no_regularisation``: weight decay, embedding L2 and expert dropout 0;
* ``no_early_stopping``: one epoch per window instead of choosing 1..``--max_epochs`` on the training tail;
* ``no_catalogue``: ``catalogue.weight: 0`` (no co-occurrence loss on the entity embeddings);
* ``transformer_every_behaviour``: ``transformer.pooled_sequences: false, transformer.behaviors: null`` (a
  transformer on every behaviour and no mean-pooled sequences: the sequence path before this change);
* ``no_gate``: ``transformer.gate: false`` (the interest enters the MMoE at full scale from the start);
* ``no_bias_tower``: ``bias.enabled: off`` (the ``dmt_no_bias`` preset: no debiasing tower in training).

Usage::

    python benchmarks/dmt_ablation.py --work /tmp/paper_work --seeds 3 --out benchmarks/results/dmt_ablation

``--work`` may be a ``paper_table.py --work`` folder: its ``seedS/data`` is reused (else generated). Writes
``OUT/dmt_ablation.json`` and ``.md`` (mean ± std over seeds of the window-averaged AUCs, and the change against
``full`` per seed, averaged).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from paper_table import SYNTH_DEFAULT, Recipe, _prepare_synthetic, run_jobs  # noqa: E402

from t4r_dmt.io_utils import atomic_path, write_json  # noqa: E402
from t4r_dmt.metrics.seeds import mean_std  # noqa: E402
from t4r_dmt.presets import load_preset  # noqa: E402

VARIANTS: dict[str, dict[str, Any]] = {
    "full": {},
    "no_interactions": {"interactions": False},
    "no_time_encoding": {"transformer.time_encoding": "none"},
    "no_match_features": {"transformer.match_features": False},
    "no_regularisation": {"regularisation.weight_decay": 0.0, "regularisation.embedding_l2": 0.0,
                          "multitask.dropout": 0.0},
    "no_early_stopping": {},
    "no_catalogue": {"catalogue.weight": 0.0},
    "transformer_every_behaviour": {"transformer.pooled_sequences": False, "transformer.behaviors": None},
    "no_gate": {"transformer.gate": False},
    "no_bias_tower": {"bias.enabled": "off"},
}
METRICS = ("auc_click", "auc_order", "ndcg@10")


def variant_file(name: str, folder: Path) -> Path:
    from t4r_dmt.search_space import apply_params

    config = load_preset("dmt").to_dict()
    config.pop("search_space", None)
    config = apply_params({**config, "interactions": config.get("interactions", True)}, VARIANTS[name])
    config["name"] = f"dmt_{name}"
    path = folder / f"dmt_{name}.json"
    folder.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(config, indent=2) + "\n")
    load_preset(str(path))  # loads
    return path


def _summary(values: list[float]) -> dict[str, float]:
    mean, std = mean_std(values)
    return {"mean": mean, "std": std}


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results" / "dmt_ablation")
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--early_stopping_tail", type=float, default=0.1)
    parser.add_argument("--max_epochs", type=int, default=4)
    parser.add_argument("--jobs", type=int, default=1,
                        help="runs trained in parallel processes, each on cpu_count // jobs threads")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    jobs = []
    for seed in range(args.seeds):
        data, truth = _prepare_synthetic(args.work / f"seed{seed}", seed, SYNTH_DEFAULT)
        for name in args.variants:
            recipe = Recipe(0.0 if name == "no_early_stopping" else args.early_stopping_tail, args.max_epochs)
            config = str(variant_file(name, args.work / "ablation_presets"))
            jobs.append((data, None, args.work / f"seed{seed}" / "ablation" / name, "dmt", seed, 1.0, config, "",
                         recipe, name))
    records = run_jobs([job[:-1] for job in jobs], args.jobs)
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in args.variants}
    for job, record in zip(jobs, records, strict=True):
        runs[job[-1]].append({**record, "seed": job[4]})
    table = {}
    for name, rows in runs.items():
        table[name] = {m: _summary([r[m] for r in rows]) for m in METRICS}
        if "full" in runs and name != "full":
            table[name].update({f"delta_{m}": _summary([r[m] - f[m] for r, f in zip(rows, runs["full"], strict=True)])
                                for m in METRICS[:2]})
    lines = [f"DMT ablation ({args.seeds} seed(s), mean ± std; Δ = variant − full, per seed)", "",
             "| variant | AUC click | AUC order | NDCG@10 | Δ AUC click | Δ AUC order |", "|---|---:|---:|---:|---:|---:|"]
    for name, row in table.items():
        cells = [f"{row[m]['mean']:.4f} ± {row[m]['std']:.4f}" for m in METRICS]
        cells += [f"{row[f'delta_{m}']['mean']:+.4f} ± {row[f'delta_{m}']['std']:.4f}" if f"delta_{m}" in row else ""
                  for m in METRICS[:2]]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    md = "\n".join(lines)
    print(md)
    write_json(args.out / "dmt_ablation.json", {"seeds": args.seeds, "table": table, "per_seed": runs})
    with atomic_path(args.out / "dmt_ablation.md") as tmp:
        tmp.write_text(md + "\n")


if __name__ == "__main__":
    main()
