"""The data contract of ``docs/DESIGN.md`` in one place: column names, tags, behaviours and codes.

Preprocessing writes these names, the models and baselines read them, the metrics score them; every part
imports them from here, so a name is spelled once. This module imports nothing of t4r_dmt (bottom layer).
"""

from __future__ import annotations

# --- tasks and labels --------------------------------------------------------------------------------
#: What a run learns: rank impressions (``DIR/ranking``) or predict a session's next item (``DIR/sessions``).
TASKS: tuple[str, ...] = ("ranking", "next-item")
#: The ranking objectives, one label column and one model head each (CTR, CVR), in head order.
LABELS: tuple[str, ...] = ("click", "order")

# --- raw events ----------------------------------------------------------------------------------------
#: ``event_type`` values of the canonical (REES46) event log.
EVENT_TYPES: tuple[str, ...] = ("view", "cart", "purchase", "remove_from_cart")
#: Behaviour sequence -> the event type it is built from (DMT's click / cart / order sequences).
BEHAVIOR_EVENTS: dict[str, str] = {"click": "view", "cart": "cart", "order": "purchase"}
BEHAVIORS: tuple[str, ...] = tuple(BEHAVIOR_EVENTS)

# --- ranking rows (``DIR/ranking``) ----------------------------------------------------------------------
#: Columns that identify an impression and its outcome, carried into every scored frame.
RANKING_ID_COLUMNS: tuple[str, ...] = ("request_id", "user_id", *LABELS)
#: Values passed through unencoded: ``request_id`` raw (int64, or text when a log's request ids are text),
#: ``window`` the row's window number, ``product_id`` the int64 id (a text id's surrogate: ``t4r_dmt.data.ids``).
PASSTHROUGH_COLUMNS: tuple[str, ...] = ("request_id", "window", "product_id")
#: The user and the target item's categorical codes (shared vocabularies with the sequences).
USER_ID = "user_id"
TARGET_ITEM_COLUMNS: dict[str, str] = {"item": "item_id", "category": "item_category", "brand": "item_brand"}
CATEGORICAL_ID_COLUMNS: tuple[str, ...] = (USER_ID, *TARGET_ITEM_COLUMNS.values())
#: Attribute -> the suffix of its behaviour-sequence column (``click_item_id_seq`` ...), oldest event first.
SEQUENCE_SUFFIXES: dict[str, str] = {"item": "item_id_seq", "category": "category_seq", "brand": "brand_seq"}
#: Suffix of each behaviour's time-gap list (``click_time_gap_bucket_seq``): element by element with the id
#: sequences, the log2 bucket of (request time - event time) in seconds. Not one of ``SEQUENCE_SUFFIXES``: its
#: values are final integer codes, with no Categorify vocabulary shared with the target item.
TIME_GAP_BUCKET_SUFFIX = "time_gap_bucket_seq"
#: Codes of the time-gap buckets: 0 pads lists; code ``k >= 1`` holds the gaps of ``2**(k-1)`` to
#: ``2**k - 1`` whole seconds (1: under 2 s, 2: 2-3 s, 12: 1-2 h ...), and the last code,
#: ``TIME_GAP_BUCKETS - 1`` = 31, every gap of ``2**30`` s (34 years) or more (the column's ``int_domain.max``).
TIME_GAP_BUCKETS = 32

#: List-position bias features: the impression's position and page, and the neighbours' categories.
POSITION_INDEX = "position_index"
POSITION_PAGE = "position_page"
NEIGHBOR_CATEGORY_SEQ = "neighbor_category_seq"
BIAS_COLUMNS: tuple[str, ...] = (POSITION_INDEX, POSITION_PAGE, NEIGHBOR_CATEGORY_SEQ)
#: The schema tag of the bias features (read by the bias tower only, never by the relevance network).
BIAS_TAG = "bias"
#: The schema tag of the user-candidate match features (``Interactions``): the ablations drop them by tag.
INTERACTION_TAG = "interaction"
#: Items above and below an impression whose categories ``neighbor_category_seq`` holds.
NEIGHBOR_OFFSETS: tuple[int, ...] = (-3, -2, -1, 1, 2, 3)

# --- session rows (``DIR/sessions``) ---------------------------------------------------------------------
SESSION_ITEM_COLUMN = "item_id-list"
SESSION_TIME_COLUMN = "timestamp-first"

# --- categorical codes ----------------------------------------------------------------------------------
#: 0 pads lists, 1 is a null value, 2 a value outside the fitted vocabulary; real values start at 3.
PAD_CODE = 0
NULL_CODE = 1
OOV_CODE = 2
FIRST_VALUE_CODE = 3


def behavior_tag(behavior: str) -> str:
    """The schema tag of a behaviour's sequence columns, e.g. ``"behavior_click"``."""
    return f"behavior_{behavior}"


def sequence_column(behavior: str, attribute: str) -> str:
    """``"click", "item" -> "click_item_id_seq"``; raises on an unknown behaviour or attribute."""
    if behavior not in BEHAVIORS:
        raise ValueError(f"unknown behaviour {behavior!r}; choose one of {', '.join(BEHAVIORS)}")
    if attribute not in SEQUENCE_SUFFIXES:
        raise ValueError(f"unknown sequence attribute {attribute!r}; choose one of {', '.join(SEQUENCE_SUFFIXES)}")
    return f"{behavior}_{SEQUENCE_SUFFIXES[attribute]}"


def sequence_columns(behavior: str) -> list[str]:
    """The item, category and brand sequence columns of one behaviour, in that order."""
    return [sequence_column(behavior, attribute) for attribute in SEQUENCE_SUFFIXES]


def time_gap_bucket_column(behavior: str) -> str:
    """``"click" -> "click_time_gap_bucket_seq"``; raises on an unknown behaviour."""
    if behavior not in BEHAVIORS:
        raise ValueError(f"unknown behaviour {behavior!r}; choose one of {', '.join(BEHAVIORS)}")
    return f"{behavior}_{TIME_GAP_BUCKET_SUFFIX}"
