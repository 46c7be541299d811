"""Exports for other tools: report.xlsx for spreadsheets, graph.graphml and graph.gexf for
graph tools (Gephi, Cytoscape, yEd, networkx, igraph)."""

from __future__ import annotations

from collections.abc import Callable, Collection
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from xml.etree.ElementTree import SubElement

import networkx as nx
import polars as pl
import xlsxwriter
from networkx.readwrite.gexf import GEXFWriter

from bidwatch.detectors.shared_traces import SharedTraces
from bidwatch.detectors.trace_network import TraceNetwork
from bidwatch.graph import cobid_pairs
from bidwatch.report.tables import flat, neutralise

if TYPE_CHECKING:
    from bidwatch.api import ScanResult

# The workbook's sheets, in order: the rankings, then what they rest on. contributions is
# left to contributions.csv: the top_reasons column of each ranking already sums it up,
# and it is the longest table of a scan.
SHEETS = ("tenders", "firms", "groups", "pairs", "buyers", "findings", "entities", "rejected")
NOTES_SHEET = "notes"
EXCEL_ROWS = 1_048_576  # rows of a sheet, the header row included
EXCEL_CELL = 32_767  # characters (UTF-16 code units) of a cell
EXCEL_SHEET_NAME = 31
CUT_MARKER = " … [cut: {length} characters in all; the full text is in {csv}]"
# Estimated XML bytes per cell beyond the value itself; above 2 GB of sheet XML the zip
# container needs its 64-bit extension, which some older readers refuse.
CELL_OVERHEAD = 40
ZIP64_ABOVE = 2**31
WIDTH_SAMPLE = 1_000
CREATED = datetime(2000, 1, 1)
CHUNK = 50_000

# The graph: co-bid edges need at least this many shared tenders ...
MIN_COBIDS = 2
# ... raised until no more than this many co-bid edges remain, which keeps a national
# scan's graph within what Gephi opens and networkx holds in memory.
MAX_COBID_EDGES = 500_000
# XML 1.0 cannot carry these characters at all, escaped or not.
XML_ILLEGAL = r"[\x00-\x08\x0B\x0C\x0E-\x1F\x{FFFE}\x{FFFF}]"


def write_xlsx(tables: dict[str, pl.DataFrame], path: Path) -> Path:
    """Write report.xlsx: one sheet per ranking (tenders, firms, groups, pairs, buyers),
    then findings, entities (how bidders became firms) and rejected (input rows not
    used), and a notes sheet: the rows of each table, the rows written and the cells cut.

    Cells are what the CSV files hold: lists joined with ';' and text that a spreadsheet
    would run as a formula (starting with = + - @, tab or carriage return) prefixed with
    a quote. Text is written as text, never as a formula, link or number.

    Excel's limits are kept rather than failing on a national scan: a sheet holds the
    first 1,048,575 rows of its table (the rankings are sorted by rank, so these are the
    highest risks), and a cell longer than 32,767 characters is cut with a marker that
    names the CSV file holding it whole. The notes sheet counts the rows and cells cut.
    Every sheet has its header row frozen, an autofilter and column widths from its
    header and first rows.
    """
    sheets = [(name, tables[name]) for name in SHEETS if name in tables]
    estimate = sum(
        frame.estimated_size() + frame.height * frame.width * CELL_OVERHEAD for _, frame in sheets
    )
    workbook = xlsxwriter.Workbook(
        str(path),
        {
            # Rows stream to disk as they are written: a million-row sheet is not held
            # in memory as cell objects.
            "constant_memory": True,
            "strings_to_formulas": False,
            "strings_to_urls": False,
            "strings_to_numbers": False,
            "nan_inf_to_errors": True,
            "remove_timezone": True,
            "use_zip64": estimate > ZIP64_ABOVE,
        },
    )
    # A fixed creation date (xlsxwriter's default is now): the same scan, the same file.
    workbook.set_properties({"title": "bidwatch scan", "created": CREATED})
    styles = _Styles(workbook)
    notes: list[_Note] = []
    used: set[str] = set()
    for name, frame in sheets:
        title = sheet_name(name, used)
        used.add(title.lower())
        written, cut = _write_sheet(workbook.add_worksheet(title), _cells(frame), styles, name)
        notes.append((title, frame.height, written, cut, _note(name, frame.height, written, cut)))
    _write_notes(workbook.add_worksheet(sheet_name(NOTES_SHEET, used)), notes, styles)
    workbook.close()
    return path


