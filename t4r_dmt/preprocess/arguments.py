"""Arguments of ``t4r-dmt preprocess`` (parsed by ``transformers.HfArgumentParser``)."""

from __future__ import annotations

from dataclasses import dataclass, field

from t4r_dmt.data.validate import DEFAULT_MAX_TIME_GAP, parse_time_gap
from t4r_dmt.preprocess.config import RankingConfig

ON_BAD_ROWS = ("raise", "drop")


@dataclass
class PreprocessArguments:
    """Inputs, output folder, ranking options and the Dask setup of ``t4r-dmt preprocess``."""

    events: str = field(metadata={"help": "Events: a CSV / CSV.gz / parquet file, a glob or a folder."})
    out: str = field(metadata={"help": "Output folder (written atomically; see --overwrite)."})
    impressions: str | None = field(
        default=None,
        metadata={"help": "Impression (ranking) log; without one, ranking rows use sampled negatives."},
    )
    items: str | None = field(
        default=None, metadata={"help": "Optional items file: product_id, category_id, category_code, brand, price."}
    )
    format: str = field(
        default="rees46", metadata={"help": "Input format of --events (rees46, yoochoose, ...; jd: DMT's TFRecords)."}
    )
    on_bad_rows: str = field(default="raise", metadata={"help": "raise (default) or drop invalid input rows."})
    max_time_gap: str = field(
        default=DEFAULT_MAX_TIME_GAP,
        metadata={"help": "Rows apart from the rest of their log by a longer time without rows (a 1970 timestamp "
                          "in a 2020 log) are bad rows: raised on, or dropped with --on_bad_rows drop."},
    )
    window: str = field(default="1d", metadata={"help": "Time window: a fixed pandas frequency (1h, 1d, 7d)."})
    fit_windows: int = field(
        default=1, metadata={"help": "Fit vocabularies and normalisation on windows 1..K (training data only)."}
    )
    click_length: int = field(default=50, metadata={"help": "N most recent click (view) events per sequence."})
    cart_length: int = field(default=10, metadata={"help": "N most recent cart events per sequence."})
    order_length: int = field(default=10, metadata={"help": "N most recent order (purchase) events per sequence."})
    freq_threshold: int = field(default=0, metadata={"help": "Categorify frequency threshold (rarer -> OOV)."})
    negatives: int = field(default=4, metadata={"help": "Sampled negatives per positive (no impression log)."})
    seed: int = field(default=0, metadata={"help": "Seed of the negative sampler."})
    rate_delay: str = field(
        default="1h", metadata={"help": "Impressions count towards item CTR once their hour ended this long before "
                                        "the request (the time a click label needs to be known)."}
    )
    ctr_position_debias: bool = field(
        default=False, metadata={"help": "Item CTR as clicks over expected clicks given the positions shown (COEC); "
                                         "needs --impressions with positions."}
    )
    interaction_decay: str = field(
        default="1d", metadata={"help": "Time constant of the decayed user-candidate match counts."}
    )
    page_size: int = field(default=10, metadata={"help": "Page size when the impression log has no page column."})
    events_per_bucket: int = field(
        default=1_000_000, metadata={"help": "Users are hashed into buckets of about this many events (memory)."}
    )
    chunk_size: int = field(
        default=4096, metadata={"help": "--format jd: records parsed per chunk (memory: about 30 kB per record)."}
    )
    workers: int = field(default=0, metadata={"help": "Start a local Dask cluster with N worker processes."})
    scheduler: str | None = field(
        default=None, metadata={"help": "Address of a running Dask scheduler to join (e.g. tcp://host:8786)."}
    )
    overwrite: bool = field(default=False, metadata={"help": "Replace an existing --out folder."})
    with_sessions: bool = field(
        default=True, metadata={"help": "Also write the session-based next-item data (DIR/sessions)."}
    )

    def __post_init__(self) -> None:
        if self.on_bad_rows not in ON_BAD_ROWS:
            raise ValueError(f"on_bad_rows must be one of {ON_BAD_ROWS}, got {self.on_bad_rows!r}")
        if self.workers < 0:
            raise ValueError(f"workers must be >= 0, got {self.workers}")
        if self.workers and self.scheduler:
            raise ValueError("give either --workers (start a local cluster) or --scheduler (join one), not both")
        if self.chunk_size < 1:
            raise ValueError(f"chunk_size must be >= 1, got {self.chunk_size}")
        if self.page_size < 1:
            raise ValueError(f"page_size must be >= 1, got {self.page_size}")
        parse_time_gap(self.max_time_gap)
        self.ranking_config()  # validates the ranking options

    def ranking_config(self) -> RankingConfig:
        return RankingConfig(
            window=self.window,
            fit_windows=self.fit_windows,
            click_length=self.click_length,
            cart_length=self.cart_length,
            order_length=self.order_length,
            freq_threshold=self.freq_threshold,
            negatives=self.negatives,
            seed=self.seed,
            rate_delay=self.rate_delay,
            ctr_position_debias=self.ctr_position_debias,
            interaction_decay=self.interaction_decay,
            events_per_bucket=self.events_per_bucket,
        )
