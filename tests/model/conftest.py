"""Fixtures shared by the ranking-model tests: the planted-signal ranking fixture and one loader batch of it."""

from __future__ import annotations

import pytest
from model_fixtures import RankingFixture, loader_batches
from model_fixtures import write_ranking_fixture as write_fixture


@pytest.fixture(scope="module")
def fixture(tmp_path_factory: pytest.TempPathFactory) -> RankingFixture:
    return write_fixture(tmp_path_factory.mktemp("ranking"))


@pytest.fixture(scope="module")
def batch(fixture: RankingFixture) -> tuple[dict, dict]:
    """The first batch (32 rows, lists padded to 8) of window 1's train file, as T4R's loader gives it."""
    return loader_batches(fixture, fixture.path(1), batch_size=32, max_sequence_length=8)[0]
