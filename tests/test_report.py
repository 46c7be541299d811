"""Outputs are safe to open: HTML escapes everything and fetches nothing; CSV runs no formulas."""

from __future__ import annotations

import re
from collections import Counter
from html import unescape
from html.parser import HTMLParser
from pathlib import Path

import polars as pl
import pytest
from markupsafe import escape

import bidwatch
from bidwatch.dataset import Dataset
from bidwatch.report import html
from bidwatch.report.html import DETAIL_FIRMS, DETAIL_MATERIALS, script
from bidwatch.report.i18n import labels

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


class Elements(HTMLParser):
    """Tags, attribute names and link targets of a page, as a browser parses them."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: Counter[str] = Counter()
        self.attributes: set[str] = set()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags[tag] += 1
        for name, value in attrs:
            self.attributes.add(name)
            if name in ("href", "src", "action", "xlink:href") and value is not None:
                self.urls.append(value)


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
    # One script, the package's own, allowed by its hash and by nothing else.
    code, source = script()
    assert page.lower().count("<script") == 1
    assert f"<script>{code}</script>" in page
    assert f"script-src {source};" in unescape(page)
    assert "unsafe-eval" not in page
    assert 'onmouseover="' not in page
    parsed = Elements()
    parsed.feed(page)
    assert parsed.tags["script"] == 1
    handlers = [a for a in parsed.attributes if a.startswith("on")]
    assert not handlers, handlers
    assert not [v for v in parsed.urls if not v.startswith("#")], "links stay in the page"
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


@pytest.fixture(scope="module")
def market_scan(market: Dataset) -> bidwatch.ScanResult:
    return bidwatch.scan(market)


@pytest.fixture(scope="module")
def market_page(market_scan: bidwatch.ScanResult, tmp_path_factory: pytest.TempPathFactory) -> str:
    out = tmp_path_factory.mktemp("report")
    market_scan.write(out)
    return (out / "report.html").read_text(encoding="utf-8")


def section(page: str, anchor: str) -> str:
    """The detail section with id ``anchor``, up to the next one."""
    start = page.index(f'<section class="detail" id="{anchor}">')
    return page[start : page.index("</section>", start)]


def test_labels_agree_across_languages() -> None:
    english, chinese = labels("en"), labels("zh")
    assert set(english) == set(chinese)
    for key, text in english.items():
        places = re.findall(r"%[sd]", text)
        assert re.findall(r"%[sd]", chinese[key]) == places, key
        assert chinese[key] != text or key == "title", f"{key} is not translated"
    with pytest.raises(ValueError, match="no labels for 'fr'"):
        labels("fr")


def test_page_in_chinese(market_scan: bidwatch.ScanResult, tmp_path: Path) -> None:
    market_scan.write(tmp_path, lang="zh")
    page = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert '<html lang="zh-CN">' in page
    for text in ("标段风险排名", "企业风险排名", "疑似团伙风险排名", "数据覆盖", "风险来源"):
        assert text in page
    assert "Tenders by risk" not in page
    with pytest.raises(bidwatch.InputError, match="report language 'fr'"):
        market_scan.write(tmp_path / "fr", lang="fr")


def test_tender_case_draws_bids_findings_and_waterfall(
    market_scan: bidwatch.ScanResult, market_page: str
) -> None:
    top = market_scan.ranking("tender").row(0, named=True)
    case = section(market_page, f"t-{top['tender_id']}")
    assert f'<a href="#t-{top["tender_id"]}">' in market_page, "the list links to the case"
    assert case.count("<svg") >= 2, "bids against the estimate and the waterfall"
    findings = market_scan.findings.frame.filter(
        (pl.col("subject_kind") == "tender") & (pl.col("subject_id") == top["tender_id"])
    )
    assert findings.height
    for message in findings.get_column("message"):
        assert escape(message) in case
    winner = top["winner"]
    assert winner is not None
    bids = market_scan.data.bids.filter(pl.col("tender_id") == top["tender_id"])
    assert bids.height >= 1
    # Each contribution is a step of the waterfall, named by its detector.
    steps = market_scan.explain(top["tender_id"]).get_column("detector").unique()
    assert all(detector in case for detector in steps)


def test_materials_case_shows_contract_and_prices(
    market_scan: bidwatch.ScanResult, market_page: str
) -> None:
    ranked = market_scan.ranking("tender", by="materials_risk")
    assert "Settlement growth of contracts" in market_page
    items = market_scan.data.items.get_column("tender_id").unique()
    with_bill = ranked.filter(pl.col("tender_id").is_in(items.implode())).head(DETAIL_MATERIALS)
    assert with_bill.height, "the market has bills of quantities among its top tenders"
    case = section(market_page, f"t-{with_bill['tender_id'][0]}")
    assert "Unit prices against reference prices" in case
    contracted = market_scan.data.contracts.get_column("tender_id")
    top = ranked.filter(pl.col("tender_id").is_in(contracted.implode())).row(0, named=True)
    assert "Contract and change orders" in section(market_page, f"t-{top['tender_id']}")


def test_firm_and_group_cases(market_scan: bidwatch.ScanResult, market_page: str) -> None:
    group = market_scan.ranking("group").row(0, named=True)
    case = section(market_page, f"g-{group['group_id']}")
    assert case.count("<svg") == 2, "the network and the rotation timeline"
    members = group["members"].split(";")
    for firm in members:
        assert f'<a href="#f-{firm}">' in case
        firm_case = section(market_page, f"f-{firm}")
        assert "Bids and wins over time" in firm_case
        assert "Frequent co-bidders" in firm_case
    merged = market_scan.data.entities
    assert merged is not None
    renamed = (
        merged.filter(pl.col("method") != "self")
        .join(market_scan.ranking("firm").head(DETAIL_FIRMS), on="firm_id", how="semi")
        .row(0, named=True)
    )
    firm_case = section(market_page, f"f-{renamed['firm_id']}")
    assert escape(renamed["bidder_name"]) in firm_case
    assert "Names merged into this firm, and why" in firm_case


def test_lists_have_filters_and_sortable_columns(
    market_scan: bidwatch.ScanResult, market_page: str
) -> None:
    regions = market_scan.ranking("tender").get_column("region").drop_nulls().unique()
    assert regions.len() > 1
    for region in regions:
        assert f'<option value="{escape(region)}">' in market_page
    for key in ("region", "buyer", "category", "period", "method", "band", "q"):
        assert f'data-filter-for="tender-table" data-key="{key}"' in market_page
    parsed = Elements()
    parsed.feed(market_page)
    assert parsed.tags["select"] >= 7
    assert 'th data-sort="num"' in market_page


def test_a_large_scan_is_capped_and_says_so(
    market_scan: bidwatch.ScanResult, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(html, "MAX_ROWS", 25)
    market_scan.write(tmp_path)
    page = (tmp_path / "report.html").read_text(encoding="utf-8")
    tenders = market_scan.ranking("tender").height
    assert f"The page shows the top 25 of {tenders} rows; tenders.csv has all of them." in page
    table = page[
        page.index('id="tender-table"') : page.index("</table>", page.index('id="tender-table"'))
    ]
    assert table.count("<tr data-id=") == 25


def test_risk_bands() -> None:
    assert [html.band(v) for v in (None, 0.0, 0.1, 19.9, 20.0, 49.9, 50.0, 100.0)] == [
        "none",
        "none",
        "low",
        "low",
        "medium",
        "medium",
        "high",
        "high",
    ]


def test_firms_filter_by_the_region_of_most_of_their_bids(
    market_scan: bidwatch.ScanResult, market_page: str
) -> None:
    firm = market_scan.ranking("firm").row(0, named=True)["firm_id"]
    regions = (
        market_scan.data.bids.filter(pl.col("firm_id") == firm)
        .join(market_scan.data.tenders.select("tender_id", "region"), on="tender_id")
        .get_column("region")
        .value_counts(sort=True)
    )
    most = regions.row(0)[0]
    assert regions.height == 1 or regions.row(1)[1] < regions.row(0)[1], "a clear majority"
    row = re.search(rf'<tr data-id="{firm}" data-q="[^"]*" data-region="([^"]*)"', market_page)
    assert row is not None
    assert row.group(1) == escape(most)
    assert 'data-filter-for="firm-table" data-key="region"' in market_page
    assert 'data-filter-for="group-table" data-key="band"' in market_page


def test_rejected_rows_are_one_click_from_the_coverage(tmp_path: Path) -> None:
    bids = tmp_path / "bids.csv"
    bids.write_text(
        "tender_id,bidder_name,amount\nT1,Alpha,100\nT1,Beta,abc\nT2,Alpha,90\nT2,Gamma,95\n",
        encoding="utf-8",
    )
    result = bidwatch.scan(bidwatch.load(bids=bids))
    result.write(tmp_path / "out")
    page = (tmp_path / "out" / "report.html").read_text(encoding="utf-8")
    rejected = result.data.rejected
    assert rejected.height == 1
    source = next(i for i, s in enumerate(result.data.sources) if s.rows_rejected)
    assert f'<a href="#rejected-{source}">1</a>' in page
    start = page.index(f'<h3 id="rejected-{source}">')
    shown = page[start : page.index("</table>", start)]
    assert escape(rejected.row(0, named=True)["reason"]) in shown
    assert "abc" in shown


def test_explain_finds_ids_the_csv_files_neutralised(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from bidwatch.cli import main

    out = evil_scan(tmp_path)
    firms = pl.read_csv(out / "firms.csv", infer_schema_length=0)
    assert "'-2+3" in firms.get_column("firm_id").to_list()
    capsys.readouterr()
    # An id starting with "-" follows "--", as for any command line.
    assert main(["explain", "--scan", str(out), "--", "-2+3"]) == 0
    assert "firm -2+3: risk" in capsys.readouterr().out
