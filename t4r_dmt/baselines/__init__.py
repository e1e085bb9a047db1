"""Baselines of the Transformers4Rec paper's comparison.

Non-neural scorers (:class:`Popularity`, :class:`VSkNN`) read the session windows directly and run the
same incremental protocol and metrics as the T4R models (:func:`evaluate_scorer`). The GRU baseline is a
next-item model body (``t4r_dmt.model.next_item.gru``) trained by the same loop as the transformers.
"""

from __future__ import annotations

from t4r_dmt.baselines.popularity import Popularity, PopularityConfig
from t4r_dmt.baselines.protocol import SessionScorer, evaluate_scorer
from t4r_dmt.baselines.sessions import SessionBatch, catalogue_size, read_sessions
from t4r_dmt.baselines.sknn import SkNNConfig, VSkNN

__all__ = [
    "Popularity",
    "PopularityConfig",
    "SessionBatch",
    "SessionScorer",
    "SkNNConfig",
    "VSkNN",
    "catalogue_size",
    "evaluate_scorer",
    "read_sessions",
]
