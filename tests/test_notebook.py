"""notebooks/01-end-to-end.ipynb runs top to bottom (on tiny data) and produces its results."""

from __future__ import annotations

import json

import nbformat
import pytest
from nbclient import NotebookClient
from paths import NOTEBOOKS

NOTEBOOK = NOTEBOOKS / "01-end-to-end.ipynb"

TINY = """OUT = "nb_out"
USERS, ITEMS, DAYS, REQUESTS_PER_DAY = 150, 80, 3, 60
PRESETS = ["dmt", "dmt_no_bias"]
EPOCHS = 1.0
SEED = 0"""


@pytest.mark.slow
def test_end_to_end_notebook_executes(tmp_path):
    nb = nbformat.read(NOTEBOOK, as_version=4)
    params = [c for c in nb.cells if c.cell_type == "code" and c.source.startswith("# Parameters")]
    assert len(params) == 1, "the notebook needs exactly one '# Parameters' cell"
    params[0].source = "# Parameters\n" + TINY
    NotebookClient(nb, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
              if o.get("output_type") == "error"]
    assert not errors
    out = tmp_path / "nb_out"
    for preset in ("dmt", "dmt_no_bias"):
        metrics = json.loads((out / "runs" / preset / "metrics.json").read_text())
        assert [w["eval_window"] for w in metrics["windows"]] == [2, 3]
        assert 0.0 <= metrics["average"]["auc_click"] <= 1.0
    assert (out / "report" / "report.md").read_text().count("| dmt") >= 2
    # The last code cell displays the comparison plot inline.
    assert any("image/png" in o.get("data", {}) for o in nb.cells[-2].get("outputs", []))
