"""``t4r-dmt synth``: write the synthetic events, impressions and planted truth to a folder.

Layout of ``--out DIR`` (written atomically: a complete folder or nothing)::

    DIR/events.parquet                canonical events (REES46 columns)
    DIR/impressions.parquet           canonical ranking log
    DIR/items.parquet                 the catalogue (optional items-file format)
    DIR/truth/bias_curve.json         planted position bias per position
    DIR/truth/impressions_truth.parquet  p_click, p_click_relevance, p_order, relevance ... per impression
                                      (+ latent_similarity when --w_latent > 0, + promoted under
                                      --policy promotion, + swapped under --policy epsilon)
    DIR/truth/item_latent.parquet     product_id, latent_0 ... the items' hidden vectors (only --w_latent > 0)
    DIR/truth/promoted_items.parquet  product_id of the promoted items (only --policy promotion)
    DIR/truth/oracle.json             realised rates, oracle / popularity / position AUCs
    DIR/truth/config.json             every generator setting (SynthConfig)
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from t4r_dmt.io_utils import atomic_dir, write_json
from t4r_dmt.synth.config import LATENT_POOLS, POLICIES, SynthConfig
from t4r_dmt.synth.generator import SynthResult, generate

logger = logging.getLogger(__name__)


@dataclass
class SynthArguments:
    """Arguments of ``t4r-dmt synth``; the sizes map onto ``SynthConfig`` (validated there too)."""

    out: str = field(metadata={"help": "Output folder (events.parquet, impressions.parquet, items.parquet, truth/)."})
    users: int = field(default=SynthConfig.n_users, metadata={"help": "Number of users."})
    items: int = field(default=SynthConfig.n_items, metadata={"help": "Number of items."})
    days: int = field(default=SynthConfig.n_days, metadata={"help": "Number of simulated days."})
    seed: int = field(default=SynthConfig.seed, metadata={"help": "Random seed (same seed = same bytes)."})
    requests_per_day: int = field(default=SynthConfig.requests_per_day,
                                  metadata={"help": "Ranked lists shown per day."})
    list_length: int = field(default=SynthConfig.list_length, metadata={"help": "Candidates per ranked list."})
    page_size: int = field(default=SynthConfig.page_size, metadata={"help": "Items per page of a ranked list."})
    categories: int = field(default=SynthConfig.n_categories, metadata={"help": "Number of leaf categories."})
    start_date: str = field(default=SynthConfig.start_date, metadata={"help": "First day, YYYY-MM-DD (UTC)."})
    latent_dim: int = field(default=SynthConfig.latent_dim,
                            metadata={"help": "Dimension of the hidden item space of the latent interest term."})
    w_latent: float = field(default=SynthConfig.w_latent, metadata={
        "help": "Weight of the latent interest term (decayed mean cosine between the candidate and the latest "
                "views) in the click relevance; 0 (default) switches it off."})
    latent_pool: str = field(default=SynthConfig.latent_pool, metadata={
        "help": "How the latent term pools the cosines to the latest views: 'mean' (decayed mean) or 'max' (the "
                "nearest recent view: a diverse interest that only target attention can read).",
        "choices": list(LATENT_POOLS)})
    policy: str = field(default=SynthConfig.policy, metadata={
        "help": "Logging policy that orders each list: 'noisy' (relevance + Gaussian noise, the default), "
                "'promotion' (the promoted items first in every list, then the noisy order) or 'epsilon' (the "
                "noisy order, then each non-overlapping adjacent pair swapped with probability --epsilon).",
        "choices": list(POLICIES)})
    promoted_share: float = field(default=SynthConfig.promoted_share, metadata={
        "help": "--policy promotion: share of the catalogue's items that are promoted, in [0, 1]."})
    epsilon: float = field(default=SynthConfig.epsilon, metadata={
        "help": "--policy epsilon: probability that an adjacent pair of a list is swapped, in [0, 1]."})
    overwrite: bool = field(default=False, metadata={"help": "Replace an existing non-empty output folder."})

    def __post_init__(self) -> None:
        if not str(self.out).strip():
            raise ValueError("--out must name an output folder")
        names = {"users": self.users, "items": self.items, "days": self.days, "requests_per_day": self.requests_per_day,
                 "list_length": self.list_length, "page_size": self.page_size, "categories": self.categories}
        for name, value in names.items():
            if value < 1:
                raise ValueError(f"--{name} must be >= 1, got {value}")
        self.to_config()  # fail fast on every other invalid combination

    def to_config(self) -> SynthConfig:
        """The generator settings these arguments describe."""
        return SynthConfig(
            n_users=self.users, n_items=self.items, n_days=self.days, seed=self.seed,
            requests_per_day=self.requests_per_day, list_length=self.list_length, page_size=self.page_size,
            n_categories=self.categories, start_date=self.start_date, latent_dim=self.latent_dim,
            w_latent=self.w_latent, latent_pool=self.latent_pool, policy=self.policy,
            promoted_share=self.promoted_share, epsilon=self.epsilon,
        )


ARGUMENTS = (SynthArguments,)


def run(args: SynthArguments) -> dict[str, Any]:
    """Generate the data set and write it to ``args.out``; return a summary (sizes, rates, AUCs)."""
    config = args.to_config()
    # atomic_dir refuses an existing output before any work; generation happens inside it.
    with atomic_dir(args.out, overwrite=args.overwrite) as tmp:
        result = generate(config)
        write_result(result, tmp)
    oracle = result.truth.oracle
    summary = {
        "out": str(Path(args.out)),
        "n_events": len(result.events),
        "n_impressions": len(result.impressions),
        "n_requests": oracle["n_requests"],
        "click_rate": oracle["click_rate"],
        "order_rate": oracle["order_rate"],
        "auc_click_relevance_oracle": oracle["auc_click_relevance_oracle"],
        "auc_click_popularity": oracle["auc_click_popularity"],
    }
    logger.info("synth: wrote %s", summary)
    return summary


def write_result(result: SynthResult, folder: Path) -> None:
    """Write every file of a ``SynthResult`` into ``folder`` (deterministic bytes)."""
    write_parquet(result.events, folder / "events.parquet")
    write_parquet(result.impressions, folder / "impressions.parquet")
    write_parquet(result.items, folder / "items.parquet")
    truth_dir = folder / "truth"
    truth_dir.mkdir()
    write_parquet(result.truth.impressions, truth_dir / "impressions_truth.parquet")
    if result.truth.item_latent is not None:
        write_parquet(result.truth.item_latent, truth_dir / "item_latent.parquet")
    if result.truth.promoted_items is not None:
        write_parquet(result.truth.promoted_items, truth_dir / "promoted_items.parquet")
    config = result.config
    write_json(truth_dir / "bias_curve.json", {
        "formula": "bias[position] = (1 + position) ** -bias_exponent * page_decay ** (position // page_size)",
        "bias_exponent": config.bias_exponent,
        "page_decay": config.page_decay,
        "page_size": config.page_size,
        "position": list(range(config.list_length)),
        "bias": [float(b) for b in result.truth.bias_curve],
    })
    write_json(truth_dir / "oracle.json", result.truth.oracle)
    write_json(truth_dir / "config.json", dataclasses.asdict(config))


def write_parquet(frame: pd.DataFrame, path: Path) -> None:
    """One parquet file per frame, no index; pyarrow's output is byte-stable for equal frames."""
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path)
