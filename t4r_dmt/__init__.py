"""t4r_dmt: Deep Multifaceted Transformers for multi-objective ranking on Transformers4Rec + NVTabular."""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

__all__ = ["__version__", "build_model", "load_config"]


def __getattr__(name: str) -> Any:
    # Lazy: importing t4r_dmt must stay cheap (no torch / T4R) for the data and synth commands.
    if name in {"build_model", "load_config"}:
        from t4r_dmt import model

        return getattr(model, name)
    raise AttributeError(f"module 't4r_dmt' has no attribute {name!r}")
