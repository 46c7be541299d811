"""Winning bid close to the ceiling or pre-tender estimate."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

import polars as pl

from bidwatch.detectors._stats import Direction, TenderScreen, winning_ratios

if TYPE_CHECKING:
    from bidwatch.dataset import Dataset

GAP_FLOOR = 1e-4


@dataclass(frozen=True)
class WinnerNearEstimate(TenderScreen):
    """The winning bid takes almost all of the ceiling price, more than in comparable
    tenders.

    ## What it flags
    Tenders whose winning bid over the estimate (ceiling, 招标控制价, or pre-tender estimate)
    lies above the Tukey fence of comparable tenders.

    ## Why it is a risk
    Competition pushes the winning price below the estimate; a cartel that has removed
    competition wins close to the ceiling, the highest price the buyer will accept. Bid to
    estimate ratios rose sharply in the Japanese and Swiss cartels (Ishii 2009; Imhof 2017).

    ## Method
    ratio = winning amount / estimate (the largest ratio where a tender has several winning
    bids). The fence is Q3 + `fence` x IQR of -log(1 - ratio) (ratios at or above 1 count
    as 1 - 0.0001), within the finest comparison group holding `min_comparable` tenders, as
    for `bid-cv`; the score is the tender's mid-rank percentile in that group. `threshold`
    replaces the fence with a fixed ratio. The high side is suspicious under every rule.
    Default weight 0: the flag explains; the same evidence enters the risk through
    `bid-pattern`, so that one set of bids is not counted twice.

    ## Evidence
    The ratio, the limit it crossed, the percentile, the comparison group and the bid
    amounts.

    ## Parameters
    - `threshold`: fixed ratio limit replacing the fence, e.g. 0.98 (None: fence).
    - `fence`: Tukey multiplier of the interquartile range.
    - `min_comparable`: fewest tenders a comparison group needs before it is used.
    - `min_bids`: fewest priced bids a tender needs to be assessed.

    ## Known false positives
    Estimates set too low (a winning bid near the ceiling is then the market price);
    tenders re-launched after a failed first round at an unchanged ceiling; single-bid
    tenders, which have no competition to push the price down (a separate signal).

    ## References
    - Ishii, R. (2009). Favor exchange in collusion: empirical study of repeated procurement
      auctions in Japan. International Journal of Industrial Organization 27(2).
    - Imhof, D. (2017). Simple statistical screens to detect bid rigging. FSES WP 484.
    """

    min_bids: int = 1

    name: ClassVar[str] = "winner-near-estimate"
    requires: ClassVar[frozenset[str]] = frozenset(
        {"bids.amount", "bids.is_winner", "tenders.estimate"}
    )
    statistic: ClassVar[str] = "ratio"
    label: ClassVar[str] = "winning bid / estimate"
    meaning: ClassVar[dict[Direction, str]] = {
        "low": "winning bid unusually far below the estimate",
        "high": "winning bid unusually close to the estimate",
    }

    fewest_bids: ClassVar[int] = 1
    positive: ClassVar[bool] = True

    def statistics(self, data: Dataset) -> pl.DataFrame:
        return winning_ratios(data, self.min_bids)

    def transform(self, value: pl.Expr) -> pl.Expr:
        return -((1 - value).clip(lower_bound=GAP_FLOOR).log())

    def inverse(self, t: pl.Expr) -> pl.Expr:
        return 1 - (-t).exp()

    def limit_of(self, threshold: float) -> float:
        return -math.log(max(1 - threshold, GAP_FLOOR))
