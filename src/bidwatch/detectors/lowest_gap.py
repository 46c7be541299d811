"""Relative gap between the two lowest bids."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from bidwatch.detectors._stats import Direction, TenderScreen


@dataclass(frozen=True)
class LowestGap(TenderScreen):
    """The lowest bid stands unusually far below the second-lowest, for comparable tenders.

    ## What it flags
    Tenders whose relative gap between the two lowest bids, (b2 - b1) / b1, lies above the
    Tukey fence of comparable tenders.

    ## Why it is a risk
    A cartel that designates the winner has its other members bid clearly above the
    designated price, so that the cover bids cannot win by accident: the gap between the
    first and second bids widens while the losing bids stay close together (Imhof 2017,
    "DIFFP"). An honest auction rarely leaves money on the table in this way.

    ## Method
    DIFFP = (b2 - b1) / b1 over the valid priced bids (b1 lowest, b2 second lowest; equal
    lowest bids give 0), for tenders with at least `min_bids` bids. Comparison groups,
    fence (Q3 + `fence` x IQR of DIFFP, raw scale, within the finest comparison group holding
    `min_comparable` tenders) and score (mid-rank percentile) as for `bid-cv`. The fence is
    on the raw scale: gaps are roughly exponential with many near zero, where a log
    scale would put the fence out of reach. The high
    side is suspicious under every award rule; tenders are only compared with tenders of
    the same rule.
    Default weight 0: the flag explains; the same evidence enters the risk through
    `bid-pattern`, so that one set of bids is not counted twice.

    ## Evidence
    The gap, the limit it crossed, the percentile, the comparison group and the bid amounts.

    ## Parameters
    - `threshold`: fixed gap limit replacing the data-driven fence (None: fence).
    - `fence`: Tukey multiplier of the interquartile range.
    - `min_comparable`: fewest tenders a comparison group needs before it is used.
    - `min_bids`: fewest priced bids a tender needs to be assessed.

    ## Known false positives
    A winner with a real cost advantage (local plant, own quarry, spare capacity); an
    abnormally low bid that will be recovered later (see the materials detectors).

    ## References
    - Imhof, D. (2017). Simple statistical screens to detect bid rigging. FSES WP 484.
    - Imhof, D., Karagök, Y. & Rutz, S. (2018). Screening for bid rigging: does it work?
      Journal of Competition Law & Economics 14(2).
    """

    name: ClassVar[str] = "lowest-gap"
    statistic: ClassVar[str] = "diffp"
    label: ClassVar[str] = "gap between the two lowest bids"
    meaning: ClassVar[dict[Direction, str]] = {
        "low": "lowest bids unusually close",
        "high": "winner set apart from the cover bids",
    }
    log_scale: ClassVar[bool] = False
