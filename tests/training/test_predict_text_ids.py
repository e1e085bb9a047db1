"""Ids of any type end to end: preprocess -> train -> predict of a log whose ids are text or integers of any width.

One log is written twice: with the integer ids of ``make_logs`` and with the same ids as text ("r0000123"-style
request ids, visitor ids), wide integers (``123456789012``) and digit strings beyond int64 (a JD-like sku). The
text twin must give the same ranking rows (ids decoded to their raw values), keep ``request_id`` raw and typed as
text in the schema, train (the loaders leave the text column out), and predict the raw ids, from ``--window K``
and from ``--impressions`` alike.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from log_fixtures import T0, parquet_logs
from model_fixtures import tiny_config

from t4r_dmt.data.ids import IdTexts, is_surrogate
from t4r_dmt.preprocess import command
from t4r_dmt.preprocess.arguments import PreprocessArguments
from t4r_dmt.preprocess.workflow import output_columns
from t4r_dmt.run_folder import load_schema
from t4r_dmt.schema import BEHAVIORS, sequence_column
from t4r_dmt.training.arguments import DataArguments, RunTrainingArguments
from t4r_dmt.training.predict import PredictArguments
from t4r_dmt.training.predict import run as predict
from t4r_dmt.windows import valid_half

KEY = ["request_id", "product_id"]
SCORES = ["p_click", "p_order", "score"]
ITEM_CODED = ["item_id", *[sequence_column(b, "item") for b in BEHAVIORS]]


def product_text(product: int) -> str:
    return {1: "1", 2: "123456789012", 3: "99999999999999999999"}.get(product, f"sku-{product:03d}")


def user_text(user: int) -> str:
    return "7" if user == 101 else f"visitor-{user:x}"


def request_text(request: int) -> str:
    return {1: "1", 2: "123456789012"}.get(request, f"r{request:07d}")


def as_text(frame: pd.DataFrame) -> pd.DataFrame:
    """The same log with every id written as text (some of which read as integers: "1", "123456789012", "7")."""
    frame = frame.copy()
    for column, to_text in (("product_id", product_text), ("user_id", user_text), ("request_id", request_text)):
        if column in frame.columns:
            frame[column] = frame[column].map(to_text).astype(object)
    return frame


def _preprocess(events: pd.DataFrame, impressions: pd.DataFrame, root, name: str, sessions: bool):
    events.to_parquet(root / f"{name}_events.parquet")
    impressions.to_parquet(root / f"{name}_impressions.parquet")
    out = root / name
    command.run(PreprocessArguments(
        events=str(root / f"{name}_events.parquet"), impressions=str(root / f"{name}_impressions.parquet"),
        out=str(out), click_length=3, cart_length=2, order_length=2, events_per_bucket=100, with_sessions=sessions,
    ))
    return out


@pytest.fixture(scope="module")
def dirs(tmp_path_factory):
    """(root, integer-id DIR, text-id DIR, text events, text impressions)."""
    root = tmp_path_factory.mktemp("text_ids")
    events, impressions = parquet_logs(seed=2)
    integer = _preprocess(events, impressions, root, "int", sessions=False)
    text_events, text_impressions = as_text(events), as_text(impressions)
    text = _preprocess(text_events, text_impressions, root, "text", sessions=True)
    return root, integer, text, text_events, text_impressions


@pytest.fixture(scope="module")
def run_dir(dirs):
    """A tiny DMT trained one epoch on window 1 of the text-id DIR (evaluated on window 2)."""
    from t4r_dmt.commands.train import run as train

    root, _, text, _, _ = dirs
    config = root / "tiny_dmt.json"
    config.write_text(json.dumps(tiny_config().to_dict()))
    out = root / "run"
    train(DataArguments(data=str(text), out=str(out), config=str(config), windows="1:2"),
          RunTrainingArguments(output_dir=str(out / "trainer"), report_to=[], seed=7, disable_tqdm=True,
                               num_train_epochs=1, per_device_train_batch_size=16, per_device_eval_batch_size=64))
    return out


def _vocabulary(data, name: str) -> dict[int, object]:
    table = pd.read_parquet(data / "workflow" / "categories" / f"unique.{name}.parquet")
    return {0: "<pad>", 1: None, 2: "<oov>", **dict(zip(table.index, table[name], strict=True))}


def _raw_rows(data, split: str, to_raw) -> pd.DataFrame:
    """A DIR's ``split`` rows of every window, user and item codes decoded to raw ids (``to_raw(column, ids)``),
    sorted by (request, product)."""
    frame = pd.concat([pd.read_parquet(p) for p in sorted(data.glob(f"ranking/*/{split}.parquet"))],
                      ignore_index=True)
    items, users = _vocabulary(data, "item"), _vocabulary(data, "user")

    def raw(column: str, codes: list[int], vocabulary: dict[int, object]) -> list[object]:
        values = [vocabulary[c] for c in codes]
        known = [v for v in values if isinstance(v, int | np.integer)]
        decoded = dict(zip(known, to_raw(column, np.array(known, np.int64)), strict=True))
        return [decoded.get(v, v) for v in values]

    for column in ITEM_CODED:
        frame[column] = [raw("product_id", list(np.atleast_1d(codes)), items) for codes in frame[column]]
    frame["user_id"] = raw("user_id", frame["user_id"].tolist(), users)
    frame["request_id"] = to_raw("request_id", frame["request_id"].to_numpy())
    frame["product_id"] = to_raw("product_id", frame["product_id"].to_numpy())
    return frame.sort_values(KEY, ignore_index=True)


def test_text_ids_give_the_rows_of_their_integer_twins(dirs):
    _, integer, text, _, text_impressions = dirs
    texts = IdTexts.load(text / "ids")
    assert sorted(p.name for p in (text / "ids").iterdir()) == ["product_id.parquet", "user_id.parquet"]
    assert not (integer / "ids").exists()
    assert json.loads((text / "stats.json").read_text())["text_ids"] == {"product_id": 12, "user_id": 5}
    assert load_schema(text / "ranking")["request_id"].dtype.element_type.value == "string"
    assert load_schema(integer / "ranking")["request_id"].dtype.element_type.value == "int"
    assert (text / "sessions" / "0001" / "train.parquet").exists()  # sessions work on the surrogates too

    conversions = {"product_id": product_text, "user_id": user_text, "request_id": request_text}
    twins = _raw_rows(integer, "train", lambda column, ids: [conversions[column](int(i)) for i in ids])
    rows = _raw_rows(text, "train", lambda column, ids: ids if column == "request_id" else texts.decode(column, ids))
    assert len(rows) == len(text_impressions) > 0
    for column in output_columns(with_bias=True):
        expected, actual = twins[column].tolist(), rows[column].tolist()
        if isinstance(expected[0], float):  # normalised over partitions that hold other users: summation order
            np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-6, err_msg=column)
            continue
        if isinstance(expected[0], np.ndarray):
            expected, actual = [list(v) for v in expected], [list(v) for v in actual]
        assert actual == expected, column
    raw_ids = pd.read_parquet(next(text.glob("ranking/0001/train.parquet")), columns=KEY)
    assert raw_ids["request_id"].map(type).eq(str).all()  # kept raw: "1", "123456789012", "r0000003" ...
    assert is_surrogate(raw_ids["product_id"].to_numpy()).any()


def test_requests_split_whole_by_their_text(dirs):
    _, _, text, _, _ = dirs
    for window in sorted(text.glob("ranking/0*")):
        train, valid, test = (pd.read_parquet(window / f"{s}.parquet") for s in ("train", "valid", "test"))
        assert len(valid) + len(test) == len(train)
        assert set(valid["request_id"]).isdisjoint(test["request_id"])
        in_valid = valid_half(train["request_id"].to_numpy())
        assert sorted(valid["request_id"]) == sorted(train["request_id"][in_valid])


@pytest.mark.parametrize("engine", ["dense", "merlin"])
def test_the_loaders_leave_the_text_request_id_out(dirs, tmp_path, engine):
    from transformers4rec.torch.utils.data_utils import T4RecDataLoader

    from t4r_dmt.compat.merlin_loader import loader_file

    _, _, text, _, _ = dirs
    schema = load_schema(text / "ranking")
    path = text / "ranking" / "0001" / "train.parquet"
    readable = loader_file(path, schema, tmp_path) if engine == "merlin" else path
    loader = T4RecDataLoader.parse(engine).from_schema(schema, str(readable), 16, max_sequence_length=6,
                                                       shuffle=False)
    rows = 0
    for inputs, targets in loader:
        assert not {"request_id", "product_id", "window"} & set(inputs)
        assert set(targets) == {"click", "order"}
        rows += len(targets["click"])
    assert rows == len(pd.read_parquet(path, columns=["click"]))


def _predict(run_dir, data, out, **kwargs) -> pd.DataFrame:
    predict(PredictArguments(run=str(run_dir), data=str(data), out=str(out), **kwargs))
    frame = pd.read_csv(out, dtype={"request_id": str, "product_id": str}) if str(out).endswith(".csv") \
        else pd.read_parquet(out)
    return frame.sort_values(KEY, ignore_index=True)


def test_predict_writes_the_raw_ids(dirs, run_dir, tmp_path):
    root, _, text, _, text_impressions = dirs
    metrics = json.loads((run_dir / "metrics.json").read_text())["windows"][0]
    assert metrics["ndcg@10"] is not None and metrics["gauc_click"] is not None  # grouped by text ids

    day3 = text_impressions[text_impressions["event_time"] >= T0 + pd.Timedelta(days=2)]
    expected = day3[KEY].astype(str).sort_values(KEY, ignore_index=True)
    window = _predict(run_dir, text, tmp_path / "window.parquet", window=3)
    assert window[KEY].equals(expected)

    day3.drop(columns=["click", "order"]).to_csv(tmp_path / "day3.csv", index=False)
    bundled = _predict(run_dir, text, tmp_path / "bundled.csv", impressions=str(tmp_path / "day3.csv"))
    rebuilt = _predict(run_dir, text, tmp_path / "rebuilt.parquet", impressions=str(tmp_path / "day3.csv"),
                       events=str(root / "text_events.parquet"))
    for scores in (bundled, rebuilt):
        assert scores[KEY].equals(expected)
        np.testing.assert_allclose(scores[SCORES].to_numpy(), window[SCORES].to_numpy(), rtol=1e-5, atol=1e-6)

    # A list after the logged period with a product never seen before: its text comes from the new log.
    fresh = pd.DataFrame({"request_id": "new-1", "user_id": user_text(102), "event_time": T0 + pd.Timedelta(days=4),
                          "product_id": ["sku-new", "1", "99999999999999999999"], "position": [0, 1, 2]})
    fresh.to_csv(tmp_path / "fresh.csv", index=False)
    scores = _predict(run_dir, text, tmp_path / "fresh.parquet", impressions=str(tmp_path / "fresh.csv"))
    assert scores[KEY].values.tolist() == [["new-1", "1"], ["new-1", "99999999999999999999"], ["new-1", "sku-new"]]

    # Integer request ids on a run of text ones: kept raw as integers, the scores are the same.
    numbered = day3.assign(request_id=pd.factorize(day3["request_id"])[0] + 1)
    numbered.to_parquet(tmp_path / "numbered.parquet")
    scores = _predict(run_dir, text, tmp_path / "numbered.parquet", impressions=str(tmp_path / "numbered.parquet"))
    assert scores["request_id"].dtype == np.int64
    lookup = dict(zip(numbered["request_id"], day3["request_id"], strict=True))
    scores["request_id"] = scores["request_id"].map(lookup)
    scores = scores.sort_values(KEY, ignore_index=True)
    assert scores[KEY].equals(expected)
    np.testing.assert_allclose(scores[SCORES].to_numpy(), window[SCORES].to_numpy(), rtol=1e-5, atol=1e-6)
