"""``NextItemConfig``: a session-based next-item model, typed and validated, and its choices."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from t4r_dmt.model.config import _finite_non_negative, config_from_dict
from t4r_dmt.search_space import check_space

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
#: Learning-rate schedules of a recipe (HF ``lr_scheduler_type`` names), each restarted every window.
LR_SCHEDULERS = ("linear", "cosine", "constant", "constant_with_warmup")

__all__ = ["AGGREGATIONS", "BODIES", "BODY_MASKINGS", "ITEM_ID_COLUMN", "LR_SCHEDULERS", "MASKINGS", "TRANSFORMERS",
           "NextItemConfig", "RecipeConfig"]


@dataclass
class RecipeConfig:
    """The training recipe a next-item preset carries: how each window is trained (the T4R paper tuned these per
    model and data set). ``None`` leaves the field to the run's training argument; a value is used unless the run
    gives the flag itself (``t4r-dmt train --learning_rate ...`` overrides the preset for that run).

    learning_rate: AdamW's peak rate. num_train_epochs: epochs over each window. per_device_train_batch_size:
    sessions per step. weight_decay: AdamW's decoupled weight decay [weight_decay]. lr_scheduler_type: one of
    ``LR_SCHEDULERS``, restarted at each window.
    """

    learning_rate: float | None = None
    num_train_epochs: float | None = None
    per_device_train_batch_size: int | None = None
    weight_decay: float = 0.0
    lr_scheduler_type: str | None = None

    def __post_init__(self) -> None:
        for name in ("learning_rate", "num_train_epochs"):
            value = getattr(self, name)
            if value is not None and not (isinstance(value, (int, float)) and 0 < value < float("inf")):
                raise ValueError(f"recipe.{name} must be a number > 0 or null; got {value!r}")
        batch = self.per_device_train_batch_size
        if batch is not None and (isinstance(batch, bool) or not isinstance(batch, int) or batch < 1):
            raise ValueError(f"recipe.per_device_train_batch_size must be an integer >= 1 or null; got {batch!r}")
        _finite_non_negative("recipe", self, ("weight_decay",))
        if self.lr_scheduler_type is not None and self.lr_scheduler_type not in LR_SCHEDULERS:
            raise ValueError(f"recipe.lr_scheduler_type must be one of {LR_SCHEDULERS} or null; "
                             f"got {self.lr_scheduler_type!r}")

    def training_arguments(self) -> dict[str, Any]:
        """The recipe's set fields as training arguments (``weight_decay`` always)."""
        return {k: v for k, v in asdict(self).items() if v is not None}


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
    rtd_sample_from_batch: rtd draws each replacement among the batch's masked items (by the generator's
        scores over them) instead of over the whole catalogue [rtd_sample_from_batch].
    top_k: metric cut-off.
    recipe: the training recipe (:class:`RecipeConfig`).
    search_space: what ``t4r-dmt tune`` may change (``t4r_dmt.search_space``): dotted path -> distribution.
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
    rtd_sample_from_batch: bool = False
    top_k: int = 20
    recipe: RecipeConfig = field(default_factory=RecipeConfig)
    search_space: dict[str, Any] = field(default_factory=dict)

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
        if not isinstance(self.rtd_sample_from_batch, bool):
            raise ValueError(f"rtd_sample_from_batch must be true or false; got {self.rtd_sample_from_batch!r}")
        if not isinstance(self.recipe, RecipeConfig):
            raise ValueError(f"recipe must be a RecipeConfig; got {type(self.recipe).__name__}")
        check_space(self)

    @property
    def item_dim(self) -> int:
        return self.item_embedding_dim or self.d_model

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> NextItemConfig:
        """Build from a dict of fields (``t4r_dmt.presets.load_preset`` reads the files); unknown keys are an
        error."""
        if isinstance(data, dict) and "recipe" in data:
            data = {**data, "recipe": config_from_dict(RecipeConfig, data["recipe"], ".recipe", "next-item ")}
        return config_from_dict(cls, data, kind="next-item ")

    def to_dict(self) -> dict[str, Any]:
        """Nested dicts; ``recipe``, ``rtd_sample_from_batch`` and ``search_space`` (added with the recipes) are
        left out at their defaults, so configs saved before they existed round-trip unchanged."""
        data = asdict(self)
        if self.recipe == RecipeConfig():
            del data["recipe"]
        if not self.rtd_sample_from_batch:
            del data["rtd_sample_from_batch"]
        if not self.search_space:
            del data["search_space"]
        return data
