"""Coefficient of variation of the bids (variance screen)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from bidwatch.detectors._stats import Direction, TenderScreen


@dataclass(frozen=True)
class BidCV(TenderScreen):
    """Bids of a tender are unusually close together (or, under average-bid and scoring
    rules, unusually far apart) compared with comparable tenders.

    ## What it flags
    Tenders whose coefficient of variation of the priced bids (standard deviation over
    mean) lies beyond the Tukey fence of comparable tenders: below it under lowest-price
    awards and where no rule is stated, above it under average-bid and scoring awards.

    ## Why it is a risk
    Cartel members coordinate around an agreed price, so under a lowest-price rule their
    bids span a narrow band: collusion lowers the variance of bids (Feinstein et al. 1985;
    Imhof 2017). Under average-bid or scoring rules bidders rig the benchmark instead,
    placing bids far from it, which widens the spread (Conley & Decarolis 2016).

    ## Method
    CV = sd / mean of the valid priced bids (ddof 1), for tenders with at least `min_bids`
    bids. Each tender is compared with the finest group of comparable tenders (same award
    rule, category, half-decade size band and bid-count band; coarser groups, down to the
    whole file, when a group has fewer than `min_comparable` tenders). The fence is Q3 +
    `fence` x IQR of log CV, turned so that the suspicious side is high; a zero IQR
    leaves the fence at the quartile. `threshold` replaces the fence with a fixed CV.
    Score: the tender's mid-rank percentile among its comparison group (0.98: more
    extreme than 98% of comparable tenders).
    Default weight 0: the flag explains; the same evidence enters the risk through
    `bid-pattern`, so that one set of bids is not counted twice.

    ## Evidence
    The CV, the limit it crossed, the suspicious side, the percentile, the comparison group
    (award method, category, size band, bid count, number of tenders) and the bid amounts.

    ## Parameters
    - `threshold`: fixed CV limit replacing the data-driven fence, applied on each tender's
      suspicious side (None: fence).
    - `fence`: Tukey multiplier of the interquartile range (1.5 is Tukey's outlier fence).
    - `min_comparable`: fewest tenders a comparison group needs before it is used.
    - `min_bids`: fewest priced bids a tender needs to be assessed.

    ## Known false positives
    Small works with a tight engineering estimate and a price list everyone uses (bids
    within 1-2% can be honest); fixed-price lotteries where every bid equals the ceiling;
    markets where one input cost dominates. Compare with the tender's other findings.

    ## References
    - Imhof, D. (2017). Simple statistical screens to detect bid rigging. FSES WP 484.
    - Huber, M. & Imhof, D. (2019). Machine learning with screens for detecting bid-rigging
      cartels. International Journal of Industrial Organization 65.
    - Conley, T. & Decarolis, F. (2016). Detecting bidders groups in collusive auctions.
      AEJ: Microeconomics 8(2).
    """

    name: ClassVar[str] = "bid-cv"
    statistic: ClassVar[str] = "cv"
    label: ClassVar[str] = "CV"
    meaning: ClassVar[dict[Direction, str]] = {
        "low": "bids unusually close together",
        "high": "bids unusually dispersed",
    }
    low_under: ClassVar[frozenset[str]] = frozenset({"lowest_price"})
    log_scale: ClassVar[bool] = True
