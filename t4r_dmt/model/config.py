"""Typed, validated configuration of the DMT model and its ablations.

Defaults are the paper's and its public TF code's (``DMT_code/conf/settings/dmt.conf``): d_model 80, d_ff 320,
4 heads, 1 encoder and 1 decoder block, dropout 0.1, learned positions; MMoE with 4 experts of 512-256-128
and one 32-unit tower per task; a bias tower 32-16 with dropout 0.5; loss weights 1, 1. The dataclass defaults
of ``regularisation`` and ``multitask.dropout`` are 0 (a config saved before they existed trains as it did);
the shipped presets set the training recipe (``t4r_dmt/configs/*.json``).

A config is plain nested dataclasses: ``to_dict()`` / ``from_dict()`` round-trip through JSON, and
``t4r_dmt.presets.load_preset("dmt")`` reads the shipped ``t4r_dmt/configs/dmt.json``. Every field is validated in ``__post_init__``.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

from t4r_dmt.schema import BEHAVIORS, LABELS
from t4r_dmt.search_space import check_space

ENCODER_NAMES: tuple[str, ...] = ("bert", "roberta", "electra", "albert", "gpt2", "xlnet")
#: "learned": a learned vector per slot, slot 0 = the OLDEST kept event (as the paper's code); "learned_recent": slot 0
#: = the MOST RECENT event, so "the last click" has one embedding for every user whatever the sequence's length;
#: "none": no positions.
POSITION_ENCODINGS: tuple[str, ...] = ("learned", "learned_recent", "none")
#: "log2_buckets": a learned vector per log2 bucket of the time between an event and the request (the
#: ``{b}_time_gap_bucket_seq`` columns), added to the tokens as positions are (the paper's code's "time_add");
#: "none": no time signal. Data without those columns trains without it (logged once at build).
TIME_ENCODINGS: tuple[str, ...] = ("none", "log2_buckets")
#: The interest of a row whose sequence is empty (a user without carts, say): "decode": the decoder's output
#: for the target alone (its query residual and feed-forward: a second, deeper view of the target item, as the
#: paper's code computes it); "learned": one learned vector per behaviour (initially 0), as a mean of no
#: tokens is 0 for the DNN, so an empty sequence says "no events" and nothing about the target.
EMPTY_SEQUENCES: tuple[str, ...] = ("decode", "learned")
MULTITASK_KINDS: tuple[str, ...] = ("mmoe", "shared_bottom", "towers", "single_task")
BIAS_MODES: tuple[str, ...] = ("auto", "on", "off")
ORDER_LABELS: tuple[str, ...] = ("ctcvr", "cvr")
INTEREST_KINDS: tuple[str, ...] = ("transformer", "mean", "din", "dien")
#: The preset families a DMTConfig belongs to (t4r_dmt.presets).
FAMILIES: tuple[str, ...] = ("dmt", "baseline")
BIAS_INPUTS: tuple[str, ...] = ("position", "page", "neighbors")
#: How the bias logit y_b enters the training click probability: "additive" p_k = σ(u_k + y_b) (the paper's
#: "two_head_add"), "multiplicative" p_k = σ(u_k) · σ(y_b) (PAL, Guo et al. 2019; the code's "two_head_multiply"),
#: "pbm" p_k = σ(u_k) · exp(min(y_b, 0)) (the position-based model: y_b is the log examination itself, at most 0, so
#: its gradient is not halved where σ(y_b) would be near 0.5; with ``kind`` "monotone" the top position's is 0).
BIAS_FORMS: tuple[str, ...] = ("additive", "multiplicative", "pbm")
#: What the position and page part of the bias tower is: "mlp" (their embeddings go through the tower's MLP with
#: the categories), "scalar" (one learned scalar per position and one per page, added to the MLP's logit) or
#: "monotone" (a curve over the positions that cannot rise down the list, added to the MLP's logit; no page term).
BIAS_KINDS: tuple[str, ...] = ("mlp", "scalar", "monotone")



def _choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(choices)}; got {value!r}")


def _positive(name: str, value: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be a positive integer; got {value!r}")


def _probability(name: str, value: float) -> None:
    if not 0.0 <= value < 1.0:
        raise ValueError(f"{name} must be in [0, 1); got {value!r}")


def _units(name: str, units: list[int], allow_empty: bool = False) -> None:
    if not units and not allow_empty:
        raise ValueError(f"{name} must list at least one layer size")
    for u in units:
        _positive(f"{name} entries", u)


def _finite_non_negative(section: str, config: object, names: tuple[str, ...]) -> None:
    for name in names:
        value = getattr(config, name)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < math.inf:
            raise ValueError(f"{section}.{name} must be a finite number >= 0; got {value!r}")


def _weights(name: str, weights: list[float], n: int) -> None:
    if len(weights) != n:
        raise ValueError(f"{name} needs one value per task {LABELS}; got {weights!r}")
    if any(w < 0 for w in weights) or sum(weights) <= 0:
        raise ValueError(f"{name} must be >= 0 with a positive sum; got {weights!r}")


@dataclass
class EmbeddingConfig:
    """Entity embedding sizes. Item ⊕ category ⊕ brand is the token of every behaviour sequence and the
    target item; it must add up to ``transformer.d_model`` unless ``input_projection`` is set.
    ``init_std`` None means ``token_dim ** -0.5``, so tokens scaled by sqrt(d_model) start at unit scale.
    ``zero_unknown``: the null and out-of-vocabulary rows (codes 1 and 2) start at zero, like padding, instead of
    random. The vocabularies are fitted on the first window, whose rows are all in them, so these rows are not
    trained before the first evaluation: left random, every unseen item of the next window shares one arbitrary
    vector, whose score depends on the seed.
    ``unknown_dropout``: while training, each known item code (of the target and of every sequence event) is
    read as the out-of-vocabulary code with this probability (ID dropout, as in DropoutNet, Volkovs et al., NeurIPS
    2017), so the network learns to score an item from its other features as it must for the items first seen
    after the vocabularies were fitted; 0 (the default) reads every code as it is."""

    item_dim: int = 48
    category_dim: int = 16
    brand_dim: int = 16
    user_dim: int = 16
    use_user_features: bool = False
    input_projection: bool = False
    init_std: float | None = None
    zero_unknown: bool = True
    unknown_dropout: float = 0.0

    def __post_init__(self) -> None:
        for name in ("item_dim", "category_dim", "brand_dim", "user_dim"):
            _positive(f"embeddings.{name}", getattr(self, name))
        if isinstance(self.unknown_dropout, bool) or not 0 <= self.unknown_dropout < 1:
            raise ValueError(f"embeddings.unknown_dropout must be in [0, 1); got {self.unknown_dropout!r}")
        if self.init_std is not None and self.init_std <= 0:
            raise ValueError(f"embeddings.init_std must be > 0; got {self.init_std!r}")

    @property
    def token_dim(self) -> int:
        return self.item_dim + self.category_dim + self.brand_dim


@dataclass
class TransformerConfig:
    """One DeepInterestTransformer (all behaviours share these settings, not the weights).

    ``time_encoding``: see ``TIME_ENCODINGS``. ``match_features``: the interest vector also carries how strongly
    the sequence matches the target before the decoder's softmax normalises it away (``model/match.py``): two
    scalars per behaviour. ``pooled_sequences``: the shared input also carries each behaviour's masked mean of its
    token embeddings (what the DNN baseline reads), beside the transformer's interest, as the official code's
    ``embedding_combiner`` mean-pools every sequence feature into the MLP input. ``empty_sequence``: see
    ``EMPTY_SEQUENCES``. ``behaviors``: the read behaviours (``DMTConfig.behaviors``) that get a transformer
    (None: all); the others are read through their mean token, so they need ``pooled_sequences``. ``gate``: the
    interest (decoder output and match features) is scaled by a learned scalar that starts at 0 (ReZero,
    Bachlechner et al. 2020), so the network starts as the one without the transformer and draws on it as far as
    training finds it useful. All six default to the old network, so configs saved before they existed build it.
    """

    encoder: str = "bert"
    d_model: int = 80
    d_ff: int = 320
    n_heads: int = 4
    n_layers: int = 1
    n_decoder_layers: int = 1
    dropout: float = 0.1
    hidden_act: str = "relu"
    layer_norm_eps: float = 1e-6
    position_encoding: str = "learned"
    time_encoding: str = "none"
    match_features: bool = False
    pooled_sequences: bool = False
    empty_sequence: str = "decode"
    behaviors: list[str] | None = None
    gate: bool = False

    def __post_init__(self) -> None:
        _choice("transformer.encoder", self.encoder, ENCODER_NAMES)
        _choice("transformer.empty_sequence", self.empty_sequence, EMPTY_SEQUENCES)
        _choice("transformer.position_encoding", self.position_encoding, POSITION_ENCODINGS)
        _choice("transformer.time_encoding", self.time_encoding, TIME_ENCODINGS)
        for name in ("match_features", "pooled_sequences", "gate"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"transformer.{name} must be true or false; got {getattr(self, name)!r}")
        for name in ("d_model", "d_ff", "n_heads", "n_layers", "n_decoder_layers"):
            _positive(f"transformer.{name}", getattr(self, name))
        if self.d_model % self.n_heads:
            raise ValueError(
                f"transformer.d_model ({self.d_model}) must be divisible by n_heads ({self.n_heads})"
            )
        _probability("transformer.dropout", self.dropout)
        _choice("transformer.hidden_act", self.hidden_act, ("relu", "gelu"))
        if not 0 < self.layer_norm_eps < 1:
            raise ValueError(f"transformer.layer_norm_eps must be in (0, 1); got {self.layer_norm_eps!r}")


@dataclass
class MultiTaskConfig:
    """The part above the shared input: MMoE (default) or an ablation.

    ``dropout``: the expert dropout, after every hidden layer of the MMoE experts (of the shared bottom for
    "shared_bottom" / "single_task", of every layer of each tower for "towers"); never in the MMoE task towers
    or gates. Active in training only."""

    kind: str = "mmoe"
    num_experts: int = 4
    expert_units: list[int] = field(default_factory=lambda: [512, 256, 128])
    tower_units: list[int] = field(default_factory=lambda: [32])
    dropout: float = 0.0

    def __post_init__(self) -> None:
        _choice("multitask.kind", self.kind, MULTITASK_KINDS)
        _positive("multitask.num_experts", self.num_experts)
        _units("multitask.expert_units", self.expert_units)
        _units("multitask.tower_units", self.tower_units, allow_empty=True)
        _probability("multitask.dropout", self.dropout)


@dataclass
class BiasConfig:
    """The position-bias tower (``model/bias.py``) and how its logit y_b enters the training loss.

    ``enabled``: "auto" (on iff the schema has "bias" columns), "on", "off". ``inputs``: see ``BIAS_INPUTS``.
    ``form``: see ``BIAS_FORMS``; serving reads σ(u_k) in either. ``kind``: see ``BIAS_KINDS``; the scalars of
    "scalar" start at 0 and see no dropout. ``zero_init``: y_b starts at exactly 0 for every row: the position and
    page tables and the last layer of the MLP are zeros (the MLP's hidden layers and the category table are drawn
    as usual). ``target_features``: the tower reads the target's own category; false: only its neighbours'
    categories, so it cannot absorb the target's relevance. ``lr_multiplier``: the tower's parameters train with
    the learning rate times this (0 freezes them). ``observation_dropout``: the share of training rows whose bias
    is dropped, i.e. trained as if examined (Zhang et al., KDD 2023): y_b -> 0 ("additive"), σ(y_b) -> 1
    ("multiplicative"), exp(min(y_b, 0)) -> 1 ("pbm"); drawn per row, training only. The defaults (``LATER_BIAS_DEFAULTS``) are the tower and loss
    of configs saved before these keys existed.
    """

    enabled: str = "auto"
    embedding_dim: int = 5
    units: list[int] = field(default_factory=lambda: [32, 16])
    dropout: float = 0.5
    unbiased_loss_term: bool = False
    inputs: list[str] = field(default_factory=lambda: list(BIAS_INPUTS))
    form: str = "additive"
    kind: str = "mlp"
    zero_init: bool = False
    target_features: bool = True
    lr_multiplier: float = 1.0
    observation_dropout: float = 0.0

    def __post_init__(self) -> None:
        _choice("bias.enabled", self.enabled, BIAS_MODES)
        if not self.inputs or len(set(self.inputs)) != len(self.inputs):
            raise ValueError(f"bias.inputs must list distinct inputs of {BIAS_INPUTS}; got {self.inputs!r}")
        for name in self.inputs:
            _choice("bias.inputs entries", name, BIAS_INPUTS)
        _positive("bias.embedding_dim", self.embedding_dim)
        _units("bias.units", self.units, allow_empty=True)
        _probability("bias.dropout", self.dropout)
        _choice("bias.form", self.form, BIAS_FORMS)
        _choice("bias.kind", self.kind, BIAS_KINDS)
        for name in ("unbiased_loss_term", "zero_init", "target_features"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"bias.{name} must be true or false; got {getattr(self, name)!r}")
        _finite_non_negative("bias", self, ("lr_multiplier",))
        if isinstance(self.observation_dropout, bool) or not isinstance(self.observation_dropout, (int, float)):
            raise ValueError(f"bias.observation_dropout must be in [0, 1); got {self.observation_dropout!r}")
        _probability("bias.observation_dropout", self.observation_dropout)


@dataclass
class InterestConfig:
    """How each behaviour sequence becomes one interest vector (B, token_dim) -> the Table 1 baselines.

    ``kind``: "transformer" (DMT's DeepInterestTransformer), "mean" (DNN: masked mean pooling), "din" (target
    attention, Zhou et al. 2018), "dien" (GRU extractor + AUGRU evolution, Zhou et al. 2019).
    ``attention_units``: hidden widths of the DIN / DIEN attention MLP; ``aux_loss_weight``: weight of DIEN's
    auxiliary next-behaviour loss (0 turns it off)."""

    kind: str = "transformer"
    attention_units: list[int] = field(default_factory=lambda: [32, 16])
    aux_loss_weight: float = 1.0

    def __post_init__(self) -> None:
        _choice("interest.kind", self.kind, INTEREST_KINDS)
        _units("interest.attention_units", self.attention_units)
        if not self.aux_loss_weight >= 0:
            raise ValueError(f"interest.aux_loss_weight must be >= 0; got {self.aux_loss_weight!r}")


@dataclass
class LossConfig:
    """``Σ λ_k BCE_k``; ``order_label`` "ctcvr" trains the order head on every impression, "cvr" only on
    clicked ones."""

    task_weights: list[float] = field(default_factory=lambda: [1.0, 1.0])
    pos_weights: list[float] | None = None
    order_label: str = "ctcvr"

    def __post_init__(self) -> None:
        _weights("loss.task_weights", self.task_weights, len(LABELS))
        if self.pos_weights is not None:
            if len(self.pos_weights) != len(LABELS) or any(w <= 0 for w in self.pos_weights):
                raise ValueError(f"loss.pos_weights needs one value > 0 per task {LABELS}; "
                                 f"got {self.pos_weights!r}")
        _choice("loss.order_label", self.order_label, ORDER_LABELS)


@dataclass
class RegularisationConfig:
    """The regularisation of the training recipe (the dropouts live with their blocks).

    ``weight_decay``: AdamW's decoupled weight decay of the dense weights (linear and attention matrices); biases,
    LayerNorm and every embedding table are not decayed (``t4r_dmt.model.trainer.decay_parameter_names``). It is
    the default of ``t4r-dmt train --weight_decay``, which overrides it for one run.
    ``embedding_l2``: λ of the L2 penalty on the embedding rows a training batch reads, added to the loss (the
    official DMT code's embedding L2, 0.01 in its ``dmt.conf``): ``λ / B · Σ_t Σ_{r ∈ U_t} ||E_t[r]||²`` over the
    entity tables t (item, category, brand, user), U_t the distinct non-padding codes of table t in the batch
    (target item and every behaviour sequence), B the batch size. A row that no batch reads is never shrunk;
    each row in a batch is shrunk once however often it occurs. Training only: evaluation losses leave it out.
    """

    weight_decay: float = 0.0
    embedding_l2: float = 0.0

    def __post_init__(self) -> None:
        _finite_non_negative("regularisation", self, ("weight_decay", "embedding_l2"))


#: Transformer options added after the presets were first written, and their defaults (the old network).
LATER_TRANSFORMER_DEFAULTS: dict[str, Any] = {"pooled_sequences": False, "empty_sequence": "decode",
                                              "behaviors": None, "gate": False}
#: Bias options added after the presets were first written, and their defaults (the old tower and loss).
LATER_BIAS_DEFAULTS: dict[str, Any] = {"inputs": list(BIAS_INPUTS), "form": "additive", "kind": "mlp",
                                       "zero_init": False, "target_features": True, "lr_multiplier": 1.0,
                                       "observation_dropout": 0.0}


@dataclass
class CatalogueConfig:
    """Entity embeddings trained on the behaviour sequences as well (``t4r_dmt.model.cooccurrence``).

    ``weight``: λ of the co-occurrence loss added to the training loss (0 = off, the default: configs saved
    before it existed train as they did); ``temperature``: of its softmax over cosines; ``max_pairs``: pairs of
    consecutive events per batch at most. Training only."""

    weight: float = 0.0
    temperature: float = 0.1
    max_pairs: int = 1024

    def __post_init__(self) -> None:
        _finite_non_negative("catalogue", self, ("weight", "temperature"))
        if self.temperature == 0:
            raise ValueError("catalogue.temperature must be > 0; got 0")
        if not isinstance(self.max_pairs, int) or isinstance(self.max_pairs, bool) or self.max_pairs < 2:
            raise ValueError(f"catalogue.max_pairs must be an integer >= 2; got {self.max_pairs!r}")


@dataclass
class DMTConfig:
    """The whole model. ``behaviors`` lists the behaviour sequences read (``[]`` = no sequences).

    ``fast_dropout``: replace every ``nn.Dropout`` of the network, the HF encoders' included, by
    ``BitsDropout`` (``model/dropout.py``): the same inverted dropout with ``p`` resolved to 1/65,536 and a CPU
    mask ~2.5x cheaper to draw, from different random numbers than ``nn.Dropout``'s (so training runs differ
    from those with it off). Every preset sets it to true, as does the default (a config written before the
    option existed keeps its dropout); on CUDA and in evaluation both are ``nn.Dropout``.
    """

    name: str = "dmt"
    family: str = "dmt"
    """"dmt" (transformer interest) or "baseline" (the Table 1 DNN / DIN / DIEN extractors)."""
    behaviors: list[str] = field(default_factory=lambda: list(BEHAVIORS))
    embeddings: EmbeddingConfig = field(default_factory=EmbeddingConfig)
    transformer: TransformerConfig = field(default_factory=TransformerConfig)
    multitask: MultiTaskConfig = field(default_factory=MultiTaskConfig)
    bias: BiasConfig = field(default_factory=BiasConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    score_weights: list[float] = field(default_factory=lambda: [1.0, 1.0])
    interest: InterestConfig = field(default_factory=InterestConfig)
    fast_dropout: bool = True
    regularisation: RegularisationConfig = field(default_factory=RegularisationConfig)
    catalogue: CatalogueConfig = field(default_factory=CatalogueConfig)
    interactions: bool = True
    """Read the user-candidate interaction features (dense columns tagged ``interaction``); false: the ablation."""
    search_space: dict[str, Any] = field(default_factory=dict)
    """What ``t4r-dmt tune`` may change (``t4r_dmt.search_space``): dotted config path -> distribution."""

    def __post_init__(self) -> None:
        _choice("family", self.family, FAMILIES)
        if not isinstance(self.interactions, bool):
            raise ValueError(f"interactions must be true or false; got {self.interactions!r}")
        check_space(self)
        expected = "dmt" if self.interest.kind == "transformer" else "baseline"
        if self.family != expected:
            raise ValueError(f"family {self.family!r} does not match interest.kind {self.interest.kind!r} "
                             f"(expected family {expected!r})")
        if not isinstance(self.fast_dropout, bool):
            raise ValueError(f"fast_dropout must be true or false; got {self.fast_dropout!r}")
        if len(set(self.behaviors)) != len(self.behaviors):
            raise ValueError(f"behaviors must not repeat; got {self.behaviors!r}")
        for b in self.behaviors:
            _choice("behaviors entries", b, BEHAVIORS)
        _weights("score_weights", self.score_weights, len(LABELS))
        extracted = self.transformer.behaviors
        if extracted is not None and self.interest.kind == "transformer":
            if not isinstance(extracted, list) or any(b not in self.behaviors for b in extracted) \
                    or len(set(extracted)) != len(extracted):
                raise ValueError(f"transformer.behaviors must list distinct entries of behaviors {self.behaviors}; "
                                 f"got {extracted!r}")
            if set(extracted) != set(self.behaviors) and not self.transformer.pooled_sequences:
                raise ValueError(f"behaviors {sorted(set(self.behaviors) - set(extracted))} have no transformer "
                                 "(transformer.behaviors) and would not be read: set transformer.pooled_sequences")
        if not self.embeddings.input_projection and self.embeddings.token_dim != self.transformer.d_model:
            raise ValueError(
                f"embeddings item_dim + category_dim + brand_dim = {self.embeddings.token_dim} must equal "
                f"transformer.d_model = {self.transformer.d_model} (or set embeddings.input_projection)"
            )

    def to_dict(self) -> dict[str, Any]:
        """Nested dicts; ``interest``, ``interactions`` (added for the baselines and ablations), ``regularisation``
        (added with the training recipe), ``catalogue``, ``search_space``, the transformer's
        ``LATER_TRANSFORMER_DEFAULTS`` and the bias tower's ``LATER_BIAS_DEFAULTS`` are left out at their defaults,
        so preset files written before they existed still round-trip unchanged."""
        data = dataclasses.asdict(self)
        if self.interest == InterestConfig():
            del data["interest"]
        if self.regularisation == RegularisationConfig():
            del data["regularisation"]
        if self.catalogue == CatalogueConfig():
            del data["catalogue"]
        for key, default in LATER_TRANSFORMER_DEFAULTS.items():
            if data["transformer"][key] == default:
                del data["transformer"][key]
        for key, default in LATER_BIAS_DEFAULTS.items():
            if data["bias"][key] == default:
                del data["bias"][key]
        if self.interactions:
            del data["interactions"]
        if not self.search_space:
            del data["search_space"]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DMTConfig:
        """Build from nested dicts; unknown keys are an error (a typo must not be silently ignored).

        Without ``family`` (configs saved before it existed) the family follows from ``interest.kind``."""
        if isinstance(data, dict) and "family" not in data:
            kind = data.get("interest", {}).get("kind", "transformer") if isinstance(data.get("interest"), dict) \
                else "transformer"
            data = {**data, "family": "dmt" if kind == "transformer" else "baseline"}
        return _from_dict(cls, data, "")


_NESTED: dict[str, type] = {
    "embeddings": EmbeddingConfig,
    "transformer": TransformerConfig,
    "multitask": MultiTaskConfig,
    "bias": BiasConfig,
    "loss": LossConfig,
    "interest": InterestConfig,
    "regularisation": RegularisationConfig,
    "catalogue": CatalogueConfig,
}


def config_from_dict(cls: type, data: dict[str, Any], where: str = "", kind: str = "") -> Any:
    """``cls(**data)`` for a config dataclass, refusing what is not a JSON object and unknown keys (a typo must
    not be silently ignored); ``kind`` ("gbdt ", "next-item ") and ``where`` (".transformer") name it in errors."""
    if not isinstance(data, dict):
        raise ValueError(f"{kind}config{where} must be a JSON object; got {type(data).__name__}")
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValueError(f"unknown {kind}config key(s) {unknown} in config{where}; known: {sorted(known)}")
    return cls(**data)


def _from_dict(cls: type, data: dict[str, Any], where: str) -> Any:
    if cls is DMTConfig and isinstance(data, dict):
        data = {key: _from_dict(_NESTED[key], value, f".{key}") if key in _NESTED else value
                for key, value in data.items()}
    return config_from_dict(cls, data, where)
