"""The winning bid came in last, at the deadline, after all the others."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

import polars as pl

from bidwatch.detectors._base import NotComputable, sig
from bidwatch.findings import Findings, SubjectKind, build

if TYPE_CHECKING:
    from bidwatch.dataset import Dataset

TIME = "%Y-%m-%d %H:%M:%S"


@dataclass(frozen=True)
class LateWinner:
    """The winning bid was the last one submitted, close to or after the bid deadline,
    while every other bid had come in earlier.

    ## What it flags
    Tenders with at least `min_bids` bids with a submission time whose one winning bid was
    submitted strictly after all the others, within `window_hours` of the deadline or after
    it, when that is unlikely for independent bidders (chance below `max_chance`).

    ## Why it is a risk
    A bidder who submits last, at the deadline, can price knowing the others' prices: a
    buyer or agent who opens or reports bids before the opening leaks exactly that (the
    implementing regulations, 招标投标法实施条例 art. 41(1), name it collusion between
    buyer and bidder; the PRC Bidding Law, 招标投标法 art. 22, forbids disclosing anything
    that affects fair competition). A designated winner may also wait until the covers have
    filed. A bid after the deadline must be refused (招标投标法 art. 28; implementing
    regulations art. 36): a late winning bid is a breach in itself.

    ## Method
    Every bid with a submission time counts, whatever its status. The lead of a bid is its
    tender's deadline minus its submission time (negative when late). Tenders with at least
    `min_bids` timed bids and exactly one timed winning bid are assessed. If submission
    times were independent draws from the input's own distribution of leads, the chance
    that a given bid of a tender with n bids is the last one and has a lead no longer than
    the winner's is (1 - (1 - f)^n) / n, where f is the share of all timed bids of the input
    whose lead is no longer than the winner's (an empirical distribution, so the last-day
    rush of honest bidders is priced in). Tenders without a deadline are judged on the
    order alone (chance 1/n), which reaches a small `max_chance` only with many bids.
    Score = 1 - chance. Only the winner is implicated.

    ## Evidence
    The winner's submission time, the deadline, the winner's lead in minutes, the last
    other submission, the number of bids, the share f and the chance.

    ## Parameters
    - `window_hours`: the winning bid must come at most this long before the deadline (or
      after it) to be flagged.
    - `min_bids`: fewest bids with a submission time a tender needs to be assessed.
    - `max_chance`: flag when the winner's lateness is less likely than this for
      independent bidders.

    ## Known false positives
    Bidders who habitually file at the last minute (a firm that is always last is visible
    in its other tenders, where it loses); platforms that record the time of the last
    amendment rather than of the first upload; deadlines moved after publication.

    ## References
    - 中华人民共和国招标投标法 (1999, rev. 2017), arts. 22, 28.
    - 中华人民共和国招标投标法实施条例 (2011, rev. 2019), arts. 36, 41.
    - OECD (2009). Guidelines for fighting bid rigging in public procurement.
    """

    window_hours: float = 1.0
    min_bids: int = 2
    max_chance: float = 0.01

    name: ClassVar[str] = "late-winner"
    subject: ClassVar[SubjectKind] = "tender"
    requires: ClassVar[frozenset[str]] = frozenset({"bids.submitted_at", "bids.is_winner"})
    # A calibrated chance, but of timing alone: honest firms file late too (about
    # `max_chance` of honest tenders are flagged), and the leak it suggests is not shown.
    default_weight: ClassVar[float] = 0.5

    def __post_init__(self) -> None:
        if not self.window_hours >= 0:
            raise ValueError(f"window_hours must be >= 0, got {self.window_hours}")
        if self.min_bids < 2:
            raise ValueError(f"min_bids must be >= 2, got {self.min_bids}")
        if not 0 < self.max_chance <= 1:
            raise ValueError(f"max_chance must be in (0, 1], got {self.max_chance}")

    def detect(self, data: Dataset) -> Findings:
        firm = pl.col("firm_id") if "firm_id" in data.bids.columns else pl.lit(None, pl.String)
        lead = (pl.col("bid_deadline") - pl.col("submitted_at")).dt.total_seconds()
        bids = (
            data.bids.lazy()
            .filter(pl.col("submitted_at").is_not_null())
            .select(
                "tender_id",
                "submitted_at",
                pl.col("is_winner").fill_null(False).alias("_win"),
                firm.alias("who"),
            )
            .collect()
            .join(data.tenders.select("tender_id", "bid_deadline"), on="tender_id", how="left")
            .with_columns(lead.alias("_lead"))
        )
        if bids.height == 0:
            raise NotComputable("no bid has a submission time (submitted_at)")
        # f: the share of timed bids (with a deadline) whose lead is no longer than this one's.
        bids = bids.with_columns(
            (pl.col("_lead").rank("max") / pl.col("_lead").count()).alias("_f")
        )
        win = pl.col("_win")
        # The winner's values, and the others' times, as columns first: the group-by then
        # only counts and takes maxima. Tenders with one winner are kept, so its value is
        # the only one not nulled.
        per_tender = (
            bids.select(
                "tender_id",
                "_win",
                "bid_deadline",
                *[pl.when(win).then(pl.col(c)).alias(c) for c in ("submitted_at", "_lead", "_f")],
                pl.when(~win).then(pl.col("submitted_at")).alias("_others"),
                pl.when(win).then(pl.col("who")).alias("_who"),
            )
            .group_by("tender_id")
            .agg(
                pl.len().alias("n"),
                win.sum().alias("_winners"),
                pl.col("submitted_at").max().alias("_at"),
                pl.col("_others").max(),
                pl.col("_lead").max(),
                pl.col("_f").max(),
                pl.col("bid_deadline").first().alias("_deadline"),
                pl.col("_who").max(),
            )
            .filter((pl.col("n") >= self.min_bids) & (pl.col("_winners") == 1))
            .with_columns(pl.concat_list("_who").list.drop_nulls().alias("firms"))
        )
        n = pl.col("n").cast(pl.Float64)
        chance = (
            pl.when(pl.col("_lead").is_not_null())
            .then((1 - (1 - pl.col("_f")).pow(n)) / n)
            .otherwise(1 / n)
        )
        window = self.window_hours * 3600
        flagged = per_tender.with_columns(chance.alias("chance")).filter(
            (pl.col("_at") > pl.col("_others"))
            & (pl.col("_lead").is_null() | (pl.col("_lead") <= window))
            & (pl.col("chance") <= self.max_chance)
        )
        minutes = pl.col("_lead") / 60
        when = (
            pl.when(pl.col("_lead").is_null())
            .then(pl.lit("no deadline known"))
            .when(pl.col("_lead") < 0)
            .then(pl.format("{} min after the deadline", sig(-minutes, 3)))
            .otherwise(
                pl.format(
                    "{} min before the deadline (limit {} min)",
                    sig(minutes, 3),
                    sig(pl.lit(window / 60), 3),
                )
            )
        )
        return build(
            flagged,
            detector=self.name,
            kind="tender",
            subject_id=pl.col("tender_id"),
            score=1 - pl.col("chance"),
            value=pl.col("chance"),
            threshold=pl.lit(self.max_chance),
            message=pl.format(
                "winning bid submitted last of {}, {}: chance for independent bidders {} <= {}",
                pl.col("n"),
                when,
                sig(pl.col("chance"), 2),
                pl.lit(self.max_chance),
            ),
            evidence={
                "winner_submitted_at": pl.col("_at").dt.to_string(TIME),
                "deadline": pl.col("_deadline").dt.to_string(TIME),
                "lead_minutes": minutes,
                "last_other_submitted_at": pl.col("_others").dt.to_string(TIME),
                "bids": pl.col("n"),
                "share_as_late_in_input": pl.col("_f"),
                "chance": pl.col("chance"),
            },
            firms=pl.col("firms"),
            assessed=per_tender.get_column("tender_id"),
        )
