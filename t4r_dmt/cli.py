"""The ``t4r-dmt`` console entry point.

Each subcommand lives in its own module, which exposes

* ``ARGUMENTS``: a tuple of argument dataclasses, parsed by ``transformers.HfArgumentParser`` (so every
  subcommand also accepts a single JSON argument file: ``t4r-dmt train args.json``), and
* ``run(*parsed) -> dict``: does the work and returns a small summary, which tests call directly.

Modules are imported lazily so that ``t4r-dmt synth`` does not pay for importing torch and T4R.
"""

from __future__ import annotations

import importlib
import logging
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "synth": ("t4r_dmt.synth.command", "Generate the synthetic events + impressions with planted truth."),
    "preprocess": ("t4r_dmt.preprocess.command", "NVTabular workflow: raw logs -> windowed parquet."),
    "train": ("t4r_dmt.commands.train", "Incremental time-window training and evaluation."),
    "tune": ("t4r_dmt.commands.tune", "Optuna study over a preset's search_space; writes the tuned preset."),
    "predict": ("t4r_dmt.training.predict", "Score every impression of one window with a trained run."),
    "report": ("t4r_dmt.analysis.report", "Compare runs: one plot per metric and a markdown table."),
    "demo": ("t4r_dmt.demo", "The main job on the embedded default data: synth -> preprocess -> train."),
}
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
USER_ERRORS = (ValueError, FileExistsError, FileNotFoundError)
"""Bad input or an existing output: reported in one line, not a traceback."""


def _usage() -> str:
    lines = ["usage: t4r-dmt <command> [args] | t4r-dmt <command> ARGS.json", "", "commands:"]
    lines += [f"  {name:<11} {help_}" for name, (_, help_) in SUBCOMMANDS.items()]
    return "\n".join(lines)


def parse(command: str, argv: Sequence[str]) -> tuple[Any, ...]:
    """Parse ``argv`` into the subcommand's argument dataclasses (flags or one JSON file)."""
    from transformers import HfArgumentParser

    module = importlib.import_module(SUBCOMMANDS[command][0])
    parser = HfArgumentParser(module.ARGUMENTS, prog=f"t4r-dmt {command}")
    # A module may accept positionals (e.g. `t4r-dmt report RUN1 RUN2`) by rewriting them to flags.
    rewrite = getattr(module, "rewrite_argv", None)
    if rewrite is not None:
        argv = rewrite(list(argv))
    if len(argv) == 1 and argv[0].endswith(".json"):
        return tuple(parser.parse_json_file(argv[0]))
    return tuple(parser.parse_args_into_dataclasses(args=[_underscore_flag(a) for a in argv]))


def parse_with_defaults(command: str, defaults: Sequence[str], argv: Sequence[str] | None = None) -> tuple[Any, ...]:
    """A workflow script's arguments: its family ``defaults`` first, then ``argv`` (``sys.argv[1:]`` when None),
    so a flag the user gives wins; logs as ``t4r-dmt`` does."""
    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT)
    return parse(command, [*defaults, *(sys.argv[1:] if argv is None else argv)])


@contextmanager
def user_errors(prog: str) -> Iterator[None]:
    """Turn a user error (``USER_ERRORS``) raised inside into ``SystemExit("PROG: error: ...")``: the message on
    stderr, exit status 1, no traceback, as ``t4r-dmt`` reports them. The ``workflows/`` scripts run under it."""
    try:
        yield
    except USER_ERRORS as err:
        raise SystemExit(f"{prog}: error: {err}") from err


def _underscore_flag(arg: str) -> str:
    """``--on-bad-rows=drop`` -> ``--on_bad_rows=drop``: dataclass fields use underscores, users type both."""
    if not arg.startswith("--"):
        return arg
    name, sep, value = arg[2:].partition("=")
    return "--" + name.replace("-", "_") + sep + value


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in {"-h", "--help"}:
        print(_usage())
        return 0 if argv else 2
    command, rest = argv[0], argv[1:]
    if command not in SUBCOMMANDS:
        print(f"t4r-dmt: unknown command {command!r}; choose one of {', '.join(SUBCOMMANDS)}",
              file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT)
    module = importlib.import_module(SUBCOMMANDS[command][0])
    try:
        module.run(*parse(command, rest))
    except USER_ERRORS as err:
        print(f"t4r-dmt {command}: error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
