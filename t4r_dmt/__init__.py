"""t4r_dmt: Deep Multifaceted Transformers for multi-objective ranking on Transformers4Rec + NVTabular."""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

__all__ = ["__version__", "build_model", "load_preset"]

_LAZY = {"build_model": "t4r_dmt.model", "load_preset": "t4r_dmt.presets"}


def __getattr__(name: str) -> Any:
    # Lazy: importing t4r_dmt must stay cheap (no torch / T4R) for the data and synth commands.
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 't4r_dmt' has no attribute {name!r}")
