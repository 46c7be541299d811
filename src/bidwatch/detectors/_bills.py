"""Whose bill of quantities an item belongs to, and which bill is the contract's.

An item names its bidder (resolved into ``firm_id``). A tender whose items name no bidder
at all gives one bill only, the bill the contract was priced on: it is the contract
holder's. Unnamed items beside named ones are not attributed to anyone.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import polars as pl

from bidwatch.detectors._after import contractors

if TYPE_CHECKING:
    from bidwatch.dataset import Dataset

BIDDER = "_bidder"
HOLDER = "_holder"


def known_tenders(frame: pl.DataFrame, data: Dataset) -> tuple[pl.DataFrame, tuple[str, ...]]:
    """Rows of ``frame`` whose tender the input knows (by a bid or a tender row), and a note
    on the others, which have no tender to be a finding of."""
    known = frame.join(data.tenders.select("tender_id"), on="tender_id", how="semi")
    orphans = frame.height - known.height
    if orphans == 0:
        return known, ()
    ids = frame.join(known.select("tender_id").unique(), on="tender_id", how="anti")
    n = ids.get_column("tender_id").n_unique()
    return known, (
        f"{orphans} row(s) name {n} tender(s) with no bids or tender row; they are not "
        "assessed as tenders",
    )


def bill_owners(items: pl.DataFrame, data: Dataset) -> pl.DataFrame:
    """``items`` with _bidder, the firm whose bill an item is in (null when unknown), and
    _holder, the firm that holds the tender's contract (null when none is known)."""
    named = pl.col("bidder_id").is_not_null() | pl.col("bidder_name").is_not_null()
    firm = pl.col("firm_id") if "firm_id" in items.columns else pl.lit(None, dtype=pl.String)
    with_names = items.filter(named).select("tender_id").unique()
    holders = contractors(data).rename({"firm_id": HOLDER})
    return (
        items.join(holders, on="tender_id", how="left", maintain_order="left")
        .join(
            with_names.with_columns(pl.lit(True).alias("_named_bill")),
            on="tender_id",
            how="left",
            maintain_order="left",
        )
        .with_columns(
            pl.when(named)
            .then(firm)
            .when(pl.col("_named_bill").is_null())
            .then(pl.col(HOLDER))
            .otherwise(pl.lit(None, dtype=pl.String))
            .alias(BIDDER)
        )
        .drop("_named_bill")
    )


def holder_notes(items: pl.DataFrame, what: str) -> tuple[str, ...]:
    """Notes on items (from ``bill_owners``) that cannot be placed in a contract's bill."""
    notes = []
    no_holder = items.filter(pl.col(HOLDER).is_null())
    if no_holder.height:
        notes.append(
            f"{no_holder.height} {what} in {no_holder.get_column('tender_id').n_unique()} "
            "tender(s) with no winning bid and no contract: no bill is known to be the "
            "contract's"
        )
    unnamed = items.filter(pl.col(BIDDER).is_null() & pl.col(HOLDER).is_not_null())
    if unnamed.height:
        notes.append(
            f"{unnamed.height} {what} name no bidder in tenders whose other items do; they "
            "are in no one's bill"
        )
    return tuple(notes)


# The item columns value_sort orders rows by, after the columns it is given first.
VALUE_ORDER = ("item_code", "material", "description", "unit", "unit_price", "quantity")


def value_sort(frame: pl.DataFrame, *first: str) -> pl.DataFrame:
    """Rows in an order set by their content alone, so that sums of floats over them do not
    depend on the order of the input."""
    columns = [c for c in (*first, *VALUE_ORDER) if c in frame.columns]
    return frame.sort(columns, nulls_last=True)
