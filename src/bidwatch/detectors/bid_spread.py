"""Relative spread of the bids (max - min) / min."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from bidwatch.detectors._stats import Direction, TenderScreen


@dataclass(frozen=True)
class BidSpread(TenderScreen):
    """The range of the bids, relative to the lowest, is unusually narrow (or wide under
    average-bid and scoring rules) for comparable tenders.

    ## What it flags
    Tenders whose spread (highest bid - lowest bid) / lowest bid lies beyond the Tukey fence
    of comparable tenders: below it under lowest-price awards and where no rule is stated,
    above it under average-bid and scoring awards.

    ## Why it is a risk
    The spread is the support of the bid distribution. When firms agree to bid above a
    common floor, the support shrinks (Imhof 2017, "SPD"); the screen is robust to the
    number of bids where the CV is not. Under average-bid rules a cartel's far-off bids
    widen it.

    ## Method
    SPD = (max - min) / min of the valid priced bids, for tenders with at least `min_bids`
    bids. Comparison groups, fence and score as for `bid-cv`: the fence is Q3 + `fence` x
    IQR of log SPD on the suspicious side within the finest comparison group holding
    `min_comparable` tenders; the score is the tender's mid-rank percentile in that group.
    Default weight 0: the flag explains; the same evidence enters the risk through
    `bid-pattern`, so that one set of bids is not counted twice.

    ## Evidence
    The spread, the limit it crossed, the suspicious side, the percentile, the comparison
    group and the bid amounts.

    ## Parameters
    - `threshold`: fixed spread limit replacing the data-driven fence (None: fence).
    - `fence`: Tukey multiplier of the interquartile range.
    - `min_comparable`: fewest tenders a comparison group needs before it is used.
    - `min_bids`: fewest priced bids a tender needs to be assessed.

    ## Known false positives
    Standardised works priced from a public bill of quantities with little room to differ;
    tenders whose bids were capped by a ceiling close to cost.

    ## References
    - Imhof, D. (2017). Simple statistical screens to detect bid rigging. FSES WP 484.
    - García Rodríguez, M. J. et al. (2022). Collusion detection in public procurement
      auctions with machine learning algorithms. Automation in Construction 133.
    """

    name: ClassVar[str] = "bid-spread"
    statistic: ClassVar[str] = "spd"
    label: ClassVar[str] = "spread"
    meaning: ClassVar[dict[Direction, str]] = {
        "low": "bids span an unusually narrow range",
        "high": "bids span an unusually wide range",
    }
    low_under: ClassVar[frozenset[str]] = frozenset({"lowest_price"})
    log_scale: ClassVar[bool] = True
