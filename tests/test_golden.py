"""Golden cases: in fixtures/detectors/<name>/, tenders F* are flagged and no other is."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

import bidwatch
from bidwatch.detectors import REGISTRY

from .conftest import FIXTURES

CASES = FIXTURES / "detectors"


def folders() -> list[Path]:
    return sorted(p for p in CASES.iterdir() if p.is_dir())


@pytest.mark.parametrize("folder", folders(), ids=lambda p: p.name)
def test_golden_case(folder: Path) -> None:
    data = bidwatch.load(
        bids=folder / "bids.csv",
        tenders=folder / "tenders.csv" if (folder / "tenders.csv").exists() else None,
    )
    assert data.rejected.height == 0
    result = bidwatch.scan(data, config=folder / "config.toml")
    run = next(r for r in result.runs if r.name == folder.name)
    assert run.status == "ran", run.reason
    findings = result.findings.frame.filter(pl.col("detector") == folder.name)
    flagged = set(findings.get_column("subject_id").to_list())
    tenders = set(data.tenders.get_column("tender_id").to_list())
    expected = {t for t in tenders if t.startswith("F")}
    assert flagged == expected
    near = {t for t in tenders if t.startswith("N")}
    assert expected, "a golden case needs a true positive (F*)"
    assert near, "a golden case needs a near miss (N*)"
    for message in findings.get_column("message"):
        assert any(ch.isdigit() for ch in message), "messages state the observed value and limit"


def test_every_detector_has_a_golden_case() -> None:
    names = {p.name for p in folders()}
    assert {d.name for d in REGISTRY} <= names
    assert names <= {d.name for d in REGISTRY}, "a fixture folder names no detector"
