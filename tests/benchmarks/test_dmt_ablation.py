"""benchmarks/dmt_ablation.py: every variant is the shipped ``dmt`` preset with exactly its own switches changed."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest
from paths import BENCHMARKS

from t4r_dmt.presets import load_preset


@pytest.fixture(scope="module")
def ablation() -> ModuleType:
    sys.path.insert(0, str(BENCHMARKS))  # it imports paper_table by name
    spec = importlib.util.spec_from_file_location("dmt_ablation", BENCHMARKS / "dmt_ablation.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _flat(data: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in data.items():
        if isinstance(value, dict) and key != "search_space":
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def test_each_variant_changes_only_its_switches(ablation: ModuleType, tmp_path: Path) -> None:
    full = _flat(load_preset("dmt").to_dict())
    full.pop("search_space", None)
    for name, switches in ablation.VARIANTS.items():
        variant = load_preset(str(ablation.variant_file(name, tmp_path)))
        changed = {k: v for k, v in _flat(variant.to_dict()).items() if k != "name" and full.get(k) != v}
        removed = {k for k in full if k != "name" and k not in _flat(variant.to_dict())}
        # a switch set back to its default is left out of to_dict (e.g. catalogue.weight 0)
        assert set(changed) | removed <= set(switches) | {f"{s.split('.')[0]}.{k}" for s in switches
                                                          for k in ("temperature", "max_pairs")}, name
        for path, value in switches.items():
            node = variant
            for part in path.split("."):
                node = getattr(node, part)
            assert node == value, (name, path)
        if switches:
            assert changed or removed, f"{name} changes nothing: the preset already has {switches}"


def test_no_bias_tower_variant_is_the_dmt_no_bias_preset(ablation: ModuleType, tmp_path: Path) -> None:
    """So a paper table's ``dmt_no_bias`` runs are the ablation's "no bias tower" row."""
    variant = _flat(load_preset(str(ablation.variant_file("no_bias_tower", tmp_path))).to_dict())
    preset = _flat(load_preset("dmt_no_bias").to_dict())
    for config in (variant, preset):
        config.pop("name")
        config.pop("search_space", None)
    assert variant == preset
