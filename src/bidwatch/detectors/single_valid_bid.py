"""Only one valid bid: no competition at all."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

import polars as pl

from bidwatch.detectors._base import NotComputable, sig
from bidwatch.detectors._stats import LEVELS, compare, comparison_keys, tender_prices
from bidwatch.findings import Findings, SubjectKind, build

if TYPE_CHECKING:
    from bidwatch.dataset import Dataset

SET_ASIDE = ("disqualified", "withdrawn")


@dataclass(frozen=True)
class SingleValidBid:
    """Only one valid bid reached the evaluation: either one bid was made, or every other
    bid was disqualified or withdrawn, in a market where that is uncommon.

    ## What it flags
    Tenders (other than single-source procurement) with exactly one valid bid, when the
    share of comparable tenders with a single valid bid is at most `max_share`.

    ## Why it is a risk
    One bid means no price competition: the sole bidder sets the price. It is the first
    indicator of the corruption-risk literature (single bidding, Fazekas & Kocsis 2020) and
    the outcome of bid suppression, where ring members agree not to bid or to withdraw
    (招标投标法实施条例 art. 39(3)). The PRC Bidding Law (招标投标法) art. 28 and the
    implementing regulations art. 44 require a new tender when fewer than three bidders
    bid; when disqualifications leave fewer than three valid bids and competition is
    clearly lacking, the evaluation committee may reject them all (招标投标法 art. 42;
    评标委员会和评标方法暂行规定 art. 27). A contract awarded on one valid bid therefore
    also asks why the tender was not repeated.

    ## Method
    A bid is valid unless its status is disqualified or withdrawn (no status counts as
    valid), with or without an amount. Every tender with a bid is assessed, except
    single-source procurement, where one bid is the procedure. A tender with one valid bid
    is compared with comparable tenders: same award rule, category and half-decade size
    band (of the estimate, else of the mean valid bid; coarser groups, down to the whole
    file, when a group has fewer than `min_comparable`; the number of bids is the outcome
    here, so it is not a key). The chance is the share of those tenders (the tender
    itself included) with a single valid bid; the score is 1 - chance, so a single bid is
    the more suspicious the rarer it is where it happened. Only the valid bidder is
    implicated; the bids set aside are listed in the evidence (see `sole-survivor` for
    tenders where they were all disqualified).

    ## Evidence
    The number of bids and of valid bids, the statuses of the bids set aside, the valid
    bid's amount, the share of comparable tenders with a single valid bid and the
    comparison group.

    ## Parameters
    - `max_share`: flag only where at most this share of comparable tenders has a single
      valid bid; where single bids are the norm (negotiated work, remote markets) one more
      says little.
    - `min_comparable`: fewest tenders a comparison group needs before it is used.

    ## Known false positives
    Specialised works with one capable firm, remote places, small lots nobody wants, and
    records that list only the winning bid (award notices often do: then every tender has
    one bid, the share is 1 and nothing is flagged).

    ## References
    - 中华人民共和国招标投标法 (1999, rev. 2017), arts. 28, 42.
    - 中华人民共和国招标投标法实施条例 (2011, rev. 2019), arts. 39, 44.
    - 评标委员会和评标方法暂行规定 (2001, rev. 2013), art. 27.
    - Fazekas, M. & Kocsis, G. (2020). Uncovering high-level corruption: cross-national
      objective corruption risk indicators using public procurement data. British Journal
      of Political Science 50(1).
    """

    max_share: float = 0.2
    min_comparable: int = 30

    name: ClassVar[str] = "single-valid-bid"
    subject: ClassVar[SubjectKind] = "tender"
    requires: ClassVar[frozenset[str]] = frozenset({"bids.tender_id"})
    # No competition is a red flag, but thin markets are common and a lone bid proves no
    # agreement; when the others were set aside `sole-survivor` adds its own finding.
    default_weight: ClassVar[float] = 0.5

    def __post_init__(self) -> None:
        if not 0 < self.max_share <= 1:
            raise ValueError(f"max_share must be in (0, 1], got {self.max_share}")
        if self.min_comparable < 4:
            raise ValueError(f"min_comparable must be >= 4, got {self.min_comparable}")

    def detect(self, data: Dataset) -> Findings:
        firm = pl.col("firm_id") if "firm_id" in data.bids.columns else pl.lit(None, pl.String)
        valid = ~pl.col("status").is_in(list(SET_ASIDE)).fill_null(False)
        bids = data.bids.select(
            "tender_id", "amount", "status", firm.alias("who"), valid.alias("_valid")
        )
        per_tender = (
            bids.group_by("tender_id")
            .agg(pl.len().alias("bids"), pl.col("_valid").sum().alias("valid"))
            # Size from the mean valid bid where no estimate is given, as for the screens.
            .join(tender_prices(data).select("tender_id", "mean"), on="tender_id", how="left")
        )
        single_source = data.tenders.filter(pl.col("procedure") == "single_source")
        per_tender = per_tender.join(single_source.select("tender_id"), on="tender_id", how="anti")
        if per_tender.height == 0:
            raise NotComputable("no tender with a bid (single-source procurement left out)")
        if per_tender.height < self.min_comparable:
            raise NotComputable(
                f"needs at least {self.min_comparable} tenders to tell how common a single "
                f"valid bid is, found {per_tender.height}; lower `min_comparable`"
            )
        keyed = comparison_keys(data, per_tender.rename({"bids": "n"})).with_columns(
            # The number of bids is the outcome: compare across bid counts.
            pl.lit("any").alias("_bids"),
            (pl.col("valid") == 1).cast(pl.Float64).alias("_single"),
        )
        keyed = compare(keyed, "_single", self.min_comparable)
        share: pl.Expr = pl.lit(None, pl.Float64)
        for i, keys in reversed(list(enumerate(LEVELS))):
            level = pl.col("_single").mean()
            level = level.over(list(keys)) if keys else level
            share = pl.when(pl.col("_level") == i).then(level).otherwise(share)
        flagged = keyed.with_columns(share.alias("_share")).filter(
            (pl.col("valid") == 1) & (pl.col("_share") <= self.max_share)
        )
        detail = (
            bids.join(flagged.select("tender_id"), on="tender_id", how="semi")
            .group_by("tender_id")
            .agg(
                pl.col("amount").filter("_valid").max().alias("valid_bid"),
                pl.col("amount").drop_nulls().sort().alias("amounts"),
                pl.col("status").filter(~pl.col("_valid")).sort().alias("set_aside"),
                pl.col("who").filter("_valid").drop_nulls().unique().sort().alias("firms"),
            )
        )
        flagged = flagged.join(detail, on="tender_id")
        lvl = pl.col("_level")
        return build(
            flagged,
            detector=self.name,
            kind="tender",
            subject_id=pl.col("tender_id"),
            score=1 - pl.col("_share"),
            value=pl.col("_share"),
            threshold=pl.lit(self.max_share),
            message=pl.format(
                "1 valid bid of {} ({}); {}% of {} comparable tenders have a single valid "
                "bid (limit {}%)",
                pl.col("n"),
                pl.when(pl.col("n") == 1)
                .then(pl.lit("no other bid"))
                .otherwise(
                    pl.format("{} disqualified or withdrawn", pl.col("set_aside").list.len())
                ),
                sig(pl.col("_share") * 100, 3),
                pl.col("_count"),
                sig(pl.lit(self.max_share * 100), 3),
            ),
            evidence={
                "bids": pl.col("n"),
                "valid_bids": pl.col("valid"),
                "set_aside": pl.col("set_aside"),
                "valid_bid": pl.col("valid_bid"),
                "amounts": pl.col("amounts"),
                "share_single_in_comparable": pl.col("_share"),
                "compared_with": pl.struct(
                    award_method=pl.when(lvl <= 3).then(pl.col("_rule")),
                    category=pl.when(lvl == 0).then(pl.col("_category")),
                    size_band=pl.when(lvl <= 1).then(pl.col("_size")),
                    tenders=pl.col("_count"),
                ),
            },
            firms=pl.col("firms"),
            assessed=keyed.get_column("tender_id"),
        )
