"""Whose bill of quantities an item belongs to, and which bill is the contract's.

An item names its bidder (resolved into ``firm_id``). A tender whose items name no bidder
at all gives one bill only, the bill the contract was priced on: it is the contract
holder's. Unnamed items beside named ones are not attributed to anyone.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, NamedTuple

import polars as pl

from bidwatch.detectors._after import contractors, priced_rows, tender_places
from bidwatch.detectors._base import handoff

if TYPE_CHECKING:
    from bidwatch.dataset import Dataset

BIDDER = "_bidder"
HOLDER = "_holder"


# The tender of a row of ``priced_bills`` as an integer (one per tender id).
TENDER = "_tender"


class Bills(NamedTuple):
    """Priced items of known tenders with their owners (``bill_owners``) and TENDER."""

    frame: pl.DataFrame
    # Notes on the items of tenders the input does not know (``known_tenders``).
    notes: tuple[str, ...]
    # Priced items before those were left out.
    priced: int


def priced_bills(data: Dataset) -> Bills:
    """``bill_owners`` of the ``priced_items`` of known tenders, worked out once for
    below-reference-price and unbalanced-bid (``handoff``)."""

    def build() -> Bills:
        items = priced_rows(data)
        # priced_items, known_tenders and bill_owners in one join: the tender's region and
        # month, whether it is known, its contract holder and whether its bill names
        # bidders, all per tender.
        per_tender = (
            tender_places(data)
            .with_columns(pl.lit(True).alias("_known"))
            .join(_holders(data), on="tender_id", how="full", coalesce=True)
            .join(_named_bills(items), on="tender_id", how="full", coalesce=True)
            .with_row_index(TENDER)
        )
        joined = items.join(per_tender, on="tender_id", how="left", maintain_order="left")
        known = joined.filter(pl.col("_known").is_not_null())
        orphans = joined.filter(pl.col("_known").is_null())
        return Bills(
            known.with_columns(_bidder(items)).drop("_known", "_named_bill"),
            _orphan_note(orphans.height, orphans.get_column("tender_id").n_unique()),
            items.height,
        )

    return handoff(data, "bills", build)


def known_tenders(frame: pl.DataFrame, data: Dataset) -> tuple[pl.DataFrame, tuple[str, ...]]:
    """Rows of ``frame`` whose tender the input knows (by a bid or a tender row), and a note
    on the others, which have no tender to be a finding of."""
    known = frame.join(data.tenders.select("tender_id"), on="tender_id", how="semi")
    orphans = frame.height - known.height
    if orphans == 0:
        return known, ()
    ids = frame.join(known.select("tender_id").unique(), on="tender_id", how="anti")
    return known, _orphan_note(orphans, ids.get_column("tender_id").n_unique())


def _orphan_note(rows: int, tenders: int) -> tuple[str, ...]:
    if rows == 0:
        return ()
    return (
        f"{rows} row(s) name {tenders} tender(s) with no bids or tender row; they are not "
        "assessed as tenders",
    )


_NAMED = pl.col("bidder_id").is_not_null() | pl.col("bidder_name").is_not_null()


def _holders(data: Dataset) -> pl.DataFrame:
    return contractors(data).rename({"firm_id": HOLDER})


def _named_bills(items: pl.DataFrame) -> pl.DataFrame:
    """tender_id, _named_bill (true) of the tenders some of whose items name a bidder."""
    return (
        items.filter(_NAMED)
        .select("tender_id")
        .unique()
        .with_columns(pl.lit(True).alias("_named_bill"))
    )


def _bidder(items: pl.DataFrame) -> pl.Expr:
    """_bidder of rows joined with _holder and _named_bill."""
    firm = pl.col("firm_id") if "firm_id" in items.columns else pl.lit(None, dtype=pl.String)
    return (
        pl.when(_NAMED)
        .then(firm)
        .when(pl.col("_named_bill").is_null())
        .then(pl.col(HOLDER))
        .otherwise(pl.lit(None, dtype=pl.String))
        .alias(BIDDER)
    )


def bill_owners(items: pl.DataFrame, data: Dataset) -> pl.DataFrame:
    """``items`` with _bidder, the firm whose bill an item is in (null when unknown), and
    _holder, the firm that holds the tender's contract (null when none is known)."""
    return (
        items.join(_holders(data), on="tender_id", how="left", maintain_order="left")
        .join(_named_bills(items), on="tender_id", how="left", maintain_order="left")
        .with_columns(_bidder(items))
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


def value_sort(
    frame: pl.DataFrame, *first: str, carry: Sequence[str] | None = None
) -> pl.DataFrame:
    """Rows in an order set by their content alone, so that sums of floats over them do not
    depend on the order of the input. With ``carry``, only those columns (the first of
    ``first`` among them) are returned: the others are read to order the rows, not moved."""
    columns = [c for c in (*first, *VALUE_ORDER) if c in frame.columns]
    if carry is None:
        return frame.sort(columns, nulls_last=True)
    order = frame.select(pl.arg_sort_by(columns, nulls_last=True)).to_series()
    # Flagged sorted, as a sort flags its first column, so that group-bys take the same path.
    return frame.select(carry)[order].with_columns(pl.col(columns[0]).set_sorted())
