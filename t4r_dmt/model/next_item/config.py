"""``NextItemConfig``: a session-based next-item model, typed and validated, and its choices."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from t4r_dmt.model.config import config_from_dict

TRANSFORMERS = ("xlnet", "bert", "gpt2", "electra", "albert", "roberta")
BODIES = TRANSFORMERS + ("gru",)
MASKINGS = ("clm", "mlm", "plm", "rtd")
#: Which training approaches each body supports without seeing its labels.
BODY_MASKINGS: dict[str, tuple[str, ...]] = {
    "xlnet": MASKINGS, "gpt2": ("clm",), "gru": ("clm",),
    "bert": ("mlm", "rtd"), "electra": ("mlm", "rtd"), "albert": ("mlm", "rtd"), "roberta": ("mlm", "rtd"),
}
#: Feature aggregations (T4R registry names): concatenation, element-wise sum, element-wise sum of the side
#: features multiplied by the item embedding (the paper's "element-wise merge").
AGGREGATIONS = ("concat", "element-wise-sum", "element-wise-sum-item-multi")
ITEM_ID_COLUMN = "item_id-list"

__all__ = ["AGGREGATIONS", "BODIES", "BODY_MASKINGS", "ITEM_ID_COLUMN", "MASKINGS", "TRANSFORMERS",
           "NextItemConfig"]


def _item_only() -> list[str]:
    return [ITEM_ID_COLUMN]


@dataclass
class NextItemConfig:
    """A session-based next-item model (the paper's hyper-parameter names in brackets).

    Parameters
    ----------
    name: preset name reported in metrics.json.
    transformer: sequence body, one of ``BODIES``: a T4R transformer config or ``gru``.
    masking: training approach, one of ``BODY_MASKINGS[transformer]``: causal (clm), masked (mlm),
        permutation (plm) or replacement token detection (rtd) language modeling.
    d_model, n_head, n_layer, dropout: body sizes (for ``gru``: hidden size and layers; n_head unused).
    max_sequence_length: session length the model sees (the preprocessing keeps 20).
    item_embedding_dim: item id embedding size [item_embedding_dim]; 0 = d_model.
    features: session columns fed to the model; the item id alone (the paper's Table 2) or with side
        information (category, brand, event_type, time features ...).
    aggregation: how the features are merged, one of ``AGGREGATIONS`` [input_features_aggregation].
    side_embedding_dim: embedding size of the other categorical features (and of soft one-hot embeddings)
        with ``concat``; element-wise aggregations use ``item_embedding_dim`` for every feature.
    continuous_soft_embeddings: soft one-hot encoding of continuous features [numeric_features_soft_...].
    soft_embedding_cardinality: bins of each soft one-hot encoding.
    input_dropout: dropout on each feature embedding [input_dropout].
    layer_norm_featurewise: layer norm on each feature embedding [layer_norm_featurewise].
    label_smoothing: of the cross-entropy over the catalogue [label_smoothing].
    item_id_init_std: std of the normal init of the item embeddings [item_id_embeddings_init_std].
    mlm_probability: share of items masked by mlm and rtd [mlm_probability].
    plm_probability, plm_max_span_length: permutation LM settings [plm_probability, plm_max_span_length].
    rtd_discriminator_weight: weight of the discriminator loss [rtd_discriminator_loss_weight].
    top_k: metric cut-off.
    """

    name: str = "xlnet_clm"
    family: str = "next_item"
    transformer: str = "xlnet"
    masking: str = "clm"
    d_model: int = 64
    n_head: int = 4
    n_layer: int = 2
    dropout: float = 0.1
    max_sequence_length: int = 20
    item_embedding_dim: int = 0
    features: list[str] = field(default_factory=_item_only)
    aggregation: str = "concat"
    side_embedding_dim: int = 16
    continuous_soft_embeddings: bool = False
    soft_embedding_cardinality: int = 10
    input_dropout: float = 0.0
    layer_norm_featurewise: bool = True
    label_smoothing: float = 0.0
    item_id_init_std: float = 0.05
    mlm_probability: float = 0.15
    plm_probability: float = 1 / 6
    plm_max_span_length: int = 5
    rtd_discriminator_weight: float = 1.0
    top_k: int = 20

    def __post_init__(self) -> None:
        if self.family != "next_item":
            raise ValueError(f"a NextItemConfig has family 'next_item'; got {self.family!r}")
        if self.transformer not in BODIES:
            raise ValueError(f"transformer must be one of {BODIES}, got {self.transformer!r}")
        if self.masking not in MASKINGS:
            raise ValueError(f"masking must be one of {MASKINGS}, got {self.masking!r}")
        if self.masking not in BODY_MASKINGS[self.transformer]:
            raise ValueError(f"{self.transformer} supports masking {BODY_MASKINGS[self.transformer]}, not "
                             f"{self.masking!r} (a bidirectional body would see the labels of causal LM)")
        if self.aggregation not in AGGREGATIONS:
            raise ValueError(f"aggregation must be one of {AGGREGATIONS}, got {self.aggregation!r}")
        for name in ("d_model", "n_head", "n_layer", "max_sequence_length", "top_k", "side_embedding_dim",
                     "soft_embedding_cardinality", "plm_max_span_length"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.d_model % self.n_head:
            raise ValueError(f"d_model ({self.d_model}) must be a multiple of n_head ({self.n_head})")
        if self.item_embedding_dim < 0:
            raise ValueError(f"item_embedding_dim must be >= 0 (0 = d_model), got {self.item_embedding_dim}")
        for name in ("dropout", "input_dropout", "label_smoothing"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {getattr(self, name)}")
        for name in ("mlm_probability", "plm_probability"):
            if not 0.0 < getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in (0, 1], got {getattr(self, name)}")
        if self.item_id_init_std <= 0 or self.rtd_discriminator_weight < 0:
            raise ValueError("item_id_init_std must be > 0 and rtd_discriminator_weight >= 0")
        self.features = list(self.features)
        if ITEM_ID_COLUMN not in self.features or len(set(self.features)) != len(self.features):
            raise ValueError(f"features must hold {ITEM_ID_COLUMN!r} once, got {self.features}")
        if self.aggregation != "concat" and len(self.features) < 2:
            raise ValueError(f"aggregation {self.aggregation!r} needs side features besides the item id")

    @property
    def item_dim(self) -> int:
        return self.item_embedding_dim or self.d_model

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> NextItemConfig:
        """Build from a dict of fields (``t4r_dmt.presets.load_preset`` reads the files); unknown keys are an
        error."""
        return config_from_dict(cls, data, kind="next-item ")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
