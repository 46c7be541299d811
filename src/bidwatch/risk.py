"""Findings -> 0-100 risk per tender and firm, every point traceable to its source.

A contribution is weight x score. A subject's risk is 100 x (1 - exp(-sum / scale)): one
strong finding of weight 1 gives about 60, two about 85, so that agreeing signals add up
but no pile of weak ones reaches 100. Each contribution gets its share of the risk in
proportion to its weight x score: the points of a waterfall that sum to the risk.

Firms are scored from findings about them (firm, pair, group) and from the tenders they bid
in: per detector, a firm whose bids rank above chance among all bids of the tenders the
detector assessed gets a contribution scored by how unlikely that is (see ``_inherited``).
Bidding often is therefore not suspicious in itself; being in suspicious tenders often is.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import polars as pl
from scipy import stats

from bidwatch.entities import firm_table
from bidwatch.findings import ID_SEPARATOR

if TYPE_CHECKING:
    from bidwatch.config import Config, RiskConfig
    from bidwatch.dataset import Dataset

CONTRIBUTION_SCHEMA = {
    "subject_kind": pl.String,
    "subject_id": pl.String,
    "detector": pl.String,
    "via": pl.String,
    "weight": pl.Float64,
    "score": pl.Float64,
    "points": pl.Float64,
    "reason": pl.String,
}


@dataclass(frozen=True)
class Risk:
    tenders: pl.DataFrame
    firms: pl.DataFrame
    contributions: pl.DataFrame


def _weights(findings: pl.DataFrame, weights: dict[str, float]) -> pl.Expr:
    return pl.col("detector").replace_strict(weights, default=0.0, return_dtype=pl.Float64)


def tender_contributions(findings: pl.DataFrame, weights: dict[str, float]) -> pl.DataFrame:
    return findings.filter(pl.col("subject_kind") == "tender").select(
        pl.lit("tender").alias("subject_kind"),
        "subject_id",
        "detector",
        pl.lit("finding").alias("via"),
        _weights(findings, weights).alias("weight"),
        "score",
        pl.lit(0.0).alias("points"),
        pl.col("message").alias("reason"),
    )


def firm_contributions(
    findings: pl.DataFrame,
    bids: pl.DataFrame,
    weights: dict[str, float],
    assessed: dict[str, pl.Series],
    settings: RiskConfig,
) -> pl.DataFrame:
    parts = []
    direct = findings.filter(pl.col("subject_kind") == "firm").select(
        pl.lit("firm").alias("subject_kind"),
        "subject_id",
        "detector",
        pl.lit("finding").alias("via"),
        _weights(findings, weights).alias("weight"),
        "score",
        pl.lit(0.0).alias("points"),
        pl.col("message").alias("reason"),
    )
    parts.append(direct)
    shared = (
        findings.filter(pl.col("subject_kind").is_in(["pair", "group"]))
        .explode("firms")
        .filter(pl.col("firms").is_not_null())
        .select(
            pl.lit("firm").alias("subject_kind"),
            pl.col("firms").alias("subject_id"),
            "detector",
            pl.format(
                "{} {}",
                pl.col("subject_kind"),
                pl.col("subject_id").str.replace_all(ID_SEPARATOR, " & ", literal=True),
            ).alias("via"),
            _weights(findings, weights).alias("weight"),
            "score",
            pl.lit(0.0).alias("points"),
            pl.col("message").alias("reason"),
        )
    )
    parts.append(shared)
    parts.append(_inherited(findings, bids, weights, assessed, settings))
    return pl.concat([p.cast(CONTRIBUTION_SCHEMA) for p in parts])  # type: ignore[arg-type]


def _inherited(
    findings: pl.DataFrame,
    bids: pl.DataFrame,
    weights: dict[str, float],
    assessed: dict[str, pl.Series],
    settings: RiskConfig,
) -> pl.DataFrame:
    """Firm contributions from the tenders the firm bid in, one per detector.

    The unit is a firm's bid in a tender the detector assessed; its score is the finding's
    score when the finding names the firm, else 0. p is the one-sided chance that a firm's
    n units rank as high as they do if they were like any others, and the contribution's
    score is (1 - p)^sharpness, as a tender's bid-pattern score is its percentile^4 (with
    4: 0.06 at p = 0.5, 0.81 at p = 0.05, 0.96 at p = 0.01):

    - a detector that flags few of its tenders: exact binomial mid-p of k flagged units out
      of n at the detector's flag rate;
    - a graded detector (findings on most tenders, such as bid-pattern): with u the units'
      mid-rank percentiles, which are near uniform, z = (sum u - n/2) / sqrt(n var(u)).
    """
    empty = pl.DataFrame(schema=CONTRIBUTION_SCHEMA)
    detectors = [d for d, ids in assessed.items() if weights.get(d, 0.0) > 0 and ids.len()]
    if "firm_id" not in bids.columns or not detectors:
        return empty
    incidence = bids.select("tender_id", "firm_id").drop_nulls().unique(maintain_order=True)
    named = (
        findings.filter(pl.col("subject_kind") == "tender")
        .select("detector", pl.col("subject_id").alias("tender_id"), "score", "firms")
        .explode("firms")
        .filter(pl.col("firms").is_not_null())
        .group_by("detector", "tender_id", pl.col("firms").alias("firm_id"))
        .agg(pl.col("score").max())
    )
    units = pl.concat(
        [
            incidence.join(
                assessed[d].to_frame("tender_id"), on="tender_id", how="semi", maintain_order="left"
            ).with_columns(pl.lit(d).alias("detector"))
            for d in detectors
        ]
    ).join(named, on=["detector", "tender_id", "firm_id"], how="left", maintain_order="left")
    # Sorted so that every sum below adds up in one order, whatever the input order.
    units = units.with_columns(pl.col("score").fill_null(0.0)).sort(
        "detector", "tender_id", "firm_id"
    )
    units = units.with_columns(
        pl.col("score").rank("average").over("detector").alias("_rank"),
        pl.len().over("detector").alias("_units"),
        (pl.col("score") > 0).sum().over("detector").alias("_flagged"),
    )
    units = units.with_columns(
        ((pl.col("_rank") - 0.5) / pl.col("_units")).var(ddof=0).over("detector").alias("_var")
    )
    table = (
        units.group_by("detector", "firm_id")
        .agg(
            pl.len().alias("n"),
            (pl.col("score") > 0).sum().alias("k"),
            pl.col("_rank").sum().alias("_ranks"),
            pl.col("_units", "_flagged", "_var").first(),
        )
        .filter(pl.col("n") >= settings.firm_min_tenders)
        .with_columns(
            (pl.col("_flagged") * 2 > pl.col("_units")).alias("graded"),
            (pl.col("_flagged") / pl.col("_units")).alias("rate"),
            ((pl.col("_ranks") - 0.5 * pl.col("n")) / pl.col("_units") / pl.col("n")).alias(
                "mean_u"
            ),
        )
        .with_columns(((pl.col("mean_u") - 0.5) * (pl.col("n") / pl.col("_var")).sqrt()).alias("z"))
        .filter(pl.when("graded").then(pl.col("z") > 0).otherwise(pl.col("k") > 0))
        .sort("detector", "firm_id")
    )
    if table.height == 0:
        return empty
    k, n, rate = (table.get_column(c).to_numpy() for c in ("k", "n", "rate"))
    sparse = stats.binom.sf(k - 1, n, rate) - 0.5 * stats.binom.pmf(k, n, rate)
    graded = stats.norm.sf(table.get_column("z").fill_null(0.0).to_numpy())
    chance = np.where(table.get_column("graded").to_numpy(), graded, sparse)
    table = table.with_columns(
        pl.Series("chance", chance),
        pl.Series("score", np.clip(1 - chance, 0.0, 1.0) ** settings.firm_sharpness),
    ).filter(pl.col("chance") < 0.5)
    why = (
        pl.when("graded")
        .then(
            pl.format(
                "its {} tenders rank above chance on {}: mean percentile {} against 0.5",
                "n",
                "detector",
                pl.col("mean_u").round(2),
            )
        )
        .otherwise(
            pl.format(
                "{} of its {} tenders flagged by {}, {} expected at its {}% rate",
                "k",
                "n",
                "detector",
                (pl.col("n") * pl.col("rate")).round_sig_figs(2),
                (pl.col("rate") * 100).round_sig_figs(2),
            )
        )
    )
    return table.select(
        pl.lit("firm").alias("subject_kind"),
        pl.col("firm_id").alias("subject_id"),
        "detector",
        pl.lit("tenders").alias("via"),
        _weights(table, weights).alias("weight"),
        "score",
        pl.lit(0.0).alias("points"),
        pl.format("{} (chance {})", why, pl.col("chance").round_sig_figs(2)).alias("reason"),
    )


def with_points(contributions: pl.DataFrame, scale: float) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(contributions with points, risk per subject)."""
    raw = pl.col("weight") * pl.col("score")
    # Summed in a fixed order, so that the same findings always give the same last bit.
    totals = (
        contributions.sort("subject_kind", "subject_id", "detector", "via", "score")
        .group_by("subject_kind", "subject_id", maintain_order=True)
        .agg(raw.sum().alias("_total"))
    )
    totals = totals.with_columns((100 * (1 - (-pl.col("_total") / scale).exp())).alias("risk"))
    # Points in cents, apportioned by largest remainder so that they add up exactly to
    # the risk as written (two decimals).
    subject = ["subject_kind", "subject_id"]
    exact = (
        pl.when(pl.col("_total") > 0)
        .then((pl.col("risk") * 100).round() * raw / pl.col("_total"))
        .otherwise(0.0)
    )
    points = (
        contributions.join(totals, on=subject)
        .with_columns(exact.alias("_exact"))
        .with_columns(pl.col("_exact").floor().alias("_floor"))
        .with_columns(
            ((pl.col("risk") * 100).round() - pl.col("_floor").sum().over(subject)).alias("_left"),
            (pl.col("_exact") - pl.col("_floor")).alias("_rest"),
        )
        .sort([*subject, "_rest", "detector", "via"], descending=[False, False, True, False, False])
        .with_columns(
            (
                (pl.col("_floor") + (pl.int_range(pl.len()).over(subject) < pl.col("_left"))) / 100
            ).alias("points")
        )
        .drop("_total", "risk", "_exact", "_floor", "_left", "_rest")
        .sort([*subject, "points", "detector"], descending=[False, False, True, False])
    )
    return points, totals.select("subject_kind", "subject_id", "risk")


