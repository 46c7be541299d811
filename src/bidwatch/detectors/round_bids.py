"""Round-number bids: covers written to round figures instead of priced."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

import polars as pl
from scipy.stats import binom

from bidwatch.detectors._base import NotComputable, sig
from bidwatch.detectors._stats import rounding_unit
from bidwatch.findings import Findings, SubjectKind, build

if TYPE_CHECKING:
    from bidwatch.dataset import Dataset


@dataclass(frozen=True)
class RoundBids:
    """A tender's bids are written to round numbers far more often than bids elsewhere in
    the input.

    ## What it flags
    Tenders with at least `min_round` round bids (an amount of at most `max_significant`
    significant digits: 1,230,000 has three, 1,234,567.89 has nine) when so many round bids
    among the tender's bids are unlikely at the share of round bids in the whole input
    (chance below `max_chance`).

    ## Why it is a risk
    A bidder who prices the works from the bill of quantities ends on an odd figure. A
    cover bid (陪标) is only meant to lose (OECD 2009: "cover bidding"), so nothing makes its
    author price it: covers are often written as round figures, or handed out as round
    figures by the ring. Several round bids beside one priced bid in a tender where bidders
    elsewhere price to the yuan are that habit. Coinciding amounts are the stronger trace
    (招标投标法实施条例 art. 40(4), see `identical-bids` and `regular-differences`); this
    detector catches the looser one.

    ## Method
    Every bid with an amount counts, whatever its status (a disqualified cover still shows
    how it was written), except bids equal to the tender's estimate (a fixed-price or
    ceiling bid is not priced at all). An amount in cents is round when the amount divided
    by its rounding unit (the power of ten it is written to, as `identical-bids` measures
    it) has at most `max_significant` digits, so roundness is relative to the size of the
    bid. p is the share of round bids among all counted bids of the input; a tender with k
    round bids among its n counted bids has chance = P(Binomial(n, p) >= k), the exact
    binomial tail. Score = 1 - chance. Tenders with at least `min_round` counted bids are
    assessed.

    ## Evidence
    The round bids, every counted bid of the tender, the number of round bids, the share p
    of round bids in the input and the chance.

    ## Parameters
    - `max_significant`: an amount with at most this many significant digits is round.
    - `min_round`: fewest round bids a tender needs to be flagged (one round bid is no
      pattern).
    - `max_chance`: flag when so many round bids are less likely than this at the input's
      share of round bids. Each tender is tested once, so about this share of honest
      tenders is flagged by chance.

    ## Known false positives
    Small works priced in units of 10,000 yuan (万元) by custom, tenders where the buyer asks
    for round lump sums, and inputs whose amounts were rounded by the publisher (an award
    notice that gives 123.4万元); firms that always write round figures (the input-wide
    share p does not know a firm's habit; such a firm's other tenders show it). These
    cluster by buyer, region or firm; compare with the tender's other findings.

    ## References
    - OECD (2009). Guidelines for fighting bid rigging in public procurement.
    - 中华人民共和国招标投标法实施条例 (2011, rev. 2019), art. 40.
    """

    max_significant: int = 3
    min_round: int = 2
    max_chance: float = 0.01

    name: ClassVar[str] = "round-bids"
    subject: ClassVar[SubjectKind] = "tender"
    requires: ClassVar[frozenset[str]] = frozenset({"bids.amount"})
    # A habit more than a proof: round amounts have innocent causes, unlike identical ones.
    default_weight: ClassVar[float] = 1.0

    def __post_init__(self) -> None:
        if not 1 <= self.max_significant <= 12:
            raise ValueError(f"max_significant must be in 1..12, got {self.max_significant}")
        if self.min_round < 1:
            raise ValueError(f"min_round must be >= 1, got {self.min_round}")
        if not 0 < self.max_chance <= 1:
            raise ValueError(f"max_chance must be in (0, 1], got {self.max_chance}")

    def detect(self, data: Dataset) -> Findings:
        firm = pl.col("firm_id") if "firm_id" in data.bids.columns else pl.lit(None, pl.String)
        cents = (pl.col("amount") * 100).round().cast(pl.Int64)
        estimate = (pl.col("estimate") * 100).round().cast(pl.Int64)
        bids = (
            data.bids.filter(pl.col("amount").is_not_null())
            .select("tender_id", "amount", firm.alias("who"), cents.alias("_cents"))
            .join(data.tenders.select("tender_id", "estimate"), on="tender_id", how="left")
            .filter(pl.col("estimate").is_null() | (estimate != pl.col("_cents")))
        )
        if bids.height == 0:
            raise NotComputable("no bid with an amount other than the tender's estimate")
        bids = bids.with_columns(
            (
                pl.col("_cents") // rounding_unit(pl.col("_cents"))
                < pl.lit(10, pl.Int64).pow(self.max_significant)
            ).alias("_round")
        )
        share = bids.get_column("_round").sum() / bids.height
        rnd = pl.col("_round")
        per_tender = (
            bids.group_by("tender_id")
            .agg(pl.len().alias("n"), rnd.sum().alias("k"))
            .filter(pl.col("n") >= self.min_round)
        )
        assessed = per_tender.get_column("tender_id")
        flagged = per_tender.filter(pl.col("k") >= self.min_round)
        chance = binom.sf(
            flagged.get_column("k").to_numpy() - 1, flagged.get_column("n").to_numpy(), share
        )
        flagged = flagged.with_columns(
            pl.Series("chance", chance, dtype=pl.Float64).clip(0.0, 1.0)
        ).filter(pl.col("chance") <= self.max_chance)
        # The bids behind each finding, gathered for the flagged tenders only.
        detail = (
            bids.join(flagged.select("tender_id"), on="tender_id", how="semi")
            .sort("tender_id", "amount", "who", nulls_last=True)
            .group_by("tender_id", maintain_order=True)
            .agg(
                pl.col("amount").filter(rnd).alias("round_bids"),
                pl.col("amount").alias("bids"),
                pl.col("who").filter(rnd).drop_nulls().unique().sort().alias("firms"),
            )
        )
        flagged = flagged.join(detail, on="tender_id")
        return build(
            flagged,
            detector=self.name,
            kind="tender",
            subject_id=pl.col("tender_id"),
            score=1 - pl.col("chance"),
            value=pl.col("chance"),
            threshold=pl.lit(self.max_chance),
            message=pl.format(
                "{} of {} bids written to round numbers (<= {} significant digits; {}% of "
                "bids in the input): chance {} <= {}",
                pl.col("k"),
                pl.col("n"),
                pl.lit(self.max_significant),
                sig(pl.lit(share * 100), 3),
                sig(pl.col("chance"), 2),
                pl.lit(self.max_chance),
            ),
            evidence={
                "round_bids": pl.col("round_bids"),
                "bids": pl.col("bids"),
                "round": pl.col("k"),
                "share_round_in_input": pl.lit(share),
                "max_significant": pl.lit(self.max_significant),
                "chance": pl.col("chance"),
            },
            firms=pl.col("firms"),
            assessed=assessed,
        )
