"""Session-based next-item models (``t4r-dmt train --task next-item``), built from T4R's own blocks.

The model is T4R's session-based meta-architecture (Moreira et al., RecSys 2021):
``TabularSequenceFeatures`` (item id + optional side features, aggregated, projected to ``d_model`` and
masked by the training approach) -> MLP -> sequence body -> ``NextItemPredictionTask`` with weight tying.
The body is a HF transformer through T4R's configs (XLNet, BERT, GPT-2, ELECTRA ...) or the paper's GRU
baseline (:func:`t4r_dmt.baselines.gru_block`). Evaluation predicts the last item of each session of the
next window against the full catalogue and averages NDCG@20, recall@20 (= HR@20) and MRR@20 over every
session of the window (not over batches).

Two corrections to T4R 23.12, both following the paper's setup:

* Causal LM with XLNet uses ``attn_type="uni"`` (the paper's fixed setting). T4R's build default is
  ``"bi"``, with which every position attends to the next one, whose item is its label: the model
  learns to copy, and at evaluation the held-out last item is visible too (T4R issues #761, #765).
  CLM is therefore only allowed on causal bodies (XLNet-uni, GPT-2, GRU).
* Replacement token detection: T4R's ``ReplacementLanguageModeling`` masks like MLM but nothing calls
  its ``get_fake_tokens``, so ``masking="rtd"`` alone trains plain MLM. :class:`ReplacedTokenDetectionHead`
  adds the ELECTRA discriminator the paper used (generator and discriminator share the weights).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
import transformers
import transformers4rec.torch as tr
from transformers4rec.torch.tabular.aggregation import ElementwiseFeatureAggregation

from t4r_dmt.metrics.next_item import apply_ranking_metric_fix, metrics_from_ranks, target_ranks

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
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown next-item config key(s) {unknown}; known: {sorted(known)}")
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
    if config.transformer in ("bert", "roberta"):
        # T4R's build leaves the feed-forward at 3072 otherwise (STACK.md): keep it at 4 x d_model.
        kwargs["intermediate_size"] = 4 * config.d_model
    if config.transformer == "xlnet":
        kwargs["attn_type"] = "uni" if config.masking == "clm" else "bi"  # see the module docstring
    return classes[config.transformer].build(**kwargs)


class CausalXLNetModel(transformers.XLNetModel):
    """HF ``XLNetModel`` whose causal mask (``attn_type="uni"``) works under torch 2.x.

    transformers 4.30's ``XLNetModel.create_mask`` calls ``torch.ones(qlen, klen, device)`` with the device
    as a positional size, which torch 2 rejects (``TypeError: ones(): argument 'size' ...``).
    """

    def create_mask(self, qlen: int, mlen: int) -> torch.Tensor:
        """(qlen, mlen + qlen) float mask, 1.0 = masked: position i attends to memory and positions <= i."""
        mask = torch.ones((qlen, qlen + mlen), device=self.device)
        if self.same_length:
            mask_lo = mask[:, :qlen].tril(-1)
            mask.triu_(mlen + 1)
            mask[:, :qlen] += mask_lo
        else:
            mask.triu_(mlen + 1)
        return mask


def _sequence_block(config: NextItemConfig, masking: Any) -> Any:
    """The body after the input projection: a T4R ``TransformerBlock`` or the GRU block, (B, L, d_model)."""
    from t4r_dmt.baselines.gru import gru_block

    if config.transformer == "gru":
        return gru_block(config.d_model, config.d_model, config.n_layer, config.dropout, config.max_sequence_length)
    transformer_config = _transformer_config(config)
    if config.transformer == "xlnet" and config.masking == "clm":
        return tr.TransformerBlock(CausalXLNetModel(transformer_config), masking=masking)
    return tr.TransformerBlock(transformer_config, masking=masking)


class ItemMultipliedSum(ElementwiseFeatureAggregation):
    """The paper's element-wise merge: (sum of the side feature embeddings) x the item embedding.

    T4R's ``element-wise-sum-item-multi`` computes the same but reads ``schema.item_id_column_name``,
    which merlin-core 23.08's ``Schema`` lacks (``AttributeError`` on the first batch).

    Parameters
    ----------
    item_column: name of the item id feature.
    """

    def __init__(self, item_column: str) -> None:
        super().__init__()
        self.item_column = item_column

    def forward(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        """``{name: (B, L, D)}`` -> ``(B, L, D)``."""
        self._expand_non_sequential_features(inputs)
        self._check_input_shapes_equal(inputs)
        side = [value for name, value in inputs.items() if name != self.item_column]
        return inputs[self.item_column] * torch.stack(side).sum(dim=0)

    def forward_output_size(self, input_size: dict[str, Any]) -> Any:
        self._check_inputs_last_dim_equal(input_size)
        return self._get_agg_output_size(input_size, list(input_size.values())[0][-1])


def _aggregation(config: NextItemConfig) -> Any:
    if config.aggregation == "element-wise-sum-item-multi":
        return ItemMultipliedSum(ITEM_ID_COLUMN)
    return config.aggregation


class AttendRealItems:
    """Masking mixin: bidirectional transformers attend to the session's items only, not to its padding.

    T4R's ``TransformerBlock`` passes no attention mask with mlm / plm / rtd masking (STACK.md), so every
    position also attends to the padded tail of a short session (most of the 20 positions: sessions
    average ~3.5 items) and the output depends on how far a batch is padded. This mixin records the
    batch's padding in ``forward`` (as T4R's maskings record their targets) and hands it to the
    transformer as ``attention_mask`` (XLNet, BERT, ELECTRA ... all take it). Inference with mlm appends
    one [MASK] position after the last item; it is attended to.
    """

    padding_idx: int
    attention_mask: torch.Tensor | None = None

    def forward(self, inputs: torch.Tensor, item_ids: torch.Tensor, training: bool = False,
                testing: bool = False) -> torch.Tensor:
        """``inputs`` (B, L, D), ``item_ids`` (B, L) -> masked inputs (B, L or L + 1, D)."""
        outputs = super().forward(inputs, item_ids, training=training, testing=testing)  # type: ignore[misc]
        real = item_ids != self.padding_idx
        if outputs.shape[1] > real.shape[1]:
            rows = torch.arange(len(real), device=real.device)
            real = torch.cat([real, torch.zeros_like(real[:, :1])], dim=1)
            real[rows, real.sum(dim=1)] = True
        self.attention_mask = real.to(outputs.dtype)
        return outputs

    def transformer_optional_arguments(self) -> dict[str, Any]:
        return {"attention_mask": self.attention_mask} if self.attention_mask is not None else {}


class PaddingAwareMLM(AttendRealItems, tr.masking.MaskedLanguageModeling):
    """T4R's masked LM with the padding hidden from attention (:class:`AttendRealItems`)."""