def sheet_name(name: str, used: Collection[str] = ()) -> str:
    """``name`` as Excel accepts a sheet name: none of []:*?/\\, no leading or trailing
    quote, at most 31 characters, unique (case-insensitively) among ``used``."""
    cleaned = "".join("_" if ch in "[]:*?/\\" else ch for ch in name).strip("'") or "sheet"
    title = cleaned[:EXCEL_SHEET_NAME]
    number = 1
    while title.lower() in used:
        number += 1
        suffix = f" ({number})"
        title = cleaned[: EXCEL_SHEET_NAME - len(suffix)] + suffix
    return title


def fit_cell(text: str, csv: str) -> str:
    """``text`` cut to Excel's 32,767 UTF-16 code units, with a marker when cut."""
    units = text.encode("utf-16-le")
    if len(units) // 2 <= EXCEL_CELL:
        return text
    marker = CUT_MARKER.format(length=len(text), csv=csv)
    room = EXCEL_CELL - len(marker.encode("utf-16-le")) // 2
    # errors="ignore" drops half a surrogate pair left at the cut.
    return units[: 2 * room].decode("utf-16-le", errors="ignore") + marker


# sheet, rows in the scan, rows written, cells cut, what to know
_Note = tuple[str, int, int, int, str]


class _Styles:
    def __init__(self, workbook: xlsxwriter.Workbook) -> None:
        self.header = workbook.add_format({"bold": True, "bottom": 1, "bg_color": "#EEEEEE"})
        self.date = workbook.add_format({"num_format": "yyyy-mm-dd"})
        self.datetime = workbook.add_format({"num_format": "yyyy-mm-dd hh:mm:ss"})
        self.wrap = workbook.add_format({"text_wrap": True, "valign": "top"})


def _cells(frame: pl.DataFrame) -> pl.DataFrame:
    """The frame as the CSV files hold it: categories as text, lists joined, structs as
    JSON, formula-leading text quoted."""
    textual = frame.with_columns(
        [
            pl.col(name).cast(pl.String)
            if isinstance(dtype, pl.Categorical | pl.Enum)
            else pl.col(name).cast(pl.List(pl.String))
            if isinstance(dtype, pl.List) and dtype.inner != pl.String
            else pl.when(pl.col(name).is_not_null()).then(pl.col(name).struct.json_encode())
            if isinstance(dtype, pl.Struct)
            else pl.col(name)
            for name, dtype in frame.schema.items()
        ]
    )
    return neutralise(flat(textual))


def _write_sheet(ws: Any, frame: pl.DataFrame, styles: _Styles, name: str) -> tuple[int, int]:
    """Header and rows of one sheet; returns the rows written and the cells cut."""
    csv = f"{name}.csv"
    for col, column in enumerate(frame.columns):
        ws.write_string(0, col, column, styles.header)
        ws.set_column(col, col, _width(frame, column))
    ws.freeze_panes(1, 0)
    rows = min(frame.height, EXCEL_ROWS - 1)
    if frame.width:
        ws.autofilter(0, 0, rows, frame.width - 1)
    cut = [0]

    def text(row: int, col: int, value: str) -> None:
        # Only a cell of more than half the limit in characters can pass it in UTF-16.
        if len(value) > EXCEL_CELL // 2:
            fitted = fit_cell(value, csv)
            if fitted is not value:
                cut[0] += 1
            value = fitted
        if value.startswith("<r>") and value.endswith("</r>"):
            # xlsxwriter copies such a string into the sheet as raw rich-text XML, where
            # it could close the cell and open a formula; written as three rich-text
            # fragments it is escaped and reads back as the same text.
            ws.write_rich_string(row, col, value[:1], value[1:2], value[2:])
        else:
            ws.write_string(row, col, value)

    def stamp(row: int, col: int, value: datetime) -> None:
        ws.write_datetime(row, col, value, styles.datetime)

    def day(row: int, col: int, value: date) -> None:
        ws.write_datetime(row, col, value, styles.date)

    def other(row: int, col: int, value: Any) -> None:
        text(row, col, str(value))

    writers: list[Callable[[int, int, Any], Any]] = []
    for dtype in frame.dtypes:
        if dtype == pl.String:
            writers.append(text)
        elif dtype == pl.Boolean:
            writers.append(ws.write_boolean)
        elif dtype.is_numeric():
            writers.append(ws.write_number)
        elif dtype == pl.Datetime:
            writers.append(stamp)
        elif dtype == pl.Date:
            writers.append(day)
        else:  # times, durations, binary: as their text
            writers.append(other)
    first = 1
    for chunk in frame.head(rows).iter_slices(CHUNK):
        for offset, values in enumerate(chunk.iter_rows()):
            for col, value in enumerate(values):
                if value is not None:
                    writers[col](first + offset, col, value)
        first += chunk.height
    return rows, cut[0]


