"""Do the item embeddings know which items are alike? A probe against the generator's hidden item vectors.

On data of ``t4r-dmt synth --w_latent W`` every item has a hidden unit vector (``truth/item_latent.parquet``)
and the click relevance rises with its cosine to the user's recent views. A model can read that term only if
its item embeddings order item pairs as the hidden vectors do. For ``n_pairs`` random item pairs this prints
the Spearman correlation between the hidden cosine and

* the cosine of a trained run's item embeddings (the last window's checkpoint), for each ``--runs`` folder;
* the cosine of a PPMI-SVD of the event log's co-occurrences (events of one user up to 3 steps apart): what the
  log itself says about item similarity, a reference for how much of it any embedding could learn,

over all pairs and over the pairs of one category (the hidden vectors cluster by category, which the category
embeddings already carry). Writes ``--out`` (JSON).

Usage: ``python benchmarks/item_similarity_probe.py --raw W/raw --data W/data --runs W/runs/dmt W/runs/dnn
--out probe.json``
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

from t4r_dmt.io_utils import write_json

N_PAIRS = 20_000
SVD_DIM = 16
MAX_GAP = 3  # co-occurrence: events of one user up to this many steps apart


def pair_spearman(embedding: np.ndarray, hidden: np.ndarray, category: np.ndarray, n_pairs: int = N_PAIRS,
                  seed: int = 0) -> dict[str, float]:
    """Spearman of the embeddings' pair cosines against the hidden ones: (N, d), (N, h), (N,) -> dict.

    ``all_pairs`` over ``n_pairs`` random pairs (i != j); ``same_category`` over those of one category.
    """
    if not len(embedding) == len(hidden) == len(category) or len(embedding) < 2:
        raise ValueError(f"need >= 2 items and one row per item; got {len(embedding)}, {len(hidden)}, "
                         f"{len(category)}")
    rng = np.random.default_rng(seed)
    a = rng.integers(0, len(embedding), n_pairs)
    b = (a + rng.integers(1, len(embedding), n_pairs)) % len(embedding)  # never a == b

    def cosines(x: np.ndarray) -> np.ndarray:
        unit = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
        return np.asarray((unit[a] * unit[b]).sum(axis=1))

    learned, truth = cosines(embedding), cosines(hidden)
    same = category[a] == category[b]
    return {"all_pairs": float(spearmanr(learned, truth).statistic),
            "same_category": float(spearmanr(learned[same], truth[same]).statistic) if same.sum() > 2 else
            float("nan"),
            "n_same_category": int(same.sum())}


def cooccurrence_embedding(user: np.ndarray, item: np.ndarray, n_items: int, dim: int = SVD_DIM) -> np.ndarray:
    """PPMI-SVD item vectors of a time-ordered event log: (E,) user, (E,) item index -> (n_items, dim)."""
    counts = np.zeros((n_items, n_items))
    for gap in range(1, MAX_GAP + 1):
        same = user[gap:] == user[:-gap]
        np.add.at(counts, (item[gap:][same], item[:-gap][same]), 1.0)
        np.add.at(counts, (item[:-gap][same], item[gap:][same]), 1.0)
    total = counts.sum()
    expected = counts.sum(1, keepdims=True) @ counts.sum(0, keepdims=True) / max(total, 1.0)
    ppmi = np.maximum(np.log(np.maximum(counts, 1e-12) / np.maximum(expected, 1e-12)), 0.0)
    u, s, _ = np.linalg.svd(ppmi)
    return np.asarray(u[:, :dim] * np.sqrt(s[:dim]))


def run_embedding(run: Path, data: Path, product_id: np.ndarray) -> np.ndarray:
    """Rows of the item table of ``run``'s last checkpoint for ``product_id`` (N,) -> (N, d)."""
    import torch

    checkpoint = sorted((run / "checkpoints").glob("window_*/model.pt"))[-1]
    state = torch.load(checkpoint, map_location="cpu")
    tables = [v for k, v in state.items() if k.endswith("embedding.items.weight")]
    if len(tables) != 1:
        raise ValueError(f"{checkpoint}: expected one item embedding table, found {len(tables)}")
    vocabulary = pd.read_parquet(data / "workflow" / "categories" / "unique.item.parquet")
    code = pd.Series(vocabulary.index.to_numpy(), index=vocabulary["item"].to_numpy())
    return np.asarray(tables[0].numpy()[code.reindex(product_id).fillna(0).astype(int).to_numpy()])


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--raw", type=Path, required=True, help="the t4r-dmt synth folder (--w_latent > 0)")
    parser.add_argument("--data", type=Path, required=True, help="its t4r-dmt preprocess output")
    parser.add_argument("--runs", type=Path, nargs="*", default=[], help="run folders of t4r-dmt train")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    hidden = pd.read_parquet(args.raw / "truth" / "item_latent.parquet")
    items = pd.read_parquet(args.raw / "items.parquet", columns=["product_id", "category_id"])
    hidden = hidden.merge(items, on="product_id", validate="one_to_one")
    vectors = hidden.filter(like="latent_").to_numpy()
    category = hidden["category_id"].to_numpy()
    result: dict[str, dict[str, float]] = {}
    for run in args.runs:
        result[str(run)] = pair_spearman(run_embedding(run, args.data, hidden["product_id"].to_numpy()), vectors,
                                         category)
    events = pd.read_parquet(args.raw / "events.parquet", columns=["user_id", "product_id", "event_time"])
    index = pd.Series(np.arange(len(hidden)), index=hidden["product_id"].to_numpy())
    events = events[events["product_id"].isin(index.index)].sort_values(["user_id", "event_time"], kind="stable")
    log = cooccurrence_embedding(events["user_id"].to_numpy(), index[events["product_id"]].to_numpy(), len(hidden))
    result["ppmi_svd_of_the_event_log"] = pair_spearman(log, vectors, category)
    for name, row in result.items():
        print(f"{name}: all pairs {row['all_pairs']:.3f}, same category {row['same_category']:.3f}")
    write_json(args.out, result)


if __name__ == "__main__":
    main()
