"""Ranking + session data from logs with an impression (ranking) log: ``t4r-dmt synth`` output, Trivago.

Each impression becomes one row with position-bias features (``position_index``, ``position_page``,
``neighbor_category_seq``). For synth output pass ``--impressions DIR/impressions.parquet`` and
``--items DIR/items.parquet``; Trivago's reader builds the impressions from the clickout lists.

    .venv/bin/python workflows/impression_logs.py --events raw/events.parquet \
        --impressions raw/impressions.parquet --items raw/items.parquet --out data/synth
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from t4r_dmt.cli import parse_with_defaults, user_errors
from t4r_dmt.preprocess import command

# Family defaults; any flag given on the command line comes later and wins.
DEFAULTS = ["--window", "1d"]


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    (args,) = parse_with_defaults("preprocess", DEFAULTS, argv)
    if args.impressions is None and args.format != "trivago":
        raise SystemExit("impression_logs.py needs --impressions (or --format trivago)")
    return command.run(args)


if __name__ == "__main__":
    with user_errors("impression_logs.py"):
        main()
