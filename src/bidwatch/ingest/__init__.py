"""Read source files into raw frames: every row kept, every value as the source wrote it.

Readers do not interpret values; ``bidwatch.normalise`` does. Each raw frame carries ``_row``,
the row number a person opening the file would see (spreadsheet row for CSV and Excel, record
number for Parquet), so that rejected rows can be found. Nested sources (OCDS) number their
rows in reading order and add ``locations``: where in the file each row came from.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from bidwatch.errors import InputError
from bidwatch.schema import TABLES, alias_index, header_key, split_unit

ROW = "_row"
HEADER_SEARCH_ROWS = 20


@dataclass(frozen=True)
class RawTable:
    """One source's rows for one canonical table, before interpretation."""

    path: str
    table: str
    frame: pl.DataFrame
    headers: tuple[str, ...]
    header_row: int | None = None
    encoding: str | None = None
    sheet: str | None = None
    canonical: bool = False
    overflow: tuple[str, ...] = ()
    notes: tuple[str, ...] = field(default=())
    locations: pl.DataFrame | None = None  # _row -> where: a JSON path for nested sources

    @property
    def rows(self) -> int:
        return self.frame.height


@dataclass(frozen=True)
class ReadOptions:
    """Per-file reading options from the mapping file's ``[options]``."""

    encoding: str | None = None
    sheet: str | None = None
    delimiter: str | None = None
    known_headers: frozenset[str] = frozenset()


def suffix_of(path: Path) -> str:
    name = path.name.lower()
    for suffix in (".jsonl", ".json", ".csv", ".tsv", ".txt", ".xlsx", ".xlsm", ".parquet", ".pq"):
        if name.endswith(suffix):
            return suffix
    return path.suffix.lower()


def read_source(path: Path, table: str, options: ReadOptions | None = None) -> RawTable:
    """Read one tabular file (CSV, Excel, Parquet) holding rows of ``table``."""
    from bidwatch.ingest import csv, excel, parquet

    options = options or ReadOptions()
    if not path.exists():
        raise InputError(f"{path}: file not found. Check the path given for --{table}.")
    if path.is_dir():
        raise InputError(
            f"{path}: is a directory; give a file for --{table}, or scan the directory."
        )
    suffix = suffix_of(path)
    if suffix in (".csv", ".tsv", ".txt"):
        return csv.read(path, table, options)
    if suffix in (".xlsx", ".xlsm"):
        return excel.read(path, table, options)
    if suffix in (".parquet", ".pq"):
        return parquet.read(path, table)
    if suffix == ".xls":
        raise InputError(
            f"{path}: legacy .xls workbooks are not read; open it and save as .xlsx or CSV."
        )
    raise InputError(
        f"{path}: unknown file type {suffix!r} for {table}; "
        "use .csv, .xlsx, .parquet, or --ocds for OCDS .json/.jsonl."
    )


def header_score(cells: list[str | None], index: dict[str, str], extra: frozenset[str]) -> int:
    score = 0
    for cell in cells:
        if cell is None or not cell.strip():
            continue
        base, _ = split_unit(cell)
        key = header_key(base)
        if key in index or key in extra or header_key(cell) in extra:
            score += 1
    return score


def grid_to_table(
    grid: pl.DataFrame,
    path: Path,
    table: str,
    options: ReadOptions,
    *,
    first_row: int = 1,
    encoding: str | None = None,
    sheet: str | None = None,
) -> RawTable:
    """Turn a header-less grid of strings into a RawTable.

    The header is the first of the top rows that names at least two known columns (title
    blocks above a header are common in exported bid-opening records); failing that, the
    top row. ``first_row`` is the sheet row number of the grid's first row.
    """
    if grid.height == 0:
        raise InputError(f"{path}: the file is empty; expected a header row and {table} rows.")
    index = alias_index(TABLES[table])
    extra = frozenset(header_key(h) for h in options.known_headers)
    top = grid.head(HEADER_SEARCH_ROWS).rows()
    header_at = 0
    for i, row in enumerate(top):
        if header_score(list(row), index, extra) >= 2:
            header_at = i
            break
    raw_headers = [(cell or "").strip() for cell in top[header_at]]
    last_named = max((i for i, h in enumerate(raw_headers, start=1) if h), default=0)
    headers: list[str] = []
    overflow: list[str] = []
    seen: dict[str, int] = {}
    for pos, cell in enumerate(raw_headers, start=1):
        name = cell or f"column_{pos}"
        if not cell and pos > last_named:
            overflow.append(name)
        if name in seen:
            raise InputError(
                f"{path}: header {name!r} appears twice (columns {seen[name]} and {pos}). "
                "Rename one of them so each column has its own header."
            )
        seen[name] = pos
        headers.append(name)
    body = grid.slice(header_at + 1)
    body.columns = headers
    header_row = first_row + header_at
    body = body.with_columns(
        pl.int_range(header_row + 1, header_row + 1 + body.height, dtype=pl.Int64).alias(ROW)
    )
    notes = (
        ()
        if header_at == 0
        else (f"rows {first_row}-{header_row - 1} above the header skipped as a title block",)
    )
    return RawTable(
        path=str(path),
        table=table,
        frame=body,
        headers=tuple(headers),
        header_row=header_row,
        encoding=encoding,
        sheet=sheet,
        overflow=tuple(overflow),
        notes=notes,
    )
