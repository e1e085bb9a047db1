"""``t4r-dmt report``: comparison plots, the markdown table, argument parsing and the error paths."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from transformers import HfArgumentParser

from t4r_dmt.analysis.report import ARGUMENTS, ReportArguments, markdown_table, rewrite_argv, run
from t4r_dmt.errors import InputError
from t4r_dmt.metrics.results import RunResults

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _write_run(folder: Path, model: str, auc_click: list[float], logloss: list[float],
               task: str = "ranking") -> Path:
    results = RunResults(task=task, model=model, config={"preset": model})
    for i, (auc, loss) in enumerate(zip(auc_click, logloss, strict=True)):
        metrics = {"auc_click": auc, "logloss_click": loss} if task == "ranking" else {"ndcg@20": auc}
        results.add_window(i + 1, i + 2, 10 * (i + 1), metrics)
    results.write(folder)
    return folder


@pytest.fixture()
def two_runs(tmp_path: Path) -> tuple[Path, Path]:
    return (_write_run(tmp_path / "runs" / "dmt", "dmt", [0.70, 0.80], [0.40, 0.30]),
            _write_run(tmp_path / "runs" / "din", "din", [0.60, float("nan")], [0.35, 0.33]))


def test_report_writes_table_and_plots(two_runs: tuple[Path, Path], tmp_path: Path,
                                       caplog: pytest.LogCaptureFixture) -> None:
    out = tmp_path / "out"
    with caplog.at_level(logging.INFO, logger="t4r_dmt.analysis.report"):
        summary = run(ReportArguments(runs=[str(p) for p in two_runs], out=str(out)))
    # dmt: auc (0.7 + 0.8) / 2 = 0.75, logloss 0.35; din: auc 0.6 (NaN window ignored), logloss 0.34.
    # Best: higher auc (dmt), lower logloss (din).
    assert summary["table"].splitlines() == [
        "| run | model | windows | auc_click | logloss_click |",
        "|---|---|---|---:|---:|",
        "| dmt | dmt | 2 | **0.7500** | 0.3500 |",
        "| din | din | 2 | 0.6000 | **0.3400** |",
    ]
    report = (out / "report.md").read_text()
    assert summary["table"] in report and "![auc_click](plots/auc_click.png)" in report
    assert summary["report"] == str(out / "report.md") and summary["runs"] == ["dmt", "din"]
    assert [Path(p).name for p in summary["plots"]] == ["auc_click.png", "logloss_click.png"]
    for plot in summary["plots"]:
        assert Path(plot).read_bytes()[:8] == PNG_MAGIC
    assert summary["table"] in caplog.text
    # running again over the same folder replaces the files
    run(ReportArguments(runs=[str(two_runs[0])], out=str(out)))
    assert "| dmt | dmt | 2 | 0.7500 | 0.3500 |" in (out / "report.md").read_text()  # one run: no bold


def test_labels_disambiguate_same_folder_names(tmp_path: Path) -> None:
    a = _write_run(tmp_path / "a" / "run", "dmt", [0.7], [0.3])
    b = _write_run(tmp_path / "b" / "run", "dmt", [0.6], [0.4])
    summary = run(ReportArguments(runs=[str(a), str(b)], out=str(tmp_path / "out")))
    assert summary["runs"] == [str(a), str(b)]


def test_markdown_table_missing_metric_and_nan() -> None:
    ranking = RunResults(task="ranking", model="dmt")
    ranking.add_window(1, 2, 5, {"auc_click": float("nan")})
    other = RunResults(task="ranking", model="mmoe")
    other.add_window(1, 2, 5, {"auc_click": 0.5, "gauc_click": 0.6})
    assert markdown_table(["x", "y"], [ranking, other]).splitlines()[2:] == [
        "| x | dmt | 1 | n/a | n/a |",
        "| y | mmoe | 1 | **0.5000** | **0.6000** |",
    ]


def test_positional_and_flag_arguments() -> None:
    parser = HfArgumentParser(ARGUMENTS)
    (args,) = parser.parse_args_into_dataclasses(args=rewrite_argv(["r1", "r2", "--out", "o"]))
    assert args.runs == ["r1", "r2"] and args.out == "o"
    (args,) = parser.parse_args_into_dataclasses(args=rewrite_argv(["--runs", "r1", "--out", "o"]))
    assert args.runs == ["r1"] and args.out == "o"
    assert rewrite_argv(["args.json"]) == ["args.json"]


def test_json_argument_file(tmp_path: Path) -> None:
    path = tmp_path / "args.json"
    path.write_text(json.dumps({"runs": ["r1", "r2"], "out": "o"}))
    (args,) = HfArgumentParser(ARGUMENTS).parse_json_file(str(path))
    assert args.runs == ["r1", "r2"]


def test_argument_errors() -> None:
    with pytest.raises(ValueError, match=r"give at least one run folder"):
        ReportArguments(runs=[])
    with pytest.raises(ValueError, match=r"--out must not be empty"):
        ReportArguments(runs=["r"], out="")


def test_missing_run_folder(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"run folder .*missing does not exist"):
        run(ReportArguments(runs=[str(tmp_path / "missing")], out=str(tmp_path / "out")))


def test_run_without_metrics(tmp_path: Path) -> None:
    (tmp_path / "unfinished").mkdir()
    with pytest.raises(FileNotFoundError, match=r"unfinished has no metrics.json"):
        run(ReportArguments(runs=[str(tmp_path / "unfinished")], out=str(tmp_path / "out")))


def test_invalid_metrics_json(tmp_path: Path) -> None:
    run_dir = _write_run(tmp_path / "bad", "dmt", [0.7], [0.3])
    obj = json.loads((run_dir / "metrics.json").read_text())
    obj["windows"][0]["accuracy"] = 0.9
    (run_dir / "metrics.json").write_text(json.dumps(obj))
    with pytest.raises(InputError, match=r"bad/metrics.json, column 'accuracy', row 0: unknown metric name"):
        run(ReportArguments(runs=[str(run_dir)], out=str(tmp_path / "out")))
    assert not (tmp_path / "out").exists()  # nothing written on error


def test_mixed_tasks(tmp_path: Path) -> None:
    ranking = _write_run(tmp_path / "rank", "dmt", [0.7], [0.3])
    next_item = _write_run(tmp_path / "next", "xlnet", [0.2], [0.0], task="next-item")
    with pytest.raises(ValueError, match=r"runs mix tasks \['next-item', 'ranking'\]"):
        run(ReportArguments(runs=[str(ranking), str(next_item)], out=str(tmp_path / "out")))
