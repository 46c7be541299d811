"""Kolmogorov-Smirnov distance of the bids from an even spread."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from bidwatch.detectors._stats import Direction, TenderScreen


@dataclass(frozen=True)
class BidUniformity(TenderScreen):
    """The bids are spread over their range far less evenly than in comparable tenders.

    ## What it flags
    Tenders whose Kolmogorov-Smirnov distance between the bids and a uniform distribution
    on [lowest bid, highest bid] lies above the Tukey fence of comparable tenders.

    ## Why it is a risk
    Independent cost draws fill the range of bids roughly evenly; bids written by one hand,
    or cover bids stacked just above the winner, bunch up in part of the range (Huber &
    Imhof 2019, "KSTEST").

    ## Method
    With the bids sorted, u_i = (b_i - min) / (max - min), D = max_i max(i/n - u_i,
    u_i - (i-1)/n), for tenders with at least `min_bids` bids and a non-zero range. The
    fence is Q3 + `fence` x IQR of D (raw scale) within the finest comparison group holding
    `min_comparable` tenders, as for `bid-cv`; the score is the mid-rank percentile in that
    group. The high side is suspicious under every award rule.
    Default weight 0: the flag explains; the same evidence enters the risk through
    `bid-pattern`, so that one set of bids is not counted twice.

    ## Evidence
    The distance, the limit it crossed, the percentile, the comparison group and the bid
    amounts.

    ## Parameters
    - `threshold`: fixed distance limit replacing the fence (None: fence).
    - `fence`: Tukey multiplier of the interquartile range.
    - `min_comparable`: fewest tenders a comparison group needs before it is used.
    - `min_bids`: fewest priced bids a tender needs to be assessed.

    ## Known false positives
    With few bids D takes few values and its fence is coarse; one outlying bid (a bidder
    who misread the specification) moves it strongly.

    ## References
    - Huber, M. & Imhof, D. (2019). Machine learning with screens for detecting bid-rigging
      cartels. International Journal of Industrial Organization 65.
    - García Rodríguez, M. J. et al. (2022). Collusion detection in public procurement
      auctions with machine learning algorithms. Automation in Construction 133.
    """

    min_bids: int = 4

    name: ClassVar[str] = "bid-uniformity"
    statistic: ClassVar[str] = "ks"
    label: ClassVar[str] = "KS distance from an even spread"
    meaning: ClassVar[dict[Direction, str]] = {
        "low": "bids spread with unusual evenness",
        "high": "bids bunched unevenly over their range",
    }
