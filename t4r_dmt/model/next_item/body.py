"""The sequence body of a next-item model: a HF transformer through T4R's configs, or the GRU.

Causal LM with XLNet uses ``attn_type="uni"`` (the paper's fixed setting). T4R's build default is ``"bi"``,
with which every position attends to the next one, whose item is its label: the model learns to copy, and
at evaluation the held-out last item is visible too (T4R issues #761, #765). CLM is therefore only allowed
on causal bodies (XLNet-uni, GPT-2, GRU; ``BODY_MASKINGS``), and XLNet-uni runs as ``CausalXLNetModel``.
"""

from __future__ import annotations

from typing import Any

import torch
import transformers
import transformers4rec.torch as tr
from transformers4rec.config import transformer as tconf

from t4r_dmt.model.next_item.config import NextItemConfig
from t4r_dmt.model.next_item.gru import gru_block

TRANSFORMER_CONFIGS: dict[str, Any] = {
    "xlnet": tconf.XLNetConfig, "bert": tconf.BertConfig, "gpt2": tconf.GPT2Config,
    "electra": tconf.ElectraConfig, "albert": tconf.AlbertConfig, "roberta": tconf.RobertaConfig,
}


def transformer_config(config: NextItemConfig) -> Any:
    """The T4R/HF config of the transformer body ``config.transformer`` names."""
    kwargs: dict[str, Any] = {
        "d_model": config.d_model, "n_head": config.n_head, "n_layer": config.n_layer,
        "total_seq_length": config.max_sequence_length, "dropout": config.dropout,
    }
    if config.transformer in ("bert", "roberta"):
        # T4R's build leaves the feed-forward at 3072 otherwise (STACK.md): keep it at 4 x d_model.
        kwargs["intermediate_size"] = 4 * config.d_model
    if config.transformer == "xlnet":
        kwargs["attn_type"] = "uni" if config.masking == "clm" else "bi"  # see the module docstring
    return TRANSFORMER_CONFIGS[config.transformer].build(**kwargs)


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


def sequence_block(config: NextItemConfig, masking: Any) -> Any:
    """The body after the input projection: a T4R ``TransformerBlock`` or the GRU block, ``(B, L, d_model)``."""
    if config.transformer == "gru":
        return gru_block(config.d_model, config.d_model, config.n_layer, config.dropout, config.max_sequence_length)
    hf_config = transformer_config(config)
    if config.transformer == "xlnet" and config.masking == "clm":
        return tr.TransformerBlock(CausalXLNetModel(hf_config), masking=masking)
    return tr.TransformerBlock(hf_config, masking=masking)
