"""Identical bid amounts from different bidders in one tender."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

import polars as pl

from bidwatch.detectors._base import sig
from bidwatch.detectors._stats import rounding_unit
from bidwatch.findings import Findings, SubjectKind, build
from bidwatch.schema import TABLES

if TYPE_CHECKING:
    from bidwatch.dataset import Dataset


@dataclass(frozen=True)
class IdenticalBids:
    """Two or more bidders in a tender offered exactly the same price.

    ## What it flags
    Tenders where bids from different bidders have the same amount (to the cent), when the
    chance of that coincidence among independent bids is below `max_chance`.

    ## Why it is a risk
    Independent bidders price from their own costs; identical amounts to the unit mean one
    price list or one hand behind several bids. The PRC Bidding Law implementing regulations
    (招标投标法实施条例) art. 40 treat bids that show "abnormal consistency" as collusion.

    ## Method
    Bids with an amount are grouped by tender and amount in cents; a group with two or more
    bids (from different bidders where bidders are known) is a coincidence. Its chance among
    independent bids is estimated from how finely the amount is written: an amount with
    granularity r (1,234,567 -> 1; 1,230,000 -> 10,000) has a chance r / w of being matched
    by one other bid, where w is the tender's range of bids but at least 10% of the amount;
    over the n(n-1)/2 pairs of the tender's bids the chance is min(1, pairs x r / w). Round
    amounts therefore explain themselves; exact odd amounts do not. Groups whose amount
    equals the tender's estimate (fixed-price tenders) are left out, and so are groups as
    likely as `max_chance` or more (round amounts), which implicate no one. Bids whose
    bidder is unknown count as different bidders only when their rows differ in something
    else (status, winner flag, time, traces): rows alike in every field may be one bid
    recorded twice, such as a consortium listed member by member. The finding reports the
    least likely group first. Score = 1 - chance.

    ## Evidence
    Every unlikely identical group (amount, number of bids, bidders, chance), the number of
    bids in the tender and their range.

    ## Parameters
    - `max_chance`: flag when the coincidence is less likely than this among independent
      bids.

    ## Known false positives
    Prices set by a public schedule (bids at a mandated unit rate x quantity); tenders that
    ask every bidder to bid the ceiling; bids rounded the same way to a coarse unit.

    ## References
    - 中华人民共和国招标投标法实施条例 (2011), art. 40.
    - OECD (2009). Guidelines for fighting bid rigging in public procurement.
    """

    max_chance: float = 0.05

    name: ClassVar[str] = "identical-bids"
    subject: ClassVar[SubjectKind] = "tender"
    requires: ClassVar[frozenset[str]] = frozenset({"bids.amount"})
    default_weight: ClassVar[float] = 1.5

    def __post_init__(self) -> None:
        if not 0 < self.max_chance <= 1:
            raise ValueError(f"max_chance must be in (0, 1], got {self.max_chance}")

    def detect(self, data: Dataset) -> Findings:
        firm = "firm_id" if "firm_id" in data.bids.columns else None
        priced = data.bids.filter(pl.col("amount").is_not_null()).with_columns(
            (pl.col("amount") * 100).round().cast(pl.Int64).alias("_cents")
        )
        spread = priced.group_by("tender_id").agg(
            pl.len().alias("_n"), (pl.col("amount").max() - pl.col("amount").min()).alias("_range")
        )
        # Equal amounts are rare: only the bids that share their tender's cent amount with
        # another bid are described below (a hash of every recorded field costs most).
        bids = priced.filter(pl.len().over("tender_id", "_cents") >= 2).join(
            spread, on="tender_id", how="left", maintain_order="left"
        )
        # A bid whose bidder is unknown is told apart by what its row records: two rows that
        # agree in every field may be one bid recorded twice (a consortium listed member by
        # member), so they count as one bidder.
        recorded = [c for c in TABLES["bids"].names if c not in ("tender_id", "amount")]
        row = pl.struct(recorded).hash().cast(pl.String)
        who = pl.coalesce(pl.col(firm), row) if firm else row
        named = pl.col(firm) if firm else pl.lit(None, dtype=pl.String)
        groups = (
            bids.with_columns(who.alias("_who"), named.alias("_named"))
            .group_by("tender_id", "_cents")
            .agg(
                pl.len().alias("count"),
                pl.col("_who").n_unique().alias("_distinct"),
                pl.col("_named").drop_nulls().unique().sort().alias("bidders"),
                pl.col("amount").first(),
                pl.col("_n").first(),
                pl.col("_range").first(),
            )
            .filter((pl.col("count") >= 2) & (pl.col("_distinct") >= 2))
        )
        estimates = data.tenders.select("tender_id", "estimate")
        groups = groups.join(estimates, on="tender_id", how="left").filter(
            pl.col("estimate").is_null()
            | ((pl.col("estimate") * 100).round().cast(pl.Int64) != pl.col("_cents"))
        )
        granularity = rounding_unit(pl.col("_cents")) / 100
        width = pl.max_horizontal(pl.col("_range"), pl.col("amount") * 0.1)
        pairs = pl.col("_n") * (pl.col("_n") - 1) / 2
        groups = groups.with_columns(
            pl.min_horizontal(pl.lit(1.0), pairs * granularity / width).alias("chance"),
        )
        per_tender = (
            groups.filter(pl.col("chance") <= self.max_chance)
            .sort("chance", "_cents")
            .group_by("tender_id")
            .agg(
                pl.col("chance").first(),
                pl.col("amount").first(),
                pl.col("count").first(),
                pl.col("_n").first(),
                pl.col("_range").first(),
                pl.col("bidders")
                .list.explode(keep_nulls=False, empty_as_null=False)
                .unique()
                .sort()
                .alias("firms"),
                pl.struct("amount", "count", "bidders", "chance").alias("groups"),
            )
        )
        return build(
            per_tender,
            detector=self.name,
            kind="tender",
            subject_id=pl.col("tender_id"),
            score=1 - pl.col("chance"),
            value=pl.col("chance"),
            threshold=pl.lit(self.max_chance),
            message=pl.format(
                "{} bids of exactly {} from different bidders "
                "(chance among independent bids {} <= {})",
                pl.col("count"),
                sig(pl.col("amount"), 12),
                sig(pl.col("chance"), 2),
                pl.lit(self.max_chance),
            ),
            evidence={
                "groups": pl.col("groups"),
                "bids_in_tender": pl.col("_n"),
                "range_of_bids": pl.col("_range"),
            },
            firms=pl.col("firms") if firm else None,
            assessed=spread.get_column("tender_id"),
        )
