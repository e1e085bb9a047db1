"""Ranking + session data from click-only session logs (YOOCHOOSE, Diginetica).

These logs have views only: the cart and order sequences are empty and ``order`` is never 1 unless a
buys file is given (YOOCHOOSE). Sessions are short, so the click sequences are cut at 20 events.

    .venv/bin/python workflows/session_clicks.py --events yoochoose-clicks.dat --format yoochoose --out data/yc
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from t4r_dmt.cli import parse_with_defaults, user_errors
from t4r_dmt.preprocess import command

# Family defaults; any flag given on the command line comes later and wins.
DEFAULTS = ["--format", "yoochoose", "--window", "1d", "--click_length", "20"]


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    (args,) = parse_with_defaults("preprocess", DEFAULTS, argv)
    return command.run(args)


if __name__ == "__main__":
    with user_errors("session_clicks.py"):
        main()
