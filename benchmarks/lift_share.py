"""Share of the relevance oracle's AUC lift that each model of a ``paper_table.py --work`` folder reaches.

Lift share = (AUC - 0.5) / (oracle AUC - 0.5), per seed, then mean ± std over seeds. Click: against the relevance
oracle of the evaluation day (``auc_click_relevance_oracle`` of ``seedS/raw/truth/oracle.json``; the planted
relevance without position). Order: against ``auc_order_relevance_oracle``, the planted order probability of an
examined item (without position, as for clicks), and against ``auc_order_oracle``, the planted order probability
with the position effect that no served score can know (a lower bound). A folder whose data were generated before
``t4r-dmt synth`` wrote the order relevance oracle is refused: regenerate its ``oracle.json`` (same arguments).

Usage: ``python benchmarks/lift_share.py --work WORK --presets gbdt dnn dmt --seeds 5``
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path


def lift_shares(work: Path, preset: str, seeds: int) -> dict[str, list[float]]:
    """Per seed: the AUCs and lift shares of ``preset`` in ``work/seedS/runs/<preset>/record.json``."""
    out: dict[str, list[float]] = {"auc_click": [], "auc_order": [], "share_click": [], "share_order": [],
                                   "share_order_with_position": []}
    for seed in range(seeds):
        path = work / f"seed{seed}" / "raw" / "truth" / "oracle.json"
        oracle = json.loads(path.read_text())
        if "auc_order_relevance_oracle" not in oracle:
            raise KeyError(f"{path} has no auc_order_relevance_oracle (written before it was added): regenerate the "
                           "data with t4r-dmt synth (same arguments; the data are identical) and use its oracle.json")
        record = json.loads((work / f"seed{seed}" / "runs" / preset / "record.json").read_text())
        out["auc_click"].append(record["auc_click"])
        out["auc_order"].append(record["auc_order"])
        out["share_click"].append((record["auc_click"] - 0.5) / (oracle["auc_click_relevance_oracle"] - 0.5))
        out["share_order"].append((record["auc_order"] - 0.5) / (oracle["auc_order_relevance_oracle"] - 0.5))
        out["share_order_with_position"].append((record["auc_order"] - 0.5) / (oracle["auc_order_oracle"] - 0.5))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--presets", nargs="+", default=["gbdt", "dnn", "dmt"])
    parser.add_argument("--seeds", type=int, default=5)
    args = parser.parse_args()
    print("| model | AUC click | click lift share | AUC order | order lift share | order lift share vs p_order "
          "(with position) |")
    print("|---|---:|---:|---:|---:|---:|")
    for preset in args.presets:
        v = lift_shares(args.work, preset, args.seeds)
        cells = [f"{statistics.mean(v[k]):.4f} ± {statistics.stdev(v[k]) if len(v[k]) > 1 else 0.0:.4f}"
                 for k in ("auc_click", "share_click", "auc_order", "share_order", "share_order_with_position")]
        print(f"| {preset} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
