"""Synthetic events + ranking impressions with planted ground truth (``t4r-dmt synth``)."""

from t4r_dmt.synth.config import SynthConfig
from t4r_dmt.synth.generator import SynthResult, generate

__all__ = ["SynthConfig", "SynthResult", "generate"]
