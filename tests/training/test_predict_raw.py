"""``t4r-dmt predict --impressions``: raw impression lists scored through the saved preprocess workflow.

The contract a user relies on: scoring the raw log of a window gives exactly the scores of that
window's preprocessed rows (same vocabularies, normalisation, as-of history and item rates), whether the
history is the bundled one or rebuilt from ``--events``; labels are optional; new lists after the
logged period score too; bad input gets a clear error and no output file.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from log_fixtures import T0, parquet_logs
from model_fixtures import tiny_config

from t4r_dmt.errors import InputError
from t4r_dmt.preprocess import command
from t4r_dmt.preprocess.arguments import PreprocessArguments
from t4r_dmt.preprocess.serving import SavedPreprocess
from t4r_dmt.training.arguments import DataArguments, RunTrainingArguments
from t4r_dmt.training.predict import PredictArguments
from t4r_dmt.training.predict import run as predict

KEY = ["request_id", "product_id"]
SCORES = ["p_click", "p_order", "score"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """(logs folder, preprocess DIR, run folder): 3 daily windows, a tiny DMT trained on window 1."""
    root = tmp_path_factory.mktemp("raw_predict")
    events, impressions = parquet_logs(seed=2)
    events.to_parquet(root / "events.parquet")
    impressions.to_parquet(root / "impressions.parquet")
    data = root / "prep"
    command.run(PreprocessArguments(
        events=str(root / "events.parquet"), impressions=str(root / "impressions.parquet"), out=str(data),
        click_length=3, cart_length=2, order_length=2, events_per_bucket=100, with_sessions=False,
    ))
    config = root / "tiny_dmt.json"
    config.write_text(json.dumps(tiny_config().to_dict()))
    from t4r_dmt.commands.train import run as train

    run_dir = root / "run"
    train(DataArguments(data=str(data), out=str(run_dir), config=str(config), windows="1:2"),
          RunTrainingArguments(output_dir=str(run_dir / "trainer"), report_to=[], seed=7, disable_tqdm=True,
                               per_device_train_batch_size=16, per_device_eval_batch_size=64))
    return root, data, run_dir


def _window_scores(data, run_dir, tmp_path, window: int) -> pd.DataFrame:
    out = tmp_path / f"window{window}.parquet"
    predict(PredictArguments(run=str(run_dir), data=str(data), window=window, out=str(out)))
    return pd.read_parquet(out).sort_values(KEY).reset_index(drop=True)


def _raw_scores(data, run_dir, impressions_file, out, **kwargs) -> pd.DataFrame:
    summary = predict(PredictArguments(run=str(run_dir), data=str(data), impressions=str(impressions_file),
                                       out=str(out), **kwargs))
    frame = pd.read_csv(out) if str(out).endswith(".csv") else pd.read_parquet(out)
    assert summary["rows"] == len(frame)
    return frame.sort_values(KEY).reset_index(drop=True)


def test_raw_impressions_of_a_logged_window_score_like_its_preprocessed_rows(trained, tmp_path):
    root, data, run_dir = trained
    expected = _window_scores(data, run_dir, tmp_path, window=3)
    impressions = pd.read_parquet(root / "impressions.parquet")
    day3 = impressions[impressions["event_time"] >= T0 + pd.Timedelta(days=2)]
    unlabelled = tmp_path / "day3.csv"
    day3.drop(columns=["click", "order"]).to_csv(unlabelled, index=False)  # serving logs have no labels

    bundled = _raw_scores(data, run_dir, unlabelled, tmp_path / "bundled.csv")
    rebuilt = _raw_scores(data, run_dir, unlabelled, tmp_path / "rebuilt.parquet",
                          events=str(root / "events.parquet"))
    assert len(expected) == len(day3) > 0
    for scores in (bundled, rebuilt):
        assert list(scores.columns) == KEY + SCORES
        assert scores[KEY].equals(expected[KEY])
        np.testing.assert_allclose(scores[SCORES].to_numpy(), expected[SCORES].to_numpy(), rtol=1e-5, atol=1e-6)
    # The scores depend on the inputs: another window's model output differs (the comparison can fail).
    assert not np.allclose(bundled["score"], bundled["score"].mean())


def test_history_comes_strictly_before_each_request_and_new_lists_score(trained, tmp_path):
    """A list shown after the logged period uses every logged event before it; removing the user's
    events changes the score, adding events after the request does not."""
    root, data, run_dir = trained
    events = pd.read_parquet(root / "events.parquet")
    user = int(events["user_id"].value_counts().index[0])
    when = T0 + pd.Timedelta(days=5)  # two windows after the last logged one
    lists = pd.DataFrame({"request_id": 7001, "user_id": user, "event_time": when, "product_id": [1, 2, 3, 4],
                          "position": [0, 1, 2, 3]})
    lists_file = tmp_path / "new.parquet"
    lists.to_parquet(lists_file)
    assert SavedPreprocess.load(data).window_numbers(lists["event_time"].to_numpy().view(np.int64)).tolist() == [6] * 4

    base = _raw_scores(data, run_dir, lists_file, tmp_path / "base.csv", events=str(root / "events.parquet"))
    later = events[events["user_id"] == user].copy()
    later["event_time"] = when + pd.Timedelta(seconds=0)  # at the request time: must be ignored
    with_later = pd.concat([events, later], ignore_index=True)
    with_later.to_parquet(tmp_path / "events_later.parquet")
    same = _raw_scores(data, run_dir, lists_file, tmp_path / "same.csv", events=str(tmp_path / "events_later.parquet"))
    np.testing.assert_allclose(same[SCORES].to_numpy(), base[SCORES].to_numpy(), rtol=1e-6)

    without = events[events["user_id"] != user]
    without.to_parquet(tmp_path / "events_without.parquet")
    other = _raw_scores(data, run_dir, lists_file, tmp_path / "other.csv",
                        events=str(tmp_path / "events_without.parquet"))
    assert not np.allclose(other["score"].to_numpy(), base["score"].to_numpy())


def test_positions_beyond_training_are_clipped_not_crashing(trained, tmp_path):
    root, data, run_dir = trained
    lists = pd.DataFrame({"request_id": 7002, "user_id": 101, "event_time": T0 + pd.Timedelta(days=1),
                          "product_id": [1, 2], "position": [0, 500], "page": [0, 90]})
    lists.to_parquet(tmp_path / "long.parquet")
    scores = _raw_scores(data, run_dir, tmp_path / "long.parquet", tmp_path / "long.csv")
    assert len(scores) == 2 and scores[SCORES].stack().between(0, 1).all()


def test_raw_predict_errors(trained, tmp_path):
    root, data, run_dir = trained
    out = tmp_path / "x.csv"
    with pytest.raises(ValueError, match="either --window K .* or --impressions P"):
        PredictArguments(run=str(run_dir), data=str(data), out=str(out), window=3, impressions="i.csv")
    with pytest.raises(ValueError, match="either --window K"):
        PredictArguments(run=str(run_dir), data=str(data), out=str(out))
    with pytest.raises(ValueError, match="--events only applies"):
        PredictArguments(run=str(run_dir), data=str(data), out=str(out), window=3, events="e.csv")
    with pytest.raises(InputError, match="no such file"):
        predict(PredictArguments(run=str(run_dir), data=str(data), out=str(out), impressions=str(tmp_path / "no.csv")))
    bad = pd.read_parquet(root / "impressions.parquet").drop(columns=["position"])
    bad.to_csv(tmp_path / "bad.csv", index=False)
    with pytest.raises(InputError, match="position"):
        predict(PredictArguments(run=str(run_dir), data=str(data), out=str(out), impressions=str(tmp_path / "bad.csv")))
    with pytest.raises(FileNotFoundError, match="is it the --out folder of `t4r-dmt preprocess`"):
        predict(PredictArguments(run=str(run_dir), data=str(data / "ranking"), out=str(out),
                                 impressions=str(root / "impressions.parquet")))
    assert not out.exists()
