"""Scan outputs: tables (CSV, Parquet, JSON) and the HTML report."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from bidwatch.report.tables import export_tables, scan_summary, write_csv, write_json

if TYPE_CHECKING:
    from bidwatch.api import ScanResult


def write_all(result: ScanResult, out: Path, *, html: bool = True) -> list[Path]:
    """Write every output of a scan into ``out`` (created if needed); returns the paths."""
    out.mkdir(parents=True, exist_ok=True)
    tables = export_tables(result)
    written = [write_csv(frame, out / f"{name}.csv") for name, frame in tables.items()]
    findings_parquet = out / "findings.parquet"
    tables["findings"].write_parquet(findings_parquet, statistics=False)
    written.append(findings_parquet)
    summary = scan_summary(result)
    written.append(write_json(summary, out / "scan.json"))
    if html:
        from bidwatch.report.html import render

        page = out / "report.html"
        page.write_text(render(result, summary), encoding="utf-8")
        written.append(page)
    return written
