"""Excess kurtosis of the bids."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from bidwatch.detectors._stats import Direction, TenderScreen


@dataclass(frozen=True)
class BidKurtosis(TenderScreen):
    """The bids are unusually peaked: most of them packed together, with an outlier.

    ## What it flags
    Tenders whose bias-corrected excess kurtosis of the priced bids lies beyond the Tukey
    fence of comparable tenders: above it under lowest-price awards and where no rule is
    stated, below it under average-bid and scoring awards.

    ## Why it is a risk
    Coordinated cover bids concentrate around the agreed price, giving a peaked distribution
    with heavy tails: collusion raises the kurtosis (Imhof 2017). Under average-bid rules
    bids spread out deliberately and the distribution flattens instead.

    ## Method
    Excess kurtosis G2 = ((n+1) g2 + 6)(n-1) / ((n-2)(n-3)), g2 = m4 / m2^2 - 3, of the valid
    priced bids, for tenders with at least `min_bids` (>= 4) bids; undefined when all bids
    are equal. The fence is Q3 + `fence` x IQR of the signed kurtosis (raw scale) within the
    finest comparison group holding `min_comparable` tenders, as for `bid-cv`; the score is
    the mid-rank percentile in that group.
    Default weight 0: the flag explains; the same evidence enters the risk through
    `bid-pattern`, so that one set of bids is not counted twice.

    ## Evidence
    The kurtosis, the limit it crossed, the suspicious side, the percentile, the comparison
    group and the bid amounts.

    ## Parameters
    - `threshold`: fixed kurtosis limit replacing the fence, on the suspicious side
      (None: fence).
    - `fence`: Tukey multiplier of the interquartile range.
    - `min_comparable`: fewest tenders a comparison group needs before it is used.
    - `min_bids`: fewest priced bids a tender needs to be assessed (at least 4).

    ## Known false positives
    One bidder who misread the bill of quantities (an outlier among honest bids) raises the
    kurtosis too; check whether the outlier is a disqualified or withdrawn bid.

    ## References
    - Imhof, D. (2017). Simple statistical screens to detect bid rigging. FSES WP 484.
    - Huber, M. & Imhof, D. (2019). Machine learning with screens for detecting bid-rigging
      cartels. International Journal of Industrial Organization 65.
    """

    min_bids: int = 4

    name: ClassVar[str] = "bid-kurtosis"
    statistic: ClassVar[str] = "kurt"
    label: ClassVar[str] = "kurtosis"
    meaning: ClassVar[dict[Direction, str]] = {
        "low": "bids unusually flat across their range",
        "high": "bids packed together around an agreed price",
    }
    low_under: ClassVar[frozenset[str]] = frozenset({"average_bid", "scoring"})

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.min_bids < 4:
            raise ValueError(f"min_bids must be >= 4 for kurtosis, got {self.min_bids}")
