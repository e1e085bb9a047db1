"""What the model reads from a Merlin schema of the ranking output (DESIGN.md's column names and tags).

`FeatureSpec.from_schema` is the only place that looks at column names and tags; every module below it takes
the explicit sizes it holds.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace

from merlin.schema import ColumnSchema, Schema, Tags

from t4r_dmt.model.config import DMTConfig
from t4r_dmt.schema import (
    BIAS_COLUMNS,
    BIAS_TAG,
    INTERACTION_TAG,
    LABELS,
    SEQUENCE_SUFFIXES,
    TARGET_ITEM_COLUMNS,
    TIME_GAP_BUCKET_SUFFIX,
)

LOG = logging.getLogger(__name__)

ITEM, CATEGORY, BRAND = TARGET_ITEM_COLUMNS.values()
POSITION, PAGE, NEIGHBORS = BIAS_COLUMNS


@dataclass(frozen=True)
class BehaviorColumns:
    """The three sequence columns of one behaviour and its maximum length N; ``time_gap``, the aligned list of
    time-gap bucket codes, when the model reads it (``transformer.time_encoding``), else None."""

    name: str
    item: str
    category: str
    brand: str
    max_length: int
    time_gap: str | None = None


@dataclass(frozen=True)
class BiasColumns:
    """The bias-tower inputs and their table sizes."""

    position: str
    page: str
    neighbors: str
    n_positions: int
    n_pages: int
    n_neighbors: int


@dataclass(frozen=True)
class FeatureSpec:
    """Column names and sizes the model is built from.

    Cardinalities are ``int_domain.max + 1`` maximised over every column of the entity (one table per
    entity, shared by the target item and all sequences); ``n_time_gap_buckets`` is that of the time-gap
    columns read (0 when none is).
    """

    n_items: int
    n_categories: int
    n_brands: int
    behaviors: tuple[BehaviorColumns, ...]
    dense: tuple[str, ...]
    users: tuple[tuple[str, int], ...]
    bias: BiasColumns | None
    targets: tuple[str, ...] = LABELS
    n_time_gap_buckets: int = 0
    item: str = ITEM
    category: str = CATEGORY
    brand: str = BRAND

    @property
    def max_sequence_length(self) -> int:
        """The longest list the model reads: what the data loader must pad to (at least)."""
        lengths = [b.max_length for b in self.behaviors]
        if self.bias is not None:
            lengths.append(self.bias.n_neighbors)
        return max(lengths, default=1)

    @property
    def input_columns(self) -> list[str]:
        cols = [self.item, self.category, self.brand, *self.dense, *(name for name, _ in self.users)]
        for b in self.behaviors:
            cols += [b.item, b.category, b.brand]
            if b.time_gap is not None:
                cols.append(b.time_gap)
        if self.bias is not None:
            cols += [self.bias.position, self.bias.page, self.bias.neighbors]
        return cols

    @classmethod
    def from_schema(cls, schema: Schema, config: DMTConfig) -> FeatureSpec:
        """Read names and sizes from ``schema`` for ``config``; raise ValueError on anything missing."""
        names = set(schema.column_names)
        for name in (ITEM, CATEGORY, BRAND):
            if name not in names:
                raise ValueError(f"schema has no column {name!r} (the target item; see DESIGN.md)")
        for target in LABELS:
            if target not in names or Tags.TARGET not in schema[target].tags:
                raise ValueError(f"schema has no target column {target!r} tagged TARGET")

        behaviors = tuple(_behavior(schema, b) for b in config.behaviors)
        n_time_gap_buckets = 0
        if config.interest.kind == "transformer" and config.transformer.time_encoding != "none":
            behaviors, n_time_gap_buckets = _time_gaps(schema, behaviors, config.transformer.time_encoding)
        n_items = _cardinality(schema, [ITEM, *(b.item for b in behaviors)])
        n_brands = _cardinality(schema, [BRAND, *(b.brand for b in behaviors)])
        bias = _bias(schema, config.bias.enabled)
        cat_cols = [CATEGORY, *(b.category for b in behaviors)] + ([bias.neighbors] if bias else [])
        n_categories = _cardinality(schema, cat_cols)

        dense = tuple(
            c.name for c in schema.select_by_tag(Tags.CONTINUOUS)
            if not c.is_list and Tags.TARGET not in c.tags and (config.interactions or INTERACTION_TAG not in c.tags)
        )
        users: tuple[tuple[str, int], ...] = ()
        if config.embeddings.use_user_features:
            users = tuple(
                (c.name, _cardinality(schema, [c.name]))
                for c in schema.select_by_tag(Tags.USER)
                if Tags.CATEGORICAL in c.tags and not c.is_list
            )
        spec = cls(n_items, n_categories, n_brands, behaviors, dense, users, bias,
                   n_time_gap_buckets=n_time_gap_buckets)
        features = {c.name for c in schema if {Tags.CATEGORICAL, Tags.CONTINUOUS} & set(c.tags)}
        ignored = sorted(features - set(spec.input_columns) - set(LABELS))
        if ignored:
            LOG.info("model ignores feature columns %s", ignored)
        return spec


def _behavior(schema: Schema, behavior: str) -> BehaviorColumns:
    tagged = schema.select_by_tag(f"behavior_{behavior}")
    cols: dict[str, ColumnSchema] = {}
    for role, suffix in SEQUENCE_SUFFIXES.items():
        found = [c for c in tagged if c.name.endswith(f"_{suffix}")]
        if len(found) != 1:
            available = sorted({t for c in schema for t in c.tags if str(t).startswith("behavior_")},
                               key=str)
            raise ValueError(
                f"schema needs exactly one column '*_{suffix}' tagged 'behavior_{behavior}' "
                f"(found {[c.name for c in found]}); behaviour tags in the schema: {available}. "
                f"Remove {behavior!r} from config.behaviors to build without it."
            )
        cols[role] = found[0]
    lengths = {c.value_count.max if c.value_count else None for c in cols.values()}
    length = lengths.pop() if len(lengths) == 1 else None
    if not isinstance(length, int) or length < 1:
        raise ValueError(
            f"behaviour {behavior!r}: the value_count.max of {[c.name for c in cols.values()]} must be one "
            f"positive length; got {sorted(map(str, lengths | {length}))}"
        )
    return BehaviorColumns(behavior, cols["item"].name, cols["category"].name, cols["brand"].name, length)


def _time_gaps(schema: Schema, behaviors: tuple[BehaviorColumns, ...],
               encoding: str) -> tuple[tuple[BehaviorColumns, ...], int]:
    """The behaviours with their time-gap column where the schema has one, and the bucket table size.

    A column ``*_time_gap_bucket_seq`` tagged ``behavior_{b}`` and CATEGORICAL, with the length of the id lists;
    data preprocessed before it existed has none, and the model then reads no time gaps (logged here, once per
    build). JD's ``{b}_time_gap_seq`` (seconds, CONTINUOUS) is not such a column.
    """
    found, missing = [], []
    for b in behaviors:
        columns = [c for c in schema.select_by_tag(f"behavior_{b.name}")
                   if c.name.endswith(f"_{TIME_GAP_BUCKET_SUFFIX}") and Tags.CATEGORICAL in c.tags]
        if len(columns) > 1:
            raise ValueError(f"schema has several time-gap columns tagged 'behavior_{b.name}': "
                             f"{[c.name for c in columns]}")
        if not columns:
            missing.append(b.name)
            found.append(b)
            continue
        length = columns[0].value_count.max if columns[0].value_count else None
        if length != b.max_length:
            raise ValueError(f"behaviour {b.name!r}: the value_count.max of {columns[0].name!r} ({length}) must "
                             f"equal that of its id sequences ({b.max_length})")
        found.append(replace(b, time_gap=columns[0].name))
    if missing:
        LOG.warning("transformer.time_encoding=%r, but the schema has no '*_%s' column of %s (data preprocessed "
                    "before time gaps existed): the model reads no time gaps for %s", encoding,
                    TIME_GAP_BUCKET_SUFFIX, missing, "them" if len(missing) > 1 else "it")
    read = [b.time_gap for b in found if b.time_gap is not None]
    return tuple(found), _cardinality(schema, read) if read else 0


def _cardinality(schema: Schema, names: list[str]) -> int:
    maxima = []
    for name in names:
        domain = schema[name].int_domain
        if domain is None or domain.max is None:
            raise ValueError(f"schema column {name!r} has no int_domain.max (a Categorify vocabulary size)")
        maxima.append(int(domain.max))
    return max(maxima) + 1


def _bias(schema: Schema, mode: str) -> BiasColumns | None:
    tagged = set(schema.select_by_tag(BIAS_TAG).column_names)
    if mode == "off":
        return None
    if not tagged:
        if mode == "on":
            raise ValueError(
                "config.bias.enabled is 'on' but the schema has no column tagged 'bias' (data without an "
                "impression log has no position features); use the dmt_no_bias preset or bias.enabled='auto'"
            )
        return None
    missing = [n for n in (POSITION, PAGE, NEIGHBORS) if n not in tagged]
    if missing:
        raise ValueError(f"schema tags {sorted(tagged)} as 'bias' but lacks {missing}")
    vc = schema[NEIGHBORS].value_count
    n_neighbors = int(vc.max) if vc is not None and vc.max is not None else 6
    return BiasColumns(POSITION, PAGE, NEIGHBORS, _cardinality(schema, [POSITION]),
                       _cardinality(schema, [PAGE]), n_neighbors)
