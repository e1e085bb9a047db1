"""The preset registry: every shipped preset loads into its family's typed config, user files too, and the
presets ship inside the wheel (a non-editable install finds them)."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from paths import ROOT

from t4r_dmt.baselines.ranking.gbdt import GBDTConfig
from t4r_dmt.model import DMTConfig
from t4r_dmt.model.next_item import NextItemConfig
from t4r_dmt.presets import FAMILIES, load_preset, preset_dir, preset_names, resolve

ROOT = ROOT


def test_every_shipped_preset_loads_into_its_family_and_round_trips() -> None:
    names = preset_names()
    assert {"dmt", "dnn", "din", "dien", "gbdt", "gbdt_no_history", "xlnet_clm", "gru_clm"} <= set(names)
    for name in names:
        config = load_preset(name)
        assert config.name == name
        assert isinstance(config, FAMILIES[config.family])
        if isinstance(config, DMTConfig):  # a DMT preset, its base applied, spells every field out
            assert resolve(preset_dir() / f"{name}.json") == config.to_dict()
    assert preset_names("gbdt") == ["gbdt", "gbdt_current_no_history", "gbdt_current_window", "gbdt_no_history"]
    assert set(preset_names("baseline")) == {"dnn", "din", "dien"}
    gbdt = load_preset("gbdt")
    assert isinstance(gbdt, GBDTConfig) and dataclasses.replace(gbdt, search_space={}) == GBDTConfig()
    assert isinstance(load_preset("xlnet_clm"), NextItemConfig)


def test_a_user_file_is_read_by_its_family(tmp_path: Path) -> None:
    path = tmp_path / "mine.json"
    path.write_text(json.dumps({"name": "fast_gbdt", "family": "gbdt", "n_estimators": 20}))
    config = load_preset(path)
    assert isinstance(config, GBDTConfig) and (config.name, config.n_estimators) == ("fast_gbdt", 20)
    # No file-name rule: a file named like a GBDT preset is what its family says.
    named = tmp_path / "gbdt_like.json"
    named.write_text(json.dumps({"name": "x", "family": "dmt"}))
    assert isinstance(load_preset(named), DMTConfig)


def test_errors_name_the_choices_and_the_file(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"unknown preset 'dmtx'; choose one of .*gbdt_no_history.*xlnet_clm"):
        load_preset("dmtx")
    with pytest.raises(FileNotFoundError, match="absent.json does not exist"):
        load_preset(tmp_path / "absent.json")
    no_family = tmp_path / "old.json"
    no_family.write_text(json.dumps({"name": "old"}))
    with pytest.raises(ValueError, match=r"old.json: 'family' must be one of dmt, baseline, gbdt, next_item; got None"):
        load_preset(no_family)
    typo = tmp_path / "typo.json"
    typo.write_text(json.dumps({"family": "gbdt", "n_trees": 3}))
    with pytest.raises(ValueError, match=r"typo.json: unknown gbdt config key\(s\) \['n_trees'\]"):
        load_preset(typo)
    wrong = tmp_path / "wrong.json"
    wrong.write_text(json.dumps({"family": "next_item", "transformer": "lstm"}))
    with pytest.raises(ValueError, match="wrong.json: transformer must be one of"):
        load_preset(wrong)
    listed = tmp_path / "list.json"
    listed.write_text("[1]")
    with pytest.raises(ValueError, match="a config must be a JSON object"):
        load_preset(listed)
    with pytest.raises(ValueError, match="unknown family 'gbm'"):
        preset_names("gbm")


def test_a_variant_differs_from_its_base_only_where_its_file_says(tmp_path: Path) -> None:
    """``extends``: the base's fields, the file's win; objects merge key by key, null removes, lists replace."""
    dmt = load_preset("dmt")
    variant = tmp_path / "mine.json"
    variant.write_text(json.dumps({"name": "mine", "extends": "dmt", "bias": {"observation_dropout": 0.3},
                                   "behaviors": ["click"], "search_space": {"catalogue.weight": None}}))
    mine = load_preset(variant)
    assert isinstance(mine, DMTConfig) and isinstance(dmt, DMTConfig)
    assert (mine.name, mine.behaviors, mine.bias.observation_dropout) == ("mine", ["click"], 0.3)
    assert dataclasses.replace(mine.bias, observation_dropout=dmt.bias.observation_dropout) == dmt.bias
    assert set(dmt.search_space) - set(mine.search_space) == {"catalogue.weight"}
    assert dataclasses.replace(mine, name="dmt", behaviors=dmt.behaviors, bias=dmt.bias,
                               search_space=dmt.search_space) == dmt
    # A chain of files, a relative path, and a file without a name takes its own stem, never the base's.
    (tmp_path / "sub").mkdir()
    child = tmp_path / "sub" / "child.json"
    child.write_text(json.dumps({"extends": "../mine.json", "multitask": {"num_experts": 2}}))
    loaded = load_preset(child)
    assert isinstance(loaded, DMTConfig)
    assert (loaded.name, loaded.behaviors, loaded.multitask.num_experts) == ("child", ["click"], 2)
    # The shipped one-change variants: dmt_no_bias is dmt with the tower off, nothing else.
    no_bias = load_preset("dmt_no_bias")
    assert isinstance(no_bias, DMTConfig) and no_bias.bias.enabled == "off"
    assert dataclasses.replace(no_bias, name="dmt", bias=dmt.bias) == dmt


def test_extends_errors_name_the_file(tmp_path: Path) -> None:
    unknown = tmp_path / "unknown.json"
    unknown.write_text(json.dumps({"name": "u", "extends": "dmtx"}))
    with pytest.raises(ValueError, match=r"unknown.json: 'extends' 'dmtx': no such preset or file"):
        load_preset(unknown)
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text(json.dumps({"extends": "b.json"}))
    b.write_text(json.dumps({"extends": "a.json"}))
    with pytest.raises(ValueError, match=r"makes a cycle: a.json -> b.json -> a.json"):
        load_preset(a)
    number = tmp_path / "number.json"
    number.write_text(json.dumps({"extends": 3}))
    with pytest.raises(ValueError, match=r"number.json: 'extends' must name a preset or a .json file; got 3"):
        load_preset(number)
    typo = tmp_path / "typo.json"
    typo.write_text(json.dumps({"extends": "dmt", "bias": {"observation_drop": 0.1}}))
    with pytest.raises(ValueError, match=r"typo.json: .*observation_drop"):
        load_preset(typo)


@pytest.mark.slow
def test_the_wheel_ships_every_preset(tmp_path: Path) -> None:
    """``pip wheel`` builds the package as a user's ``pip install .`` would: the presets are in it."""
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                           "-w", str(tmp_path), str(ROOT)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    wheel = next(tmp_path.glob("t4r_dmt-*.whl"))
    with zipfile.ZipFile(wheel) as archive:
        shipped = {Path(n).stem for n in archive.namelist() if n.startswith("t4r_dmt/configs/") and n.endswith(".json")}
    assert shipped == set(preset_names())
