"""The fingerprint of a preprocessed data folder: what a trained run must be scored on.

A run's weights are tied to the vocabularies of the data it was trained on: the embedding tables have one
row per encoded id, and the codes mean particular raw ids. ``t4r-dmt train`` records the fingerprint of
its ``--data`` in ``RUN/config.json``; ``t4r-dmt predict`` recomputes it for its ``--data`` and refuses a
mismatch, which would otherwise fail deep in ``load_state_dict`` (other vocabulary sizes) or, worse,
score silently with the wrong items (the same sizes, other ids).

The fingerprint holds:

* ``schema``: a hash of the task schema's columns (name, dtype, list or not, tags);
* ``vocabulary_sizes``: encoded ids per categorical column (``domain.max + 1``);
* ``categories``: a hash of the fitted vocabularies (``workflow/categories/unique.*.parquet``: which raw
  id each code stands for).

Two preprocess runs of the same input give the same fingerprint (paths and timestamps are left out).
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.parquet as pq

logger = logging.getLogger(__name__)

FINGERPRINT_KEY = "data_fingerprint"
"""The key of the fingerprint in ``RUN/config.json``."""


def task_folders(data_dir: str | Path, task: str) -> tuple[Path, Path]:
    """(schema folder, workflow folder) of ``task`` ("ranking" or "next-item") in a preprocess output."""
    data = Path(data_dir)
    if task == "ranking":
        return data / "ranking", data / "workflow"
    return data / "sessions", data / "sessions" / "workflow"


def data_fingerprint(data_dir: str | Path, task: str = "ranking") -> dict[str, Any]:
    """The fingerprint of the ``task`` data of a preprocess output folder (module docstring).

    Raises
    ------
    FileNotFoundError
        The folder has no schema for the task.
    """
    from merlin.schema import Tags
    from merlin.schema.io.tensorflow_metadata import TensorflowMetadata

    schema_dir, workflow_dir = task_folders(data_dir, task)
    if not (schema_dir / "schema.pbtxt").exists():
        raise FileNotFoundError(f"{schema_dir / 'schema.pbtxt'} is missing: run `t4r-dmt preprocess` first")
    schema = TensorflowMetadata.from_proto_text_file(str(schema_dir)).to_merlin_schema()
    columns = sorted(
        [col.name, str(col.dtype.element_type.value), bool(col.is_list), sorted(getattr(t, "value", str(t)) for t in col.tags)]
        for col in schema
    )
    sizes = {}
    for col in schema:
        domain = col.properties.get("domain") or {}
        if Tags.CATEGORICAL in col.tags and "max" in domain:
            sizes[col.name] = int(domain["max"]) + 1
    categories = hashlib.sha256()
    for path in sorted((workflow_dir / "categories").glob("unique.*.parquet")):
        table = pq.read_table(path)
        categories.update(path.name.encode())
        categories.update(pd.util.hash_pandas_object(table.to_pandas(), index=False).to_numpy().tobytes())
    return {
        "schema": _digest(json.dumps(columns)),
        "vocabulary_sizes": dict(sorted(sizes.items())),
        "categories": categories.hexdigest()[:16],
    }


def check_run_data(run_dir: str | Path, data_dir: str | Path) -> None:
    """Refuse ``data_dir`` unless it is the data the run in ``run_dir`` was trained on.

    A run without a recorded fingerprint (trained before they were recorded) is accepted with a warning;
    a run folder without ``config.json`` is left for the caller to report.

    Raises
    ------
    ValueError
        One line naming both data folders and what differs.
    """
    config_path = Path(run_dir) / "config.json"
    if not config_path.exists():
        return
    saved = json.loads(config_path.read_text())
    task = saved.get("data", {}).get("task", "ranking")
    trained_on = saved.get("data", {}).get("data", "?")
    recorded = saved.get(FINGERPRINT_KEY)
    if recorded is None:
        logger.warning("%s records no fingerprint of its training data (it was trained before runs recorded one): "
                       "cannot check that --data %s is the data it was trained on (%s)", run_dir, data_dir, trained_on)
        return
    current = data_fingerprint(data_dir, task)
    problems = []
    if current["schema"] != recorded.get("schema"):
        problems.append("other columns")
    old_sizes, new_sizes = recorded.get("vocabulary_sizes", {}), current["vocabulary_sizes"]
    changed = [f"{name}: {old_sizes.get(name)} in the run, {new_sizes.get(name)} in --data"
               for name in sorted(set(old_sizes) | set(new_sizes)) if old_sizes.get(name) != new_sizes.get(name)]
    if changed:
        problems.append("other vocabulary sizes (" + ", ".join(changed) + ")")
    elif current["categories"] != recorded.get("categories"):
        problems.append("vocabularies of the same sizes that encode other ids")
    if problems:
        raise ValueError(f"--data {data_dir} is not the data run {run_dir} was trained on ({trained_on}): it has "
                         f"{'; '.join(problems)}; score with the preprocess output the run was trained on")


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]
