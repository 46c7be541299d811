"""A winning (or lowest) bid abnormally low against the estimate, its own tender's bids and
comparable tenders."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

import polars as pl

from bidwatch.detectors._base import Family, NotComputable, priced_bids, sig
from bidwatch.detectors._contracts import depth_among_comparable
from bidwatch.detectors._stats import (
    bid_lists,
    compare,
    comparison_evidence,
    comparison_keys,
    tender_prices,
)
from bidwatch.detectors._stats import winning_ratios as stats_winning_ratios
from bidwatch.findings import Findings, SubjectKind, build

if TYPE_CHECKING:
    from bidwatch.dataset import Dataset


@dataclass(frozen=True)
class AbnormallyLowBid:
    """The winning bid (or, before the award, the lowest valid bid) is abnormally low
    against the estimate, the tender's own bids and comparable tenders.

    ## What it flags
    Tenders whose winning bid, or lowest valid bid where no bid is marked as the winner,
    lies abnormally low against at least one of three references, each reported in the
    evidence: (a) the estimate, when a fixed `max_ratio` is set; (b) the tender's own bids:
    the bid's discount lies beyond the anomaly threshold of Italian public works law by more
    than in comparable tenders (or than `max_excess`); (c) comparable tenders: bid /
    estimate lies below the lower fence of comparable tenders' winning ratios.

    ## Why it is a risk
    A price below what the works cost cannot pay for them as specified: the loss is made
    good afterwards by cheaper materials and thinner layers (偷工减料, 以次充好), or by
    claims and change orders. The PRC Bidding Law (招标投标法) art. 33 forbids bidding below
    cost, and the implementing regulations (招标投标法实施条例) art. 51(5) require the
    evaluation committee to reject such a bid; Directive 2014/24/EU art. 69 requires the
    buyer to ask for explanations of an abnormally low tender and lets it reject one the
    explanations do not account for. Italian law turns the question into arithmetic on the
    bids themselves (D.Lgs. 50/2016 art. 97(2)), the basis of reference (b).
    `deep-discount-win` (collusion family) judges the winning ratio against comparable
    tenders only, as a screen of the award; this detector is the materials-risk judgement
    of one bid against all three references together: a bid far below its own rivals is
    caught where the estimate is inflated or missing, a tender not yet awarded is judged on
    its lowest bid, and a bid as deep as its rivals (an inflated estimate) scores lower.

    ## Method
    The bid judged: the largest positive winning amount (several win where a tender awards
    lots under one id), else, where no bid is marked as the winner, the lowest valid bid
    above zero (its bidder: the smallest firm id at that amount). R is the estimate, else
    the trimmed mean of the tender's bids (below); value = bid / R.
    (b) The anomaly threshold, from the tender's valid bids above zero when there are at
    least `min_bids` (art. 97(3-bis) sets five): each bid's discount is d = 1 - bid / R;
    sorted, k = ceil(n / 10) bids are set aside at each end (the wing cut; ties are counted
    one by one, so which of two equal bids is set aside does not matter); m is the mean
    discount of the others and s the mean of d - m over those of them with d > m (0 when
    none); the threshold is T = m + s, and a bid is at or beyond it when d >= T (the law's
    'pari o superiore'). This is art. 97(2)(a) of the 2016 text and letters (a)-(c) of the
    text in force from 2019, with s taken over the discounts left after the wing cut (one
    of the two readings the Consiglio di Stato, Sez. V, n. 2959/2018, found the text to
    allow); the 2019 text's decrement by the digits of the sum of discounts (letter (d)),
    its setting aside of bids tied with those cut, and the methods of art. 97(2-bis) are
    not applied. Without an estimate R is the mean of the bids left after the wing cut, so
    m = 0 and T = s: the discount from the trimmed mean of the bids. T is the mean of the
    kept discounts above their mean, so it never exceeds the largest kept discount, and the
    lowest bid, always among those cut, always lies at or beyond it: the law's threshold
    alone marks every lowest bid for verification. The flag therefore judges the excess
    e = d - T: the bid crosses (b) when d >= T and e lies above the upper fence Q3 +
    `fence` x IQR of e among comparable tenders (or above `max_excess` when set).
    (c) The ratio to the estimate among the winning ratios of comparable tenders (tenders
    without a winner enter with their lowest bid); the bid crosses when log ratio lies below
    Q1 - `fence` x IQR of the group. Needs an estimate.
    Comparable tenders, for (b) and (c): same award rule, category, half-decade size band
    and bid-count band, coarser groups down to the whole file when a group has fewer than
    `min_comparable` (the quartile itself when the IQR is zero); a fence needs at least
    `min_comparable` tenders in all.
    (a) With `max_ratio` set, the bid crosses when bid / estimate < `max_ratio`.
    A tender is assessed when at least one reference can flag it. Score: with p_b the
    percentile of the excess e and p_c the percentile of depth of the ratio among their
    comparable tenders, score = 1 - sqrt((1 - p_b)(1 - p_c)), one minus the geometric mean
    of the two tail shares (the one available where only one is; 0.5 where neither is). It
    grows with the distance below either reference, equals p when both agree (two 0.97s
    give 0.97), and a bid deep against the estimate but in line with its rivals scores
    less than one deep against both. threshold = the largest limit crossed, as bid / R.

    ## Evidence
    The bid, its bidder and whether it won; the estimate and bid / estimate; the anomaly
    threshold (R and its basis, bids counted, wing cut, m, s, T, the bid's discount and
    excess, the excess limit, percentile and comparison group); the comparison of the ratio
    (percentile, fence as a ratio, comparison group); which references were crossed; the
    tender's valid bid amounts.

    ## Parameters
    - `min_bids`: fewest valid priced bids the anomaly threshold (b) is computed from
      (at least 3, so that a bid is left after the wing cut).
    - `fence`: Tukey multiplier of the interquartile range of the excess (b) and of log
      ratio (c).
    - `min_comparable`: fewest tenders a comparison group needs before it is used.
    - `max_ratio`: fixed bid / estimate limit (a), e.g. 0.7 (None: not applied).
    - `max_excess`: fixed limit of the excess e (in shares of R: 0.05 = five points beyond
      the threshold) replacing the fence of (b) (None: fence).

    ## Known false positives
    An inflated estimate ((c) flags every bid; (b) then still judges the bid against its
    rivals and the score is lower); a winner with a real cost advantage or idle capacity;
    a tender where a few honest bids priced far above the rest. Ask the bidder for its cost
    breakdown (art. 69) and follow the contract's change orders and inspections.

    ## References
    - Decreto legislativo 18 aprile 2016, n. 50 (Codice dei contratti pubblici), art. 97,
      commi 2 and 3-bis.
    - Consiglio di Stato, Sez. V, 17 maggio 2018, n. 2959.
    - Directive 2014/24/EU on public procurement, art. 69 (abnormally low tenders).
    - 中华人民共和国招标投标法 (1999, rev. 2017), art. 33.
    - 中华人民共和国招标投标法实施条例 (2011, rev. 2019), art. 51(5).
    - Decarolis, F. (2014). Awarding price, contract performance, and bids screening:
      evidence from procurement auctions. AEJ: Applied Economics 6(1).
    - Conley, T. G. & Decarolis, F. (2016). Detecting bidders groups in collusive auctions.
      AEJ: Microeconomics 8(2).
    """

    min_bids: int = 5
    fence: float = 1.5
    min_comparable: int = 30
    max_ratio: float | None = None
    max_excess: float | None = None

    name: ClassVar[str] = "abnormally-low-bid"
    subject: ClassVar[SubjectKind] = "tender"
    requires: ClassVar[frozenset[str]] = frozenset({"bids.amount"})
    # A bid far below its rivals and comparable tenders is a lead for the works, not proof.
    default_weight: ClassVar[float] = 1.0
    family: ClassVar[Family] = "materials"

    def __post_init__(self) -> None:
        if self.min_bids < 3:
            raise ValueError(f"min_bids must be >= 3, got {self.min_bids}")
        if self.fence < 0:
            raise ValueError(f"fence must be >= 0, got {self.fence}")
        if self.min_comparable < 4:
            raise ValueError(f"min_comparable must be >= 4, got {self.min_comparable}")
        if self.max_ratio is not None and not 0 < self.max_ratio <= 1:
            raise ValueError(f"max_ratio must be in (0, 1] or None, got {self.max_ratio}")
        if self.max_excess is not None and not 0 <= self.max_excess < 1:
            raise ValueError(f"max_excess must be in [0, 1) or None, got {self.max_excess}")

    def detect(self, data: Dataset) -> Findings:
        target, unpriced = target_bids(data)
        if target.height == 0:
            raise NotComputable(
                "no tender has a winning bid or a valid bid above zero to judge"
                + (
                    f" ({unpriced} tender(s) have a winning bid without an amount)"
                    if unpriced
                    else ""
                )
            )
        estimates = data.tenders.select(
            "tender_id", pl.when(pl.col("estimate") > 0).then(pl.col("estimate")).alias("_est")
        ).unique("tender_id", keep="first", maintain_order=True)
        frame = (
            target.join(estimates, on="tender_id", how="left")
            .join(anomaly_thresholds(data, self.min_bids), on="tender_id", how="left")
            .with_columns(
                pl.coalesce("_est", "_wing_mean").alias("_ref"),
                pl.when(pl.col("_est").is_not_null())
                .then(pl.lit("estimate"))
                .when(pl.col("_wing_mean").is_not_null())
                .then(pl.lit("trimmed mean of the bids"))
                .alias("_basis"),
            )
            .with_columns(
                (pl.col("_amount") / pl.col("_ref")).alias("_ratio"),
                (pl.col("_amount") / pl.col("_est")).alias("_to_estimate"),
            )
            # The threshold's discounts are on the same reference R.
            .with_columns(
                pl.when(pl.col("_t").is_not_null()).then(1.0 - pl.col("_ratio")).alias("_d")
            )
            .with_columns((pl.col("_d") - pl.col("_t")).alias("_e"))
        )
        prices = tender_prices(data).select("tender_id", "n", "mean")
        excess, excess_notes = self._excess_side(data, frame, prices)
        depth, depth_notes = self._depth_side(data, frame, prices, estimates)
        frame = frame.join(excess, on="tender_id", how="left").join(
            depth, on="tender_id", how="left"
        )
        has_a = pl.lit(self.max_ratio is not None) & pl.col("_est").is_not_null()
        frame = frame.with_columns(
            (has_a & (pl.col("_to_estimate") < pl.lit(self.max_ratio, dtype=pl.Float64)))
            .fill_null(False)
            .alias("_a_cross"),
            pl.col("_b_cross").fill_null(False),
            pl.col("_c_cross").fill_null(False),
            (has_a | pl.col("_b_pct").is_not_null() | pl.col("_c_pct").is_not_null()).alias(
                "_assessed"
            ),
        )
        assessed = frame.filter(pl.col("_assessed"))
        notes = (*self._notes(frame, unpriced), *excess_notes, *depth_notes)
        if assessed.height == 0:
            raise NotComputable(
                "no tender can be judged: "
                + "; ".join(notes)
                + "; set `max_excess` or `max_ratio` for fixed limits, or lower "
                "`min_comparable`"
            )
        flagged = assessed.filter(pl.col("_a_cross") | pl.col("_b_cross") | pl.col("_c_cross"))
        flagged = flagged.join(bid_lists(data, flagged), on="tender_id", how="left")
        return self._build(flagged, assessed.get_column("tender_id"), notes)

    def _excess_side(
        self, data: Dataset, frame: pl.DataFrame, prices: pl.DataFrame
    ) -> tuple[pl.DataFrame, tuple[str, ...]]:
        """(b): the excess e = d - T of each bid over its tender's anomaly threshold, among
        comparable tenders' excesses."""
        rows = (
            frame.filter(pl.col("_e").is_not_null())
            .join(prices, on="tender_id")
            .select("tender_id", "n", "mean", pl.col("_e").alias("value"), "_d", "_t")
        )
        if rows.height == 0 or (self.max_excess is None and rows.height < self.min_comparable):
            note = (
                f"the anomaly threshold (b) could not flag: {rows.height} tender(s) have "
                f"{self.min_bids}+ valid priced bids, fewer than min_comparable = "
                f"{self.min_comparable} to place their excess among comparable tenders; set "
                "`max_excess` for a fixed limit"
            )
            return pl.DataFrame(schema=EXCESS_SCHEMA), (note,)
        placed = comparison_keys(data, rows)
        placed = compare(placed, "value", self.min_comparable)
        if self.max_excess is None:
            limit = pl.col("_q3") + self.fence * (pl.col("_q3") - pl.col("_q1"))
            how = pl.format("upper fence of {} comparable tenders", pl.col("_count"))
        else:
            limit = pl.lit(self.max_excess, dtype=pl.Float64)
            how = pl.lit("max_excess")
        side = placed.select(
            "tender_id",
            pl.col("_pct").alias("_b_pct"),
            limit.alias("_b_limit"),
            how.alias("_b_how"),
            ((pl.col("_d") >= pl.col("_t")) & (pl.col("value") > limit)).alias("_b_cross"),
            comparison_evidence().alias("_b_compared"),
        )
        return side.cast(EXCESS_SCHEMA), ()

    def _depth_side(
        self,
        data: Dataset,
        frame: pl.DataFrame,
        prices: pl.DataFrame,
        estimates: pl.DataFrame,
    ) -> tuple[pl.DataFrame, tuple[str, ...]]:
        """(c): the ratio to the estimate among comparable tenders' winning ratios; tenders
        not yet awarded enter with their lowest bid."""
        decided = stats_winning_ratios(data, 1)
        pending = (
            frame.filter(~pl.col("_won") & pl.col("_est").is_not_null())
            .join(prices, on="tender_id")
            .select("tender_id", "n", "mean", pl.col("_to_estimate").alias("value"))
        )
        ratios = pl.concat([decided, pending.cast(decided.schema)])
        if ratios.height < self.min_comparable:
            note = (
                f"the comparison with comparable tenders (c) was not made: {ratios.height} "
                "tender(s) have a winning (or lowest) bid and an estimate, fewer than "
                f"min_comparable = {self.min_comparable}"
            )
            return pl.DataFrame(schema=DEPTH_SCHEMA), (note,)
        placed = depth_among_comparable(data, ratios, self.min_comparable)
        limit_y = pl.col("_q3") + self.fence * (pl.col("_q3") - pl.col("_q1"))
        side = placed.select(
            "tender_id",
            pl.col("_pct").alias("_c_pct"),
            (-limit_y).exp().alias("_c_limit"),
            (pl.col("_y") > limit_y).alias("_c_cross"),
            comparison_evidence().alias("_c_compared"),
        )
        return side.cast(DEPTH_SCHEMA), ()

    def _notes(self, frame: pl.DataFrame, unpriced: int) -> tuple[str, ...]:
        notes = []
        if unpriced:
            notes.append(
                f"{unpriced} tender(s) have a winning bid without an amount above zero: not judged"
            )
        short = frame.filter(pl.col("_t").is_null()).height
        if short:
            notes.append(
                f"{short} of {frame.height} tender(s) have fewer than {self.min_bids} valid "
                "priced bids: no anomaly threshold (b)"
            )
        none = frame.filter(~pl.col("_assessed")).height
        if none:
            notes.append(
                f"{none} tender(s) have no reference that could flag their bid (anomaly "
                "threshold among comparable tenders, estimate among comparable tenders"
                + (", estimate for max_ratio" if self.max_ratio is not None else "")
                + "): not judged"
            )
        return tuple(notes)

    def _build(
        self, flagged: pl.DataFrame, assessed: pl.Series, notes: tuple[str, ...]
    ) -> Findings:
        tail_b = 1.0 - pl.col("_b_pct")
        tail_c = 1.0 - pl.col("_c_pct")
        tail = pl.coalesce((tail_b * tail_c).sqrt(), tail_b, tail_c, pl.lit(0.5))
        limit_b = 1.0 - pl.col("_t") - pl.col("_b_limit").clip(lower_bound=0.0)
        threshold = pl.max_horizontal(
            pl.when(pl.col("_a_cross")).then(pl.lit(self.max_ratio, dtype=pl.Float64)),
            pl.when(pl.col("_b_cross")).then(limit_b),
            pl.when(pl.col("_c_cross")).then(pl.col("_c_limit")),
        )
        who = pl.when(pl.col("_won")).then(pl.lit("winning bid")).otherwise(pl.lit("lowest bid"))
        part_b = pl.when(pl.col("_b_cross")).then(
            pl.format(
                "discount {}% is {} points beyond the anomaly threshold {}% of its {} bids "
                "(wing cut {}, m {}%, s {}%), more than {} points ({})",
                sig(pl.col("_d") * 100, 3),
                sig(pl.col("_e") * 100, 3),
                sig(pl.col("_t") * 100, 3),
                pl.col("_n"),
                pl.col("_k"),
                sig(pl.col("_m") * 100, 3),
                sig(pl.col("_s") * 100, 3),
                sig(pl.col("_b_limit").clip(lower_bound=0.0) * 100, 3),
                pl.col("_b_how"),
            )
        )
        part_c = pl.when(pl.col("_c_cross")).then(
            pl.format(
                "below the lower fence {} x of {} comparable tenders (deeper than {}% of them)",
                sig(pl.col("_c_limit")),
                pl.col("_c_compared").struct.field("tenders"),
                sig(pl.col("_c_pct") * 100, 3),
            )
        )
        part_a = pl.when(pl.col("_a_cross")).then(
            pl.format("below max_ratio {}", pl.lit(self.max_ratio, dtype=pl.Float64))
        )
        message = pl.format(
            "{} {} is {} x the {}: {}",
            who,
            sig(pl.col("_amount"), 6),
            sig(pl.col("_ratio")),
            pl.col("_basis"),
            pl.concat_str([part_b, part_c, part_a], separator="; ", ignore_nulls=True),
        )
        crossed = pl.concat_list(
            pl.when(pl.col("_b_cross")).then(pl.lit("anomaly threshold")),
            pl.when(pl.col("_c_cross")).then(pl.lit("comparable tenders")),
            pl.when(pl.col("_a_cross")).then(pl.lit("max_ratio")),
        ).list.drop_nulls()
        anomaly = pl.when(pl.col("_t").is_not_null()).then(
            pl.struct(
                reference=pl.col("_ref"),
                basis=pl.col("_basis"),
                bids=pl.col("_n"),
                wing_cut=pl.col("_k"),
                mean_discount=pl.col("_m"),
                mean_excess=pl.col("_s"),
                threshold_discount=pl.col("_t"),
                bid_discount=pl.col("_d"),
                at_or_beyond=pl.col("_d") >= pl.col("_t"),
                excess=pl.col("_e"),
                excess_limit=pl.col("_b_limit"),
                percentile=pl.col("_b_pct"),
                compared_with=pl.col("_b_compared"),
            )
        )
        comparable = pl.when(pl.col("_c_pct").is_not_null()).then(
            pl.struct(
                percentile=pl.col("_c_pct"),
                fence_ratio=pl.col("_c_limit"),
                compared_with=pl.col("_c_compared"),
            )
        )
        return build(
            flagged,
            detector=self.name,
            kind="tender",
            subject_id=pl.col("tender_id"),
            score=1.0 - tail,
            value=pl.col("_ratio"),
            threshold=threshold,
            message=message,
            evidence={
                "bid": pl.col("_amount"),
                "bidder": pl.col("_firm"),
                "won": pl.col("_won"),
                "estimate": pl.col("_est"),
                "ratio_to_estimate": pl.col("_to_estimate"),
                "max_ratio": pl.lit(self.max_ratio, dtype=pl.Float64),
                "anomaly_threshold": anomaly,
                "comparable_tenders": comparable,
                "crossed": crossed,
                "bids": pl.col("amounts"),
            },
            firms=pl.concat_list(pl.col("_firm")).list.drop_nulls(),
            assessed=assessed,
            notes=notes,
        )


