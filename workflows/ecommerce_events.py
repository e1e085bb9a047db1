"""Ranking + session data from e-commerce event logs without an impression log.

Formats: REES46 (default), Taobao UserBehavior, Retailrocket, OTTO. Ranking rows come from sampled
negatives (see ``t4r_dmt.preprocess.negatives``); there are no position-bias features.

    .venv/bin/python workflows/ecommerce_events.py --events 2019-Oct.csv --out data/rees46 --workers 2
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from t4r_dmt.cli import parse_with_defaults, user_errors
from t4r_dmt.preprocess import command

# Family defaults; any flag given on the command line comes later and wins.
DEFAULTS = ["--format", "rees46", "--window", "1d", "--negatives", "4"]


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    (args,) = parse_with_defaults("preprocess", DEFAULTS, argv)
    return command.run(args)


if __name__ == "__main__":
    with user_errors("ecommerce_events.py"):
        main()
