"""Evaluation of the session-based next-item models (``t4r-dmt train --task next-item``).

The models (``NextItemConfig``, ``build_next_item_model``) are in ``t4r_dmt.model.next_item``. Evaluation
predicts the last item of each session of the next window against the full catalogue and averages NDCG@20,
recall@20 (= HR@20) and MRR@20 over every session of the window (not over batches).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from t4r_dmt.metrics.next_item import metrics_from_ranks, target_ranks


def evaluate_next_item(trainer: Any, eval_path: Path, k: int = 20) -> tuple[int, dict[str, float]]:
    """NDCG@k, recall@k and MRR@k of the last item of every session in ``eval_path``.

    Each batch's scores (B, V) over the full catalogue are reduced to the target's rank (B,), so memory stays
    at one batch of logits; the metrics are computed once over all ranks of the window.
    """
    from transformers4rec.torch.utils.data_utils import T4RecDataLoader

    model = trainer.model
    loader = T4RecDataLoader.parse(trainer.args.data_loader_engine).from_schema(
        trainer.schema, str(eval_path), trainer.args.per_device_eval_batch_size,
        max_sequence_length=trainer.args.max_sequence_length, drop_last=False, shuffle=False,
    )
    model.eval()
    ranks: list[np.ndarray] = []
    device = next(model.parameters()).device
    with torch.no_grad():
        for inputs, targets in loader:
            inputs = {name: t.to(device) for name, t in inputs.items()}
            out = model(inputs, targets=targets, training=False, testing=True)
            ranks.append(target_ranks(out["predictions"], out["labels"]))
    all_ranks = np.concatenate(ranks) if ranks else np.empty(0, dtype=np.int64)
    metrics = metrics_from_ranks(all_ranks, k=k)
    return len(all_ranks), metrics
