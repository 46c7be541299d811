"""Outputs are safe to open: HTML escapes everything and fetches nothing; CSV runs no formulas."""

from __future__ import annotations

import re
from pathlib import Path

import polars as pl

import bidwatch
from bidwatch.dataset import Dataset

from .conftest import random_market

EVIL = [
    "<script>alert(1)</script>",
    '" onmouseover="alert(1)',
    "javascript:alert(1)",
    '=HYPERLINK("http://x")',
    "@SUM(A1)",
    "+1+1",
    "-2+3",
]


def evil_scan(tmp_path: Path) -> Path:
    tenders, bids = random_market(seed=4, tenders=90)
    names = [EVIL[i % len(EVIL)] for i in range(bids.height)]
    bids = bids.with_columns(pl.Series("bidder_name", names), pl.Series("bidder_id", names))
    tenders = tenders.with_columns(
        pl.lit(EVIL[0]).alias("title"), pl.lit(EVIL[3]).alias("buyer_name")
    )
    out = tmp_path / "out"
    bidwatch.scan(bidwatch.load(bids=bids, tenders=tenders)).write(out)
    return out


def test_html_escapes_and_is_self_contained(tmp_path: Path) -> None:
    page = (evil_scan(tmp_path) / "report.html").read_text(encoding="utf-8")
    assert "<script" not in page.lower()
    assert 'onmouseover="' not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//|javascript:)""", page, re.I)
    assert "@import" not in page
    assert "url(" not in page
    assert "default-src 'none'" in page


def test_csv_cells_never_start_a_formula(tmp_path: Path) -> None:
    out = evil_scan(tmp_path)
    for name in (
        "tenders.csv",
        "firms.csv",
        "groups.csv",
        "pairs.csv",
        "buyers.csv",
        "findings.csv",
        "entities.csv",
        "contributions.csv",
    ):
        frame = pl.read_csv(out / name, infer_schema_length=None)
        # Numbers such as -1.5 are numbers to a spreadsheet; text is what could run.
        for column in (c for c, dtype in frame.schema.items() if dtype == pl.String):
            values = frame.get_column(column).drop_nulls()
            assert not values.str.contains(r"^[=+\-@\t\r]").any(), (name, column)
    firms = pl.read_csv(out / "firms.csv", infer_schema_length=0)
    assert '\'=HYPERLINK("http://x")' in firms.get_column("name").to_list()
    assert "'-2+3" in firms.get_column("firm_id").to_list()


def test_html_lists_groups_pairs_and_buyers(market: Dataset, tmp_path: Path) -> None:
    result = bidwatch.scan(market)
    result.write(tmp_path / "out")
    page = (tmp_path / "out" / "report.html").read_text(encoding="utf-8")
    groups, pairs = result.ranking("group"), result.ranking("pair")
    buyers = result.ranking("buyer").filter(pl.col("findings") > 0)
    assert groups.height
    assert pairs.height
    assert buyers.height
    assert all(g in page for g in groups.get_column("group_id"))
    top = pairs.row(0, named=True)
    assert f"{top['firm_a']} &amp; {top['firm_b']}" in page
    assert all(b in page for b in buyers.get_column("buyer"))
