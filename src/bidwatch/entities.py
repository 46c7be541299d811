"""Bidders -> firms: one entity id per raw bidder, with how it was matched.

Matching, strongest first: a registry firm with the bid's bidder_id; a registry firm with
the bid's credit code; a registry firm with the same normalised name; the bid's own
bidder_id; a name seen with exactly one bidder_id elsewhere in the bids; the normalised name
alone. Names are compared after Unicode NFKC, trimming, collapsing white space and case
folding, so "大冶市路通公路工程有限公司 " and its full-width twin are one firm.
"""

from __future__ import annotations

import hashlib

import polars as pl

from bidwatch.dataset import Dataset

ENTITY_SCHEMA = {
    "firm_id": pl.String,
    "bidder_id": pl.String,
    "bidder_name": pl.String,
    "method": pl.String,
    "matched_with": pl.String,
    "bids": pl.UInt32,
}


def name_key(names: pl.Expr) -> pl.Expr:
    """Exact-match form of a name: NFKC, trimmed, single spaces, case-folded."""
    return (
        names.str.normalize("NFKC")
        .str.strip_chars()
        .str.replace_all(r"\s+", " ")
        .str.to_lowercase()
    )


def _name_ids(keys: pl.Series) -> dict[str, str]:
    return {k: "N" + hashlib.blake2b(k.encode(), digest_size=5).hexdigest() for k in keys}


def resolve(data: Dataset) -> Dataset:
    """Return the dataset with ``bids.firm_id`` and ``entities`` (one row per raw bidder)."""
    bids = data.bids
    has_id = data.has("bids.bidder_id")
    has_name = data.has("bids.bidder_name")
    if not (has_id or has_name):
        return data.with_tables(
            bids=bids.with_columns(pl.lit(None, dtype=pl.String).alias("firm_id")),
            entities=pl.DataFrame(schema=ENTITY_SCHEMA),
        )
    raw = (
        bids.select("bidder_id", "bidder_name", "credit_code")
        .with_columns(name_key(pl.col("bidder_name")).alias("_key"))
        .group_by("bidder_id", "bidder_name", "credit_code", "_key")
        .agg(pl.len().cast(pl.UInt32).alias("bids"))
        .filter(pl.col("bidder_id").is_not_null() | pl.col("_key").is_not_null())
    )
    firms = data.firms.select("firm_id", "name", "credit_code").with_columns(
        name_key(pl.col("name")).alias("_key")
    )
    registry_ids = firms.select(
        pl.col("firm_id").alias("_reg_id"), pl.col("firm_id").alias("_id_match")
    )
    by_code = (
        firms.filter(pl.col("credit_code").is_not_null())
        .group_by("credit_code")
        .agg(pl.col("firm_id").min().alias("_code_match"), pl.len().alias("_n"))
        .filter(pl.col("_n") == 1)
        .drop("_n")
    )
    by_name = (
        firms.filter(pl.col("_key").is_not_null())
        .group_by("_key")
        .agg(pl.col("firm_id").min().alias("_name_match"), pl.len().alias("_n"))
        .filter(pl.col("_n") == 1)
        .drop("_n")
    )
    # A name that appears with one bidder_id only lends that id to its name-only bids.
    linked = (
        raw.filter(pl.col("bidder_id").is_not_null() & pl.col("_key").is_not_null())
        .group_by("_key")
        .agg(pl.col("bidder_id").unique().alias("_ids"))
        .filter(pl.col("_ids").list.len() == 1)
        .select("_key", pl.col("_ids").list.first().alias("_linked"))
    )
    matched = (
        raw.join(registry_ids, left_on="bidder_id", right_on="_reg_id", how="left")
        .join(by_code, on="credit_code", how="left")
        .join(by_name, on="_key", how="left")
        .join(linked, on="_key", how="left")
    )
    generated = _name_ids(matched.get_column("_key").drop_nulls().unique().sort())
    matched = matched.with_columns(
        pl.col("_key").replace_strict(generated, default=None, return_dtype=pl.String).alias("_gen")
    )
    id_only = pl.col("bidder_id").is_not_null()
    rules: list[tuple[pl.Expr, pl.Expr, str, pl.Expr]] = [
        (
            pl.col("_id_match").is_not_null(),
            pl.col("_id_match"),
            "registry_id",
            pl.col("bidder_id"),
        ),
        (
            pl.col("_code_match").is_not_null(),
            pl.col("_code_match"),
            "credit_code",
            pl.col("credit_code"),
        ),
        (
            pl.col("_name_match").is_not_null(),
            pl.col("_name_match"),
            "registry_name",
            pl.col("bidder_name"),
        ),
        (id_only, pl.col("bidder_id"), "bidder_id", pl.col("bidder_id")),
        (pl.col("_linked").is_not_null(), pl.col("_linked"), "name_of_id", pl.col("_linked")),
        (pl.lit(True), pl.col("_gen"), "name", pl.col("bidder_name")),
    ]
    firm_id: pl.Expr = pl.lit(None, dtype=pl.String)
    method: pl.Expr = pl.lit(None, dtype=pl.String)
    matched_with: pl.Expr = pl.lit(None, dtype=pl.String)
    for cond, target, label, why in reversed(rules):
        firm_id = pl.when(cond).then(target).otherwise(firm_id)
        method = pl.when(cond).then(pl.lit(label)).otherwise(method)
        matched_with = pl.when(cond).then(why.cast(pl.String)).otherwise(matched_with)
    entities = matched.select(
        firm_id.alias("firm_id"),
        "bidder_id",
        "bidder_name",
        "credit_code",
        method.alias("method"),
        matched_with.alias("matched_with"),
        "bids",
    ).sort("firm_id", "bidder_id", "bidder_name", "credit_code", nulls_last=True)
    lookup = entities.select("bidder_id", "bidder_name", "credit_code", "firm_id")
    resolved_bids = bids.join(
        lookup,
        on=["bidder_id", "bidder_name", "credit_code"],
        how="left",
        nulls_equal=True,
        maintain_order="left",
    )
    return data.with_tables(bids=resolved_bids, entities=entities.drop("credit_code"))


def firm_table(data: Dataset) -> pl.DataFrame:
    """One row per entity: firm_id, name, bidder_ids, bidder_names, tenders, wins."""
    if data.entities is None or "firm_id" not in data.bids.columns:
        raise ValueError("resolve() the dataset first")
    bids = data.bids.filter(pl.col("firm_id").is_not_null())
    activity = bids.group_by("firm_id").agg(
        pl.col("tender_id").n_unique().alias("tenders"),
        pl.col("tender_id").filter(pl.col("is_winner").fill_null(False)).n_unique().alias("wins"),
    )
    names = data.entities.group_by("firm_id").agg(
        pl.col("bidder_id").drop_nulls().unique().sort().str.join(";").alias("bidder_ids"),
        pl.col("bidder_name").drop_nulls().unique().sort().str.join(";").alias("bidder_names"),
        pl.col("bidder_name")
        .sort_by("bids", "bidder_name", descending=[True, False])
        .drop_nulls()
        .first()
        .alias("_common"),
    )
    registry = data.firms.select("firm_id", pl.col("name").alias("_registered"))
    return (
        names.join(registry, on="firm_id", how="left")
        .join(activity, on="firm_id", how="left")
        .select(
            "firm_id",
            pl.coalesce("_registered", "_common", "bidder_ids").alias("name"),
            "bidder_ids",
            "bidder_names",
            pl.col("tenders").fill_null(0),
            pl.col("wins").fill_null(0),
        )
        .sort("firm_id")
    )
