"""Bids that step up by a fixed amount or a fixed ratio (投标报价呈规律性差异)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

import polars as pl
from scipy.special import comb

from bidwatch.detectors._base import sig
from bidwatch.detectors._stats import rounding_unit
from bidwatch.findings import Findings, SubjectKind, build

if TYPE_CHECKING:
    from bidwatch.dataset import Dataset


@dataclass(frozen=True)
class RegularDifferences:
    """The bids of a tender rise in steps of one fixed amount or one fixed ratio, as if one
    hand wrote a price schedule for several bidders.

    ## What it flags
    Tenders whose bids, sorted, contain three or more consecutive bids in arithmetic
    progression (equal differences, to the cent) or geometric progression (equal ratios,
    to the rounding of the amounts), when such regularity is unlikely among independent
    bids (chance below `max_chance`).

    ## Why it is a risk
    The PRC Bidding Law implementing regulations (招标投标法实施条例) art. 40(4) deem bids
    collusive when "the bid prices show regular differences" (投标报价呈规律性差异): a
    cartel that sets the covers as the designated price plus 1%, 2%, 3% leaves exactly this
    trace. Independent bidders do not step their prices in unison.

    ## Method
    The amounts of the tender's bids (every status) are sorted, in cents. A step is
    arithmetic where two consecutive differences are equal and positive, geometric where
    the third bid equals the second times the ratio of the second to the first within half
    the sum u of the three amounts' rounding units (an amount of 1,230,000 is written to
    the 10,000; one of 1,234,567.89 to the cent). The chance of one step of either kind by
    accident is taken as 2u / gap, where gap = w / (n - 1) is the tender's mean gap between
    bids; with m steps among the n - 2 places, chance = min(1, C(n - 2, m) (2u / gap)^m).
    Bids rounded to round numbers therefore explain their regularity; odd amounts do not.
    Score = 1 - chance. Tenders with at least `min_bids` bids with amounts are assessed.

    ## Evidence
    The sorted bids, their differences, each step (kind, the three bids, the common
    difference or ratio) and the chance.

    ## Parameters
    - `max_chance`: flag when the regularity is less likely than this among independent
      bids.
    - `min_bids`: fewest bids with amounts a tender needs to be assessed (at least 3).

    ## Known false positives
    Prices derived from one public schedule by fixed discounts (bidders told to bid the
    ceiling less 1%, 2%, ...); tenders with bids rounded to round thousands, where small
    chances are rarer than they look if many bidders share one rounding habit.

    ## References
    - 中华人民共和国招标投标法实施条例 (2011, rev. 2019), art. 40(4).
    - OECD (2009). Guidelines for fighting bid rigging in public procurement.
    """

    max_chance: float = 0.05
    min_bids: int = 3

    name: ClassVar[str] = "regular-differences"
    subject: ClassVar[SubjectKind] = "tender"
    requires: ClassVar[frozenset[str]] = frozenset({"bids.amount"})
    default_weight: ClassVar[float] = 1.5

    def __post_init__(self) -> None:
        if not 0 < self.max_chance <= 1:
            raise ValueError(f"max_chance must be in (0, 1], got {self.max_chance}")
        if self.min_bids < 3:
            raise ValueError(f"min_bids must be >= 3, got {self.min_bids}")

    def detect(self, data: Dataset) -> Findings:
        firm = "firm_id" if "firm_id" in data.bids.columns else None
        bids = (
            data.bids.lazy()
            .filter(pl.col("amount").is_not_null())
            .select(
                "tender_id",
                (pl.col("amount") * 100).round().cast(pl.Int64).alias("c"),
                (pl.col(firm) if firm else pl.lit(None, dtype=pl.String)).alias("who"),
            )
            .collect()
            .sort("tender_id", "c", "who", nulls_last=True)
            # Sorted, each tender's bids are one run: _t numbers the runs, and "k bids back
            # in the tender" is k rows back in the same run, without a group-by on the text.
            .with_columns(pl.col("tender_id").rle_id().set_sorted().alias("_t"))
            .filter(pl.len().over("_t") >= self.min_bids)
            .with_columns(rounding_unit(pl.col("c")).alias("g"))
        )
        assessed = bids.get_column("tender_id").unique()
        c = pl.col("c")

        def back(expr: pl.Expr, k: int) -> pl.Expr:
            return pl.when(pl.col("_t").shift(k) == pl.col("_t")).then(expr.shift(k))

        rises = (pl.col("b") > pl.col("a")) & (pl.col("c") > pl.col("b"))
        steps = (
            bids.with_row_index("_i")
            .with_columns(
                back(c, 1).alias("b"),
                back(c, 2).alias("a"),
                (pl.col("g") + back(pl.col("g"), 1) + back(pl.col("g"), 2)).alias("u"),
                (c.max() - c.min()).over("_t").alias("w"),
                pl.len().over("_t").alias("n"),
            )
            .with_columns(
                (rises & (c - pl.col("b") == pl.col("b") - pl.col("a"))).alias("arithmetic"),
                (
                    rises & ((c - pl.col("b") * pl.col("b") / pl.col("a")).abs() <= pl.col("u") / 2)
                ).alias("geometric"),
            )
            .filter(pl.col("arithmetic") | pl.col("geometric"))
            .with_columns(
                pl.when("arithmetic")
                .then(pl.lit("arithmetic"))
                .otherwise(pl.lit("geometric"))
                .alias("kind"),
                pl.when("arithmetic")
                .then((c - pl.col("b")) / 100)
                .otherwise(pl.col("b") / pl.col("a"))
                .alias("step"),
                (pl.concat_list("a", "b", "c") / 100).alias("bids"),
            )
        )
        # The bidders of each step, for the few rows that make one: a step's two earlier bids
        # are the two rows before it, in the same tender (rises needs both).
        who = bids.get_column("who")
        at = steps.get_column("_i")
        steps = steps.with_columns(
            pl.concat_list(
                who.gather(at - 2).alias("_who2"), who.gather(at - 1).alias("_who1"), "who"
            ).alias("by")
        )
        per_tender = (
            steps.group_by("tender_id", maintain_order=True)
            .agg(
                pl.len().alias("m"),
                pl.col("_t", "n", "w").first(),
                pl.col("u").max(),
                pl.struct("kind", "bids", "step").alias("steps"),
                pl.col("by").list.explode(keep_nulls=False).unique().sort().alias("firms"),
                pl.col("kind", "step").first(),
                (pl.col("kind") == "arithmetic").sum().alias("_arithmetic"),
                (pl.col("kind") == "geometric").sum().alias("_geometric"),
            )
            .with_columns(
                (2 * pl.col("u") * (pl.col("n") - 1) / pl.col("w"))
                .clip(upper_bound=1.0)
                .alias("_p")
            )
        )
        ways = comb(
            per_tender.get_column("n").to_numpy() - 2, per_tender.get_column("m").to_numpy()
        )
        per_tender = (
            per_tender.with_columns(pl.Series("_ways", ways, dtype=pl.Float64))
            .with_columns(
                (pl.col("_ways") * pl.col("_p").pow(pl.col("m")))
                .clip(upper_bound=1.0)
                .alias("chance")
            )
            .filter(pl.col("chance") <= self.max_chance)
        )
        amounts = (
            bids.filter(pl.col("_t").is_in(per_tender.get_column("_t").implode()))
            .group_by("_t", maintain_order=True)
            .agg((c / 100).alias("amounts"))
        )
        per_tender = per_tender.join(amounts, on="_t")
        return build(
            per_tender,
            detector=self.name,
            kind="tender",
            subject_id=pl.col("tender_id"),
            score=1 - pl.col("chance"),
            value=pl.col("chance"),
            threshold=pl.lit(self.max_chance),
            message=pl.format(
                "bids rise in {} (first: {}) (chance among independent bids {} <= {})",
                pl.concat_str(
                    pl.when(pl.col("_arithmetic") > 0).then(
                        pl.format("{} step(s) of equal difference", "_arithmetic")
                    ),
                    pl.when(pl.col("_geometric") > 0).then(
                        pl.format("{} step(s) of equal ratio", "_geometric")
                    ),
                    separator=" and ",
                    ignore_nulls=True,
                ),
                pl.when(pl.col("kind") == "arithmetic")
                .then(pl.format("+{}", sig(pl.col("step"), 12)))
                .otherwise(pl.format("x{}", sig(pl.col("step"), 6))),
                sig(pl.col("chance"), 2),
                pl.lit(self.max_chance),
            ),
            evidence={"steps": pl.col("steps"), "bids": pl.col("amounts")},
            firms=pl.col("firms") if firm else None,
            assessed=assessed,
        )
