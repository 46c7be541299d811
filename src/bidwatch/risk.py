"""Findings -> 0-100 risk per tender and firm, every point traceable to its source.

A contribution is weight x score. A subject's risk is 100 x (1 - exp(-sum / scale)): one
strong finding of weight 1 gives about 60, two about 85, so that agreeing signals add up
but no pile of weak ones reaches 100. Each contribution gets its share of the risk in
proportion to its weight x score: the points of a waterfall that sum to the risk.

Firms are scored from findings about them (firm, pair, group) and from the tenders they bid
in: per detector, a firm that bid in more flagged tenders than that detector's flag rate
predicts gets a contribution scored by the binomial mid-p probability of seeing fewer flags
by chance. Bidding often is therefore not suspicious in itself; being flagged often is.
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
    from bidwatch.config import Config
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
    base_rates: dict[str, float],
    min_tenders: int,
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
    parts.append(_inherited(findings, bids, weights, base_rates, min_tenders))
    return pl.concat([p.cast(CONTRIBUTION_SCHEMA) for p in parts])  # type: ignore[arg-type]


def _inherited(
    findings: pl.DataFrame,
    bids: pl.DataFrame,
    weights: dict[str, float],
    base_rates: dict[str, float],
    min_tenders: int,
) -> pl.DataFrame:
    empty = pl.DataFrame(schema=CONTRIBUTION_SCHEMA)
    if "firm_id" not in bids.columns or not base_rates:
        return empty
    flagged = (
        findings.filter(pl.col("subject_kind") == "tender")
        .select("detector", pl.col("subject_id").alias("tender_id"), "firms")
        .explode("firms")
        .filter(pl.col("firms").is_not_null())
        .unique()
        .group_by("detector", pl.col("firms").alias("firm_id"))
        .agg(pl.len().alias("k"))
    )
    if flagged.height == 0:
        return empty
    participation = (
        bids.filter(pl.col("firm_id").is_not_null())
        .group_by("firm_id")
        .agg(pl.col("tender_id").n_unique().alias("n"))
    )
    table = (
        flagged.join(participation, on="firm_id")
        .with_columns(
            pl.col("detector")
            .replace_strict(base_rates, default=None, return_dtype=pl.Float64)
            .alias("rate")
        )
        .filter(pl.col("rate").is_not_null() & (pl.col("n") >= min_tenders))
        .with_columns((pl.col("n") * pl.col("rate")).alias("expected"))
        .filter(pl.col("k") > pl.col("expected"))
        .sort("detector", "firm_id")
    )
    if table.height == 0:
        return empty
    k = table.get_column("k").to_numpy()
    n = table.get_column("n").to_numpy()
    p = table.get_column("rate").to_numpy()
    mid_p = stats.binom.cdf(k - 1, n, p) + 0.5 * stats.binom.pmf(k, n, p)
    chance = stats.binom.sf(k - 1, n, p)
    table = table.with_columns(
        pl.Series("score", np.clip(mid_p, 0.0, 1.0)), pl.Series("chance", chance)
    )
    return table.select(
        pl.lit("firm").alias("subject_kind"),
        pl.col("firm_id").alias("subject_id"),
        "detector",
        pl.lit("tenders").alias("via"),
        _weights(table, weights).alias("weight"),
        "score",
        pl.lit(0.0).alias("points"),
        pl.format(
            "bid in {} of {} tenders flagged by {} (expected {} at its {}% flag rate; chance {})",
            "k",
            "n",
            "detector",
            pl.col("expected").round_sig_figs(2),
            (pl.col("rate") * 100).round_sig_figs(2),
            pl.col("chance").round_sig_figs(2),
        ).alias("reason"),
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
    points = (
        contributions.join(totals, on=["subject_kind", "subject_id"])
        .with_columns(
            pl.when(pl.col("_total") > 0)
            .then(pl.col("risk") * raw / pl.col("_total"))
            .otherwise(0.0)
            .round(2)
            .alias("points")
        )
        .drop("_total", "risk")
        .sort(
            ["subject_kind", "subject_id", "points", "detector"],
            descending=[False, False, True, False],
        )
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
    data: Dataset, findings: pl.DataFrame, base_rates: dict[str, float], config: Config
) -> Risk:
    from bidwatch.detectors import REGISTRY

    weights = {d.name: config.weight(d) for d in REGISTRY}
    contributions = pl.concat(
        [
            tender_contributions(findings, weights).cast(CONTRIBUTION_SCHEMA),  # type: ignore[arg-type]
            firm_contributions(
                findings, data.bids, weights, base_rates, config.risk.firm_min_tenders
            ),
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
