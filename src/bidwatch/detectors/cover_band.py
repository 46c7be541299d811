"""Losing bids crowded in a tight band just above the winning bid (lowest-price awards)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

import polars as pl

from bidwatch.detectors._base import NotComputable, priced_bids, sig
from bidwatch.detectors._stats import (
    LOG_FLOOR,
    bid_lists,
    compare,
    comparison_evidence,
    comparison_keys,
    tender_prices,
)
from bidwatch.findings import Findings, SubjectKind, build

if TYPE_CHECKING:
    from bidwatch.dataset import Dataset


@dataclass(frozen=True)
class CoverBand:
    """Several losing bids sit in a tight band just above the winning bid, tighter than in
    comparable lowest-price tenders.

    ## What it flags
    Lowest-price tenders (and tenders with no stated award rule) in which the `covers`
    lowest losing bids all lie within a band above the winning bid that is narrower than
    the lower Tukey fence of comparable tenders.

    ## Why it is a risk
    Cover bidders (陪标) are told the designated price and bid a little above it: high
    enough to lose, low enough to look competitive. Several covers then crowd into a
    narrow band just above the winner, a pattern the Swiss and Japanese road cartels left
    in their bids (Imhof 2017; Ishii 2009). The PRC Bidding Law implementing regulations
    (招标投标法实施条例) art. 39(1) and (2) prohibit bidders agreeing on prices or on the
    winner. Independent bidders pricing from their own costs spread out instead.

    ## Method
    Under lowest-price awards the winning bid is the lowest valid bid b1. With b(k+1) the
    (k+1)-th lowest valid bid, k = `covers`, the band is (b(k+1) - b1) / b1: how far above
    the winner one must go to find k losing bids. Tenders with at least `min_bids` (and
    k + 1) valid priced bids are placed among comparable lowest-price tenders (same
    category, half-decade size band and bid-count band; coarser groups, down to all
    lowest-price tenders, when a group has fewer than `min_comparable`). The fence is
    Q1 - `fence` x IQR of log band (a zero IQR leaves it at the quartile); `threshold`
    replaces it with a fixed band. Score: the tender's mid-rank percentile of tightness
    within its comparison group (0.98: tighter than in 98% of comparable tenders).
    Average-bid and scoring awards are not assessed: there covers steer the benchmark or
    the price score and bid away from the winner, which widens the bids (see
    `bid-spread`).
    Default weight 0: the flag explains; the same narrowing of the bids enters the risk
    through `bid-pattern`, so that one set of bids is not counted twice.

    ## Evidence
    The band, the limit it crossed, the number of losing bids in it, the winning bid, the
    percentile, the comparison group and every bid amount.

    ## Parameters
    - `covers`: number k of losing bids that must lie in the band (at least 1; 1 is
      `cover-bid-gap`).
    - `threshold`: fixed band limit replacing the data-driven fence, e.g. 0.01 (None:
      fence).
    - `fence`: Tukey multiplier of the interquartile range of log band.
    - `min_comparable`: fewest tenders a comparison group needs before it is used.
    - `min_bids`: fewest valid priced bids a tender needs to be assessed.

    ## Known false positives
    Standardised works priced from one public schedule, where honest bids sit within 1-2%;
    many bidders in a small market (crowding that the bid-count band only partly absorbs).
    About 1-3% of honest tenders fall below the default fence.

    ## References
    - 中华人民共和国招标投标法实施条例 (2011, rev. 2019), art. 39.
    - Imhof, D. (2017). Simple statistical screens to detect bid rigging. FSES WP 484.
    - Ishii, R. (2009). Favor exchange in collusion: empirical study of repeated procurement
      auctions in Japan. International Journal of Industrial Organization 27(2).
    """

    covers: int = 2
    threshold: float | None = None
    fence: float = 1.5
    min_comparable: int = 30
    min_bids: int = 3

    name: ClassVar[str] = "cover-band"
    subject: ClassVar[SubjectKind] = "tender"
    requires: ClassVar[frozenset[str]] = frozenset({"bids.amount"})
    # A single price screen: the flag explains, like `bid-cv`; the same narrowing of the
    # bids enters the risk through `bid-pattern` (bid-cv, bid-spread).
    default_weight: ClassVar[float] = 0.0

    def __post_init__(self) -> None:
        if self.covers < 1:
            raise ValueError(f"covers must be >= 1, got {self.covers}")
        if self.threshold is not None and self.threshold <= 0:
            raise ValueError(f"threshold must be > 0, got {self.threshold}")
        if self.fence < 0:
            raise ValueError(f"fence must be >= 0, got {self.fence}")
        if self.min_comparable < 4:
            raise ValueError(f"min_comparable must be >= 4, got {self.min_comparable}")
        if self.min_bids < 2:
            raise ValueError(f"min_bids must be >= 2, got {self.min_bids}")

    def detect(self, data: Dataset) -> Findings:
        k = self.covers
        rule = data.tenders.select("tender_id", "award_method")
        lowest = pl.col("award_method").is_null() | (pl.col("award_method") == "lowest_price")
        stats = (
            tender_prices(data)
            .select("tender_id", "n", "mean", "b1")
            .filter(pl.col("n") >= max(self.min_bids, k + 1))
            .join(rule, on="tender_id", how="left")
            .filter(lowest)
            .drop("award_method")
        )
        # The (k+1)-th lowest bid, for the assessed tenders only (a sort of each tender's
        # few bids is faster than bottom_k's selection).
        edge = (
            priced_bids(data)
            .select("tender_id", "amount")
            .join(stats.select("tender_id"), on="tender_id", how="semi")
            .group_by("tender_id")
            .agg(pl.col("amount").sort().head(k + 1).max().alias("edge"))
        )
        stats = stats.join(edge, on="tender_id").with_columns(
            ((pl.col("edge") - pl.col("b1")) / pl.col("b1")).alias("band")
        )
        if stats.height == 0:
            raise NotComputable(
                f"no lowest-price tender (or tender without a stated rule) has "
                f"{max(self.min_bids, k + 1)}+ valid priced bids"
            )
        if self.threshold is None and stats.height < self.min_comparable:
            raise NotComputable(
                f"needs at least {self.min_comparable} lowest-price tenders with "
                f"{max(self.min_bids, k + 1)}+ priced bids for a data-driven fence, found "
                f"{stats.height}; set `threshold` under [detectors.{self.name}] or lower "
                "`min_comparable`"
            )
        keyed = comparison_keys(data, stats).with_columns(
            (-pl.col("band").clip(lower_bound=LOG_FLOOR).log()).alias("_y")
        )
        keyed = compare(keyed, "_y", self.min_comparable)
        if self.threshold is None:
            limit_y = pl.col("_q3") + self.fence * (pl.col("_q3") - pl.col("_q1"))
            how = pl.format("lower fence of {} comparable tenders", pl.col("_count"))
        else:
            limit_y = pl.lit(-math.log(self.threshold))
            how = pl.lit("fixed threshold")
        flagged = (
            keyed.with_columns(limit_y.alias("_limit_y"), how.alias("_how"))
            .filter(pl.col("_y") > pl.col("_limit_y"))
            .with_columns((-pl.col("_limit_y")).exp().alias("_limit"))
        )
        firm = pl.col("firm_id") if "firm_id" in data.bids.columns else pl.lit(None, pl.String)
        in_band = (
            priced_bids(data)
            .select("tender_id", "amount", firm.alias("who"))
            .join(flagged.select("tender_id", "edge"), on="tender_id")
            .filter(pl.col("amount") <= pl.col("edge"))
            .group_by("tender_id")
            .agg(
                pl.len().alias("_in_band"),
                pl.col("who").drop_nulls().unique().sort().alias("_firms"),
            )
        )
        flagged = flagged.join(in_band, on="tender_id", how="left").join(
            bid_lists(data, flagged), on="tender_id", how="left"
        )
        return build(
            flagged,
            detector=self.name,
            kind="tender",
            subject_id=pl.col("tender_id"),
            score=pl.col("_pct"),
            value=pl.col("band"),
            threshold=pl.col("_limit"),
            message=pl.format(
                "{} losing bids within {}% above the winning bid {}: band {} < {} ({})",
                pl.col("_in_band") - 1,
                sig(pl.col("band") * 100, 3),
                sig(pl.col("b1"), 12),
                sig(pl.col("band")),
                sig(pl.col("_limit")),
                pl.col("_how"),
            ),
            evidence={
                "band": pl.col("band"),
                "limit": pl.col("_limit"),
                "losing_bids_in_band": pl.col("_in_band") - 1,
                "winning_bid": pl.col("b1"),
                "percentile": pl.col("_pct"),
                "compared_with": comparison_evidence(),
                "bids": pl.col("amounts"),
            },
            firms=pl.col("_firms"),
            assessed=keyed.get_column("tender_id"),
        )