class PaddingAwarePLM(AttendRealItems, tr.masking.PermutationLanguageModeling):
    """T4R's permutation LM with the padding hidden from attention (:class:`AttendRealItems`)."""


class PaddingAwareRTD(AttendRealItems, tr.masking.ReplacementLanguageModeling):
    """T4R's replacement-token masking with the padding hidden from attention (:class:`AttendRealItems`)."""


def _masking(config: NextItemConfig) -> Any:
    if config.masking == "clm":
        # Causal bodies never look right, so the padding at the end of a session is invisible already.
        return tr.masking.CausalLanguageModeling(hidden_size=config.d_model)
    if config.masking == "plm":
        return PaddingAwarePLM(hidden_size=config.d_model, plm_probability=config.plm_probability,
                               max_span_length=config.plm_max_span_length)
    if config.masking == "mlm":
        return PaddingAwareMLM(hidden_size=config.d_model, mlm_probability=config.mlm_probability)
    rtd = PaddingAwareRTD(hidden_size=config.d_model)
    # T4R's ReplacementLanguageModeling forwards mlm_probability as `kwargs=` and so drops it (0.15 stays).
    rtd.mlm_probability = config.mlm_probability
    return rtd


def select_features(schema: Any, features: list[str]) -> Any:
    """The sub-schema of ``features``; raises ``ValueError`` naming unknown columns and the available ones."""
    missing = [name for name in features if name not in schema.column_names]
    if missing:
        raise ValueError(f"features {missing} are not in the sessions schema (columns: {schema.column_names})")
    return schema.select_by_name(features)


