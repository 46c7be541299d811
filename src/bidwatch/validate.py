"""Rules that need the whole table: required values, duplicates, bids without a price.

``normalise`` finds what is wrong with a value; this module finds what is wrong with a row
among the others. Both only list problems; ``dataset.load`` rejects the rows.
"""

from __future__ import annotations

import polars as pl

from bidwatch.ingest import ROW
from bidwatch.names import parse
from bidwatch.normalise import SRC
from bidwatch.schema import TABLES, material_key

KEYS = {
    "tenders": ("tender_id",),
    "firms": ("firm_id",),
    "contracts": ("tender_id",),
    "reference_prices": ("_material", "region", "period", "unit"),
}
# Values a row of the table cannot be used without, beyond the schema's required column.
NEEDED = {
    "reference_prices": ("period", "unit", "unit_price"),
}
WHAT = {
    "tenders": "tender",
    "firms": "firm",
    "contracts": "contract",
    "change_orders": "change order",
    "items": "item",
    "reference_prices": "reference price",
    "inspections": "inspection",
}
PROBLEM_COLUMNS = (SRC, ROW, "column", "value", "reason")


def _problems(frame: pl.DataFrame, column: str, value: pl.Expr, reason: pl.Expr) -> pl.DataFrame:
    return frame.select(
        pl.col(SRC),
        pl.col(ROW),
        pl.lit(column).alias("column"),
        value.cast(pl.String).alias("value"),
        reason.alias("reason"),
    )


def table_problems(table: str, frame: pl.DataFrame, paths: list[str]) -> pl.DataFrame:
    """Problems of rows that are fine alone but not in this table. ``frame`` is in source order."""
    found: list[pl.DataFrame] = []
    what = WHAT.get(table, table[:-1])
    # A withdrawn or disqualified bid may have no amount: bids are checked for it below.
    required_columns = ("tender_id",) if table == "bids" else TABLES[table].required
    for required in (*required_columns, *NEEDED.get(table, ())):
        if not frame.get_column(required).has_nulls():
            continue
        empty = frame.filter(pl.col(required).is_null())
        found.append(
            _problems(
                empty,
                required,
                pl.lit(None),
                pl.lit(f"{required} is empty; every {what} row needs one"),
            )
        )
        frame = frame.filter(pl.col(required).is_not_null())
    usable = frame
    if table == "bids":
        no_price = usable.filter(
            pl.col("amount").is_null()
            & ~pl.col("status").is_in(["disqualified", "withdrawn"]).fill_null(False)
        )
        if no_price.height:
            found.append(
                _problems(
                    no_price,
                    "amount",
                    pl.lit(None),
                    pl.lit(
                        "amount is empty; a valid bid needs a price "
                        "(only disqualified or withdrawn bids may have none)"
                    ),
                )
            )
        found.append(_nameless(usable))
        # A bidder is its id, or its name where it has no id. The key is written out
        # ("id ..." or "name ...") only for the few bids whose bidder repeats in a tender.
        keyed = usable.filter(
            pl.col("bidder_id").is_not_null() | pl.col("bidder_name").is_not_null()
        )
        key = pl.struct(
            "tender_id",
            "bidder_id",
            pl.when(pl.col("bidder_id").is_null()).then(pl.col("bidder_name")).alias("_name"),
        ).hash()
        keyed = keyed.filter(key.is_in(_repeated(keyed.select(key).to_series()))).with_columns(
            pl.coalesce(
                pl.format("id {}", pl.col("bidder_id")), pl.format("name {}", pl.col("bidder_name"))
            ).alias("_bidder")
        )
        found.append(_duplicates(keyed, ("tender_id", "_bidder"), "bid", paths))
    elif table == "items" and usable.get_column("bidder_id").has_nulls():
        # A tender whose items name no bidder gives the contract holder's bill; where some
        # of its items name a bidder, one that does not belongs to nobody. (Items that all
        # have a bidder_id have nothing to check.)
        named = (
            (pl.col("bidder_id").is_not_null() | pl.col("bidder_name").is_not_null())
            .any()
            .over("tender_id")
        )
        found.append(_nameless(usable.filter(named), what))
    elif table == "inspections":
        found.append(_unjudged(usable))
    elif table == "reference_prices":
        # Few materials, many prices: each name is put in its matching form once.
        names = usable.get_column("material").unique()
        keyed = usable.with_columns(
            pl.col("material")
            .replace_strict(names, pl.select(material_key(pl.lit(names))).to_series())
            .alias("_material")
        )
        found.append(_duplicates(keyed, KEYS[table], what, paths))
    elif table in KEYS:
        found.append(_duplicates(usable, KEYS[table], what, paths))
    found = [f for f in found if f.height]
    if not found:
        return pl.DataFrame(
            schema={
                SRC: pl.UInt16,
                ROW: pl.Int64,
                "column": pl.String,
                "value": pl.String,
                "reason": pl.String,
            }
        )
    return pl.concat(found)


