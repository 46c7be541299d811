"""What the detectors of materials and delivery risk share: who holds each contract, the
month a tender was priced in, and bills of quantities in base units beside the reference
price of their region and month.

A reference price is never guessed: an item is compared with the price published for its
material, its tender's region (or a price the input gives for every region) and the month
its tender was priced in, in the same dimension of unit. An item without one is counted and
said, not compared.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import polars as pl

from bidwatch.detectors._base import per_dataset
from bidwatch.schema import material_key
from bidwatch.units import base_symbol, dimension, factor

if TYPE_CHECKING:
    from bidwatch.dataset import Dataset

# Key materials of road and building works, by the words their names contain. A bill of
# quantities names them many ways (C30商品混凝土, HRB400螺纹钢筋, 70#道路石油沥青).
KEY_MATERIALS: dict[str, tuple[str, ...]] = {
    "asphalt": ("沥青", "asphalt", "bitumen"),
    "cement": ("水泥", "cement"),
    "steel": ("钢筋", "钢材", "螺纹钢", "圆钢", "型钢", "钢板", "rebar", "steel"),
    # Sand by its kinds, not by 砂 alone: 砂浆 is mortar.
    "aggregate": (
        "碎石",
        "骨料",
        "砂石",
        "石子",
        "石料",
        "中砂",
        "粗砂",
        "细砂",
        "河砂",
        "机制砂",
        "黄砂",
        "砂砾",
        "aggregate",
        "gravel",
        "sand",
    ),
    "concrete": ("混凝土", "砼", "concrete"),
}


def material_class(material: pl.Expr) -> pl.Expr:
    """The key material a name is (asphalt, cement, steel, aggregate, concrete), else null.

    Concrete before cement and aggregate: "水泥混凝土" and "碎石混凝土" are concrete; asphalt
    before concrete: "沥青混凝土" (asphalt concrete) is an asphalt mix.
    """
    text = material.str.to_lowercase()
    out: pl.Expr = pl.lit(None, dtype=pl.String)
    # The last match wins: from the weakest word to the strongest.
    for name in ("aggregate", "cement", "steel", "concrete", "asphalt"):
        words = KEY_MATERIALS[name]
        out = pl.when(text.str.contains_any(list(words))).then(pl.lit(name)).otherwise(out)
    return out


def tender_month(data: Dataset) -> pl.DataFrame:
    """tender_id, period (YYYY-MM): the month the bids were priced in, from the bid deadline,
    else the publication, else the award."""
    return tender_places(data).select("tender_id", "period")


# Contract holders and reference prices are read by most detectors of the family and by
# the risk stage; both are small (one row per tender, one per published price).
@per_dataset
def contractors(data: Dataset) -> pl.DataFrame:
    """tender_id, firm_id of the firm that holds each awarded tender's contract: the
    contract's contractor where the input gives contracts, else the winning bidder (the
    lowest firm id where several bids won)."""
    if "firm_id" not in data.bids.columns:
        return pl.DataFrame(schema={"tender_id": pl.String, "firm_id": pl.String})
    winners = (
        data.bids.filter(pl.col("is_winner").fill_null(False) & pl.col("firm_id").is_not_null())
        .group_by("tender_id")
        .agg(pl.col("firm_id").min().alias("_winner"))
    )
    contracted = (
        data.contracts.filter(pl.col("firm_id").is_not_null())
        .group_by("tender_id")
        .agg(pl.col("firm_id").min().alias("_contractor"))
        if "firm_id" in data.contracts.columns
        else pl.DataFrame(schema={"tender_id": pl.String, "_contractor": pl.String})
    )
    return (
        winners.join(contracted, on="tender_id", how="full", coalesce=True)
        .select("tender_id", pl.coalesce("_contractor", "_winner").alias("firm_id"))
        .sort("tender_id")
    )


def priced_items(data: Dataset) -> pl.DataFrame:
    """Items with a unit and a positive unit price, in base units of their dimension. An
    item priced at 0 has no price of its own (a bill of quantities leaves an item unpriced
    when its cost is carried in the others) and is left out.

    Adds _dimension, _base (the base unit: t, m3, m2, ...), _quantity and _price (per base
    unit), _material (the matching key), _class (key material or null) and the tender's
    region and period.
    """
    return priced_rows(data).join(
        tender_places(data), on="tender_id", how="left", maintain_order="left"
    )


def tender_places(data: Dataset) -> pl.DataFrame:
    """tender_id, region and period (``tender_month``) of each tender: its first row's."""
    when = pl.coalesce("bid_deadline", "published_at", "awarded_at")
    return data.tenders.select(
        "tender_id", "region", when.dt.strftime("%Y-%m").alias("period")
    ).unique("tender_id", keep="first", maintain_order=True)