def _width(frame: pl.DataFrame, column: str) -> float:
    """Characters wide: the header or the widest of the first rows, within 6 to 60."""
    sample = frame.get_column(column).head(WIDTH_SAMPLE)
    dtype = sample.dtype
    if dtype == pl.String:
        # CJK characters take two columns: (characters + UTF-8 bytes) / 2 counts ASCII
        # once and a three-byte character twice.
        widths = ((sample.str.len_chars() + sample.str.len_bytes()) / 2).drop_nulls()
        widest = float(widths.max()) if widths.len() else 0.0  # type: ignore[arg-type]
    elif dtype == pl.Datetime:
        widest = 19.0
    elif dtype == pl.Date:
        widest = 10.0
    elif dtype == pl.Boolean:
        widest = 5.0
    else:
        widest = 12.0
    return min(max(widest, len(column) + 2.0, 6.0), 60.0)


def _note(name: str, height: int, written: int, cut: int) -> str:
    parts = []
    if height == 0:
        parts.append("no rows in this scan")
    if written < height:
        parts.append(
            f"only the first {written:,} of {height:,} rows fit an Excel sheet; "
            f"every row is in {name}.csv"
        )
    if cut:
        parts.append(
            f"{cut:,} cells longer than Excel allows were cut, marked; whole in {name}.csv"
        )
    return "; ".join(parts)


def _write_notes(ws: Any, notes: list[_Note], styles: _Styles) -> None:
    header = ("sheet", "rows", "rows_written", "cells_cut", "note")
    for col, column in enumerate(header):
        ws.write_string(0, col, column, styles.header)
    ws.set_column(0, 0, 12)
    ws.set_column(1, 3, 13)
    ws.set_column(4, 4, 100, styles.wrap)
    ws.freeze_panes(1, 0)
    for row, (title, height, written, cut, note) in enumerate(notes, start=1):
        ws.write_string(row, 0, title)
        ws.write_number(row, 1, height)
        ws.write_number(row, 2, written)
        ws.write_number(row, 3, cut)
        ws.write_string(row, 4, note)
    ws.write_string(len(notes) + 1, 0, "all sheets")
    ws.write_string(
        len(notes) + 1,
        4,
        "Lists are joined with ';'. Text that a spreadsheet would run as a formula "
        "(starting with = + - @) carries a leading ' as in the CSV files.",
    )


def write_graph(result: ScanResult, out: Path) -> list[Path]:
    """Write graph.graphml and graph.gexf: firms linked by co-bidding and shared traces.

    Nodes are the firms of the firm ranking, every one of them, with label (the name,
    else the id), name, risk, collusion_risk, materials_risk, tenders, wins, and group:
    the ids of the suspected groups the firm is a member of, ';'-joined ("" if none).

    Edges join two firms that bid in the same tenders, or that share a trace of one hand
    as found by the shared-traces detector (in one tender) and the trace-network detector
    (across tenders): a machine code, MAC or IP address, document author or hash, deposit
    account, phone, email, address, agent, project manager, legal representative. Each
    edge carries cobids (tenders both bid in, 0 if none), shared_traces (the trace types
    shared, ';'-joined, "" if none), kind ("cobid", "trace" or "both") and weight (cobids
    plus the number of trace types shared, so that a layout pulls a pair together by
    both). No attribute is ever missing or None.

    Which edges: every trace edge; every co-bid edge between two members of one suspected
    group; and co-bid edges with at least k shared tenders, k = 2 raised one at a time
    until no more than 500,000 such edges remain (a firm pair that met once is the bulk
    of a national co-bid graph and tells nothing alone). k is the graph attribute
    min_cobids. Nodes and edges are in sorted order, so the same scan gives the same
    files.
    """
    graph = scan_graph(result)
    graphml = out / "graph.graphml"
    gexf = out / "graph.gexf"
    nx.write_graphml(graph, graphml, named_key_ids=True)
    # nx.write_gexf, less the date of writing it puts in <meta>: the same scan gives the
    # same file.
    writer = GEXFWriter(encoding="utf-8", prettyprint=True, version="1.2draft")
    writer.add_graph(graph)
    meta = writer.xml.find("meta")
    if meta is not None:
        meta.attrib.pop("lastmodifieddate", None)
        SubElement(meta, "description").text = graph.graph["description"]
    with gexf.open("wb") as handle:
        writer.write(handle)
    return [graphml, gexf]


