"""Bids of different bidders uploaded minutes apart: one hand filing several bids."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

import numpy as np
import polars as pl
from scipy.special import comb

from bidwatch.detectors._base import NotComputable, sig
from bidwatch.findings import Findings, SubjectKind, build

if TYPE_CHECKING:
    from bidwatch.dataset import Dataset

TIME = "%Y-%m-%d %H:%M:%S"
# Submission times are often recorded to the minute: a tighter span is not evidence.
RESOLUTION_S = 60


@dataclass(frozen=True)
class SubmissionCluster:
    """Bids of different bidders were submitted within minutes of each other, closer than
    independent bidders would come.

    ## What it flags
    Tenders in which at least `min_bidders` different bidders submitted their bids in one
    run, each within `max_gap_minutes` of the previous one, when such a run is unlikely for
    independent submission times over the tender's submission window (chance below
    `max_chance`).

    ## Why it is a risk
    On an e-bidding platform each bidder uploads its own encrypted bid. Several bids
    uploaded minutes apart, one after the other, are what one person filing for several
    firms leaves behind: bid files made by one hand and bidding handled by one agent are
    deemed collusion by the PRC Bidding Law implementing regulations (招标投标法实施条例)
    art. 40(1) and (2). It is the timing twin of `shared-traces`, and it holds when the
    preparer changes computers.

    ## Method
    Every bid with a submission time counts, whatever its status; a firm with several
    submissions in a tender counts once, at its last (a bid whose bidder is unknown counts
    as a bidder of its own). In each tender with at least `min_bidders` such bidders, the
    submissions are sorted and cut into runs wherever two consecutive submissions are more
    than `max_gap_minutes` apart. For a run of m bidders
    spanning s (at least one minute, the usual recording resolution) in a tender of n
    bidders whose submission window is W (from the first submission to the deadline, or
    to the last submission where the deadline is unknown or earlier), the chance that n
    independent uniform submission times put some m of them within s of each other is at
    most n C(n - 1, m - 1) (s / W)^(m - 1) (the union bound over the first bid of the run);
    that bound, capped at 1, is the chance of the least likely run. Score = 1 - chance. The
    bidders of that run are implicated.

    ## Evidence
    The run (bidders, submission times), its span in minutes, the window in hours, the
    number of bidders in the tender and the chance.

    ## Parameters
    - `max_gap_minutes`: largest gap between consecutive submissions of one run.
    - `min_bidders`: fewest different bidders in a run (and in a tender) for a flag.
    - `max_chance`: flag when the run is less likely than this for independent bidders.

    ## Known false positives
    The rush just before a deadline (honest bids come mostly in the last hours, which the
    uniform model understates: a run right at the deadline is less telling than one days
    before it); firms that share an office or a bid-preparation service honestly; platforms
    that record the time a batch was processed rather than each upload.

    ## References
    - 中华人民共和国招标投标法实施条例 (2011, rev. 2019), art. 40.
    - Glaz, J., Naus, J. & Wallenstein, S. (2001). Scan Statistics. Springer.
    """

    max_gap_minutes: float = 10.0
    min_bidders: int = 3
    max_chance: float = 0.01

    name: ClassVar[str] = "submission-cluster"
    subject: ClassVar[SubjectKind] = "tender"
    requires: ClassVar[frozenset[str]] = frozenset({"bids.submitted_at"})
    # A calibrated chance of a trace of one hand, weaker than a shared machine or account
    # (`shared-traces`, 2.0): honest bidders do file close together at the deadline.
    default_weight: ClassVar[float] = 1.0

    def __post_init__(self) -> None:
        if not self.max_gap_minutes > 0:
            raise ValueError(f"max_gap_minutes must be > 0, got {self.max_gap_minutes}")
        if self.min_bidders < 2:
            raise ValueError(f"min_bidders must be >= 2, got {self.min_bidders}")
        if not 0 < self.max_chance <= 1:
            raise ValueError(f"max_chance must be in (0, 1], got {self.max_chance}")

    def detect(self, data: Dataset) -> Findings:
        firm = pl.col("firm_id") if "firm_id" in data.bids.columns else pl.lit(None, pl.String)
        t = pl.col("_t")
        timed = (
            data.bids.lazy()
            .filter(pl.col("submitted_at").is_not_null())
            .select(
                "tender_id", firm.alias("_named"), pl.col("submitted_at").dt.epoch("s").alias("_t")
            )
            .collect()
        )
        if timed.height == 0:
            raise NotComputable("no bid has a submission time (submitted_at)")
        # Tenders and firms as integer codes (positions among their distinct values; firms
        # sorted, so that their codes order ties as their names do): every sort, group-by and
        # window below is on integers, and names come back only for the reported runs.
        tender_ids = timed.get_column("tender_id").unique()
        firms = timed.get_column("_named").drop_nulls().unique().sort()
        timed = timed.select(
            pl.col("tender_id").cast(pl.Enum(tender_ids)).to_physical().alias("_c"),
            pl.col("_named").cast(pl.Enum(firms)).to_physical().alias("_f"),
            "_t",
        )
        # A known firm counts once per tender, at its last submission; a bid whose bidder is
        # unknown counts as a bidder of its own.
        width = firms.len() + 1
        named = (
            timed.filter(pl.col("_f").is_not_null())
            .group_by((pl.col("_c").cast(pl.UInt64) * width + pl.col("_f")).alias("_k"))
            .agg(t.max())
            .select(
                (pl.col("_k") // width).cast(pl.UInt32).alias("_c"),
                (pl.col("_k") % width).cast(pl.UInt32).alias("_f"),
                "_t",
            )
        )
        unnamed = timed.filter(pl.col("_f").is_null()).cast({"_c": pl.UInt32, "_f": pl.UInt32})
        bids = pl.concat([named, unnamed])
        deadline = (
            tender_ids.to_frame()
            .join(data.tenders.select("tender_id", "bid_deadline"), on="tender_id", how="left")
            .select(
                pl.col("tender_id").cast(pl.Enum(tender_ids)).to_physical().alias("_c"),
                pl.col("bid_deadline").dt.epoch("s").alias("_deadline"),
            )
        )
        # Sorted, each tender's bids are one run, numbered by _r: the windows below are over
        # that integer, and the previous bid of the tender is the previous row of the run.
        # (numpy's lexsort: several times faster than polars' sort on three columns here)
        order = np.lexsort(
            (
                bids.get_column("_f").fill_null(width).to_numpy(),
                bids.get_column("_t").to_numpy(),
                bids.get_column("_c").to_numpy(),
            )
        )
        bids = (
            bids[order]
            .with_columns(pl.col("_c").rle_id().set_sorted().alias("_r"))
            .with_columns(pl.len().over("_r").alias("n"))
            .filter(pl.col("n") >= self.min_bidders)
            .join(deadline, on="_c", how="left", maintain_order="left")
        )
        first = t.min().over("_r")
        end = pl.max_horizontal(t.max().over("_r"), pl.col("_deadline"))
        gap = t - pl.when(pl.col("_r").shift(1) == pl.col("_r")).then(t.shift(1))
        bids = bids.with_columns(
            (end - first).alias("_window"),
            (gap.is_null() | (gap > self.max_gap_minutes * 60)).alias("_new"),
        ).with_columns(
            pl.col("_new").cum_sum().over("_r").alias("_run"),
            # Runs numbered through the file (each tender starts a new one): one sorted key.
            pl.col("_new").cum_sum().set_sorted().alias("_g"),
        )
        assessed = tender_ids.gather(bids.get_column("_c").unique())
        runs = (
            bids.group_by("_g", maintain_order=True)
            .agg(
                pl.col("_c", "_run").first(),
                pl.len().alias("m"),
                t.max().alias("_last"),
                t.min().alias("_first"),
                pl.col("n", "_window").first(),
            )
            .filter(pl.col("m") >= self.min_bidders)
            .with_columns((pl.col("_last") - pl.col("_first")).alias("_span"))
        )
        m = runs.get_column("m").to_numpy().astype(np.float64)
        n = runs.get_column("n").to_numpy().astype(np.float64)
        span = np.maximum(runs.get_column("_span").to_numpy().astype(np.float64), RESOLUTION_S)
        window = runs.get_column("_window").to_numpy().astype(np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            share = np.where(window > 0, np.minimum(span / window, 1.0), 1.0)
        chance = np.minimum(1.0, n * comb(n - 1, m - 1) * share ** (m - 1))
        runs = runs.with_columns(pl.Series("chance", chance, dtype=pl.Float64))
        per_tender = (
            runs.filter(pl.col("chance") <= self.max_chance)
            .sort("_c", "chance", "_run")
            .group_by("_c", maintain_order=True)
            .first()
        )
        # The bidders and times of each reported run, gathered for those runs only.
        rows = bids.join(per_tender.select("_c", "_run"), on=["_c", "_run"], how="semi")
        rows = rows.with_columns(firms.gather(rows.get_column("_f")).alias("_named"))
        detail = rows.group_by("_c", maintain_order=True).agg(
            pl.struct(
                pl.col("_named").alias("bidder"),
                pl.from_epoch("_t", time_unit="s").dt.to_string(TIME).alias("submitted_at"),
            ).alias("run"),
            pl.col("_named").drop_nulls().unique().sort().alias("firms"),
        )
        per_tender = per_tender.join(detail, on="_c")
        per_tender = per_tender.with_columns(
            tender_ids.gather(per_tender.get_column("_c")).alias("tender_id")
        ).sort("tender_id")
        return build(
            per_tender,
            detector=self.name,
            kind="tender",
            subject_id=pl.col("tender_id"),
            score=1 - pl.col("chance"),
            value=pl.col("chance"),
            threshold=pl.lit(self.max_chance),
            message=pl.format(
                "{} of {} bidders submitted within {} min, each <= {} min after the previous "
                "(window {} h): chance for independent bidders {} <= {}",
                pl.col("m"),
                pl.col("n"),
                sig(pl.col("_span") / 60, 3),
                pl.lit(self.max_gap_minutes),
                sig(pl.col("_window") / 3600, 3),
                sig(pl.col("chance"), 2),
                pl.lit(self.max_chance),
            ),
            evidence={
                "run": pl.col("run"),
                "span_minutes": pl.col("_span") / 60,
                "window_hours": pl.col("_window") / 3600,
                "bidders_in_tender": pl.col("n"),
                "chance": pl.col("chance"),
            },
            firms=pl.col("firms"),
            assessed=assessed,
        )
