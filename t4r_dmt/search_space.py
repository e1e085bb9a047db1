"""Search spaces of ``t4r-dmt tune``: which preset fields a study may change, and over which values.

A preset file carries its own space under ``search_space``: config path (dotted, into the preset's JSON) ->
a distribution::

    "search_space": {
      "multitask.dropout": {"low": 0.0, "high": 0.3},
      "regularisation.weight_decay": {"low": 1e-4, "high": 0.1, "log": true},
      "multitask.num_experts": {"choices": [2, 4, 8]}
    }

``choices`` -> categorical; ``low`` / ``high`` both integers -> int (``step`` optional); otherwise float
(``log`` optional). Every parameter is a field of the preset, so the best trial is itself a preset file.
"""

from __future__ import annotations

import copy
import dataclasses
import math
from dataclasses import dataclass
from typing import Any

SPEC_KEYS = frozenset({"low", "high", "log", "step", "choices"})


@dataclass(frozen=True)
class Dimension:
    """One tunable field: ``path`` (dotted) and its distribution: ``choices``, or ``low``/``high`` with ``kind``
    "int" or "float", ``log`` and ``step``."""

    path: str
    kind: str
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None
    choices: tuple[Any, ...] = ()


def parse_space(space: Any, where: str = "search_space") -> list[Dimension]:
    """Validate a ``search_space`` mapping and return its dimensions, in file order.

    Raises
    ------
    ValueError
        Not a mapping, an unknown spec key, an empty ``choices``, ``low >= high`` or a non-positive ``low`` with
        ``log``; the message names the path.
    """
    if not isinstance(space, dict):
        raise ValueError(f"{where} must be a JSON object of path -> distribution; got {type(space).__name__}")
    dimensions = []
    for path, spec in space.items():
        name = f"{where}[{path!r}]"
        if not isinstance(path, str) or not path or any(not part for part in path.split(".")):
            raise ValueError(f"{name}: a path is dotted field names such as 'multitask.dropout'")
        if not isinstance(spec, dict):
            raise ValueError(f"{name} must be a JSON object such as {{\"low\": 0.0, \"high\": 0.3}}")
        unknown = sorted(set(spec) - SPEC_KEYS)
        if unknown:
            raise ValueError(f"{name}: unknown key(s) {unknown}; known: {sorted(SPEC_KEYS)}")
        if "choices" in spec:
            choices = spec["choices"]
            if not isinstance(choices, list) or not choices or set(spec) != {"choices"}:
                raise ValueError(f"{name}: 'choices' must be a non-empty list, alone")
            dimensions.append(Dimension(path, "categorical", choices=tuple(choices)))
            continue
        low, high = spec.get("low"), spec.get("high")
        numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in (low, high))
        if not numbers or not low < high:  # type: ignore[operator]
            raise ValueError(f"{name}: needs finite numbers low < high; got low={low!r}, high={high!r}")
        log = bool(spec.get("log", False))
        if log and low <= 0:  # type: ignore[operator]
            raise ValueError(f"{name}: log scale needs low > 0; got {low!r}")
        kind = "int" if isinstance(low, int) and isinstance(high, int) else "float"
        step = spec.get("step")
        if step is not None and (log or not isinstance(step, (int, float)) or step <= 0):
            raise ValueError(f"{name}: step must be > 0 and cannot go with log; got {step!r}")
        dimensions.append(Dimension(path, kind, float(low), float(high), log, step))  # type: ignore[arg-type]
    return dimensions


def tunable_fields(config: Any) -> dict[str, Any]:
    """A config dataclass as nested dicts without its own ``search_space``: what a space's paths point into."""
    return {k: v for k, v in dataclasses.asdict(config).items() if k != "search_space"}


def check_space(config: Any, where: str = "search_space") -> list[Dimension]:
    """Parse ``config.search_space`` and check every path names a field of ``config``; returns the dimensions."""
    dimensions = parse_space(config.search_space, where)
    check_paths(tunable_fields(config), dimensions, where)
    return dimensions


def check_paths(config: dict[str, Any], dimensions: list[Dimension], where: str = "search_space") -> None:
    """Every path must name an existing field of ``config`` (a preset's dict)."""
    for dimension in dimensions:
        get_path(config, dimension.path, where)


def get_path(config: dict[str, Any], path: str, where: str = "search_space") -> Any:
    node: Any = config
    for i, part in enumerate(path.split(".")):
        if not isinstance(node, dict) or part not in node:
            known = sorted(node) if isinstance(node, dict) else []
            prefix = ".".join(path.split(".")[:i]) or "the preset"
            raise ValueError(f"{where}: {path!r} names no field ({part!r} is not in {prefix}; known: {known})")
        node = node[part]
    return node


def apply_params(config: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    """A deep copy of ``config`` with each dotted path set to its value (paths must exist)."""
    out = copy.deepcopy(config)
    for path, value in params.items():
        *parents, leaf = path.split(".")
        node = out
        for part in parents:
            node = node[part]
        if leaf not in node:
            raise ValueError(f"{path!r} names no field of the preset")
        node[leaf] = value
    return out


def start_params(config: dict[str, Any], dimensions: list[Dimension]) -> dict[str, Any]:
    """The preset's own values of ``dimensions`` as a trial's parameters (``t4r-dmt tune`` runs them first, so a
    study never ends below the preset it started from): numbers clipped into ``[low, high]`` (a weight decay of 0
    becomes a log-scale ``low``), integers rounded; a categorical value not among the choices is left out (sampled)."""
    params: dict[str, Any] = {}
    for dimension in dimensions:
        value = get_path(config, dimension.path)
        if dimension.kind == "categorical":
            if value in dimension.choices:
                params[dimension.path] = value
            continue
        if value is None or isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        assert dimension.low is not None and dimension.high is not None
        clipped = min(max(float(value), dimension.low), dimension.high)
        params[dimension.path] = int(round(clipped)) if dimension.kind == "int" else clipped
    return params
