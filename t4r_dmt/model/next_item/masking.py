"""The training approach of a next-item model (``NextItemConfig.masking``): T4R's maskings, with the padding
hidden from the attention of bidirectional transformers."""

from __future__ import annotations

from typing import Any

import torch
import transformers4rec.torch as tr

from t4r_dmt.model.next_item.config import NextItemConfig


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


def build_masking(config: NextItemConfig) -> Any:
    """The T4R masking of ``config.masking`` ("clm", "mlm", "plm" or "rtd")."""
    if config.masking == "clm":
        # Causal bodies never look right, so the padding at the end of a session is invisible already.
        return tr.masking.CausalLanguageModeling(hidden_size=config.d_model)
    if config.masking == "plm":
        return PaddingAwarePLM(hidden_size=config.d_model, plm_probability=config.plm_probability,
                               max_span_length=config.plm_max_span_length)
    if config.masking == "mlm":
        return PaddingAwareMLM(hidden_size=config.d_model, mlm_probability=config.mlm_probability)
    rtd = PaddingAwareRTD(hidden_size=config.d_model, sample_from_batch=config.rtd_sample_from_batch)
    # T4R's ReplacementLanguageModeling forwards mlm_probability as `kwargs=` and so drops it (0.15 stays).
    rtd.mlm_probability = config.mlm_probability
    return rtd
