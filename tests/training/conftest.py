"""Fixtures shared by the training tests: a 3-window ranking fixture and a tiny DMT preset file."""

from __future__ import annotations

import json

import pytest
from model_fixtures import FixtureSpec, tiny_config, write_ranking_fixture


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    """``DIR`` with ``DIR/ranking`` holding windows 1-3 of the planted-signal fixture (40 requests each)."""
    root = tmp_path_factory.mktemp("prep")
    write_ranking_fixture(root / "ranking", n_windows=3, spec=FixtureSpec(requests_per_window=40), seed=1)
    return root


@pytest.fixture(scope="module")
def config_file(tmp_path_factory):
    """A preset file of the tiny DMT, named ``tiny_dmt``."""
    path = tmp_path_factory.mktemp("cfg") / "tiny_dmt.json"
    path.write_text(json.dumps(tiny_config(name="tiny_dmt").to_dict()))
    return path
