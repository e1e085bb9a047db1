"""Presets: named model configurations, shipped as package data (``t4r_dmt/configs/<name>.json``).

One registry for every model family. A preset file (or a user's JSON file of the same form) names its
``family``, which picks the typed config and the runner of ``t4r-dmt train``:

======== ============================================== ========================================
family   config                                         runner
======== ============================================== ========================================
dmt      :class:`t4r_dmt.model.DMTConfig` (transformer) T4R Trainer, time-window loop
baseline :class:`t4r_dmt.model.DMTConfig` (DNN/DIN/DIEN) T4R Trainer, time-window loop
next_item :class:`t4r_dmt.model.next_item.NextItemConfig` T4R Trainer, session windows
gbdt     :class:`t4r_dmt.baselines.ranking.GBDTConfig`  LightGBM refit per window
======== ============================================== ========================================

Example::

    from t4r_dmt.presets import load_preset
    config = load_preset("dmt")            # or load_preset("path/to/my_config.json")
    config.family                          # "dmt"

A file may start from another preset and say only what differs: ``{"name": "dmt_no_bias", "extends": "dmt",
"bias": {"enabled": "off"}}``. ``extends`` names a shipped preset or a ``.json`` path (relative to the file);
the base is resolved first (it may extend another), then the file applies as a JSON merge patch (RFC 7386):
objects merge key by key (``bias`` above keeps every other field of ``dmt``'s tower), ``null`` removes a key
(``"search_space": null``: nothing to tune), anything else, lists included, replaces the base's value.
"""

from __future__ import annotations

import json
import os
from importlib import resources
from pathlib import Path
from typing import Any

from t4r_dmt.baselines.ranking.gbdt import GBDTConfig
from t4r_dmt.model.config import DMTConfig
from t4r_dmt.model.next_item import NextItemConfig

Preset = DMTConfig | GBDTConfig | NextItemConfig

#: family -> the config class its files parse into.
FAMILIES: dict[str, type[DMTConfig] | type[GBDTConfig] | type[NextItemConfig]] = {
    "dmt": DMTConfig,
    "baseline": DMTConfig,
    "gbdt": GBDTConfig,
    "next_item": NextItemConfig,
}


def preset_dir() -> Path:
    """The folder of the shipped presets (inside the installed package, editable or wheel)."""
    return Path(str(resources.files("t4r_dmt") / "configs"))


def preset_names(*families: str) -> list[str]:
    """Names of the shipped presets, sorted; only those of ``families`` when any are given (each file read once,
    and a variant's ``extends`` base once more for its family)."""
    unknown = [f for f in families if f not in FAMILIES]
    if unknown:
        raise ValueError(f"unknown family {unknown[0]!r}; choose one of {', '.join(FAMILIES)}")
    names = sorted(p.stem for p in preset_dir().glob("*.json"))
    if not families:
        return names
    return [n for n in names if resolve(preset_dir() / f"{n}.json").get("family") in families]


def load_preset(name_or_path: str | os.PathLike[str]) -> Preset:
    """The typed config of a preset name (``"dmt"``) or of a JSON file of the same form.

    Raises ValueError naming every shipped preset for an unknown name, or the file and the key for a file
    without a known ``family`` or with unknown keys; FileNotFoundError for a missing file.
    """
    text = str(name_or_path)
    path = Path(text)
    if path.suffix != ".json" and not path.is_file():
        path = preset_dir() / f"{text}.json"
        if not path.is_file():
            raise ValueError(f"unknown preset {text!r}; choose one of {', '.join(preset_names())} "
                             f"or a .json file")
    elif not path.is_file():
        raise FileNotFoundError(f"config file {path} does not exist")
    data = resolve(path)
    family = data.get("family")
    if family not in FAMILIES:
        raise ValueError(f"{path}: 'family' must be one of {', '.join(FAMILIES)}; got {family!r}")
    try:
        return FAMILIES[family].from_dict(data)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{path}: {err}") from err


def resolve(path: Path, _chain: tuple[Path, ...] = ()) -> dict[str, Any]:
    """The preset of ``path`` as one dict, its ``extends`` chain applied (the base first, then this file's keys;
    objects merge key by key). Raises ValueError naming the file for an unknown base or a cycle."""
    data = _read(path)
    base = data.pop("extends", None)
    if base is None:
        return data
    if not isinstance(base, str) or not base:
        raise ValueError(f"{path}: 'extends' must name a preset or a .json file; got {base!r}")
    base_path = (path.parent / base) if base.endswith(".json") else preset_dir() / f"{base}.json"
    if not base_path.is_file():
        raise ValueError(f"{path}: 'extends' {base!r}: no such preset or file ({base_path})")
    chain = (*_chain, path.resolve())
    if base_path.resolve() in chain:
        raise ValueError(f"{path}: 'extends' {base!r} makes a cycle: "
                         + " -> ".join(p.name for p in (*chain, base_path.resolve())))
    merged = _merge(resolve(base_path, chain), data)
    merged["name"] = data.get("name", path.stem)  # never the base's name
    return merged


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``override``'s keys, as a JSON merge patch (RFC 7386): nested objects merged key by key,
    ``null`` removes the key (the field takes its default), every other value replaces the base's."""
    merged = dict(base)
    for key, value in override.items():
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _read(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: not valid JSON ({err})") from err
    if not isinstance(data, dict):
        raise ValueError(f"{path}: a config must be a JSON object; got {type(data).__name__}")
    return data
