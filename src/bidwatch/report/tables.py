"""The scan's tables as files: CSV (formula-safe), Parquet, and scan.json."""

from __future__ import annotations

import json
import platform
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from bidwatch.findings import FINDING_SCHEMA

if TYPE_CHECKING:
    from bidwatch.api import ScanResult

# A spreadsheet runs a cell that starts with one of these as a formula (CSV injection).
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def neutralise(frame: pl.DataFrame) -> pl.DataFrame:
    """Prefix text cells that a spreadsheet would run as formulas with a quote."""
    pattern = r"^[=+\-@\t\r]"
    text = [name for name, dtype in frame.schema.items() if dtype == pl.String]
    if not text or frame.height == 0:
        return frame
    # Only the columns with such a cell are rewritten: rewriting copies the column.
    found = frame.select(pl.col(name).str.contains(pattern).any() for name in text).row(0)
    return frame.with_columns(
        pl.when(pl.col(name).str.contains(pattern))
        .then(pl.lit("'") + pl.col(name))
        .otherwise(pl.col(name))
        .alias(name)
        for name, hit in zip(text, found, strict=True)
        if hit
    )


def flat(frame: pl.DataFrame) -> pl.DataFrame:
    """Lists joined with ';' so that the frame fits a CSV."""
    return frame.with_columns(
        pl.col(name).list.join(";").alias(name)
        for name, dtype in frame.schema.items()
        if isinstance(dtype, pl.List)
    )


def export_tables(result: ScanResult) -> dict[str, pl.DataFrame]:
    """Every table a scan writes, in output form."""
    data = result.data
    rejected = data.rejected
    entities = data.entities if data.entities is not None else pl.DataFrame()
    findings = result.findings.frame.select(list(FINDING_SCHEMA))
    return {
        "tenders": result.ranking("tender"),
        "firms": result.ranking("firm"),
        "groups": result.ranking("group"),
        "pairs": result.ranking("pair"),
        "buyers": result.ranking("buyer"),
        "findings": findings,
        "contributions": result.contributions,
        "entities": entities,
        "rejected": rejected,
    }


def write_csv(frame: pl.DataFrame, path: Path) -> Path:
    neutralise(flat(frame)).write_csv(path, float_precision=None)
    return path


@cache
def _versions() -> tuple[tuple[str, str], ...]:
    out = [("python", platform.python_version())]
    for package in ("bidwatch", "polars", "numpy", "scipy", "networkx", "rapidfuzz", "jinja2"):
        try:
            out.append((package, metadata.version(package)))
        except metadata.PackageNotFoundError:
            out.append((package, "not installed"))
    return tuple(out)


def versions() -> dict[str, str]:
    """The versions of Python and of the packages a scan depends on (read once: the
    installed metadata does not change under a running process)."""
    return dict(_versions())


def scan_summary(result: ScanResult) -> dict[str, Any]:
    """scan.json: what was read, what ran, what came out. Only started_at varies by run."""
    sources = [s.to_dict() for s in result.data.sources]
    totals = {
        key: sum(s[key] for s in sources) for key in ("rows_read", "rows_used", "rows_rejected")
    }
    tenders = result.ranking("tender")
    firms = result.ranking("firm")
    return {
        "bidwatch": versions()["bidwatch"],
        "started_at": result.started_at.isoformat(timespec="seconds"),
        "versions": versions(),
        "config": result.config.resolved(),
        "inputs": sources,
        "totals": totals,
        "notes": list(result.data.notes),
        "detectors": [run.to_dict() for run in result.runs],
        "subjects": {
            "tenders": tenders.height,
            "tenders_with_findings": tenders.filter(pl.col("risk") > 0).height,
            "firms": firms.height,
            "firms_with_risk": firms.filter(pl.col("risk") > 0).height,
            "findings": len(result.findings),
        },
    }


def write_json(data: dict[str, Any], path: Path) -> Path:
    path.write_text(
        json.dumps(data, ensure_ascii=False, indent=2, sort_keys=False) + "\n", encoding="utf-8"
    )
    return path
