"""The ranking ``nvt.Workflow``: candidates in, model-ready ranking rows out.

Graph (inputs are the candidate columns of ``candidates.py``)::

    product_id, request_ts ─ CandidateAttributes ─┬─ item_category, item_brand ─┐
    user_id, request_ts ─── BehaviorSequences ────┼─ 9 raw sequences ──────────┤
    product_id ─ Rename(item_id) ─────────────────┼────────────────────────────┼─ SharedCategorify ─ ids
    user_id ──────────────────────────────────────┘                            │   (item, category,
                                                                               │    brand, user)
    BehaviorSequences ─ {b}_time_gap_bucket_seq (log2 bucket codes: final, tagged by the operator, not encoded)
    item_category + request_id, position, page ─ BiasFeatures (encodes with SharedCategorify's
        category vocabulary) ─ position_index, position_page, neighbor_category_seq
    UserActivity (counts, purchase power) + Ratio(price / JoinGroupby category mean price) + item_price
        ─ FillMissing ─ LogOp ─ Normalize(float32)
    Interactions (user-candidate matches per behaviour x attribute) ─ LogOp on the counts ─ Normalize(float32)
        ─ AddTags(interaction)
    ItemRates (CTR / CVR log lifts as of the request) ─ Normalize(float32)

LogOp and Normalize are ``BlockLogOp`` / ``BlockNormalize``: NVTabular's operators, computed on all their
columns at once (the same values; ops/block_log.py).
    click, order ─ AddTags(TARGET, BINARY_CLASSIFICATION, BINARY, CLASSIFICATION)
    request_id, window, product_id: passed through untagged

Every statistic (vocabularies, JoinGroupby means, Normalize moments) is fitted on the rows given to
``Workflow.fit``: the pipeline passes the fit windows only.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import nvtabular as nvt
from merlin.dag import Graph
from merlin.schema import Tags
from nvtabular import ops as nvt_ops

from t4r_dmt.compat.merlin_executor import use_list_safe_executor
from t4r_dmt.preprocess.config import RankingConfig
from t4r_dmt.preprocess.ops import (
    RATE_COLUMNS,
    BehaviorSequences,
    BiasFeatures,
    BlockLogOp,
    BlockNormalize,
    CandidateAttributes,
    Interactions,
    ItemRates,
    Ratio,
    SharedCategorify,
    UserActivity,
    activity_columns,
    count_columns,
    interaction_columns,
)
from t4r_dmt.schema import (
    BEHAVIORS,
    BIAS_COLUMNS,
    CATEGORICAL_ID_COLUMNS,
    INTERACTION_TAG,
    LABELS,
    PASSTHROUGH_COLUMNS,
    TARGET_ITEM_COLUMNS,
    USER_ID,
    behavior_tag,
    sequence_column,
    sequence_columns,
    time_gap_bucket_column,
)

LABEL_COLUMNS = list(LABELS)
LABEL_TAGS = [Tags.TARGET, Tags.BINARY_CLASSIFICATION, Tags.BINARY, Tags.CLASSIFICATION]
CATEGORY_MEAN_PRICE = "item_category_item_price_mean"


def dense_columns() -> list[str]:
    """Names of the normalised float32 features, in output order."""
    return [*activity_columns(), "item_log_price", "item_price_to_category", *RATE_COLUMNS, *interaction_columns()]


def output_columns(with_bias: bool) -> list[str]:
    """All output columns in the order they are written."""
    sequences = [c for b in BEHAVIORS for c in sequence_columns(b)]
    time_gaps = [time_gap_bucket_column(b) for b in BEHAVIORS]
    bias = list(BIAS_COLUMNS) if with_bias else []
    return [*PASSTHROUGH_COLUMNS, *CATEGORICAL_ID_COLUMNS, *sequences, *time_gaps, *bias, *dense_columns(),
            *LABEL_COLUMNS]


def build_ranking_workflow(
    store_path: str,
    stats_path: str,
    config: RankingConfig,
    with_bias: bool,
    max_position_index: int = 0,
    max_position_page: int = 0,
) -> nvt.Workflow:
    """Assemble the (unfitted) ranking workflow.

    Parameters
    ----------
    store_path : str
        ``HistoryStore`` folder read by the as-of operators.
    stats_path : str
        Where Categorify / JoinGroupby write their statistics while fitting.
    config : RankingConfig
        Sequence lengths, frequency threshold and rate smoothing.
    with_bias : bool
        Add the position / neighbour features (impression logs only).
    max_position_index, max_position_page : int
        Largest ``position + 1`` / ``page + 1`` of the log (schema domains of the bias features).
    """
    attributes = ["product_id", "request_ts"] >> CandidateAttributes(store_path)
    sequences = ["user_id", "request_ts"] >> BehaviorSequences(store_path, config.seq_lengths)
    item_id = ["product_id"] >> nvt_ops.Rename(name="item_id")
    encoder = SharedCategorify(
        id_vocabularies(), freq_threshold=config.freq_threshold, out_path=stats_path, column_tags=id_tags()
    )
    id_sequences = sequences[[c for b in BEHAVIORS for c in sequence_columns(b)]]
    encoded = (item_id + attributes[["item_category", "item_brand"]] + id_sequences + ["user_id"]) >> encoder
    outputs: Any = list(PASSTHROUGH_COLUMNS) + encoded
    outputs += sequences[[time_gap_bucket_column(b) for b in BEHAVIORS]]
    if with_bias:
        outputs += (attributes[["item_category"]] + ["request_id", "position", "page"]) >> BiasFeatures(
            encoder, max_position_index, max_position_page
        )

    activity = ["user_id", "request_ts"] >> UserActivity(store_path)
    category_mean = attributes[["item_category"]] >> nvt_ops.JoinGroupby(
        cont_cols=attributes[["item_price"]], stats=["mean"], out_path=stats_path
    )
    relative = (attributes[["item_price"]] + category_mean) >> Ratio(
        "item_price", CATEGORY_MEAN_PRICE, "item_price_to_category"
    )
    log_price = attributes[["item_price"]] >> nvt_ops.Rename(name="item_log_price")
    counts = (activity + log_price) >> nvt_ops.FillMissing(fill_val=0.0) >> BlockLogOp()
    relative = relative >> nvt_ops.FillMissing(fill_val=1.0) >> BlockLogOp()
    rates = ["product_id", "request_ts"] >> ItemRates(store_path, config.rate_smoothing, config.rate_delay_ns,
                                                           config.ctr_position_debias)
    outputs += (counts + relative + rates) >> BlockNormalize(out_dtype=np.float32)

    matches = (["user_id", "request_ts", "product_id"] + attributes[["item_category", "item_brand"]]) >> Interactions(
        store_path, config.seq_lengths, config.interaction_decay_ns
    )
    logged = matches[count_columns()] >> BlockLogOp()
    rest = matches[[c for c in interaction_columns() if c not in set(count_columns())]]
    outputs += (logged + rest) >> BlockNormalize(out_dtype=np.float32) >> nvt_ops.AddTags([INTERACTION_TAG])

    outputs += LABEL_COLUMNS >> nvt_ops.AddTags(LABEL_TAGS)
    return use_list_safe_executor(nvt.Workflow(outputs))


def id_vocabularies() -> dict[str, list[str]]:
    """Vocabulary name -> its columns: the target item's id, category and brand share theirs with the sequences."""
    groups = {attribute: [target, *[sequence_column(b, attribute) for b in BEHAVIORS]]
              for attribute, target in TARGET_ITEM_COLUMNS.items()}
    return {**groups, "user": [USER_ID]}


def id_tags() -> dict[str, list[Any]]:
    """Schema tags of each encoded id column (SharedCategorify adds CATEGORICAL)."""
    tags: dict[str, list[Any]] = {
        "user_id": [Tags.USER, Tags.USER_ID, Tags.ID],
        "item_id": [Tags.ITEM, Tags.ITEM_ID, Tags.ID],
        "item_category": [Tags.ITEM],
        "item_brand": [Tags.ITEM],
    }
    for behavior in BEHAVIORS:
        for column in sequence_columns(behavior):
            tags[column] = [Tags.LIST, Tags.SEQUENCE, Tags.ITEM, behavior_tag(behavior)]
    return tags


def constant_features(workflow: nvt.Workflow) -> list[str]:
    """The normalised columns whose fit data had no spread (std 0): Normalize only shifts them, so any later
    variation reaches the model unscaled. A fitted workflow's ``Normalize`` statistics are read."""
    nodes = Graph.get_nodes_by_op_type([workflow.output_node], nvt_ops.Normalize)
    return sorted(name for node in nodes for name, std in node.op.stds.items() if not std > 1e-12)
