"""Relative distance: gap between the two lowest bids over the spread of the losing bids."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from bidwatch.detectors._stats import Direction, TenderScreen


@dataclass(frozen=True)
class RelativeDistance(TenderScreen):
    """The two lowest bids are far apart compared with how close the losing bids are to each
    other.

    ## What it flags
    Tenders whose relative distance RD = (b2 - b1) / sd(losing bids) lies above the Tukey
    fence of comparable tenders.

    ## Why it is a risk
    Cover bidding leaves a signature in the shape of the bids: the designated winner sits
    apart while the cover bids cluster. RD measures exactly that contrast and was the most
    discriminating screen in the Swiss road cartels (Imhof 2017; Huber & Imhof 2019).

    ## Method
    b1 and b2 are the lowest and second-lowest valid priced bids; the losing bids are all
    but the lowest, and sd is their standard deviation (ddof 1). RD is not defined when the
    losing bids are all equal (see `identical-bids`). Requires at least `min_bids` (>= 3)
    bids. Comparison groups, fence (Q3 + `fence` x IQR of RD, raw scale, within the finest
    comparison group holding `min_comparable` tenders) and score (mid-rank percentile) as
    for `bid-cv`; the high side is suspicious under every award rule. The fence is on the raw
    scale: RD values are roughly exponential with many near zero, where a log scale would put
    the fence out of reach.
    Default weight 0: the flag explains; the same evidence enters the risk through
    `bid-pattern`, so that one set of bids is not counted twice.

    ## Evidence
    RD, the limit it crossed, the percentile, the comparison group and the bid amounts.

    ## Parameters
    - `threshold`: fixed RD limit replacing the data-driven fence (None: fence).
    - `fence`: Tukey multiplier of the interquartile range.
    - `min_comparable`: fewest tenders a comparison group needs before it is used.
    - `min_bids`: fewest priced bids a tender needs to be assessed (at least 3).

    ## Known false positives
    Three- or four-bid tenders, where the sd of two or three losing bids is small by chance;
    a winner with a genuine cost advantage.

    ## References
    - Imhof, D. (2017). Simple statistical screens to detect bid rigging. FSES WP 484.
    - Huber, M. & Imhof, D. (2019). Machine learning with screens for detecting bid-rigging
      cartels. International Journal of Industrial Organization 65.
    """

    name: ClassVar[str] = "relative-distance"
    statistic: ClassVar[str] = "rd"
    label: ClassVar[str] = "relative distance"
    meaning: ClassVar[dict[Direction, str]] = {
        "low": "lowest bid unusually close to the cover bids",
        "high": "winner set apart from tightly clustered cover bids",
    }
    log_scale: ClassVar[bool] = False

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.min_bids < 3:
            raise ValueError(f"min_bids must be >= 3 for relative distance, got {self.min_bids}")