def _repeated(hashes: pl.Series) -> pl.Series:
    """The hashes that occur more than once. Equal keys have equal hashes, so the rows with
    these hashes hold every repeated key (and, rarely, a few that only share a hash, which
    the exact check in ``_duplicates`` then passes over); sorting finds them faster than a
    hash table of the keys."""
    ordered = hashes.sort()
    return ordered.filter(ordered == ordered.shift(1)).unique().implode()


def _unjudged(inspections: pl.DataFrame) -> pl.DataFrame:
    """Inspection rows that say nothing: no result, and not both a measured and a required
    value to judge by."""
    bad = inspections.filter(
        pl.col("result").is_null() & (pl.col("measured").is_null() | pl.col("required").is_null())
    )
    return _problems(
        bad,
        "result",
        pl.col("result"),
        pl.lit(
            "the inspection has no result and not both a measured and a required value; "
            "give a result (pass/fail) or both values"
        ),
    )


def _nameless(bids: pl.DataFrame, what: str = "bid") -> pl.DataFrame:
    """Bids whose only identity is a name that names no firm: empty, punctuation, or only a
    legal form (有限公司). Files without bidder columns carry no identity to check."""
    if bids.get_column("bidder_name").null_count() == bids.height and (
        bids.get_column("bidder_id").null_count() == bids.height
    ):
        return _problems(bids.clear(), "bidder_name", pl.col("bidder_name"), pl.lit(""))
    anonymous = bids.filter(
        pl.col("bidder_id").is_null()
        & (pl.col("credit_code").is_null() if "credit_code" in bids.columns else pl.lit(True))
    )
    names = anonymous.get_column("bidder_name").drop_nulls().unique()
    empty = parse(names).filter(pl.col("core") == "").get_column("name")
    bad = anonymous.filter(
        pl.col("bidder_name").is_null() | pl.col("bidder_name").is_in(empty.implode())
    )
    return _problems(
        bad,
        "bidder_name",
        pl.col("bidder_name"),
        pl.when(pl.col("bidder_name").is_null())
        .then(pl.lit(f"the {what} names no bidder: give a bidder_id or bidder_name"))
        .otherwise(
            pl.lit(
                "bidder_name names no firm (nothing but punctuation or a legal form); "
                "give the full name or a bidder_id"
            )
        ),
    )


def _duplicates(
    frame: pl.DataFrame, keys: tuple[str, ...], what: str, paths: list[str]
) -> pl.DataFrame:
    """Later rows repeating the key of an earlier one; the earlier one is kept."""
    # Duplicates are rare: the windows below run over the rows whose key repeats only.
    key = pl.struct(list(keys))
    frame = frame.filter(key.hash().is_in(_repeated(frame.select(key.hash()).to_series())))
    frame = frame.filter(key.is_duplicated())
    first = pl.col(ROW).first().over(keys)
    first_src = pl.col(SRC).first().over(keys)
    dup = frame.with_columns(
        pl.int_range(pl.len()).over(keys).alias("_n"),
        first.alias("_first"),
        first_src.alias("_first_src"),
    ).filter(pl.col("_n") > 0)
    column = "bidder" if what == "bid" else keys[0].lstrip("_")
    value = (
        pl.col("_bidder").str.replace(r"^(id|name) ", "")
        if what == "bid"
        else pl.col(keys[0].lstrip("_"))
    )
    where = (
        pl.when(pl.col("_first_src") == pl.col(SRC))
        .then(pl.format("row {}", pl.col("_first")))
        .otherwise(
            pl.format(
                "row {} of {}",
                pl.col("_first"),
                pl.col("_first_src")
                .cast(pl.Int64)
                .replace_strict(list(range(len(paths))), paths, return_dtype=pl.String),
            )
        )
    )
    if what == "bid":
        reason = pl.format(
            "duplicated bid: this bidder already bid in tender {} at {}; "
            "one bid per bidder and tender is kept",
            pl.col("tender_id"),
            where,
        )
    else:
        shown = pl.concat_str(
            [pl.col(k.lstrip("_")).cast(pl.String).fill_null("-") for k in keys], separator=" / "
        )
        reason = pl.format(
            "duplicated {}: {} already given at {}; the first is kept",
            pl.lit(what),
            shown,
            where,
        )
    return _problems(dup, column, value, reason)
