"""NVTabular operators of the ranking workflow, one per file (as ``nvtabular/ops``)."""

from t4r_dmt.preprocess.ops.behavior_sequences import BehaviorSequences, sequence_columns
from t4r_dmt.preprocess.ops.bias_features import BiasFeatures
from t4r_dmt.preprocess.ops.block_log import BlockLogOp
from t4r_dmt.preprocess.ops.block_normalize import BlockNormalize
from t4r_dmt.preprocess.ops.candidate_attributes import CandidateAttributes
from t4r_dmt.preprocess.ops.history_operator import HistoryOperator
from t4r_dmt.preprocess.ops.interactions import Interactions, count_columns, interaction_columns
from t4r_dmt.preprocess.ops.item_rates import RATE_COLUMNS, ItemRates
from t4r_dmt.preprocess.ops.ratio import Ratio
from t4r_dmt.preprocess.ops.shared_categorify import SharedCategorify
from t4r_dmt.preprocess.ops.user_activity import UserActivity, activity_columns

__all__ = [
    "BehaviorSequences",
    "BiasFeatures",
    "BlockLogOp",
    "BlockNormalize",
    "CandidateAttributes",
    "HistoryOperator",
    "Interactions",
    "ItemRates",
    "RATE_COLUMNS",
    "Ratio",
    "SharedCategorify",
    "UserActivity",
    "activity_columns",
    "count_columns",
    "interaction_columns",
    "sequence_columns",
]