def build_next_item_model(schema: Any, config: NextItemConfig) -> Any:
    """Build a T4R session-based model from the sessions schema and ``config``."""
    from merlin.schema import Tags

    apply_ranking_metric_fix()
    schema = select_features(schema, config.features)
    elementwise = config.aggregation != "concat"
    side_dim = config.item_dim if elementwise else config.side_embedding_dim
    continuous = schema.select_by_tag(Tags.CONTINUOUS).column_names
    if continuous and elementwise and not config.continuous_soft_embeddings:
        # T4R builds the aggregation before it would project the scalars to the item size.
        raise ValueError(f"aggregation {config.aggregation!r} needs continuous_soft_embeddings=True for the "
                         f"continuous features {continuous} (each must be an embedding of the item size)")
    post: list[Any] = []
    if config.input_dropout:
        post.append(tr.TabularDropout(dropout_rate=config.input_dropout))
    if config.layer_norm_featurewise:
        post.append("layer-norm")
    inputs = tr.TabularSequenceFeatures.from_schema(
        schema,
        max_sequence_length=config.max_sequence_length,
        aggregation=_aggregation(config),
        d_output=config.d_model,
        masking=_masking(config),
        post=post or None,
        embedding_dims={ITEM_ID_COLUMN: config.item_dim},
        embedding_dim_default=side_dim,
        embeddings_initializers={
            ITEM_ID_COLUMN: partial(torch.nn.init.normal_, mean=0.0, std=config.item_id_init_std)},
        continuous_soft_embeddings=config.continuous_soft_embeddings,
        soft_embedding_cardinality_default=config.soft_embedding_cardinality,
        soft_embedding_dim_default=side_dim,
    )
    body = tr.SequentialBlock(inputs, tr.MLPBlock([config.d_model]), _sequence_block(config, inputs.masking))
    task = tr.NextItemPredictionTask(
        weight_tying=True, loss=torch.nn.CrossEntropyLoss(label_smoothing=config.label_smoothing),
    )
    if config.masking == "rtd":
        return tr.Model(ReplacedTokenDetectionHead(body, task, inputs=inputs,
                                                   discriminator_weight=config.rtd_discriminator_weight))
    return tr.Model(tr.Head(body, task, inputs=inputs))


class ReplacedTokenDetectionHead(tr.Head):
    """T4R ``Head`` adding ELECTRA's replaced token detection to masked LM training (Clark et al., 2020).

    Training: the masked-LM loss of the generator (T4R's task), then each masked item is replaced by one
    sampled from the generator's own softmax (Gumbel-max, padding excluded), the corrupted sequence runs
    through the same body without masking (the discriminator shares every weight with the generator, the
    paper's ``rtd_tied_generator``), and a linear layer classifies each non-padded position as original or
    replaced. Loss = MLM loss + ``discriminator_weight`` x that binary cross-entropy. Evaluation and
    inference are those of MLM.

    Parameters
    ----------
    body: ``SequentialBlock(TabularSequenceFeatures with rtd masking, ...)`` returning (B, L, D).
    task: the ``NextItemPredictionTask``.
    inputs: the body's ``TabularSequenceFeatures``.
    discriminator_weight: weight of the discriminator loss.
    """

    def __init__(self, body: Any, task: Any, inputs: Any, discriminator_weight: float = 1.0) -> None:
        super().__init__(body, task, inputs=inputs)
        self.discriminator_weight = discriminator_weight
        self.discriminator = torch.nn.Linear(int(body.output_size()[-1]), 1)
        self.item_column = inputs.item_id

    def forward(  # same parameters as Head.forward
        self, body_outputs: Any, training: bool = False, testing: bool = False, targets: Any = None,
        call_body: bool = False, top_k: int | None = None, **kwargs: Any,
    ) -> Any:
        if training and not call_body:
            raise ValueError("replaced token detection needs the raw inputs (call_body=True)")
        outputs: Any = super().forward(body_outputs, training=training, testing=testing, targets=targets,
                                       call_body=call_body, top_k=top_k, **kwargs)
        if not training:
            return outputs
        (task,) = self.prediction_task_dict.values()
        masking: Any = task.masking
        padding_idx = int(masking.padding_idx)
        item_seq = body_outputs[self.item_column]  # (B, L) padded item codes
        logits = outputs["predictions"][task.task_name].detach().clone()  # (N_masked, V)
        logits[:, padding_idx] = -torch.inf
        corrupted, replaced, _ = masking.get_fake_tokens(item_seq, masking.masked_targets.flatten(), logits)
        hidden = self._encode_without_masking({**body_outputs, self.item_column: corrupted})
        scores = self.discriminator(hidden).squeeze(-1)  # (B, L)
        real = item_seq != padding_idx
        loss = torch.nn.functional.binary_cross_entropy_with_logits(scores[real], replaced[real].float())
        outputs["loss"] = outputs["loss"] + self.discriminator_weight * loss
        return outputs

    def _encode_without_masking(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        """``(B, L, D)`` body output of ``inputs`` with no position masked."""
        body: Any = self.body
        features, *blocks = list(body)
        # T4R's own merge step (TabularSequenceFeatures.forward before it masks).
        hidden = tr.MergeTabular.forward(features, inputs)
        hidden = features.aggregation(hidden)
        if features.projection_module is not None:
            hidden = features.projection_module(hidden)
        for block in blocks:
            hidden = block(hidden)
        return hidden


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
