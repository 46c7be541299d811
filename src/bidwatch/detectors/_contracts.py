"""What the detectors of settlement, delivery and contractor capacity share: each contract
beside its tender, comparison with comparable contracts, and how deep a tender's win was
among comparable tenders.

Comparable contracts are those of the same category and half-decade size band, falling back
to the size band alone and then to every contract when a group is small (``compare`` from
``_stats`` with the award rule and bid-count keys held constant: after the award a contract
is judged among contracts of its kind and size, not of its award rule).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import polars as pl

from bidwatch.detectors._base import handoff, per_dataset
from bidwatch.detectors._stats import (
    LOG_FLOOR,
    UNSTATED,
    compare,
    comparison_keys,
    size_band,
    winning_ratios,
)

if TYPE_CHECKING:
    from bidwatch.dataset import Dataset

_ALL = "all"

# Winning amounts are one row per tender, read by the contracts and by capacity-mismatch.


def contract_frame(data: Dataset) -> pl.DataFrame:
    """One row per contract: tender_id, contract_amount, final_amount, signed_at,
    planned_completion, actual_completion, the tender's category, estimate and awarded_at,
    _start (signed_at, else the award date) and _winning (the largest winning bid)."""
    tenders = data.tenders.select("tender_id", "category", "estimate", "awarded_at").unique(
        "tender_id", keep="first", maintain_order=True
    )
    return (
        data.contracts.select(
            "tender_id",
            "contract_amount",
            "final_amount",
            "signed_at",
            "planned_completion",
            "actual_completion",
        )
        .join(tenders, on="tender_id", how="left", maintain_order="left")
        .join(winning_amounts(data), on="tender_id", how="left", maintain_order="left")
        .with_columns(pl.coalesce("signed_at", "awarded_at").alias("_start"))
    )


def shared_contracts(data: Dataset) -> pl.DataFrame:
    """``contract_frame``, worked out once for settlement-growth and delivery-anomaly
    (``handoff``)."""
    return handoff(data, "contracts", lambda: contract_frame(data))


@per_dataset
def winning_amounts(data: Dataset) -> pl.DataFrame:
    """tender_id, _winning: the largest positive winning bid of each tender (several win
    where a tender awards several lots under one id)."""
    return (
        data.bids.filter(pl.col("is_winner").fill_null(False) & (pl.col("amount") > 0))
        .group_by("tender_id")
        .agg(pl.col("amount").max().alias("_winning"))
    )


def days(later: pl.Expr, earlier: pl.Expr) -> pl.Expr:
    """Days from ``earlier`` to ``later``, with fractions (negative when later is earlier)."""
    return (later - earlier).dt.total_days(fractional=True)


def day_text(count: pl.Expr) -> pl.Expr:
    """A number of days for a message: to a tenth, without a trailing ".0" (60, 12.5)."""
    return count.round(1).cast(pl.String).str.replace(r"\.0$", "")


def compare_contracts(
    frame: pl.DataFrame, value: str, size: str, min_comparable: int
) -> pl.DataFrame:
    """``compare`` among comparable contracts: same category and size band of ``size``,
    else the size band, else every contract. Adds _category, _size and the columns of
    ``compare`` (_level 0: category and size, 1: size, 2-4: every contract)."""
    keyed = frame.with_columns(
        pl.lit(_ALL).alias("_rule"),
        pl.lit(_ALL).alias("_bids"),
        pl.col("category").fill_null(UNSTATED).alias("_category"),
        size_band(pl.col(size)).fill_null(UNSTATED).alias("_size"),
    )
    return compare(keyed, value, min_comparable).drop("_rule", "_bids")


def contract_comparison() -> pl.Expr:
    """The comparison group of ``compare_contracts``, for the evidence."""
    level = pl.col("_level")
    return pl.struct(
        category=pl.when(level == 0).then(pl.col("_category")),
        size_band=pl.when(level <= 1).then(pl.col("_size")),
        contracts=pl.col("_count"),
    )


def upper_fence(fence: float) -> pl.Expr:
    """Q3 + fence x IQR of the compared value (Q3 itself when the IQR is zero)."""
    return pl.col("_q3") + fence * (pl.col("_q3") - pl.col("_q1"))


def depth_among_comparable(
    data: Dataset, ratios: pl.DataFrame, min_comparable: int
) -> pl.DataFrame:
    """Place bid / estimate ratios among comparable tenders (award rule, category, size
    band, bid-count band, coarser when a group has fewer than ``min_comparable``).

    ``ratios`` has tender_id, n, mean and value (the ratio). Returns them with _y = -log
    ratio (higher is deeper), the comparison keys and ``compare``'s columns; _pct is the
    mid-rank percentile of depth.
    """
    keyed = comparison_keys(data, ratios).with_columns(
        (-pl.col("value").clip(lower_bound=LOG_FLOOR).log()).alias("_y")
    )
    return compare(keyed, "_y", min_comparable)


def win_depth(data: Dataset, min_comparable: int) -> pl.DataFrame:
    """tender_id, _win_ratio (winning bid / estimate) and _win_pct, the percentile of its
    depth among comparable tenders; empty when fewer than ``min_comparable`` tenders have a
    winning bid and an estimate."""
    ratios = winning_ratios(data, 1)
    if ratios.height < min_comparable:
        return pl.DataFrame(
            schema={"tender_id": pl.String, "_win_ratio": pl.Float64, "_win_pct": pl.Float64}
        )
    placed = depth_among_comparable(data, ratios, min_comparable)
    return placed.select(
        "tender_id", pl.col("value").alias("_win_ratio"), pl.col("_pct").alias("_win_pct")
    )


def count_note(count: int, text: str) -> tuple[str, ...]:
    """A note when ``count`` is not zero: "3 contracts ..." (text starts with the noun)."""
    return (f"{count} {text}",) if count else ()
