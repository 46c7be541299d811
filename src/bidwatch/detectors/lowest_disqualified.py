"""The lowest bid was disqualified and a dearer one won."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

import polars as pl

from bidwatch.detectors._base import NotComputable, sig
from bidwatch.detectors._stats import UNSTATED
from bidwatch.findings import Findings, SubjectKind, build
from bidwatch.schema import AWARD_METHODS

if TYPE_CHECKING:
    from bidwatch.dataset import Dataset

SET_ASIDE = ("disqualified", "withdrawn")


@dataclass(frozen=True)
class LowestDisqualified:
    """The lowest priced bid was disqualified (or withdrawn) and a higher bid won.

    ## What it flags
    Tenders under the award rules in `award_methods` whose lowest priced bid was set aside
    (disqualified, or withdrawn with its price known) while a bid at least `min_saving`
    dearer won.

    ## Why it is a risk
    Where price decides or weighs, the lowest bid is the one a favoured bidder must get rid
    of. An evaluation committee can reject it on a pretext; the implementing regulations
    (招标投标法实施条例) art. 51 list the only grounds for rejecting a bid and art. 71 punishes
    evaluators who do not follow the tender's criteria. A ring can also place a low bid it
    withdraws or spoils on purpose, to keep outsiders guessing (art. 39(3): bidders agreeing
    that some give up winning). Either way the buyer pays the difference.

    ## Method
    Tenders with a winning bid with an amount and at least two bids with amounts are
    assessed, when their award rule is one of `award_methods` ("unstated" stands for
    tenders with no rule; under average-bid rules the lowest bid does not win, so they are
    left out by default; under scoring rules price is assumed to weigh, as it does under
    综合评分法). A tender is flagged when its lowest amount belongs only to bids set aside
    and the winning bid (the lowest, if several) exceeds it by a relative saving
    s = (winning - lowest) / winning of at least `min_saving`. Score = 1 - exp(-s /
    `saving_scale`): a bounded transform of what the buyer forwent (with 0.05: 0.18 at 1%,
    0.63 at 5%, 0.86 at 10%). Only the winner is implicated; the bid set aside is in the
    evidence.

    ## Evidence
    The lowest bid set aside (status, amount), the winning bid, the saving forgone, and
    every bid (status, amount).

    ## Parameters
    - `award_methods`: award rules under which the lowest bid should win or weigh
      (lowest_price, average_bid, scoring, or "unstated" for tenders with no rule).
    - `min_saving`: smallest relative difference between the winning and the set-aside bid
      that is flagged.
    - `saving_scale`: the saving at which the score reaches 1 - 1/e (0.63).

    ## Known false positives
    Genuinely non-compliant cheap bids (missing bond, unqualified firm, a price below cost
    rejected under art. 51(5), which is the law working); scoring awards where technical
    merit rightly outweighs price.

    ## References
    - 中华人民共和国招标投标法实施条例 (2011, rev. 2019), arts. 39, 51, 71.
    - OECD (2009). Guidelines for fighting bid rigging in public procurement.
    - Fazekas, M. & Kocsis, G. (2020). Uncovering high-level corruption: cross-national
      objective corruption risk indicators using public procurement data. British Journal
      of Political Science 50(1).
    """

    award_methods: tuple[str, ...] = ("lowest_price", "scoring", UNSTATED)
    min_saving: float = 0.005
    saving_scale: float = 0.05

    name: ClassVar[str] = "lowest-disqualified"
    subject: ClassVar[SubjectKind] = "tender"
    requires: ClassVar[frozenset[str]] = frozenset({"bids.amount", "bids.status", "bids.is_winner"})
    # A manipulated evaluation is a direct red flag, scored by the money at stake; but cheap
    # bids are often rightly rejected, so it weighs a third of one hand behind the bids.
    default_weight: ClassVar[float] = 0.5

    def __post_init__(self) -> None:
        known = (*AWARD_METHODS, UNSTATED)
        unknown = [m for m in self.award_methods if m not in known]
        if unknown or not self.award_methods:
            raise ValueError(
                f"award_methods must be a non-empty list of {', '.join(known)}, got "
                f"{list(self.award_methods)}"
            )
        if not 0 <= self.min_saving < 1:
            raise ValueError(f"min_saving must be in [0, 1), got {self.min_saving}")
        if not self.saving_scale > 0 or math.isinf(self.saving_scale):
            raise ValueError(f"saving_scale must be > 0 and finite, got {self.saving_scale}")

    def detect(self, data: Dataset) -> Findings:
        firm = pl.col("firm_id") if "firm_id" in data.bids.columns else pl.lit(None, pl.String)
        out = pl.col("status").is_in(list(SET_ASIDE)).fill_null(False)
        win = pl.col("is_winner").fill_null(False)
        rules = data.tenders.select(
            "tender_id", pl.col("award_method").fill_null(UNSTATED).alias("_rule")
        ).filter(pl.col("_rule").is_in(list(self.award_methods)))
        bids = (
            data.bids.lazy()
            .filter(pl.col("amount").is_not_null())
            .join(rules.lazy(), on="tender_id", how="semi")
            .select(
                "tender_id",
                "amount",
                "status",
                firm.alias("who"),
                out.alias("_out"),
                win.alias("_win"),
            )
            .collect()
        )
        if bids.height == 0:
            raise NotComputable(
                "no bid with an amount in a tender under the award rules "
                + ", ".join(self.award_methods)
            )
        amount = pl.col("amount")
        per_tender = (
            bids.group_by("tender_id")
            .agg(
                pl.len().alias("n"),
                amount.filter("_win").min().alias("winning_bid"),
                amount.min().alias("lowest"),
                amount.filter(~pl.col("_out")).min().alias("_lowest_kept"),
            )
            .filter((pl.col("n") >= 2) & pl.col("winning_bid").is_not_null())
        )
        saving = (pl.col("winning_bid") - pl.col("lowest")) / pl.col("winning_bid")
        flagged = per_tender.with_columns(saving.alias("saving")).filter(
            (pl.col("_lowest_kept").is_null() | (pl.col("_lowest_kept") > pl.col("lowest")))
            & (pl.col("saving") > 0)
            & (pl.col("saving") >= self.min_saving)
        )
        detail = (
            bids.join(flagged.select("tender_id"), on="tender_id", how="semi")
            .sort("tender_id", "amount", "status", "who", nulls_last=True)
            .group_by("tender_id", maintain_order=True)
            .agg(
                pl.struct("status", "amount").filter(pl.col("_out")).first().alias("set_aside"),
                pl.struct("status", "amount").alias("bids"),
                pl.col("who").filter("_win").drop_nulls().unique().sort().alias("firms"),
            )
        )
        flagged = flagged.join(detail, on="tender_id")
        return build(
            flagged,
            detector=self.name,
            kind="tender",
            subject_id=pl.col("tender_id"),
            score=1 - (-pl.col("saving") / self.saving_scale).exp(),
            value=pl.col("saving"),
            threshold=pl.lit(self.min_saving),
            message=pl.format(
                "lowest bid {} was {} and {} won: the buyer forwent {}% (>= {}%)",
                sig(pl.col("lowest"), 12),
                pl.col("set_aside").struct.field("status"),
                sig(pl.col("winning_bid"), 12),
                sig(pl.col("saving") * 100, 3),
                sig(pl.lit(self.min_saving * 100), 3),
            ),
            evidence={
                "set_aside": pl.col("set_aside"),
                "winning_bid": pl.col("winning_bid"),
                "saving": pl.col("saving"),
                "bids": pl.col("bids"),
            },
            firms=pl.col("firms"),
            assessed=per_tender.get_column("tender_id"),
        )