_COMPARED: pl.DataType = pl.Struct(
    {
        "award_method": pl.String,
        "category": pl.String,
        "size_band": pl.String,
        "bids": pl.String,
        "tenders": pl.UInt32,
    }
)
EXCESS_SCHEMA = pl.Schema(
    {
        "tender_id": pl.String(),
        "_b_pct": pl.Float64(),
        "_b_limit": pl.Float64(),
        "_b_how": pl.String(),
        "_b_cross": pl.Boolean(),
        "_b_compared": _COMPARED,
    }
)
DEPTH_SCHEMA = pl.Schema(
    {
        "tender_id": pl.String(),
        "_c_pct": pl.Float64(),
        "_c_limit": pl.Float64(),
        "_c_cross": pl.Boolean(),
        "_c_compared": _COMPARED,
    }
)


def target_bids(data: Dataset) -> tuple[pl.DataFrame, int]:
    """(tender_id, _amount, _firm, _won; tenders whose winning bid has no amount).

    The bid judged in each tender: its largest positive winning amount, else, where no bid
    won, its lowest valid bid above zero; the bidder is the smallest firm id at that amount.
    """
    firm = pl.col("firm_id") if "firm_id" in data.bids.columns else pl.lit(None, pl.String)
    won = pl.col("is_winner").fill_null(False)
    amount = pl.col("amount")
    decided = data.bids.lazy().filter(won).select("tender_id").unique().collect()
    firms = ["firm_id"] if "firm_id" in data.bids.columns else []

    def judged(bids: pl.LazyFrame, extreme: pl.Expr) -> pl.LazyFrame:
        # The tender's extreme amount and the smallest firm id at it, from the rows at the
        # extreme (a window, then plain aggregations: faster than a filter inside the
        # group-by).
        return (
            bids.filter(amount == extreme.over("tender_id"))
            .group_by("tender_id")
            .agg(amount.first().alias("_amount"), firm.min().alias("_firm"))
        )

    winners = (
        judged(
            data.bids.lazy().filter(won & (amount > 0)).select("tender_id", "amount", *firms),
            amount.max(),
        )
        .with_columns(pl.lit(True).alias("_won"))
        .collect()
    )
    lowest = (
        judged(
            priced_bids(data)
            .lazy()
            .select("tender_id", "amount", *firms)
            .filter(amount > 0)
            .join(decided.lazy(), on="tender_id", how="anti"),
            amount.min(),
        )
        .with_columns(pl.lit(False).alias("_won"))
        .collect()
    )
    unpriced = decided.height - winners.height
    return pl.concat([winners, lowest]).sort("tender_id"), unpriced