def scan_graph(result: ScanResult) -> nx.Graph[Any]:
    """The graph that write_graph writes (see there), as a networkx Graph."""
    firms = _nodes(result)
    known = firms.select("firm_id")
    edges, min_cobids = _edges(result, known)
    graph: nx.Graph[Any] = nx.Graph(
        min_cobids=min_cobids,
        description=(
            "bidwatch: firms (risk, suspected groups) linked by co-bidding (cobids: tenders "
            f"bid together; kept from {min_cobids} tenders, or inside a suspected group) and "
            "by shared traces of one hand (shared_traces)"
        ),
    )
    graph.add_nodes_from((row.pop("firm_id"), row) for row in firms.iter_rows(named=True))
    graph.add_edges_from(
        (row.pop("firm_a"), row.pop("firm_b"), row) for row in edges.iter_rows(named=True)
    )
    return graph


def _xml_safe(column: str) -> pl.Expr:
    return pl.col(column).str.replace_all(XML_ILLEGAL, "\ufffd")


def _nodes(result: ScanResult) -> pl.DataFrame:
    """firm_id and the node attributes, sorted by firm_id, with no nulls."""
    membership = _membership(result)
    groups = membership.group_by("firm_id").agg(
        pl.col("group_id").unique().sort().str.join(";").alias("group")
    )
    firms = result.ranking("firm")
    return (
        firms.select(
            _xml_safe("firm_id"),
            _xml_safe("name").fill_null(""),
            *[pl.col(c).cast(pl.Float64).fill_null(0.0) for c in _RISKS],
            *[pl.col(c).cast(pl.Int64).fill_null(0) for c in ("tenders", "wins")],
        )
        .drop_nulls("firm_id")
        .join(groups, on="firm_id", how="left")
        .with_columns(
            pl.col("group").fill_null(""),
            pl.when(pl.col("name") != "")
            .then(pl.col("name"))
            .otherwise(pl.col("firm_id"))
            .alias("label"),
        )
        .select("firm_id", "label", "name", *_RISKS, "tenders", "wins", "group")
        .unique("firm_id", keep="first")
        .sort("firm_id")
    )


_RISKS = ("risk", "collusion_risk", "materials_risk")


def _membership(result: ScanResult) -> pl.DataFrame:
    """group_id, firm_id: one row per member of each suspected group."""
    return (
        result.ranking("group")
        .select(
            "group_id",
            pl.col("members").str.split(";").alias("firm_id"),
        )
        .explode("firm_id")
        .filter(pl.col("firm_id").is_not_null() & (pl.col("firm_id") != ""))
        .with_columns(_xml_safe("firm_id"))
        .unique()
    )


