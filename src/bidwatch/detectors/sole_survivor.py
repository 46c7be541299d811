"""Every bid but the winner's disqualified or withdrawn."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

import polars as pl

from bidwatch.detectors._base import NotComputable, sig
from bidwatch.findings import Findings, SubjectKind, build

if TYPE_CHECKING:
    from bidwatch.dataset import Dataset

SET_ASIDE = ("disqualified", "withdrawn")


@dataclass(frozen=True)
class SoleSurvivor:
    """Two or more bids were made, and every one but the winner's was disqualified or
    withdrawn.

    ## What it flags
    Tenders with at least two bids and one winner in which all the other bids were
    disqualified or withdrawn, when that many bids set aside is unlikely at the input's
    rate of setting bids aside (chance below `max_chance`).

    ## Why it is a risk
    Cover bidders who must appear but must not win hand in deliberately defective bids or
    withdraw (OECD 2009: "non-conforming bids", "bid withdrawal"; 招标投标法实施条例
    art. 39(3): bidders agreeing that some give up bidding or winning); a buyer or
    evaluation committee that favours one bidder can reach the same result by rejecting
    the others on pretexts (implementing regulations art. 51 lists the only grounds for
    rejecting a bid). When disqualifications leave fewer than three valid bids and
    competition is clearly lacking, the committee may reject all bids and the tender is
    repeated (招标投标法 art. 42; 评标委员会和评标方法暂行规定 art. 27); an award to the
    sole survivor skips that.

    ## Method
    A bid is set aside when its status is disqualified or withdrawn (no status counts as
    valid). Tenders with at least two bids and exactly one winning bid, itself not set
    aside, are assessed. q is the share of set-aside bids among all non-winning bids of the
    input; if bids were set aside independently at that rate, all n - 1 other bids of a
    tender with n bids are set aside with chance q^(n-1). Score = 1 - chance. Only the
    winner is implicated; the bids set aside are listed in the evidence (their bidders may
    be covers or victims).

    ## Evidence
    The winning bid, every bid set aside (status and amount), the input's rate q and the
    chance.

    ## Parameters
    - `max_chance`: flag when so many bids set aside are less likely than this at the
      input's rate.

    ## Known false positives
    Demanding qualification requirements that most local firms fail in good faith (the
    requirement itself may be the problem, see tailored specifications); inputs where the
    status of losing bids is recorded only when they were set aside for cause.

    ## References
    - 中华人民共和国招标投标法 (1999, rev. 2017), art. 42.
    - 中华人民共和国招标投标法实施条例 (2011, rev. 2019), arts. 39, 51.
    - 评标委员会和评标方法暂行规定 (2001, rev. 2013), art. 27.
    - OECD (2009). Guidelines for fighting bid rigging in public procurement.
    """

    max_chance: float = 0.05

    name: ClassVar[str] = "sole-survivor"
    subject: ClassVar[SubjectKind] = "tender"
    requires: ClassVar[frozenset[str]] = frozenset({"bids.status", "bids.is_winner"})
    # Every rival set aside is rarely innocent; it also raises `single-valid-bid` (0.5), so
    # the two together weigh 1.25, under one hand behind the bids (1.5-2.0).
    default_weight: ClassVar[float] = 0.75

    def __post_init__(self) -> None:
        if not 0 < self.max_chance <= 1:
            raise ValueError(f"max_chance must be in (0, 1], got {self.max_chance}")

    def detect(self, data: Dataset) -> Findings:
        firm = pl.col("firm_id") if "firm_id" in data.bids.columns else pl.lit(None, pl.String)
        out = pl.col("status").is_in(list(SET_ASIDE)).fill_null(False)
        win = pl.col("is_winner").fill_null(False)
        bids = data.bids.select(
            "tender_id",
            "amount",
            "status",
            firm.alias("who"),
            out.alias("_out"),
            win.alias("_win"),
        )
        losing = bids.filter(~pl.col("_win"))
        if losing.height == 0:
            raise NotComputable("no bid is marked as losing (is_winner false)")
        rate = losing.get_column("_out").sum() / losing.height
        per_tender = (
            bids.group_by("tender_id")
            .agg(
                pl.len().alias("n"),
                pl.col("_win").sum().alias("_winners"),
                (pl.col("_win") & pl.col("_out")).sum().alias("_winner_out"),
                pl.col("_out").sum().alias("_set_aside"),
            )
            .filter((pl.col("n") >= 2) & (pl.col("_winners") == 1) & (pl.col("_winner_out") == 0))
        )
        flagged = (
            per_tender.filter(pl.col("_set_aside") == pl.col("n") - 1)
            .with_columns(pl.lit(rate).pow(pl.col("n") - 1).alias("chance"))
            .filter(pl.col("chance") <= self.max_chance)
        )
        detail = (
            bids.join(flagged.select("tender_id"), on="tender_id", how="semi")
            .sort("tender_id", "status", "amount", "who", nulls_last=True)
            .group_by("tender_id", maintain_order=True)
            .agg(
                pl.col("amount").filter("_win").first().alias("winning_bid"),
                pl.struct("status", "amount").filter("_out").alias("set_aside"),
                pl.col("who").filter("_win").drop_nulls().unique().sort().alias("firms"),
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
                "all {} other bids disqualified or withdrawn, only the winner's stood "
                "(chance at the input's {}% of losing bids set aside: {} <= {})",
                pl.col("n") - 1,
                sig(pl.lit(rate * 100), 3),
                sig(pl.col("chance"), 2),
                pl.lit(self.max_chance),
            ),
            evidence={
                "winning_bid": pl.col("winning_bid"),
                "set_aside": pl.col("set_aside"),
                "rate_set_aside_in_input": pl.lit(rate),
                "chance": pl.col("chance"),
            },
            firms=pl.col("firms"),
            assessed=per_tender.get_column("tender_id"),
        )
