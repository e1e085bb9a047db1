"""``t4r-dmt predict`` scores only the data its run was trained on: the run records the fingerprint of its
``--data`` (schema, vocabulary sizes, a hash of the vocabularies) and predict refuses another data folder
with one line naming both, instead of a ``load_state_dict`` traceback (other sizes) or silently wrong
scores (the same sizes, relabelled ids). Runs from before fingerprints still predict, with a warning."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest
from log_fixtures import parquet_logs
from model_fixtures import tiny_config

from t4r_dmt import cli
from t4r_dmt.preprocess import command
from t4r_dmt.preprocess.arguments import PreprocessArguments

SMALL = {"click_length": 3, "cart_length": 2, "order_length": 2, "events_per_bucket": 100, "with_sessions": False}


def _preprocess(root, name, events, impressions):
    events.to_parquet(root / f"{name}_events.parquet")
    impressions.to_parquet(root / f"{name}_impressions.parquet")
    command.run(PreprocessArguments(events=str(root / f"{name}_events.parquet"), out=str(root / name),
                                    impressions=str(root / f"{name}_impressions.parquet"), **SMALL))
    return root / name


def _logs():
    events, impressions = parquet_logs(seed=2)
    return events, impressions


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """(root, data folder, run folder): a tiny DMT trained on window 1 of make_logs(seed=2)."""
    root = tmp_path_factory.mktemp("fingerprint")
    data = _preprocess(root, "data", *_logs())
    config = root / "tiny_dmt.json"
    config.write_text(json.dumps(tiny_config().to_dict()))
    run_dir = root / "run"
    assert cli.main(["train", "--data", str(data), "--config", str(config), "--out", str(run_dir), "--windows",
                     "1:2", "--report_to", "none", "--per_device_train_batch_size", "16"]) == 0
    return root, data, run_dir


def _predict(run_dir, data, out):
    return cli.main(["predict", "--run", str(run_dir), "--data", str(data), "--window", "2", "--out", str(out)])


def test_the_run_records_the_fingerprint_of_its_data(trained):
    from t4r_dmt.fingerprint import FINGERPRINT_KEY, data_fingerprint

    _, data, run_dir = trained
    saved = json.loads((run_dir / "config.json").read_text())
    assert saved[FINGERPRINT_KEY] == data_fingerprint(data)
    assert saved[FINGERPRINT_KEY]["vocabulary_sizes"]["item_id"] == 17  # 14 items + pad, null, OOV


def test_relabelled_ids_with_the_same_vocabulary_sizes_are_refused(trained, tmp_path, capsys):
    root, data, run_dir = trained
    events, impressions = _logs()
    ids = np.unique(np.r_[events["product_id"], impressions["product_id"]])
    relabel = dict(zip(ids, ids[::-1], strict=True))
    events["product_id"] = events["product_id"].map(relabel)
    impressions["product_id"] = impressions["product_id"].map(relabel)
    other = _preprocess(tmp_path, "relabelled", events, impressions)
    capsys.readouterr()
    sizes = json.loads((other / "stats.json").read_text())["vocabulary_sizes"]
    assert sizes == json.loads((data / "stats.json").read_text())["vocabulary_sizes"]  # only the ids differ
    assert _predict(run_dir, other, tmp_path / "p.parquet") == 1
    err = capsys.readouterr().err
    assert err == (f"t4r-dmt predict: error: --data {other} is not the data run {run_dir} was trained on ({data}): "
                   "it has vocabularies of the same sizes that encode other ids; score with the preprocess output "
                   "the run was trained on\n")
    assert not (tmp_path / "p.parquet").exists()


def test_other_vocabulary_sizes_are_refused_without_a_traceback(trained, tmp_path, capsys):
    _, data, run_dir = trained
    events, impressions = _logs()
    keep = impressions["product_id"] != 5
    other = _preprocess(tmp_path, "fewer_items", events[events["product_id"] != 5], impressions[keep])
    capsys.readouterr()
    assert _predict(run_dir, other, tmp_path / "p.parquet") == 1
    err = capsys.readouterr().err
    assert err.startswith(f"t4r-dmt predict: error: --data {other} is not the data run {run_dir} was trained on "
                          f"({data}): it has other vocabulary sizes (") and "item_id: 17 in the run, 16 in --data" in err
    assert len(err.splitlines()) == 1


def test_the_same_logs_preprocessed_again_are_accepted(trained, tmp_path):
    root, _, run_dir = trained
    again = _preprocess(tmp_path, "again", *_logs())
    assert _predict(run_dir, again, tmp_path / "p.parquet") == 0
    assert len(pd.read_parquet(tmp_path / "p.parquet")) > 0


def test_a_run_without_a_fingerprint_still_predicts_with_a_warning(trained, tmp_path, caplog):
    _, data, run_dir = trained
    old_run = tmp_path / "old_run"
    shutil.copytree(run_dir, old_run)
    saved = json.loads((old_run / "config.json").read_text())
    saved.pop("data_fingerprint", None)
    (old_run / "config.json").write_text(json.dumps(saved))
    with caplog.at_level("WARNING", logger="t4r_dmt.fingerprint"):
        assert _predict(old_run, data, tmp_path / "p.parquet") == 0
    assert "records no fingerprint of its training data" in caplog.text
    assert (tmp_path / "p.parquet").exists()
