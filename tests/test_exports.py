"""report.xlsx runs no formulas and fits Excel; the graph files carry risk, groups and
shared traces, parse back in networkx and stay bounded."""

from __future__ import annotations

import itertools
import json
import re
import time
import zipfile
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from functools import partialmethod
from pathlib import Path
from typing import Any

import fastexcel
import networkx as nx
import polars as pl
import pytest

import bidwatch
from bidwatch import synth
from bidwatch.api import ScanResult
from bidwatch.cli import main
from bidwatch.dataset import Dataset
from bidwatch.report import exports
from bidwatch.report.exports import scan_graph, sheet_name, write_graph, write_xlsx

from .test_report import evil_scan

SHEETS = ["tenders", "firms", "groups", "pairs", "buyers", "findings", "entities", "rejected"]
NODE_ATTRIBUTES = {
    "label",
    "name",
    "risk",
    "collusion_risk",
    "materials_risk",
    "tenders",
    "wins",
    "group",
}
EDGE_ATTRIBUTES = {"cobids", "shared_traces", "kind", "weight"}
# XML-special characters must come back as written; U+FFFF (kept by the loader, which drops
# control characters) cannot be written in XML 1.0 at all and comes back as U+FFFD.
ODD_NAME = 'A&B <Bau> "Nord"\uffff Co.'


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A synthetic market (a trace-linked group, shared traces) as Parquet files, with one
    group member renamed to ODD_NAME."""
    tables = synth.generate(400, seed=7).tables()
    grouped = _first_grouped_firm(tables)
    tables["firms"] = tables["firms"].with_columns(
        pl.when(pl.col("firm_id") == grouped)
        .then(pl.lit(ODD_NAME))
        .otherwise(pl.col("name"))
        .alias("name")
    )
    tables["bids"] = tables["bids"].with_columns(
        pl.when(pl.col("bidder_id") == grouped)
        .then(pl.lit(ODD_NAME))
        .otherwise(pl.col("bidder_name"))
        .alias("bidder_name")
    )
    path = tmp_path_factory.mktemp("exports_market")
    for name, frame in tables.items():
        frame.write_parquet(path / f"{name}.parquet")
    return path


def _first_grouped_firm(tables: dict[str, pl.DataFrame]) -> str:
    groups = bidwatch.scan(bidwatch.load(**tables)).ranking("group")
    assert groups.height, "the synthetic market has no suspected group"
    member: str = groups.get_column("members").str.split(";").list.first().sort().item(0)
    return member


@pytest.fixture(scope="module")
def scanned(folder: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("exports_out")
    args = ["scan", str(folder), "--out", str(out), "--xlsx", "--graph", "--quiet", "--no-html"]
    assert main(args) == 0
    return out


@pytest.fixture
def evil(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """test_report's scan of formula-leading and markup names, written with report.xlsx
    and the graph files instead of report.html."""
    write = partialmethod(ScanResult.write, html=False, xlsx=True, graph=True)
    monkeypatch.setattr(ScanResult, "write", write)
    return evil_scan(tmp_path)


def sheet_xml(path: Path) -> Iterator[str]:
    with zipfile.ZipFile(path) as archive:
        for name in archive.namelist():
            if name.startswith("xl/worksheets/sheet"):
                yield archive.read(name).decode("utf-8")


def graphs(out: Path) -> dict[str, nx.Graph[Any]]:
    return {
        "graphml": nx.read_graphml(out / "graph.graphml"),
        "gexf": nx.read_gexf(out / "graph.gexf"),
    }


def test_cli_writes_workbook_and_graph_files(scanned: Path) -> None:
    for name in ("report.xlsx", "graph.graphml", "graph.gexf"):
        assert (scanned / name).stat().st_size > 0, name
    assert not (scanned / "report.html").exists()


def test_workbook_has_a_sheet_per_table_with_every_row(scanned: Path) -> None:
    book = fastexcel.read_excel(scanned / "report.xlsx")
    assert book.sheet_names == [*SHEETS, "notes"]
    for name in SHEETS:
        csv = pl.read_csv(scanned / f"{name}.csv", infer_schema_length=0)
        sheet = book.load_sheet(name).to_polars()
        assert sheet.columns == csv.columns, name
        assert sheet.height == csv.height, name
    firms = book.load_sheet("firms").to_polars()
    assert firms.get_column("name").str.contains("A&B <Bau>", literal=True).any()
    notes = book.load_sheet("notes").to_polars()
    assert notes.get_column("sheet").to_list()[: len(SHEETS)] == SHEETS
    tenders = pl.read_csv(scanned / "tenders.csv", infer_schema_length=0)
    assert notes.row(0, named=True)["rows_written"] == tenders.height
    for xml in sheet_xml(scanned / "report.xlsx"):
        assert re.search(r'<pane ySplit="1"[^>]*state="frozen"', xml)
    assert sum("<autoFilter " in xml for xml in sheet_xml(scanned / "report.xlsx")) == len(SHEETS)


def test_workbook_cells_never_run_a_formula(evil: Path) -> None:
    path = evil / "report.xlsx"
    book = fastexcel.read_excel(path)
    for name in SHEETS:
        sheet = book.load_sheet(name).to_polars()
        for column in (c for c, dtype in sheet.schema.items() if dtype == pl.String):
            values = sheet.get_column(column).drop_nulls()
            assert not values.str.contains(r"^[=+\-@\t\r]").any(), (name, column)
    firms = book.load_sheet("firms").to_polars()
    names = set(firms.get_column("name").to_list())
    assert {'\'=HYPERLINK("http://x")', "'@SUM(A1)", "'+1+1", "'-2+3"} <= names
    assert "'-2+3" in firms.get_column("firm_id").to_list()
    for xml in sheet_xml(path):
        assert "<f>" not in xml  # no cell is a formula
        assert "<hyperlink" not in xml
    with zipfile.ZipFile(path) as archive:
        assert not any("externalLink" in name for name in archive.namelist())


def test_evil_names_survive_the_graph_files_unchanged(evil: Path) -> None:
    for kind, graph in graphs(evil).items():
        assert "<script>alert(1)</script>" in graph, kind
        assert '=HYPERLINK("http://x")' in graph, kind
        assert graph.nodes['" onmouseover="alert(1)']["name"] == '" onmouseover="alert(1)'


def test_markup_text_stays_text(tmp_path: Path) -> None:
    # xlsxwriter writes text wrapped in <r>...</r> as raw XML: this one would close the
    # cell and add a formula to it.
    markup = '<r><t>a</t></r></is><f>HYPERLINK("http://x","y")</f><is><r><t>b</t></r>'
    frame = pl.DataFrame({"firm_id": ["F1", "F2"], "name": [markup, "_x0041_ & <b>"]})
    path = write_xlsx({"firms": frame}, tmp_path / "report.xlsx")
    assert fastexcel.read_excel(path).load_sheet("firms").to_polars().equals(frame)
    assert not any("<f>" in xml for xml in sheet_xml(path))
    time.sleep(1.1)  # xlsxwriter stamps files with the time, to the second, unless told
    again = write_xlsx({"firms": frame}, tmp_path / "again.xlsx")
    assert again.read_bytes() == path.read_bytes()


def test_long_cells_are_cut_and_rows_capped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An astral character takes two of Excel's 32,767 UTF-16 units.
    long = "𠀋" * 20_000
    monkeypatch.setattr(exports, "EXCEL_ROWS", 11)  # a header and ten rows
    frame = pl.DataFrame(
        {
            "tender_id": [f"T{i:02d}" for i in range(25)],
            "top_reasons": [long] + ["short"] * 24,
            "members": [["a", "=b"]] * 25,
        }
    )
    path = write_xlsx({"tenders": frame, "firms": frame.head(0)}, tmp_path / "report.xlsx")
    book = fastexcel.read_excel(path)
    assert book.sheet_names == ["tenders", "firms", "notes"]
    sheet = book.load_sheet("tenders").to_polars()
    assert sheet.height == 10
    assert sheet.get_column("tender_id").to_list() == [f"T{i:02d}" for i in range(10)]
    assert sheet.get_column("members").to_list() == ["a;=b"] * 10
    cell = sheet.item(0, "top_reasons")
    assert len(cell.encode("utf-16-le")) // 2 <= exports.EXCEL_CELL
    assert cell.startswith("𠀋" * 1000)
    assert cell.endswith("[cut: 20000 characters in all; the full text is in tenders.csv]")
    notes = book.load_sheet("notes").to_polars().filter(pl.col("sheet") == "tenders")
    assert notes.row(0, named=True)["rows"] == 25
    assert notes.row(0, named=True)["rows_written"] == 10
    assert notes.row(0, named=True)["cells_cut"] == 1
    assert "first 10 of 25 rows" in notes.item(0, "note")
    assert book.load_sheet("firms").to_polars().columns == ["tender_id", "top_reasons", "members"]


def test_every_column_type_is_written_as_its_kind(tmp_path: Path) -> None:
    frame = pl.DataFrame(
        {
            "tender_id": ["T1", "T2"],
            "day": [date(2024, 1, 2), None],
            "stamp": [datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC), None],
            "flag": [True, None],
            "price": pl.Series([Decimal("1.50"), None], dtype=pl.Decimal(10, 2)),
            "big": pl.Series([2**40, None], dtype=pl.UInt64),
            "category": pl.Series(["=x", None], dtype=pl.Categorical),
            "counts": [[1, 2], None],
            "detail": [{"a": 1, "b": "=c"}, None],
            "span": [timedelta(days=1), None],
        }
    )
    path = write_xlsx({"tenders": frame}, tmp_path / "report.xlsx")
    rows = fastexcel.read_excel(path).load_sheet("tenders").to_polars().to_dicts()
    assert rows[0] == {
        "tender_id": "T1",
        "day": datetime(2024, 1, 2),
        "stamp": datetime(2024, 1, 2, 3, 4, 5),
        "flag": True,
        "price": 1.5,
        "big": 2.0**40,
        "category": "'=x",
        "counts": "1;2",
        "detail": '{"a":1,"b":"=c"}',
        "span": "1 day, 0:00:00",
    }
    assert rows[1] == {"tender_id": "T2"} | dict.fromkeys(frame.columns[1:])


def test_sheet_names_fit_excel() -> None:
    assert sheet_name("findings") == "findings"
    long = sheet_name("contributions of every detector to risk")
    assert len(long) == 31
    assert sheet_name("a/b:c[d]*?") == "a_b_c_d___"
    assert sheet_name("findings", {"findings"}) == "findings (2)"
    assert len(sheet_name("x" * 40, {"x" * 31})) == 31


def test_graph_nodes_carry_risk_and_group(scanned: Path) -> None:
    firms = pl.read_csv(scanned / "firms.csv", infer_schema_length=0)
    groups = pl.read_csv(scanned / "groups.csv", infer_schema_length=0)
    group = groups.row(0, named=True)
    members = group["members"].split(";")
    for kind, graph in graphs(scanned).items():
        assert graph.number_of_nodes() == firms.height, kind
        for firm in members:
            node = graph.nodes[firm]
            row = firms.filter(pl.col("firm_id") == firm).row(0, named=True)
            assert group["group_id"] in node["group"].split(";"), (kind, firm)
            assert node["risk"] == pytest.approx(float(row["risk"])), (kind, firm)
            assert node["tenders"] == int(row["tenders"]), (kind, firm)
        outsider = next(f for f in graph if f not in members)
        assert graph.nodes[outsider]["group"] == "", kind
        odd = next(n for n, data in graph.nodes(data=True) if data["name"].startswith("A&B"))
        assert graph.nodes[odd]["name"] == 'A&B <Bau> "Nord"\ufffd Co.', kind
        assert graph.nodes[odd]["label"] == graph.nodes[odd]["name"], kind


def test_graph_has_no_missing_or_none_attributes(scanned: Path) -> None:
    for kind, graph in graphs(scanned).items():
        assert graph.number_of_edges(), kind
        for node, data in graph.nodes(data=True):
            assert set(data) >= NODE_ATTRIBUTES, (kind, node)
            assert all(value is not None for value in data.values()), (kind, node)
        for a, b, data in graph.edges(data=True):
            assert set(data) >= EDGE_ATTRIBUTES, (kind, a, b)
            assert all(value is not None for value in data.values()), (kind, a, b)


def test_shared_trace_edges_are_marked(scanned: Path) -> None:
    findings = pl.read_parquet(scanned / "findings.parquet")
    expected = _trace_types(findings)
    assert expected
    for kind, graph in graphs(scanned).items():
        found = {
            tuple(sorted((a, b))): set(d["shared_traces"].split(";"))
            for a, b, d in graph.edges(data=True)
            if d["shared_traces"]
        }
        assert found == expected, kind
        for a, b in expected:
            edge = graph.edges[a, b]
            assert edge["kind"] == ("both" if edge["cobids"] else "trace"), kind
            assert edge["weight"] == edge["cobids"] + len(expected[a, b]), kind
        for _, _, data in graph.edges(data=True):
            if not data["shared_traces"]:
                assert data["kind"] == "cobid", kind
                assert data["cobids"] > 0, kind


def _trace_types(findings: pl.DataFrame) -> dict[tuple[str, str], set[str]]:
    """Firm pairs and the trace types they share, read from the findings' evidence."""
    pairs: dict[tuple[str, str], set[str]] = {}
    for detector, evidence in findings.select("detector", "evidence").iter_rows():
        if detector == "shared-traces":
            sets = [(e["trace"], e["bidders"]) for e in json.loads(evidence)["shared"]]
        elif detector == "trace-network":
            sets = [
                (link["trace"], [c["firm"] for c in link["carriers"]])
                for link in json.loads(evidence)["links"]
            ]
        else:
            continue
        for trace, firms in sets:
            for a, b in itertools.combinations(sorted(set(firms)), 2):
                pairs.setdefault((a, b), set()).add(trace)
    return pairs