def priced_rows(data: Dataset) -> pl.DataFrame:
    """``priced_items`` without the tender's region and period."""
    items = data.items
    unit = pl.col("unit")
    # A bill names a handful of units and materials over many rows: their text is read once
    # per distinct value.
    priced = items.filter((pl.col("unit_price") > 0) & unit.is_not_null())
    units = (
        priced.select("unit")
        .unique()
        .with_columns(
            dimension(unit).alias("_dimension"),
            base_symbol(unit).alias("_base"),
            factor(unit).alias("_factor"),
        )
    )
    materials = (
        priced.select("material")
        .unique()
        .drop_nulls()
        .with_columns(
            material_key(pl.col("material")).alias("_material"),
            material_class(pl.col("material")).alias("_class"),
        )
    )
    # Each row's position among the distinct values, then their readings at it.
    at_unit = pl.col("unit").cast(pl.Enum(units.get_column("unit"))).to_physical()
    at_material = pl.col("material").cast(pl.Enum(materials.get_column("material"))).to_physical()

    def of_unit(column: str) -> pl.Expr:
        return pl.lit(units.get_column(column)).gather(at_unit).alias(column)

    def of_material(column: str) -> pl.Expr:
        return pl.lit(materials.get_column(column)).gather(at_material).alias(column)

    return priced.with_columns(of_unit("_factor")).select(
        *items.columns,
        of_unit("_dimension"),
        of_unit("_base"),
        (pl.col("quantity") * pl.col("_factor")).alias("_quantity"),
        (pl.col("unit_price") / pl.col("_factor")).alias("_price"),
        of_material("_material"),
        of_material("_class"),
    )


@per_dataset
def reference_prices(data: Dataset) -> pl.DataFrame:
    """Reference prices in base units: _material, region, period, _dimension, _reference.

    One row per material, region, month and dimension: a price published both per t and
    per kg (or given twice) is one reference, the median of those given, so that joining
    it never repeats an item.
    """
    refs = data.reference_prices.filter(
        pl.col("unit_price").is_not_null() & pl.col("unit").is_not_null()
    )
    keys = ["_material", "region", "period", "_dimension"]
    # A few units and materials over many months and regions: each is read once.
    units = (
        refs.select("unit")
        .unique()
        .with_columns(
            dimension(pl.col("unit")).alias("_dimension"), factor(pl.col("unit")).alias("_f")
        )
    )
    materials = (
        refs.select("material")
        .unique()
        .with_columns(material_key(pl.col("material")).alias("_material"))
    )
    # The median of each group does not depend on the order of its rows, nor the sorted
    # result on the order of the groups.
    return (
        refs.join(units, on="unit", how="left")
        .join(materials, on="material", how="left", nulls_equal=True)
        .select(*keys, (pl.col("unit_price") / pl.col("_f")).alias("_reference"))
        .group_by(keys)
        .agg(pl.col("_reference").median())
        .sort(keys, nulls_last=True)
    )


MISSING_REFERENCE = "_missing"


def with_reference(items: pl.DataFrame, data: Dataset, reasons: bool = True) -> pl.DataFrame:
    """``items`` (from ``priced_items``) with _reference, the price per base unit published
    for the item's material, region and month, and _missing, why there is none: the
    tender's month or region is unknown, no price is published for that material, region
    and month, or only in another unit dimension (left out when ``reasons`` is False)."""
    refs = reference_prices(data)
    keys = ["_material", "period", "_dimension"]
    texts = ["material", "unit"] if reasons else []
    on = [*keys, "region", *texts]
    # Items repeat a few materials, months, regions and units: everything is worked out
    # once per distinct combination and joined back once, on one integer per combination
    # where the text columns make one.
    combination = _combination(items, on)
    if combination is None:
        distinct = items.select(on).unique()
    else:
        coded = items.select(combination.alias("_c"))
        rows = coded.with_row_index("_i").group_by("_c").agg(pl.col("_i").first())
        distinct = items.select(on)[rows.get_column("_i")].with_columns(rows.get_column("_c"))
    regional = refs.filter(pl.col("region").is_not_null())
    everywhere = refs.filter(pl.col("region").is_null()).drop("region")
    found = (
        distinct.join(
            regional.rename({"_reference": "_regional"}), on=[*keys, "region"], how="left"
        )
        .join(everywhere.rename({"_reference": "_everywhere"}), on=keys, how="left")
        .with_columns(pl.coalesce("_regional", "_everywhere").alias("_reference"))
        .drop("_regional", "_everywhere")
    )
    if reasons:
        found = found.with_columns(_why(found, refs).alias(MISSING_REFERENCE))
    if combination is None:
        return items.join(found, on=on, how="left", maintain_order="left", nulls_equal=True)
    back = coded.join(found.drop(on), on="_c", how="left", maintain_order="left")
    return items.hstack(back.drop("_c").get_columns())