def _edges(result: ScanResult, known: pl.DataFrame) -> tuple[pl.DataFrame, int]:
    """firm_a < firm_b and the edge attributes, sorted, with the k co-bid edges needed."""
    bids = result.data.bids
    schema = {"firm_a": pl.String, "firm_b": pl.String, "cobids": pl.Int64}
    if "firm_id" in bids.columns:
        cobids = (
            cobid_pairs(bids)
            .select(_xml_safe("firm_a"), _xml_safe("firm_b"), pl.col("tenders").cast(pl.Int64))
            .rename({"tenders": "cobids"})
        )
    else:
        cobids = pl.DataFrame(schema=schema)
    traces = trace_pairs(result.findings.frame)
    membership = _membership(result)
    together = (
        cobids.select("firm_a", "firm_b")
        .join(membership.rename({"firm_id": "firm_a"}), on="firm_a")
        .join(membership.rename({"firm_id": "firm_b"}), on=["firm_b", "group_id"], how="semi")
        .select("firm_a", "firm_b", pl.lit(True).alias("_together"))
        .unique()
    )
    k = _min_cobids(cobids.get_column("cobids"))
    edges = (
        cobids.join(traces, on=["firm_a", "firm_b"], how="full", coalesce=True)
        .join(together, on=["firm_a", "firm_b"], how="left")
        .with_columns(
            pl.col("cobids").fill_null(0),
            pl.col("shared_traces").fill_null(""),
            pl.col("_together").fill_null(False),
        )
        .filter(
            (pl.col("shared_traces") != "")
            | (pl.col("cobids") >= k)
            | (pl.col("_together") & (pl.col("cobids") > 0))
        )
        .join(known.rename({"firm_id": "firm_a"}), on="firm_a", how="semi")
        .join(known.rename({"firm_id": "firm_b"}), on="firm_b", how="semi")
    )
    types = (
        pl.when(pl.col("shared_traces") == "")
        .then(0)
        .otherwise(pl.col("shared_traces").str.count_matches(";") + 1)
    )
    edges = edges.select(
        "firm_a",
        "firm_b",
        "cobids",
        "shared_traces",
        pl.when((pl.col("cobids") > 0) & (pl.col("shared_traces") != ""))
        .then(pl.lit("both"))
        .when(pl.col("cobids") > 0)
        .then(pl.lit("cobid"))
        .otherwise(pl.lit("trace"))
        .alias("kind"),
        (pl.col("cobids") + types).cast(pl.Float64).alias("weight"),
    ).sort("firm_a", "firm_b")
    return edges, k


def _min_cobids(counts: pl.Series) -> int:
    """The least k >= 2 that leaves no more than MAX_COBID_EDGES pairs with k tenders."""
    per = (
        counts.filter(counts >= MIN_COBIDS)
        .value_counts(name="n")
        .sort(counts.name, descending=True)
        .with_columns(pl.col("n").cum_sum().alias("at_least"))
        .sort(counts.name)
    )
    previous = MIN_COBIDS - 1
    for k, at_least in per.select(counts.name, "at_least").iter_rows():
        if at_least <= MAX_COBID_EDGES:
            return previous + 1
        previous = int(k)
    return previous + 1


def trace_pairs(findings: pl.DataFrame) -> pl.DataFrame:
    """firm_a < firm_b and shared_traces (';'-joined trace types), from the evidence of
    the shared-traces and trace-network findings."""
    in_tender = (
        findings.filter(pl.col("detector") == SharedTraces.name)
        .select(pl.col("evidence").str.json_decode(_SHARED_EVIDENCE).struct.field("shared"))
        .explode("shared")
        .drop_nulls("shared")
        .unnest("shared")
        .select("trace", pl.col("bidders").alias("firms"))
    )
    across = (
        findings.filter(pl.col("detector") == TraceNetwork.name)
        .select(pl.col("evidence").str.json_decode(_NETWORK_EVIDENCE).struct.field("links"))
        .explode("links")
        .drop_nulls("links")
        .unnest("links")
        .select(
            "trace",
            pl.col("carriers").list.eval(pl.element().struct.field("firm")).alias("firms"),
        )
    )
    sets = (
        pl.concat([in_tender, across])
        .with_row_index("_set")
        .explode("firms")
        .drop_nulls("firms")
        .select("_set", "trace", _xml_safe("firms").alias("firm"))
    )
    return (
        sets.join(sets.select("_set", pl.col("firm").alias("firm_b")), on="_set")
        .filter(pl.col("firm") < pl.col("firm_b"))
        .group_by(pl.col("firm").alias("firm_a"), "firm_b")
        .agg(pl.col("trace").unique().sort().str.join(";").alias("shared_traces"))
    )


_SHARED_EVIDENCE = pl.Struct(
    {"shared": pl.List(pl.Struct({"trace": pl.String, "bidders": pl.List(pl.String)}))}
)
_NETWORK_EVIDENCE = pl.Struct(
    {
        "links": pl.List(
            pl.Struct({"trace": pl.String, "carriers": pl.List(pl.Struct({"firm": pl.String}))})
        )
    }
)
