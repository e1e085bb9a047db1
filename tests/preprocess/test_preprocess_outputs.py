"""The ranking output as the model sees it: schema tags, T4R / Merlin readers, the saved workflow,
and the same rows with 2 Dask workers as in one process."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from log_fixtures import CONFIG, LENGTHS, make_logs
from merlin.schema import Tags
from merlin.schema.io.tensorflow_metadata import TensorflowMetadata

from t4r_dmt.preprocess.ops import interaction_columns
from t4r_dmt.preprocess.pipeline import RankingData, preprocess_ranking
from t4r_dmt.preprocess.workflow import dense_columns
from t4r_dmt.schema import BEHAVIORS, INTERACTION_TAG, TIME_GAP_BUCKETS


@pytest.fixture(scope="module")
def out(tmp_path_factory):
    events, impressions = make_logs(seed=1)
    folder = tmp_path_factory.mktemp("outputs")
    preprocess_ranking(RankingData(events, impressions), folder, CONFIG, progress=False)
    return folder


@pytest.fixture(scope="module")
def schema(out):
    return TensorflowMetadata.from_proto_text_file(str(out / "ranking")).to_merlin_schema()


def test_schema_tags_domains_and_lengths(schema):
    def names(*tags):
        return sorted(schema.select_by_tag(list(tags)).column_names)

    assert names(Tags.USER_ID) == ["user_id"]
    assert names(Tags.ITEM_ID) == ["item_id"]
    assert names(Tags.TARGET, Tags.BINARY_CLASSIFICATION) == ["click", "order"]
    assert names(Tags.BINARY) == ["click", "order"] and names(Tags.CLASSIFICATION) == ["click", "order"]
    assert names("bias") == ["neighbor_category_seq", "position_index", "position_page"]
    for column in ("request_id", "window", "product_id"):
        assert not schema[column].tags  # raw pass-through columns are not model features
    for behavior in BEHAVIORS:
        columns = [f"{behavior}_item_id_seq", f"{behavior}_category_seq", f"{behavior}_brand_seq"]
        gaps = f"{behavior}_time_gap_bucket_seq"
        assert names(f"behavior_{behavior}") == sorted([*columns, gaps])
        for column in columns:
            assert {Tags.CATEGORICAL, Tags.LIST, Tags.SEQUENCE, Tags.ITEM} <= set(schema[column].tags)
            assert schema[column].value_count.max == LENGTHS[behavior]
        # The time gaps: final codes with their own domain, not an item attribute.
        assert set(schema[gaps].tags) == {Tags.CATEGORICAL, Tags.LIST, Tags.SEQUENCE, f"behavior_{behavior}"}
        assert schema[gaps].int_domain.max == TIME_GAP_BUCKETS - 1
        assert schema[gaps].value_count.max == LENGTHS[behavior]
    assert schema["neighbor_category_seq"].value_count.min == schema["neighbor_category_seq"].value_count.max == 6
    # One vocabulary per entity: every column of an entity has the same domain.
    for target, group in (("item_id", "item_id_seq"), ("item_category", "category_seq"), ("item_brand", "brand_seq")):
        maxima = {schema[target].int_domain.max} | {schema[f"{b}_{group}"].int_domain.max for b in BEHAVIORS}
        assert len(maxima) == 1
    assert schema["neighbor_category_seq"].int_domain.max == schema["item_category"].int_domain.max
    dense = schema.select_by_tag(Tags.CONTINUOUS)
    assert dense.column_names == dense_columns() and all(c.dtype.to_numpy == np.float32 for c in dense)
    assert schema.select_by_tag(INTERACTION_TAG).column_names == interaction_columns()  # 9 x 8, ablation by tag


def test_t4r_builds_every_behavior_and_reads_a_batch(out, schema):
    transformers4rec = pytest.importorskip("transformers4rec.torch")
    from transformers4rec.torch.utils.data_utils import MerlinDataLoader

    features = {
        behavior: transformers4rec.TabularSequenceFeatures.from_schema(
            schema.select_by_tag(f"behavior_{behavior}"), max_sequence_length=n, aggregation="concat"
        )
        for behavior, n in LENGTHS.items()
    }
    loader = MerlinDataLoader.from_schema(
        schema, str(out / "ranking" / "0001" / "train.parquet"), batch_size=8, max_sequence_length=3, shuffle=False
    )
    inputs, targets = next(iter(loader))
    assert sorted(targets) == ["click", "order"]
    click = {k: v for k, v in inputs.items() if k.startswith("click_")}
    assert features["click"](click).shape[:2] == (8, 3)


def test_merlin_dataset_reads_the_output(out):
    from merlin.io import Dataset

    frame = Dataset(str(out / "ranking" / "0002" / "train.parquet"), engine="parquet").to_ddf().compute()
    assert len(frame) == len(pd.read_parquet(out / "ranking" / "0002" / "train.parquet"))
    assert set(frame["window"]) == {2}


def test_saved_workflow_reloads_and_reproduces_a_window(out):
    import nvtabular as nvt

    workflow = nvt.Workflow.load(str(out / "workflow"))
    assert (out / "workflow" / "history" / "meta.json").exists()
    written = pd.read_parquet(out / "ranking" / "0001" / "train.parquet")
    events, impressions = make_logs(seed=1)
    day = impressions[impressions["event_time"] < pd.Timestamp("2020-01-02")]
    candidates = pd.DataFrame(
        {
            "request_id": day["request_id"], "user_id": day["user_id"],
            "request_ts": day["event_time"].values.view(np.int64), "product_id": day["product_id"],
            "window": 1, "click": day["click"], "order": day["order"], "position": day["position"],
            "page": day["page"],
        }
    )
    again = workflow.transform(candidates)
    key = ["request_id", "product_id"]
    assert_same_rows(written.sort_values(key), again[written.columns].sort_values(key))


def assert_same_rows(left: pd.DataFrame, right: pd.DataFrame) -> None:
    assert len(left) == len(right)
    for column in left.columns:
        a, b = left[column].tolist(), right[column].tolist()
        if left[column].dtype.kind == "f":
            np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6, err_msg=column)
        else:
            assert [list(v) if isinstance(v, np.ndarray) else v for v in a] == [
                list(v) if isinstance(v, np.ndarray) else v for v in b
            ], column


def test_two_dask_workers_write_the_same_rows(out, tmp_path):
    from merlin.core.utils import Distributed

    events, impressions = make_logs(seed=1)
    with Distributed(cluster_type="cpu", force_new=True, n_workers=2, threads_per_worker=1, dashboard_address=":0"):
        preprocess_ranking(RankingData(events, impressions), tmp_path, CONFIG, progress=False)
    single = sorted((out / "ranking").glob("*/*.parquet"))
    assert [p.relative_to(out) for p in single] == [p.relative_to(tmp_path) for p in sorted((tmp_path / "ranking").glob("*/*.parquet"))]
    assert len(single) == 9
    for path in single:
        pd.testing.assert_frame_equal(pd.read_parquet(path), pd.read_parquet(tmp_path / path.relative_to(out)))
