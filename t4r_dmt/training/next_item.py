"""Session-based next-item models (``t4r-dmt train --task next-item``), built from T4R's own blocks.

The model is T4R's standard session-based architecture (Moreira et al., RecSys 2021):
``TabularSequenceFeatures`` (item id + side features, masked by ``masking``) -> MLP projection to ``d_model`` ->
``TransformerBlock`` (XLNet, BERT, GPT-2, ELECTRA ...) -> ``NextItemPredictionTask`` with weight tying.
Evaluation predicts the last item of each session of the next window against the full catalogue and averages
NDCG@20, recall@20 (= HR@20) and MRR@20 over every session of the window (not over batches).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from t4r_dmt.metrics.next_item import apply_ranking_metric_fix, metrics_from_ranks, target_ranks

TRANSFORMERS = ("xlnet", "bert", "gpt2", "electra", "albert", "roberta")
MASKINGS = ("clm", "mlm", "plm", "rtd")
AGGREGATIONS = ("concat", "elementwise-sum-item-multiplication")

CONFIG_DIR = Path(__file__).resolve().parents[2] / "configs"


@dataclass
class NextItemConfig:
    """A session-based next-item model.

    Parameters
    ----------
    name: preset name reported in metrics.json.
    transformer: one of ``TRANSFORMERS`` (T4R config classes).
    masking: one of ``MASKINGS``: causal (clm), masked (mlm), permutation (plm), replacement detection (rtd).
    d_model, n_head, n_layer, dropout: transformer sizes.
    max_sequence_length: session length the model sees (the preprocessing truncates to 20).
    aggregation: how item and side features are combined (T4R's ``aggregation``).
    continuous_soft_embeddings: soft one-hot encoding of continuous features (the paper's SOHE).
    """

    name: str = "xlnet_clm"
    transformer: str = "xlnet"
    masking: str = "clm"
    d_model: int = 64
    n_head: int = 4
    n_layer: int = 2
    dropout: float = 0.1
    max_sequence_length: int = 20
    aggregation: str = "concat"
    continuous_soft_embeddings: bool = False
    top_k: int = 20

    def __post_init__(self) -> None:
        if self.transformer not in TRANSFORMERS:
            raise ValueError(f"transformer must be one of {TRANSFORMERS}, got {self.transformer!r}")
        if self.masking not in MASKINGS:
            raise ValueError(f"masking must be one of {MASKINGS}, got {self.masking!r}")
        if self.aggregation not in AGGREGATIONS:
            raise ValueError(f"aggregation must be one of {AGGREGATIONS}, got {self.aggregation!r}")
        if self.d_model % self.n_head:
            raise ValueError(f"d_model ({self.d_model}) must be a multiple of n_head ({self.n_head})")
        if self.masking == "rtd" and self.transformer not in {"electra", "xlnet", "bert", "albert", "roberta"}:
            raise ValueError("rtd masking needs a bidirectional transformer")
        for name in ("d_model", "n_head", "n_layer", "max_sequence_length", "top_k"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")

    @classmethod
    def load(cls, path_or_preset: str) -> NextItemConfig:
        """Load a JSON file, or ``configs/<preset>.json`` when given a preset name."""
        path = Path(path_or_preset)
        if not path.suffix:
            path = CONFIG_DIR / f"{path_or_preset}.json"
        if not path.exists():
            raise FileNotFoundError(f"next-item config {path} not found")
        data = json.loads(path.read_text())
        task = data.pop("task", "next-item")
        if task != "next-item":
            raise ValueError(f"{path} is a {task!r} config; --task next-item needs a next-item preset")
        data.setdefault("name", path.stem)
        return cls(**data)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _transformer_config(config: NextItemConfig) -> Any:
    from transformers4rec.config import transformer as tconf

    classes = {
        "xlnet": tconf.XLNetConfig, "bert": tconf.BertConfig, "gpt2": tconf.GPT2Config,
        "electra": tconf.ElectraConfig, "albert": tconf.AlbertConfig, "roberta": tconf.RobertaConfig,
    }
    kwargs: dict[str, Any] = {
        "d_model": config.d_model, "n_head": config.n_head, "n_layer": config.n_layer,
        "total_seq_length": config.max_sequence_length, "dropout": config.dropout,
    }
    if config.transformer != "gpt2":
        # T4R's build leaves the feed-forward at 3072 otherwise (STACK.md): keep it at 4 x d_model.
        kwargs["intermediate_size"] = 4 * config.d_model
    return classes[config.transformer].build(**kwargs)


def build_next_item_model(schema: Any, config: NextItemConfig) -> Any:
    """Build a T4R session-based model from the sessions schema and ``config``."""
    import transformers4rec.torch as tr

    apply_ranking_metric_fix()
    inputs = tr.TabularSequenceFeatures.from_schema(
        schema,
        max_sequence_length=config.max_sequence_length,
        continuous_projection=config.d_model,
        continuous_soft_embeddings=config.continuous_soft_embeddings,
        aggregation=config.aggregation,
        d_output=config.d_model,
        masking=config.masking,
    )
    body = tr.SequentialBlock(
        inputs,
        tr.MLPBlock([config.d_model]),
        tr.TransformerBlock(_transformer_config(config), masking=inputs.masking),
    )
    head = tr.Head(body, tr.NextItemPredictionTask(weight_tying=True), inputs=inputs)
    return tr.Model(head)


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
