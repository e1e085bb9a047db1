"""Replaced token detection (ELECTRA, Clark et al. 2020) for next-item models.

T4R's ``ReplacementLanguageModeling`` masks like MLM but nothing calls its ``get_fake_tokens``, so
``masking="rtd"`` alone trains plain MLM. :class:`ReplacedTokenDetectionHead` adds the discriminator the
paper used (generator and discriminator share the weights).
"""

from __future__ import annotations

from typing import Any

import torch
import transformers4rec.torch as tr


class ReplacedTokenDetectionHead(tr.Head):
    """T4R ``Head`` adding ELECTRA's replaced token detection to masked LM training (Clark et al., 2020).

    Training: the masked-LM loss of the generator (T4R's task), then each masked item is replaced by one
    sampled from the generator's own softmax (Gumbel-max, padding excluded; over the whole catalogue, or over
    the batch's masked items when the masking has ``sample_from_batch``), the corrupted sequence runs
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
        if masking.sample_from_batch:
            # T4R's get_fake_tokens then samples an index among the batch's masked items: (N_masked, N_masked).
            targets = masking.masked_targets.flatten()
            logits = logits[:, targets[targets != padding_idx]]
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
