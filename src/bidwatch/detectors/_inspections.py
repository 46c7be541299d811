"""Inspection rows judged one by one: which way the limit runs, by how much a row falls
short of it, whether it failed or passed by a hair; and the binomial tail that says whether
a contract or a contractor fails more often than the input as a whole.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import polars as pl

from bidwatch.detectors._after import contractors
from bidwatch.detectors._base import handoff

if TYPE_CHECKING:
    from bidwatch.dataset import Dataset

# Items whose measured value must stay under the required one (a maximum); every other item
# must reach it (a minimum: thickness, compaction, strength, cover, ...). Pavement
# deflection (弯沉), roughness (平整度, IRI), the water-cement or water-binder ratio of
# concrete, crack width, the clay content of aggregate and the permeability of asphalt
# surfacing are limited from above (a pavement's deflection and roughness, for instance, in
# the highway quality standard JTG F80/1-2017).
MAX_LIMIT_WORDS: tuple[str, ...] = (
    "弯沉",
    "deflection",
    "平整度",
    "roughness",
    "iri",
    "水胶比",
    "水灰比",
    "water-cement",
    "water cement",
    "water/cement",
    "water-binder",
    "water binder",
    "裂缝宽度",
    "crack width",
    "含泥量",
    "泥块含量",
    "clay content",
    "渗水系数",
    "permeability",
)

FIRM = "_firm"


def inferred_limit(item: pl.Expr) -> pl.Expr:
    """ "max" for items limited from above (see MAX_LIMIT_WORDS), else "min"."""
    is_max = item.str.to_lowercase().str.contains_any(list(MAX_LIMIT_WORDS)).fill_null(False)
    return pl.when(is_max).then(pl.lit("max")).otherwise(pl.lit("min"))


def judged(data: Dataset, marginal: float) -> pl.DataFrame:
    """Inspection rows with:

    - _limit: the row's limit, else inferred from the item;
    - _shortfall: how far the measured value falls short of the required one, relative to
      it: (required - measured) / |required| for a minimum, (measured - required) /
      |required| for a maximum, clipped at 0 (null without both values or when the
      required value is 0);
    - _margin: by how much a row that meets its value clears it, relative to it;
    - _failed: the result says fail, or the values fall short;
    - _marginal: not failed, and cleared by less than ``marginal``;
    - _disagrees: the recorded result contradicts the values;
    - _firm: the contractor (the row's firm, else the tender's contract holder).

    The rows are judged once for inspection-failures and contractor-failures with the
    same ``marginal`` (``handoff``).
    """
    return handoff(data, ("judged", marginal), lambda: _judged(data, marginal))


def _judged(data: Dataset, marginal: float) -> pl.DataFrame:
    rows = data.inspections
    measured, required = pl.col("measured"), pl.col("required")
    # A handful of items over many rows: each is read once.
    items = rows.get_column("item").unique().drop_nulls()
    inferred = pl.DataFrame({"item": items}).select(inferred_limit(pl.col("item"))).to_series()
    limit = pl.coalesce(
        pl.col("limit"),
        pl.col("item").replace_strict(items, inferred, default=pl.lit("min")).fill_null("min"),
    )
    gap = (
        pl.when(pl.col("_limit") == "max").then(measured - required).otherwise(required - measured)
    )
    relative = pl.when(required != 0).then(gap / required.abs())
    failed_values = (pl.col("_relative") > 0).fill_null(False)
    result = pl.col("result")
    holders = contractors(data).rename({"firm_id": "_holder"})
    firm = pl.col("firm_id") if "firm_id" in rows.columns else pl.lit(None, dtype=pl.String)
    return (
        rows.with_columns(limit.alias("_limit"))
        .with_columns(relative.alias("_relative"))
        .with_columns(
            pl.col("_relative").clip(lower_bound=0.0).alias("_shortfall"),
            pl.when(pl.col("_relative") <= 0).then(-pl.col("_relative")).alias("_margin"),
            ((result == "fail").fill_null(False) | failed_values).alias("_failed"),
            (
                ((result == "pass") & failed_values)
                | ((result == "fail") & (pl.col("_relative") <= 0))
            )
            .fill_null(False)
            .alias("_disagrees"),
        )
        .with_columns(
            (~pl.col("_failed") & (pl.col("_margin") < marginal))
            .fill_null(False)
            .alias("_marginal")
        )
        .join(holders, on="tender_id", how="left", maintain_order="left")
        .with_columns(pl.coalesce(firm, pl.col("_holder")).alias(FIRM))
        .drop("_relative", "_holder")
    )


def disagreement_note(rows: pl.DataFrame) -> tuple[str, ...]:
    """A note on rows whose recorded result contradicts their values."""
    n = int(rows.get_column("_disagrees").sum())
    if n == 0:
        return ()
    return (
        f"{n} inspection row(s) record a result their measured and required values "
        "contradict; a row counts as failed when either says so",
    )


def rows_evidence() -> pl.Expr:
    """A failed or marginal row as evidence."""
    return pl.struct(
        item=pl.col("item"),
        measured=pl.col("measured"),
        required=pl.col("required"),
        unit=pl.col("unit"),
        limit=pl.col("_limit"),
        shortfall=pl.col("_shortfall"),
        margin=pl.col("_margin"),
        result=pl.col("result"),
        status=pl.when(pl.col("_failed")).then(pl.lit("failed")).otherwise(pl.lit("marginal")),
        inspected_at=pl.col("inspected_at").dt.strftime("%Y-%m-%d"),
    )


# The columns content_sort orders rows by, after the columns it is given first.
CONTENT = (
    "tender_id",
    "item",
    "inspected_at",
    "measured",
    "required",
    "unit",
    "limit",
    "result",
)


def content_sort(
    rows: pl.DataFrame, *first: str, carry: Sequence[str] | None = None
) -> pl.DataFrame:
    """Rows in an order set by their content alone (for order-free aggregation). With
    ``carry``, only those columns (the first of ``first`` among them) are returned: the
    others are read to order the rows, not moved."""
    columns = [c for c in (*first, *CONTENT) if c in rows.columns]
    if carry is None:
        return rows.sort(columns, nulls_last=True)
    order = rows.select(pl.arg_sort_by(columns, nulls_last=True)).to_series()
    # Flagged sorted, as a sort flags its first column, so that group-bys take the same path.
    return rows.select(carry)[order].with_columns(pl.col(columns[0]).set_sorted())
