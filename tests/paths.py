"""Paths the tests share (``tests/`` is on pytest's ``pythonpath``, so every test folder imports this)."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS = ROOT / "benchmarks"
NOTEBOOKS = ROOT / "notebooks"
#: The real data samples of ``../shared/data`` (tests skip themselves where a sample is absent).
SHARED_DATA = ROOT.parent / "shared" / "data"