def _top_reasons(points: pl.DataFrame, n: int) -> pl.DataFrame:
    return (
        points.filter(pl.col("points") > 0)
        .group_by("subject_kind", "subject_id", maintain_order=True)
        .agg(
            pl.format("{} +{}: {}", "detector", pl.col("points").round(1), "reason")
            .head(n)
            .str.join(" | ")
            .alias("top_reasons")
        )
    )


def _ranked(frame: pl.DataFrame, key: str) -> pl.DataFrame:
    """Rank by exact risk, then id; risk is written with two decimals."""
    frame = frame.with_columns(pl.col("risk").fill_null(0.0)).sort(
        ["risk", key], descending=[True, False]
    )
    return frame.with_row_index("rank", offset=1).with_columns(
        pl.col("rank").cast(pl.Int64), pl.col("risk").round(2)
    )


def assess(
    data: Dataset, findings: pl.DataFrame, assessed: dict[str, pl.Series], config: Config
) -> Risk:
    from bidwatch.detectors import REGISTRY

    weights = {d.name: config.weight(d) for d in REGISTRY}
    contributions = pl.concat(
        [
            tender_contributions(findings, weights).cast(CONTRIBUTION_SCHEMA),  # type: ignore[arg-type]
            firm_contributions(findings, data.bids, weights, assessed, config.risk),
        ]
    )
    points, totals = with_points(contributions, config.risk.scale)
    reasons = _top_reasons(points, config.risk.top_reasons)

    tender_rows = _tender_details(data, findings)
    tender_risk = totals.filter(pl.col("subject_kind") == "tender").select(
        pl.col("subject_id").alias("tender_id"), "risk"
    )
    tender_reasons = reasons.filter(pl.col("subject_kind") == "tender").select(
        pl.col("subject_id").alias("tender_id"), "top_reasons"
    )
    tenders = _ranked(
        tender_rows.join(tender_risk, on="tender_id", how="left").join(
            tender_reasons, on="tender_id", how="left"
        ),
        "tender_id",
    ).select(
        "rank",
        "tender_id",
        "risk",
        pl.col("top_reasons").fill_null(""),
        *[c for c in tender_rows.columns if c != "tender_id"],
    )

    firm_rows = (
        firm_table(data)
        if data.entities is not None
        else pl.DataFrame(
            schema={
                "firm_id": pl.String,
                "name": pl.String,
                "bidder_ids": pl.String,
                "bidder_names": pl.String,
                "tenders": pl.UInt32,
                "wins": pl.UInt32,
            }
        )
    )
    firm_risk = totals.filter(pl.col("subject_kind") == "firm").select(
        pl.col("subject_id").alias("firm_id"), "risk"
    )
    firm_reasons = reasons.filter(pl.col("subject_kind") == "firm").select(
        pl.col("subject_id").alias("firm_id"), "top_reasons"
    )
    firms = _ranked(
        firm_rows.join(firm_risk, on="firm_id", how="left").join(
            firm_reasons, on="firm_id", how="left"
        ),
        "firm_id",
    ).select(
        "rank",
        "firm_id",
        "name",
        "bidder_ids",
        "bidder_names",
        "risk",
        pl.col("top_reasons").fill_null(""),
        "tenders",
        "wins",
    )
    return Risk(tenders=tenders, firms=firms, contributions=points)


def _tender_details(data: Dataset, findings: pl.DataFrame) -> pl.DataFrame:
    bids = data.bids
    winner = pl.col("is_winner").fill_null(False)
    who = (
        pl.coalesce("firm_id", "bidder_id", "bidder_name")
        if "firm_id" in bids.columns
        else pl.coalesce("bidder_id", "bidder_name")
    )
    per_tender = bids.group_by("tender_id").agg(
        pl.len().alias("bids"),
        who.filter(winner).drop_nulls().unique().sort().str.join(";").alias("winner"),
        pl.col("amount").filter(winner).max().alias("winning_amount"),
    )
    counts = (
        findings.filter(pl.col("subject_kind") == "tender")
        .group_by(pl.col("subject_id").alias("tender_id"))
        .agg(pl.len().alias("findings"))
    )
    return (
        data.tenders.select(
            "tender_id", "title", "buyer_name", "region", "category", "award_method", "estimate"
        )
        .join(per_tender, on="tender_id", how="left")
        .join(counts, on="tender_id", how="left")
        .with_columns(pl.col("bids").fill_null(0), pl.col("findings").fill_null(0))
    )
