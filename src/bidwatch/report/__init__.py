"""Scan outputs: tables (CSV, Parquet, JSON) and the HTML report."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl

from bidwatch.errors import InputError
from bidwatch.report.tables import export_tables, scan_summary, write_csv, write_json

OUTPUTS = (
    "tenders.csv",
    "firms.csv",
    "groups.csv",
    "pairs.csv",
    "buyers.csv",
    "findings.csv",
    "findings.parquet",
    "contributions.csv",
    "entities.csv",
    "rejected.csv",
    "scan.json",
    "report.html",
    "report.xlsx",
    "graph.graphml",
    "graph.gexf",
)


def _refuse_overwriting_inputs(result: ScanResult, out: Path) -> None:
    inputs = {Path(s.path).resolve() for s in result.data.sources if not s.path.startswith("<")}
    clash = sorted(str(out / name) for name in OUTPUTS if (out / name).resolve() in inputs)
    if clash:
        raise InputError(
            f"{out}: writing the scan there would overwrite its input {', '.join(clash)}; "
            "choose another --out folder."
        )


if TYPE_CHECKING:
    from bidwatch.api import ScanResult


def _write_parquet(findings: pl.DataFrame, path: Path) -> Path:
    # The file's row groups follow the frame's chunks: one chunk, so that the same findings
    # give the same bytes however the scan assembled them.
    findings.rechunk().write_parquet(path, statistics=False)
    return path


def write_all(
    result: ScanResult,
    out: Path,
    *,
    html: bool = True,
    lang: str = "en",
    xlsx: bool = False,
    graph: bool = False,
    progress: Callable[[str, int, int], None] | None = None,
) -> list[Path]:
    """Write every output of a scan into ``out`` (created if needed); returns the paths.
    ``progress(step, done, total)`` is called before each output."""
    from bidwatch.report.i18n import LANGUAGES

    if lang not in LANGUAGES:
        raise InputError(f"report language {lang!r}: choose one of {', '.join(LANGUAGES)}.")
    _refuse_overwriting_inputs(result, out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"{out}: cannot create the output folder ({exc.strerror}).") from None
    steps = 2 + xlsx + graph + html

    def step(name: str, done: int) -> None:
        if progress:
            progress(f"writing {name}", done, steps)

    try:
        step("tables", 0)
        tables = export_tables(result)
        findings_parquet = out / "findings.parquet"
        # The Parquet file is compressed while the CSV files are written: polars releases
        # the interpreter to both, and the compression runs mostly on one core.
        with ThreadPoolExecutor(max_workers=1) as pool:
            parquet = pool.submit(_write_parquet, tables["findings"], findings_parquet)
            written = [write_csv(frame, out / f"{name}.csv") for name, frame in tables.items()]
            step("findings.parquet", 1)
            written.append(parquet.result())
        summary = scan_summary(result)
        written.append(write_json(summary, out / "scan.json"))
        if xlsx:
            from bidwatch.report.exports import write_xlsx

            step("report.xlsx", 2)
            written.append(write_xlsx(tables, out / "report.xlsx"))
        if graph:
            from bidwatch.report.exports import write_graph

            step("graph", 2 + xlsx)
            written.extend(write_graph(result, out))
        if html:
            from bidwatch.report.html import render

            step("report.html", 2 + xlsx + graph)
            page = out / "report.html"
            page.write_text(render(result, summary, lang=lang), encoding="utf-8")
            written.append(page)
    except OSError as exc:
        raise InputError(f"{out}: cannot write the scan there ({exc}).") from None
    return written
