"""report.html: one self-contained page (no network, no script) of the ranked lists."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import polars as pl
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

if TYPE_CHECKING:
    from bidwatch.api import ScanResult

MAX_ROWS = 500


def environment() -> Environment:
    return Environment(
        loader=PackageLoader("bidwatch.report", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render(result: ScanResult, summary: dict[str, Any]) -> str:
    tenders = result.ranking("tender")
    firms = result.ranking("firm")
    pairs = result.ranking("pair")
    buyers = result.ranking("buyer").filter(pl.col("findings") > 0)
    entities = result.data.entities
    merged = (
        entities.filter(pl.col("method") != "self").sort("firm_id", "bidder_name", nulls_last=True)
        if entities is not None
        else pl.DataFrame()
    )
    return (
        environment()
        .get_template("report.html.j2")
        .render(
            summary=summary,
            tenders=tenders.head(MAX_ROWS).to_dicts(),
            tender_total=tenders.height,
            materials=result.ranking("tender", by="materials_risk")
            .filter(pl.col("materials_risk") > 0)
            .head(MAX_ROWS)
            .to_dicts(),
            firms=firms.head(MAX_ROWS).to_dicts(),
            firm_total=firms.height,
            groups=result.ranking("group").to_dicts(),
            pairs=pairs.head(MAX_ROWS).to_dicts(),
            pair_total=pairs.height,
            buyers=buyers.to_dicts(),
            rejected=result.data.rejected.head(MAX_ROWS).to_dicts(),
            rejected_total=result.data.rejected.height,
            merged=merged.head(MAX_ROWS).to_dicts(),
            merged_total=merged.height,
            max_rows=MAX_ROWS,
        )
    )