def anomaly_thresholds(data: Dataset, min_bids: int) -> pl.DataFrame:
    """The anomaly threshold of each tender with at least ``min_bids`` valid bids above zero.

    Columns: tender_id, _n (bids), _k (bids set aside at each end), _wing_mean (mean bid
    left after the wing cut), _m (mean discount left), _s (mean excess of the discounts
    above _m), _t = _m + _s. Discounts are on the estimate, else on _wing_mean.
    """
    amount = pl.col("amount")
    # Sorted so that the means add up in the same order whatever the input order.
    bids = (
        priced_bids(data)
        .select("tender_id", "amount")
        .filter(amount > 0)
        .sort("tender_id", "amount")
        .with_columns(
            pl.len().over("tender_id").alias("_n"),
            (pl.int_range(pl.len()).over("tender_id") + 1).alias("_i"),
        )
        .filter(pl.col("_n") >= min_bids)
        .with_columns(((pl.col("_n") + 9) // 10).alias("_k"))
    )
    kept = bids.filter(
        (pl.col("_i") > pl.col("_k")) & (pl.col("_i") <= pl.col("_n") - pl.col("_k"))
    )
    estimates = data.tenders.select(
        "tender_id", pl.when(pl.col("estimate") > 0).then(pl.col("estimate")).alias("_est")
    ).unique("tender_id", keep="first", maintain_order=True)
    kept = kept.join(estimates, on="tender_id", how="left", maintain_order="left").with_columns(
        pl.col("amount").mean().over("tender_id").alias("_wing_mean")
    )
    # m, the mean discount, as 1 - mean bid / R: exactly 0 when R is the mean bid itself.
    reference = pl.coalesce("_est", "_wing_mean")
    kept = kept.with_columns(
        (1.0 - pl.col("amount") / reference).alias("_disc"),
        (1.0 - pl.col("_wing_mean") / reference).alias("_m"),
    )
    above = pl.col("_disc") > pl.col("_m")
    out = kept.group_by("tender_id").agg(
        pl.col("_n").first(),
        pl.col("_k").first(),
        pl.col("_wing_mean").first(),
        pl.col("_m").first(),
        (pl.col("_disc") - pl.col("_m")).filter(above).mean().fill_null(0.0).alias("_s"),
    )
    return out.with_columns((pl.col("_m") + pl.col("_s")).alias("_t")).sort("tender_id")
