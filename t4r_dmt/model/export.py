"""Export a trained DMT model for inference as TorchScript.

``torch.jit.trace`` works on the whole ``tr.Model`` in eval mode under ``torch.no_grad()``; ``strict=False`` is
required only because the output is a dict (its keys ``p_click``, ``p_order``, ``score`` never change with the
input). Trace with a batch padded the way serving will pad it (the data loader pads every list column to
``max_sequence_length``); other batch sizes then work. ``torch.jit.script`` does not work on T4R models.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from transformers4rec import torch as tr

from t4r_dmt.io_utils import atomic_path


def export_torchscript(model: tr.Model, batch: dict[str, torch.Tensor],
                       path: str | os.PathLike[str]) -> torch.jit.ScriptModule:
    """Trace ``model`` on ``batch`` (padded inputs, no targets) and save it to ``path`` atomically.

    The loaded module (``torch.jit.load(path)``) maps the same input dict to ``{"p_click", "p_order",
    "score"}``, each ``(B,)``.
    """
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            traced = torch.jit.trace(model, (dict(batch),), strict=False)
    finally:
        model.train(was_training)
    with atomic_path(Path(path)) as tmp:
        traced.save(str(tmp))
    return traced
