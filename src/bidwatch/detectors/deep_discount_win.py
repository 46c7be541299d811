"""Winning bid far below the estimate: a buy-in that is recovered later."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

import polars as pl

from bidwatch.detectors._stats import Direction, TenderScreen, outliers, winning_ratios
from bidwatch.findings import Findings
from bidwatch.schema import AWARD_METHODS

if TYPE_CHECKING:
    from bidwatch.dataset import Dataset


@dataclass(frozen=True)
class DeepDiscountWin(TenderScreen):
    """The winning bid is far below the estimate, further than in comparable tenders: a
    price that cannot pay for the works as specified.

    ## What it flags
    Tenders whose winning bid over the estimate (ceiling, 招标控制价, or pre-tender
    estimate) lies below the lower Tukey fence of comparable tenders, under every award
    rule.

    ## Why it is a risk
    A bid below cost wins the contract and the loss is recovered afterwards: through change
    orders and claims, or by cutting corners on materials and workmanship (偷工减料,
    以次充好). The PRC Bidding Law (招标投标法) art. 33 forbids bidding below cost and
    art. 41(2) excludes a below-cost price from winning; the implementing regulations
    (招标投标法实施条例) art. 51(5) require the evaluation committee to reject such a bid. A
    winner that the committee let through at a deep discount, or a buyer who expects to
    make it good later, is what this flag puts in front of an auditor.

    ## Method
    ratio = winning amount / estimate (the largest ratio where a tender has several winning
    bids), for tenders with a winner, an estimate and at least `min_bids` valid priced
    bids. Each ratio is placed among comparable tenders (same award rule, category,
    half-decade size band and bid-count band; coarser groups, down to the whole file, when
    a group has fewer than `min_comparable`): more bidders push the winning price down, so
    it is judged against tenders with as many bids. The fence is Q1 - `fence` x IQR of log
    ratio (a zero IQR leaves it at the quartile); `threshold` replaces it with a fixed
    ratio. Score: the tender's mid-rank percentile of depth of discount among its
    comparison group (0.98: deeper than in 98% of comparable tenders). The low side is
    suspicious under every rule. Only the winner is implicated.

    ## Evidence
    The ratio, the limit it crossed, the percentile, the comparison group and the bid
    amounts.

    ## Parameters
    - `threshold`: fixed ratio limit replacing the fence, e.g. 0.7 (None: fence).
    - `fence`: Tukey multiplier of the interquartile range of log ratio.
    - `min_comparable`: fewest tenders a comparison group needs before it is used.
    - `min_bids`: fewest valid priced bids a tender needs to be assessed.

    ## Known false positives
    An inflated estimate (every bid is then far below it, which the comparison absorbs
    only when the buyer inflates all its estimates alike); a winner with a real cost
    advantage; a market downturn after the estimate was set. A flagged tender is a lead
    for the contract's change orders and inspections, not for the bids alone.

    ## References
    - 中华人民共和国招标投标法 (1999, rev. 2017), arts. 33, 41.
    - 中华人民共和国招标投标法实施条例 (2011, rev. 2019), art. 51(5).
    - Decarolis, F. (2014). Awarding price, contract performance, and bids screening:
      evidence from procurement auctions. AEJ: Applied Economics 6(1).
    """

    min_bids: int = 1

    name: ClassVar[str] = "deep-discount-win"
    requires: ClassVar[frozenset[str]] = frozenset(
        {"bids.amount", "bids.is_winner", "tenders.estimate"}
    )
    # A risk of substandard works more than of collusion, and one price screen: it counts
    # a little on its own, as the high side of the same ratio counts through `bid-pattern`.
    default_weight: ClassVar[float] = 0.5
    statistic: ClassVar[str] = "ratio"
    label: ClassVar[str] = "winning bid / estimate"
    meaning: ClassVar[dict[Direction, str]] = {
        "low": "winning bid unusually far below the estimate",
        "high": "winning bid unusually close to the estimate",
    }
    low_under: ClassVar[frozenset[str]] = frozenset(AWARD_METHODS)
    log_scale: ClassVar[bool] = True

    fewest_bids: ClassVar[int] = 1
    positive: ClassVar[bool] = True

    def statistics(self, data: Dataset) -> pl.DataFrame:
        return winning_ratios(data, self.min_bids)

    def detect(self, data: Dataset) -> Findings:
        """The outliers of the ratio, implicating the winner only (not every bidder)."""
        found = outliers(self, data)
        firm = pl.col("firm_id") if "firm_id" in data.bids.columns else pl.lit(None, pl.String)
        winners = (
            data.bids.lazy()
            .filter(pl.col("is_winner").fill_null(False))
            .group_by("tender_id")
            .agg(firm.drop_nulls().unique().sort().alias("_winners"))
            .collect()
        )
        frame = (
            found.frame.join(winners, left_on="subject_id", right_on="tender_id", how="left")
            .with_columns(
                pl.col("_winners").fill_null(pl.lit([], dtype=pl.List(pl.String))).alias("firms")
            )
            .drop("_winners")
        )
        return Findings(frame, found.assessed, found.notes)
