"""Skewness of the bids."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from bidwatch.detectors._stats import Direction, TenderScreen


@dataclass(frozen=True)
class BidSkewness(TenderScreen):
    """The bids are unusually skewed: one low bid apart from a bunch of higher ones.

    ## What it flags
    Tenders whose sample skewness of the priced bids lies beyond the Tukey fence of
    comparable tenders: below it (negative skew) under lowest-price awards and where no rule
    is stated, above it under average-bid and scoring awards.

    ## Why it is a risk
    When cover bids cluster above a designated winner, the distribution of bids has a long
    left tail: negative skewness (Imhof 2017). Under average-bid rules, bids placed to pull
    the benchmark produce a long right tail instead.

    ## Method
    Adjusted Fisher-Pearson skewness G1 = sqrt(n(n-1)) / (n-2) x m3 / m2^1.5 of the valid
    priced bids, for tenders with at least `min_bids` (>= 3) bids; undefined when all bids
    are equal. The fence is Q3 + `fence` x IQR of the signed skewness (raw scale) within the
    finest comparison group holding `min_comparable` tenders, as for `bid-cv`; the score is
    the mid-rank percentile in that group.
    Default weight 0: the flag explains; the same evidence enters the risk through
    `bid-pattern`, so that one set of bids is not counted twice.

    ## Evidence
    The skewness, the limit it crossed, the suspicious side, the percentile, the comparison
    group and the bid amounts.

    ## Parameters
    - `threshold`: fixed skewness limit replacing the fence, on the suspicious side
      (None: fence).
    - `fence`: Tukey multiplier of the interquartile range.
    - `min_comparable`: fewest tenders a comparison group needs before it is used.
    - `min_bids`: fewest priced bids a tender needs to be assessed (at least 3).

    ## Known false positives
    A single aggressive entrant in an otherwise stable market; with three or four bids the
    skewness is noisy.

    ## References
    - Imhof, D. (2017). Simple statistical screens to detect bid rigging. FSES WP 484.
    - Huber, M. & Imhof, D. (2019). Machine learning with screens for detecting bid-rigging
      cartels. International Journal of Industrial Organization 65.
    """

    name: ClassVar[str] = "bid-skewness"
    statistic: ClassVar[str] = "skew"
    label: ClassVar[str] = "skewness"
    meaning: ClassVar[dict[Direction, str]] = {
        "low": "one bid set apart below a cluster of higher bids",
        "high": "one bid set apart above a cluster of lower bids",
    }
    low_under: ClassVar[frozenset[str]] = frozenset({"lowest_price"})

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.min_bids < 3:
            raise ValueError(f"min_bids must be >= 3 for skewness, got {self.min_bids}")
