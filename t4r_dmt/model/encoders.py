"""HuggingFace transformer encoders, chosen by name among Transformers4Rec's configs.

T4R's ``<Name>Config.build(d_model, n_head, n_layer, total_seq_length, ...)`` fixes the feed-forward width at
4·d_model (BERT: 3072) and, for BERT-like models, passes ``dropout`` under a name the HF config ignores; the
attributes below are therefore set explicitly after ``build`` so ``d_ff``, dropout and the layer-norm epsilon
mean the same thing for every encoder.

Positions: the DMT adds its own learned position table (``DeepInterestTransformer``); an encoder's built-in
absolute position table is zeroed and frozen so there is exactly one position signal whatever the encoder.
XLNet's relative attention has no such table and always encodes relative positions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import transformers
from torch import nn
from transformers4rec.config import transformer as t4r_transformer

from t4r_dmt.model.config import ENCODER_NAMES, TransformerConfig


@dataclass(frozen=True)
class _EncoderKind:
    config_cls: Any  # a T4R config class (T4RecConfig + a transformers config)
    model_cls: Any  # the HF model it configures
    d_ff: str
    dropouts: tuple[str, ...]
    eps: str
    activation: str
    positions: str | None  # dotted path of the built-in absolute position table
    pooler: bool  # whether the HF model takes add_pooling_layer


def _bert_like(config_cls: Any, model_cls: Any, pooler: bool) -> _EncoderKind:
    return _EncoderKind(config_cls, model_cls, d_ff="intermediate_size",
                        dropouts=("hidden_dropout_prob", "attention_probs_dropout_prob"), eps="layer_norm_eps",
                        activation="hidden_act", positions="embeddings.position_embeddings", pooler=pooler)


ENCODERS: dict[str, _EncoderKind] = {
    "bert": _bert_like(t4r_transformer.BertConfig, transformers.BertModel, pooler=True),
    "roberta": _bert_like(t4r_transformer.RobertaConfig, transformers.RobertaModel, pooler=True),
    "electra": _bert_like(t4r_transformer.ElectraConfig, transformers.ElectraModel, pooler=False),
    "albert": _bert_like(t4r_transformer.AlbertConfig, transformers.AlbertModel, pooler=True),
    "gpt2": _EncoderKind(t4r_transformer.GPT2Config, transformers.GPT2Model, d_ff="n_inner",
                         dropouts=("resid_pdrop", "embd_pdrop", "attn_pdrop"), eps="layer_norm_epsilon",
                         activation="activation_function", positions="wpe", pooler=False),
    "xlnet": _EncoderKind(t4r_transformer.XLNetConfig, transformers.XLNetModel, d_ff="d_inner",
                          dropouts=("dropout",), eps="layer_norm_eps", activation="ff_activation",
                          positions=None, pooler=False),
}
if set(ENCODERS) != set(ENCODER_NAMES):  # the config's choices and this registry must agree
    raise ImportError(f"encoder registry {sorted(ENCODERS)} != config choices {sorted(ENCODER_NAMES)}")


def build_hf_config(cfg: TransformerConfig, max_length: int) -> transformers.PretrainedConfig:
    """The T4R/HF config of encoder ``cfg.encoder`` for sequences of up to ``max_length`` tokens."""
    if cfg.encoder not in ENCODERS:
        raise ValueError(f"unknown encoder {cfg.encoder!r}; choose one of {', '.join(ENCODERS)}")
    kind = ENCODERS[cfg.encoder]
    hf_config = kind.config_cls.build(
        d_model=cfg.d_model, n_head=cfg.n_heads, n_layer=cfg.n_layers, total_seq_length=max_length,
        hidden_act=cfg.hidden_act, dropout=cfg.dropout, layer_norm_eps=cfg.layer_norm_eps,
    )
    setattr(hf_config, kind.d_ff, cfg.d_ff)
    for name in kind.dropouts:
        setattr(hf_config, name, cfg.dropout)
    setattr(hf_config, kind.eps, cfg.layer_norm_eps)
    setattr(hf_config, kind.activation, cfg.hidden_act)
    if cfg.encoder == "xlnet":
        # No memory across batches: each impression's sequence stands alone.
        hf_config.mem_len = None
        hf_config.use_mems_eval = False
        hf_config.use_mems_train = False
    return hf_config


class SequenceEncoder(nn.Module):
    """A HuggingFace encoder over already-embedded tokens, padding masked.

    Shapes: ``tokens (B, L, d_model)``, ``mask (B, L)`` bool (True = real event) ``-> (B, L, d_model)``.
    """

    def __init__(self, cfg: TransformerConfig, max_length: int) -> None:
        super().__init__()
        kind = ENCODERS[cfg.encoder]
        self.hf_config = build_hf_config(cfg, max_length)
        kwargs = {"add_pooling_layer": False} if kind.pooler else {}
        self.model = kind.model_cls(self.hf_config, **kwargs)
        if kind.positions is not None:
            table = self.model.get_submodule(kind.positions)
            with torch.no_grad():
                table.weight.zero_()
            table.weight.requires_grad_(False)
        self.d_model = cfg.d_model

    def forward(self, tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        out = self.model(inputs_embeds=tokens, attention_mask=mask.to(tokens.dtype), return_dict=False)
        return out[0]