def _combination(frame: pl.DataFrame, columns: list[str]) -> pl.Expr | None:
    """One integer per distinct combination of the text ``columns`` of ``frame`` (null a
    value of its own), the codes of the columns' values as the digits of a mixed-radix
    number; None when they are not all text or the number would not fit in 64 bits."""
    code = pl.lit(0, dtype=pl.UInt64)
    span = 1
    for column in columns:
        series = frame.get_column(column)
        if series.dtype != pl.String:
            return None
        values = series.unique().drop_nulls()
        radix = values.len() + 1
        span *= radix
        if span >= 2**64:
            return None
        digit = pl.col(column).cast(pl.Enum(values)).to_physical().cast(pl.UInt64)
        code = code * pl.lit(radix, dtype=pl.UInt64) + digit.fill_null(values.len())
    return code


def _why(found: pl.DataFrame, refs: pl.DataFrame) -> pl.Series:
    """Why each row of ``found`` (distinct items) has no _reference, null where it has."""
    published = refs.select("_material", "period").unique()
    in_dimension = refs.select("_material", "period", "_dimension").unique()
    any_month = refs.select("_material").unique()
    flagged = (
        found.join(
            published.with_columns(pl.lit(True).alias("_has_month")),
            on=["_material", "period"],
            how="left",
            maintain_order="left",
        )
        .join(
            in_dimension.with_columns(pl.lit(True).alias("_has_dimension")),
            on=["_material", "period", "_dimension"],
            how="left",
            maintain_order="left",
        )
        .join(
            any_month.with_columns(pl.lit(True).alias("_has_material")),
            on="_material",
            how="left",
            maintain_order="left",
        )
    )
    why = (
        pl.when(pl.col("_reference").is_not_null())
        .then(pl.lit(None, dtype=pl.String))
        .when(pl.col("period").is_null())
        .then(pl.lit("the tender has no date to take the month from"))
        .when(pl.col("_has_material").is_null())
        .then(pl.format("no reference price for {}", pl.col("material")))
        .when(pl.col("_has_month").is_null())
        .then(pl.format("no reference price for {} in {}", pl.col("material"), pl.col("period")))
        .when(pl.col("_has_dimension").is_null())
        .then(
            pl.format(
                "the reference price of {} in {} is per another kind of unit than {}",
                pl.col("material"),
                pl.col("period"),
                pl.col("unit"),
            )
        )
        .otherwise(
            pl.format(
                "no reference price for {} in {} for region {}",
                pl.col("material"),
                pl.col("period"),
                pl.col("region").fill_null("(none given)"),
            )
        )
    )
    return flagged.select(why).to_series()


def missing_note(items: pl.DataFrame, what: str, examples: int = 3) -> tuple[str, ...]:
    """A note counting the items ``with_reference`` found no reference for, with examples."""
    missing = items.filter(pl.col(MISSING_REFERENCE).is_not_null())
    if missing.height == 0:
        return ()
    reasons = (
        missing.group_by(MISSING_REFERENCE)
        .agg(pl.len().alias("_n"))
        .sort(["_n", MISSING_REFERENCE], descending=[True, False])
    )
    shown = "; ".join(
        f"{reason} ({n} item{'s' if n != 1 else ''})"
        for reason, n in reasons.head(examples).iter_rows()
    )
    more = f"; and {reasons.height - examples} more reasons" if reasons.height > examples else ""
    return (
        f"{missing.height} {what} not compared with a reference price, which is never "
        f"guessed: {shown}{more}",
    )
