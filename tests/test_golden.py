"""Golden cases: in fixtures/detectors/<name>/, subjects F* are flagged and no other is.

Subjects are the detector's kind: tenders by tender_id, firms by bidder id, buyers by
buyer_id. A pair is F* when both its firms are, a near miss when either is N*. A group
detector must flag groups whose members are all F* firms and that hold every F* firm.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

import bidwatch
from bidwatch.detectors import REGISTRY
from bidwatch.findings import ID_SEPARATOR
from bidwatch.schema import TABLES

from .conftest import FIXTURES

CASES = FIXTURES / "detectors"
KINDS = {d.name: d.subject for d in REGISTRY}


def folders() -> list[Path]:
    return sorted(p for p in CASES.iterdir() if p.is_dir())


def _marked(subject: str, mark: str) -> bool:
    parts = subject.split(ID_SEPARATOR)
    if mark == "F":
        return all(p.startswith("F") for p in parts)
    return any(p.startswith("N") for p in parts)


def _universe(result: bidwatch.ScanResult, kind: str, name: str) -> set[str]:
    data = result.data
    if kind == "tender":
        return set(data.tenders.get_column("tender_id").to_list())
    if kind in ("firm", "group"):
        return set(data.bids.get_column("firm_id").drop_nulls().to_list())
    return set(result.assessed[name].to_list())


@pytest.mark.parametrize("folder", folders(), ids=lambda p: p.name)
def test_golden_case(folder: Path) -> None:
    tables = {name: folder / f"{name}.csv" for name in TABLES if (folder / f"{name}.csv").exists()}
    data = bidwatch.load(**tables)
    assert data.rejected.height == 0
    result = bidwatch.scan(data, config=folder / "config.toml")
    run = next(r for r in result.runs if r.name == folder.name)
    assert run.status == "ran", run.reason
    kind = KINDS[folder.name]
    findings = result.findings.frame.filter(pl.col("detector") == folder.name)
    assert set(findings.get_column("subject_kind")) <= {kind}
    universe = _universe(result, kind, folder.name)
    expected = {s for s in universe if _marked(s, "F")}
    near = {s for s in universe if _marked(s, "N")}
    assert expected, "a golden case needs a true positive (F*)"
    assert near, "a golden case needs a near miss (N*)"
    if kind == "group":
        groups = findings.get_column("firms").to_list()
        assert groups, "no group found"
        for members in groups:
            assert all(_marked(m, "F") for m in members), f"group {members} holds a non-F firm"
        assert set().union(*groups) == expected, "every F* firm belongs to a flagged group"
    else:
        assert set(findings.get_column("subject_id").to_list()) == expected
        if kind != "tender":
            assessed = set(result.assessed[folder.name].to_list())
            assert near <= assessed, "a near miss must be assessed, not skipped"
    for message in findings.get_column("message"):
        assert any(ch.isdigit() for ch in message), "messages state the observed value and limit"


def test_every_detector_has_a_golden_case() -> None:
    names = {p.name for p in folders()}
    assert {d.name for d in REGISTRY} <= names
    assert names <= {d.name for d in REGISTRY}, "a fixture folder names no detector"
