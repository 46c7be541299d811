"""The Python face: load, scan, rankings, findings, graph, write, pandas."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import polars as pl

import bidwatch
from bidwatch.dataset import Dataset


def test_scan_result(market: Dataset, tmp_path: Path) -> None:
    result = bidwatch.scan(market)
    tenders = result.ranking("tender")
    assert isinstance(tenders, pl.DataFrame)
    assert tenders.get_column("risk").max() > 0  # type: ignore[operator]
    findings = list(result.findings)
    assert findings
    assert all(isinstance(f, bidwatch.Finding) for f in findings)
    first = next(f for f in findings if f.subject.kind == "tender")
    assert first.subject.id == first.subject.ids[0]
    assert first.evidence
    assert first.message
    pair = next(f for f in findings if f.subject.kind == "pair")
    assert len(pair.subject.ids) == 2
    assert pair.subject.id == "|".join(pair.subject.ids)
    assert set(pair.subject.ids) <= set(pair.firms)
    group = next(f for f in findings if f.subject.kind == "group")
    assert len(group.firms) >= 2
    assert set(result.ranking("group").get_column("group_id")) >= {group.subject.id}
    explained = result.explain(tenders.row(0, named=True)["tender_id"])
    assert explained.height >= 1
    paths = result.write(tmp_path / "out", html=False)
    assert {p.name for p in paths} >= {"tenders.csv", "firms.csv", "findings.parquet", "scan.json"}
    frames = result.to_pandas()
    assert isinstance(frames["tenders"], pd.DataFrame)
    assert len(frames["tenders"]) == tenders.height


def test_graph_of_cobidders(market: Dataset) -> None:
    result = bidwatch.scan(market)
    graph = result.graph
    firms = result.ranking("firm")
    assert graph.number_of_nodes() == firms.height
    a, b, data = next(iter(graph.edges(data=True)))
    shared = (
        market.bids.filter(pl.col("bidder_id").is_in([a, b]))
        .group_by("tender_id")
        .agg(pl.col("bidder_id").n_unique())
        .filter(pl.col("bidder_id") == 2)
        .height
    )
    assert data["tenders"] == shared
    node = graph.nodes[a]
    assert {"name", "risk", "tenders", "wins"} <= set(node)


def test_config_as_path_dict_or_object(market: Dataset, tmp_path: Path) -> None:
    path = tmp_path / "bidwatch.toml"
    path.write_text('[detectors]\nselect = ["identical-bids"]\n', encoding="utf-8")
    as_path = bidwatch.scan(market, config=path)
    as_dict = bidwatch.scan(market, config={"detectors": {"select": ["identical-bids"]}})
    as_obj = bidwatch.scan(market, config=bidwatch.Config(select=("identical-bids",)))
    for result in (as_path, as_dict, as_obj):
        assert [r.name for r in result.runs] == ["identical-bids"]
    assert as_path.findings.frame.equals(as_obj.findings.frame)


def credit_code(first17: str) -> str:
    """A valid unified social credit code with the given first 17 characters."""
    from bidwatch.identifiers import credit_code_valid

    return next(
        first17 + c for c in "0123456789ABCDEFGHJKLMNPQRTUWXY" if credit_code_valid(first17 + c)
    )


def test_firm_registry_names_entities() -> None:
    code = credit_code("91420281MA4F00001")
    bids = pl.DataFrame(
        {
            "tender_id": ["T1", "T1", "T2", "T2"],
            "bidder_id": ["R1", None, None, "X9"],
            "bidder_name": ["Road One Co", "Other Road Co", "Bridge Two", "Bridge Two"],
            "credit_code": [None, None, code, None],
            "amount": [10.0, 11.0, 12.0, 13.0],
        }
    )
    firms = pl.DataFrame(
        {
            "firm_id": ["R1", "B2"],
            "name": ["ＲＯＡＤ ＯＮＥ ＣＯ.", "Bridge Two Ltd"],
            "credit_code": [None, code],
        }
    )
    result = bidwatch.scan(bidwatch.load(bids=bids, firms=firms))
    ents = result.data.entities
    assert ents is not None
    rows = {(r["source"], r["bidder_id"], r["bidder_name"]): r for r in ents.iter_rows(named=True)}
    assert rows[("bids", "R1", "Road One Co")]["firm_id"] == "R1"
    assert rows[("bids", None, "Bridge Two")]["firm_id"] == "B2"
    assert rows[("bids", None, "Bridge Two")]["method"] == "code"
    # Same name as B2's bid, but both bid in T2: a firm bids once per tender, so two firms.
    assert rows[("bids", "X9", "Bridge Two")]["firm_id"] == "X9"
    assert rows[("bids", None, "Other Road Co")]["firm_id"] not in ("R1", "B2")
    firm_rows = {r["firm_id"]: r for r in result.ranking("firm").iter_rows(named=True)}
    assert firm_rows["R1"]["name"] == "ＲＯＡＤ ＯＮＥ ＣＯ."
    assert firm_rows["B2"]["bidder_names"] == "Bridge Two"
    assert firm_rows["X9"]["bidder_ids"] == "X9"


def test_progress_reports_each_step_of_load_scan_and_write(tmp_path: Path) -> None:
    from .conftest import random_market

    tenders, bids = random_market(seed=2, tenders=60)
    steps: list[tuple[str, int, int]] = []

    def record(step: str, done: int, total: int) -> None:
        steps.append((step, done, total))

    data = bidwatch.load(bids=bids, tenders=tenders, progress=record)
    result = bidwatch.scan(data, progress=record)
    result.write(tmp_path, xlsx=True, graph=True, progress=record)
    names = [s for s, _, _ in steps]
    assert names[:2] == ["reading tenders", "reading bids"]
    assert "checking bids" in names
    assert "resolving names" in names
    ran = [r.name for r in result.runs]
    assert [n for n in names if n in ran] == ran, "each detector, in order"
    assert names[-5:] == [
        "writing tables",
        "writing findings.parquet",
        "writing report.xlsx",
        "writing graph",
        "writing report.html",
    ]
    assert all(0 <= done <= total for _, done, total in steps)


def _findings_frame(rows: list[tuple[str, str, str | None]]) -> pl.DataFrame:
    from bidwatch.findings import FINDING_SCHEMA

    return pl.DataFrame(
        [(d, k, s, 0.5, None, None, "m", "{}", []) for d, k, s in rows],
        schema=FINDING_SCHEMA,
        orient="row",
    )


def test_findings_come_sorted_and_assessed_distinct() -> None:
    from bidwatch.findings import Findings

    rows = [
        ("b", "tender", "T2"),
        ("a", "tender", "T10"),
        ("a", "firm", "F"),
        ("a", "tender", "T1"),
    ]
    found = Findings(_findings_frame(rows), assessed=pl.Series(["T2", "T1", "T2", "T10"]))
    keys = found.frame.select("detector", "subject_kind", "subject_id").rows()
    assert keys == [
        ("a", "firm", "F"),
        ("a", "tender", "T1"),
        ("a", "tender", "T10"),
        ("b", "tender", "T2"),
    ]
    assert found.assessed.to_list() == ["T1", "T10", "T2"]
    assert found.scanned == 3
    # A frame already in order is kept as given; a null id sorts first, as polars sorts.
    ordered = Findings(found.frame)
    assert ordered.frame.equals(found.frame)
    assert ordered.assessed.to_list() == ["F", "T1", "T10", "T2"]
    with_null = Findings(_findings_frame([("a", "tender", "T1"), ("a", "tender", None)]))
    assert with_null.frame.get_column("subject_id").to_list() == [None, "T1"]
    assert with_null.assessed.to_list() == [None, "T1"]


def test_scan_findings_in_order_and_parquet_the_same_however_assembled(
    market: Dataset, tmp_path: Path
) -> None:
    from bidwatch.findings import Findings

    result = bidwatch.scan(market)
    frame = result.findings.frame
    assert frame.equals(frame.sort("detector", "subject_kind", "subject_id"))
    assert frame.get_column("detector").n_unique() > 1
    # The scan keeps its detectors' findings as separate chunks; the Parquet file is the
    # same as that of the findings in one block.
    whole = bidwatch.api.ScanResult(
        result.data,
        Findings(frame.rechunk()),
        result.runs,
        result.config,
        result.risk,
        result.assessed,
        result.started_at,
    )
    result.write(tmp_path / "parts", html=False)
    whole.write(tmp_path / "whole", html=False)
    for name in ("findings.parquet", "findings.csv", "contributions.csv", "tenders.csv"):
        assert (tmp_path / "parts" / name).read_bytes() == (tmp_path / "whole" / name).read_bytes()
