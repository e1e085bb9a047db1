"""t4r_dmt.demo: the summary table sets each metric beside its oracle from truth/oracle.json."""

from __future__ import annotations

from t4r_dmt.demo import _summary_table


def test_the_summary_compares_with_the_position_free_oracles() -> None:
    oracle = {"auc_click_relevance_oracle": 0.82, "auc_click_oracle": 0.85, "auc_order_relevance_oracle": 0.873,
              "auc_order_oracle": 0.891}
    rows = _summary_table({"auc_click": 0.776, "auc_order": 0.815, "ndcg@10": 0.566}, oracle).splitlines()
    assert rows[2:] == ["| auc_click | 0.7760 | 0.8200 |", "| auc_order | 0.8150 | 0.8730 |", "| ndcg@10 | 0.5660 |  |"]


def test_an_oracle_file_without_an_oracle_leaves_its_cell_empty() -> None:
    rows = _summary_table({"auc_order": 0.815}, {"auc_order_oracle": 0.891}).splitlines()
    assert rows[2] == "| auc_order | 0.8150 |  |"
