"""Second-lowest bid unusually close above the winning bid (lowest-price awards)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

import polars as pl

from bidwatch.detectors._stats import Direction, TenderScreen

if TYPE_CHECKING:
    from bidwatch.dataset import Dataset


@dataclass(frozen=True)
class CoverBidGap(TenderScreen):
    """The second-lowest bid sits unusually close above the winning bid, compared with
    comparable lowest-price tenders.

    ## What it flags
    Lowest-price tenders (and tenders with no stated award rule) whose relative gap between
    the winning bid and the second-lowest bid, (b2 - b1) / b1, lies below the lower Tukey
    fence of comparable tenders.

    ## Why it is a risk
    A cover bidder (陪标) who knows the designated price only has to be above it, and a
    cover just above the winner is the cheapest way to make a tender look contested; the
    PRC Bidding Law implementing regulations (招标投标法实施条例) art. 39(1) and (2) name
    bidders who agree on prices or on the winner. Under a lowest-price rule honest bidders
    do not know each other's prices, so the runner-up lands close above the winner only by
    chance. This is the other side of `lowest-gap`, which flags a winner set far apart
    from its covers: rings do both, and each is a separate outlier.

    ## Method
    Under lowest-price awards the winning bid is the lowest valid bid b1 (the winner flag
    is not needed); b2 is the second-lowest valid bid (equal lowest bids give a gap of
    0). For tenders with at least `min_bids` valid priced bids, the gap is placed among
    comparable lowest-price tenders (same category, half-decade size band and bid-count
    band; coarser groups, down to all lowest-price tenders, when a group has fewer than
    `min_comparable`). The fence is Q1 - `fence` x IQR of log gap (gaps are roughly
    exponential, so on the raw scale the lower fence would be negative); a zero IQR leaves
    the fence at the quartile. `threshold` replaces the fence with a fixed gap. Score: the
    tender's mid-rank percentile of closeness among its comparison group (0.98: closer
    than in 98% of comparable tenders).
    Average-bid and scoring awards are not assessed: there the winner is not the lowest
    bid by rule, and covers steer the benchmark or the price score rather than hug the
    winner (see `bid-spread`).
    Default weight 0: a single, weak screen (honest gaps are often tiny) that explains
    rather than ranks.

    ## Evidence
    The gap, the limit it crossed, the percentile, the comparison group and the bid
    amounts.

    ## Parameters
    - `threshold`: fixed gap limit replacing the data-driven fence, e.g. 0.002 (None:
      fence).
    - `fence`: Tukey multiplier of the interquartile range of log gap.
    - `min_comparable`: fewest tenders a comparison group needs before it is used.
    - `min_bids`: fewest valid priced bids a tender needs to be assessed.

    ## Known false positives
    Many bidders pricing one well-known bill of quantities (the runner-up is then close by
    crowding, which the bid-count band only partly absorbs); round or identical lowest
    bids (a gap of 0, see `identical-bids`); an evaluated lowest price (经评审的最低投标价法)
    that is not the lowest bid. Gaps of honest auctions are roughly exponential, so about
    3% of honest tenders fall below the default fence.

    ## References
    - 中华人民共和国招标投标法实施条例 (2011, rev. 2019), art. 39.
    - Imhof, D. (2017). Simple statistical screens to detect bid rigging. FSES WP 484.
    - OECD (2009). Guidelines for fighting bid rigging in public procurement.
    """

    name: ClassVar[str] = "cover-bid-gap"
    # A single price screen and a weak one (honest gaps are often tiny): the flag explains,
    # like the other outlier screens, and carries no weight by default.
    default_weight: ClassVar[float] = 0.0
    statistic: ClassVar[str] = "diffp"
    label: ClassVar[str] = "gap from the winning bid to the second-lowest bid"
    meaning: ClassVar[dict[Direction, str]] = {
        "low": "second-lowest bid unusually close above the winning bid",
        "high": "second-lowest bid unusually far above the winning bid",
    }
    low_under: ClassVar[frozenset[str]] = frozenset({"lowest_price"})
    log_scale: ClassVar[bool] = True

    def statistics(self, data: Dataset) -> pl.DataFrame:
        rule = data.tenders.select("tender_id", "award_method")
        lowest = pl.col("award_method").is_null() | (pl.col("award_method") == "lowest_price")
        return (
            super()
            .statistics(data)
            .join(rule, on="tender_id", how="left")
            .filter(lowest)
            .drop("award_method")
        )
