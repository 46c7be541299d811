"""Bidding period shorter than the law allows or far shorter than usual."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

import polars as pl

from bidwatch.detectors._base import NotComputable, sig
from bidwatch.detectors._stats import UNSTATED, compare, size_band
from bidwatch.findings import Findings, SubjectKind, build

if TYPE_CHECKING:
    from bidwatch.dataset import Dataset

# Procedures that Bidding Law art. 24 governs: tenders, open or invited.
TENDERING = ("open", "invited", UNSTATED)


@dataclass(frozen=True)
class ShortPeriod:
    """The time between publication and the bid deadline was below the legal minimum, or
    far below that of comparable tenders.

    ## What it flags
    Tenders whose bidding period (days from publication to the bid deadline) is below
    `legal_minimum_days` (for open and invited tenders, or where no procedure is stated),
    or below the lower Tukey fence of comparable tenders.

    ## Why it is a risk
    A short period leaves outsiders no time to price the works, while a bidder told in
    advance is ready: it is a classic way for a buyer to favour one firm or a ring. The PRC
    Bidding Law (招标投标法) art. 24 sets at least 20 days from the issue of the tender
    documents to the bid deadline for tenders that must be held by law (the Government
    Procurement Law, 政府采购法 art. 35, sets the same for goods and services).

    ## Method
    The period is counted in calendar days between the dates of publication and of the
    deadline (the day of publication not counted, as periods in days are counted under the
    Civil Code art. 201); publication stands for the first issue of the tender documents.
    Tenders with both dates are assessed. The legal limit applies to open and invited
    procedures and to tenders with no stated procedure; negotiated and other procedures
    have their own, shorter minimums and are judged against comparable tenders only.
    Comparable tenders share the procedure, category and half-decade size band of the
    estimate (coarser groups, down to the whole file, when a group has fewer than
    `min_comparable`); their fence is Q1 - `fence` x IQR of the period. Score: the
    tender's mid-rank percentile of shortness among them (0.98: shorter than 98% of
    comparable tenders), so a breach that many comparable tenders share counts less. The
    winner, where known, is implicated: a short period favours whoever knew in advance.

    ## Evidence
    The period in days, the legal minimum where it applies, the fence, the percentile,
    the dates and the comparison group.

    ## Parameters
    - `legal_minimum_days`: the statutory minimum (20 days under Bidding Law art. 24).
    - `fence`: Tukey multiplier of the interquartile range of the period.
    - `min_comparable`: fewest tenders a comparison group needs before it is used.

    ## Known false positives
    Re-tenders after a failed first round and emergency works, which may lawfully be
    shorter; a publication date recorded later than the documents were first issued (the
    period then looks shorter than it was); procurement outside the Bidding Law recorded
    without its procedure.

    ## References
    - 中华人民共和国招标投标法 (1999, rev. 2017), art. 24.
    - 中华人民共和国政府采购法 (2002, rev. 2014), art. 35.
    - 中华人民共和国民法典 (2020), art. 201.
    - Fazekas, M., Tóth, I. J. & King, L. P. (2016). An objective corruption risk index
      using public procurement data. European Journal on Criminal Policy and Research 22(3).
    """

    legal_minimum_days: int = 20
    fence: float = 1.5
    min_comparable: int = 30

    name: ClassVar[str] = "short-period"
    subject: ClassVar[SubjectKind] = "tender"
    requires: ClassVar[frozenset[str]] = frozenset({"tenders.published_at", "tenders.bid_deadline"})
    # It makes favouritism possible rather than showing it, and honest urgency exists.
    default_weight: ClassVar[float] = 0.5

    def __post_init__(self) -> None:
        if self.legal_minimum_days < 0:
            raise ValueError(f"legal_minimum_days must be >= 0, got {self.legal_minimum_days}")
        if self.fence < 0:
            raise ValueError(f"fence must be >= 0, got {self.fence}")
        if self.min_comparable < 4:
            raise ValueError(f"min_comparable must be >= 4, got {self.min_comparable}")

    def detect(self, data: Dataset) -> Findings:
        days = (pl.col("bid_deadline").dt.date() - pl.col("published_at").dt.date()).dt.total_days()
        tenders = data.tenders.filter(
            pl.col("published_at").is_not_null() & pl.col("bid_deadline").is_not_null()
        ).select(
            "tender_id",
            "published_at",
            "bid_deadline",
            days.cast(pl.Float64).alias("days"),
            # compare() groups by these keys: procedure takes the place of the award rule.
            pl.col("procedure").fill_null(UNSTATED).alias("_rule"),
            pl.col("category").fill_null(UNSTATED).alias("_category"),
            size_band(pl.col("estimate")).fill_null(UNSTATED).alias("_size"),
            pl.lit("any").alias("_bids"),
        )
        if tenders.height == 0:
            raise NotComputable("no tender has both a publication date and a bid deadline")
        keyed = compare(
            tenders.with_columns((-pl.col("days")).alias("_y")), "_y", self.min_comparable
        )
        enough = pl.col("_count") >= self.min_comparable
        fence = -(pl.col("_q3") + self.fence * (pl.col("_q3") - pl.col("_q1")))
        legal = pl.col("_rule").is_in(list(TENDERING))
        keyed = keyed.with_columns(
            pl.when(enough).then(fence).alias("_fence"),
            pl.when(legal).then(pl.lit(float(self.legal_minimum_days))).alias("_legal"),
        )
        # The limit crossed: the higher of the two, since either flags.
        limit = pl.max_horizontal("_fence", "_legal")
        flagged = keyed.with_columns(limit.alias("_limit")).filter(
            pl.col("days") < pl.col("_limit")
        )
        firm = pl.col("firm_id") if "firm_id" in data.bids.columns else pl.lit(None, pl.String)
        winners = (
            data.bids.lazy()
            .filter(pl.col("is_winner").fill_null(False))
            .group_by("tender_id")
            .agg(firm.drop_nulls().unique().sort().alias("firms"))
            .collect()
        )
        flagged = flagged.join(winners, on="tender_id", how="left")
        below_legal = pl.col("_legal").is_not_null() & (pl.col("days") < pl.col("_legal"))
        below_fence = pl.col("_fence").is_not_null() & (pl.col("days") < pl.col("_fence"))
        reasons = pl.concat_str(
            pl.when(below_legal).then(
                pl.format(
                    "< {} days legal minimum (招标投标法 art. 24)", pl.col("_legal").cast(pl.Int64)
                )
            ),
            pl.when(below_fence).then(
                pl.format(
                    "< {} days (lower fence of {} comparable tenders)",
                    sig(pl.col("_fence"), 3),
                    pl.col("_count"),
                )
            ),
            separator="; ",
            ignore_nulls=True,
        )
        lvl = pl.col("_level")
        return build(
            flagged,
            detector=self.name,
            kind="tender",
            subject_id=pl.col("tender_id"),
            score=pl.col("_pct"),
            value=pl.col("days"),
            threshold=pl.col("_limit"),
            message=pl.format("bidding period {} days {}", pl.col("days").cast(pl.Int64), reasons),
            evidence={
                "days": pl.col("days"),
                "legal_minimum_days": pl.col("_legal"),
                "fence": pl.col("_fence"),
                "percentile": pl.col("_pct"),
                "published_at": pl.col("published_at").dt.to_string("%Y-%m-%d %H:%M:%S"),
                "bid_deadline": pl.col("bid_deadline").dt.to_string("%Y-%m-%d %H:%M:%S"),
                "compared_with": pl.struct(
                    procedure=pl.when(lvl <= 3).then(pl.col("_rule")),
                    category=pl.when(lvl == 0).then(pl.col("_category")),
                    size_band=pl.when(lvl <= 1).then(pl.col("_size")),
                    tenders=pl.col("_count"),
                ),
            },
            firms=pl.col("firms").fill_null(pl.lit([], dtype=pl.List(pl.String))),
            assessed=keyed.get_column("tender_id"),
        )
