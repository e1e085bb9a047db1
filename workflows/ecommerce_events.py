"""Ranking + session data from e-commerce event logs without an impression log.

Formats: REES46 (default), Taobao UserBehavior, Retailrocket, OTTO. Ranking rows come from sampled
negatives (see ``t4r_dmt.preprocess.negatives``); there are no position-bias features.

    .venv/bin/python workflows/ecommerce_events.py --events 2019-Oct.csv --out data/rees46 --workers 2
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence
from typing import Any

from t4r_dmt.cli import parse
from t4r_dmt.preprocess import command

# Family defaults; any flag given on the command line comes later and wins.
DEFAULTS = ["--format", "rees46", "--window", "1d", "--negatives", "4"]


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    (args,) = parse("preprocess", [*DEFAULTS, *(sys.argv[1:] if argv is None else argv)])
    return command.run(args)


if __name__ == "__main__":
    main()
