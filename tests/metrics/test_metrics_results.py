"""RunResults: metrics.json / metrics.csv round trip, the contract validator, per-window plots."""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from t4r_dmt.errors import InputError
from t4r_dmt.metrics.results import RunResults, metric_file_stem, plot_windows, validate_metrics_json

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _results() -> RunResults:
    results = RunResults(task="ranking", model="dmt", config={"d_model": 32, "lr": 1e-3})
    results.add_window(1, 2, 100, {"auc_click": 0.70, "auc_order": float("nan"), "ndcg@10": 0.40})
    results.add_window(2, 3, 120, {"auc_click": 0.80, "auc_order": 0.60, "ndcg@10": 0.50})
    return results


def test_average_ignores_nan() -> None:
    results = _results()
    # auc_click (0.7 + 0.8) / 2; auc_order only window 2; names in the contract's order
    assert results.average == pytest.approx({"auc_click": 0.75, "auc_order": 0.60, "ndcg@10": 0.45})
    assert results.metric_names == ["auc_click", "auc_order", "ndcg@10"]
    only_nan = RunResults(task="ranking", model="dmt")
    only_nan.add_window(1, 2, 5, {"auc_order": float("nan")})
    assert math.isnan(only_nan.average["auc_order"])


def test_write_load_round_trip(tmp_path: Path) -> None:
    results = _results()
    paths = results.write(tmp_path / "run")
    obj = json.loads(paths["json"].read_text())  # strict JSON: NaN written as null
    validate_metrics_json(obj)
    assert obj["windows"][0] == {"train_window": 1, "eval_window": 2, "n_rows": 100, "auc_click": 0.7,
                                 "auc_order": None, "ndcg@10": 0.4}
    assert obj["average"] == pytest.approx({"auc_click": 0.75, "auc_order": 0.6, "ndcg@10": 0.45})
    assert obj["config"] == {"d_model": 32, "lr": 1e-3} and obj["task"] == "ranking" and obj["model"] == "dmt"
    loaded = RunResults.load(tmp_path / "run")
    assert loaded.task == "ranking" and loaded.config == results.config
    assert math.isnan(loaded.windows[0]["auc_order"])
    assert loaded.average == pytest.approx(results.average)
    csv = pd.read_csv(paths["csv"])
    assert list(csv.columns) == ["train_window", "eval_window", "n_rows", "auc_click", "auc_order", "ndcg@10"]
    assert csv["eval_window"].tolist() == [2, 3] and csv["auc_click"].tolist() == [0.7, 0.8]
    assert math.isnan(csv["auc_order"][0])
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == ["metrics.csv", "metrics.json"]  # no temp left


def test_chosen_epochs_are_recorded_beside_the_metrics_not_averaged(tmp_path: Path) -> None:
    windows = [{"train_window": 1, "eval_window": 2, "n_rows": 10, "epochs": 2, "auc_click": 0.7},
               {"train_window": 2, "eval_window": 3, "n_rows": 12, "epochs": 1, "auc_click": 0.8}]
    results = RunResults(task="ranking", model="dmt", windows=windows)
    assert results.metric_names == ["auc_click"] and results.fact_names == ["epochs"]
    paths = results.write(tmp_path)
    obj = json.loads(paths["json"].read_text())
    assert [w["epochs"] for w in obj["windows"]] == [2, 1] and obj["average"] == pytest.approx({"auc_click": 0.75})
    assert [w["epochs"] for w in RunResults.load(tmp_path).windows] == [2, 1]
    assert list(pd.read_csv(paths["csv"]).columns) == ["train_window", "eval_window", "n_rows", "epochs", "auc_click"]
    plot_windows(results, tmp_path / "plots")
    assert sorted(p.name for p in (tmp_path / "plots").iterdir()) == ["auc_click.png"]  # epochs is not plotted
    with pytest.raises(ValueError, match="metric names clash with window keys: \\['epochs'\\]"):
        results.add_window(3, 4, 5, {"epochs": 3})


def test_empty_run_is_valid(tmp_path: Path) -> None:
    RunResults(task="next-item", model="xlnet").write(tmp_path)
    assert RunResults.load(tmp_path).windows == []


def _valid() -> dict[str, Any]:
    return _results().to_json()