def test_graph_is_bounded_by_shared_tenders(
    market: Dataset, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = bidwatch.scan(market)
    full = scan_graph(result)
    assert full.graph["min_cobids"] == 2
    assert all(d["cobids"] >= 2 or d["kind"] != "cobid" for *_, d in full.edges(data=True))
    traced = {(a, b) for a, b, d in full.edges(data=True) if d["shared_traces"]}
    assert traced
    groups = {firm: set(data["group"].split(";")) - {""} for firm, data in full.nodes(data=True)}
    inside = {
        (a, b): d["cobids"]
        for a, b, d in full.edges(data=True)
        if groups[a] & groups[b] and not d["shared_traces"]
    }
    weakest = min(inside.values())
    assert weakest >= 2
    # A cap that the pairs with more shared tenders than the weakest link inside a group
    # just fill: k is raised past that link, which stays as a group edge.
    cap = sum(d["cobids"] > weakest for *_, d in full.edges(data=True))
    monkeypatch.setattr(exports, "MAX_COBID_EDGES", cap)
    bounded = scan_graph(result)
    k = bounded.graph["min_cobids"]
    assert k == weakest + 1
    for a, b, data in bounded.edges(data=True):
        assert data["shared_traces"] or data["cobids"] >= k or groups[a] & groups[b], (a, b)
    assert {(a, b) for a, b, d in bounded.edges(data=True) if d["shared_traces"]} == traced
    assert all(bounded.has_edge(a, b) for a, b in inside)
    assert sum(d["kind"] == "cobid" for *_, d in bounded.edges(data=True)) < sum(
        d["kind"] == "cobid" for *_, d in full.edges(data=True)
    )
    assert list(bounded.nodes) == sorted(bounded.nodes)


def test_graph_files_are_the_same_for_the_same_scan(market: Dataset, tmp_path: Path) -> None:
    result = bidwatch.scan(market)
    (tmp_path / "a").mkdir()
    first = write_graph(result, tmp_path / "a")
    (tmp_path / "b").mkdir()
    second = write_graph(result, tmp_path / "b")
    assert [p.name for p in first] == ["graph.graphml", "graph.gexf"]
    for a, b in zip(first, second, strict=True):
        assert a.read_bytes() == b.read_bytes(), a.name
    assert b"lastmodifieddate" not in first[1].read_bytes()