def _edit(path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    obj = copy.deepcopy(_valid())
    target = obj
    for key in path[:-1]:
        target = target[key]
    if value is KeyError:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return obj


@pytest.mark.parametrize(
    ("obj", "message"),
    [
        ([1, 2], r"must hold a JSON object"),
        (_edit(("average",), KeyError), r"missing key\(s\) \['average'\]"),
        (_edit(("extra",), 1), r"unknown key\(s\) \['extra'\]"),
        (_edit(("task",), "ctr"), r"column 'task': 'task' must be one of \['ranking', 'next-item'\]"),
        (_edit(("model",), ""), r"'model' must be a non-empty string"),
        (_edit(("config",), [1]), r"'config' must be an object"),
        (_edit(("windows",), {}), r"'windows' must be a list"),
        (_edit(("windows", 1), 3), r"column 'windows', row 1: each entry of 'windows' must be an object"),
        (_edit(("windows", 0, "n_rows"), KeyError), r"column 'windows', row 0: missing key 'n_rows'"),
        (_edit(("windows", 0, "eval_window"), "2"), r"column 'eval_window', row 0: must be an integer >= 1"),
        (_edit(("windows", 1, "train_window"), 0), r"column 'train_window', row 1: must be an integer >= 1"),
        (_edit(("windows", 0, "n_rows"), True), r"column 'n_rows', row 0: must be an integer >= 0"),
        (_edit(("windows", 0, "auc"), 0.5), r"column 'auc', row 0: unknown metric name for task 'ranking'"),
        (_edit(("windows", 0, "auc_click"), "0.7"), r"column 'auc_click', row 0: a metric must be a number"),
        (_edit(("average",), [0.5]), r"'average' must be an object"),
        (_edit(("average", "ndcg@10"), KeyError), r"'average' must name exactly the window metrics"),
        (_edit(("average", "ndcg@10"), 0.9), r"column 'average.ndcg@10': average does not match"),
        (_edit(("average", "auc_click"), "x"), r"column 'average.auc_click': a metric must be a number"),
        (_edit(("windows", 0, "epochs"), 0), r"column 'epochs', row 0: must be an integer >= 1"),
        (_edit(("windows", 0, "epochs"), 1.5), r"column 'epochs', row 0: must be an integer >= 1"),
    ],
)
def test_validate_rejects(obj: Any, message: str) -> None:
    with pytest.raises(InputError, match=message):
        validate_metrics_json(obj, source="run/metrics.json")


def test_next_item_metric_names() -> None:
    results = RunResults(task="next-item", model="xlnet")
    results.add_window(1, 2, 10, {"ndcg@20": 0.1, "recall@20": 0.2, "mrr@20": 0.05})
    validate_metrics_json(results.to_json())
    with pytest.raises(InputError, match=r"column 'auc_click', row 1: unknown metric name for task 'next-item'"):
        results.add_window(2, 3, 10, {"auc_click": 0.5})
    assert len(results.windows) == 1  # the rejected window was not stored


def test_constructor_validation() -> None:
    with pytest.raises(ValueError, match=r"task must be one of"):
        RunResults(task="ctr", model="dmt")
    with pytest.raises(ValueError, match=r"model must be a non-empty string"):
        RunResults(task="ranking", model="")
    with pytest.raises(ValueError, match=r"config must be a dict"):
        RunResults(task="ranking", model="dmt", config=[])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"column 'n_rows', row 0: must be an integer >= 0"):
        RunResults(task="ranking", model="dmt", windows=[{"train_window": 1, "eval_window": 2, "n_rows": -1}])
    with pytest.raises(ValueError, match=r"metric names clash with window keys: \['n_rows'\]"):
        RunResults(task="ranking", model="dmt").add_window(1, 2, 3, {"n_rows": 4.0})


def test_load_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"run folder .*nowhere does not exist"):
        RunResults.load(tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match=r"has no metrics.json"):
        RunResults.load(tmp_path)
    (tmp_path / "metrics.json").write_text('{"task": "ranking",')
    with pytest.raises(InputError, match=r"metrics.json, row 1: not valid JSON"):
        RunResults.load(tmp_path)
    (tmp_path / "metrics.json").write_text(json.dumps(_edit(("task",), "ctr")))
    with pytest.raises(InputError, match=r"metrics.json, column 'task'"):
        RunResults.load(tmp_path)


def test_metric_file_stem() -> None:
    assert metric_file_stem("ndcg@10") == "ndcg_at_10"
    assert metric_file_stem("gauc_click") == "gauc_click"
    assert metric_file_stem("a/b c") == "a_b_c"


def test_plot_windows(tmp_path: Path) -> None:
    paths = plot_windows(_results(), tmp_path / "run" / "plots")
    assert [p.name for p in paths] == ["auc_click.png", "auc_order.png", "ndcg_at_10.png"]
    for path in paths:
        assert path.read_bytes()[:8] == PNG_MAGIC and path.stat().st_size > 5_000
    assert sorted(p.name for p in (tmp_path / "run" / "plots").iterdir()) == [p.name for p in paths]
