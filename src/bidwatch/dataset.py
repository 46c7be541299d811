"""Dataset: the canonical tables of one scan, with every rejected row and where rows came from."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import polars as pl

from bidwatch.config import Mapping
from bidwatch.errors import InputError
from bidwatch.ingest import ROW, RawTable, read_source
from bidwatch.normalise import REJECTED_SCHEMA, SRC, empty_rejected, normalise
from bidwatch.parallel import checked_jobs, in_order
from bidwatch.schema import AFTER_AWARD, TABLES
from bidwatch.validate import table_problems

TableInput = str | Path | pl.DataFrame | Any  # Any: a pandas DataFrame, converted at the edge


@dataclass(frozen=True)
class SourceReport:
    """What happened to one input: rows read = rows used + rows rejected."""

    path: str
    table: str
    format: str
    rows_read: int
    rows_used: int
    rows_rejected: int
    columns: dict[str, str] = field(default_factory=dict)
    ignored_columns: tuple[str, ...] = ()
    header_row: int | None = None
    encoding: str | None = None
    sheet: str | None = None
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "table": self.table,
            "format": self.format,
            "rows_read": self.rows_read,
            "rows_used": self.rows_used,
            "rows_rejected": self.rows_rejected,
            "columns": self.columns,
            "ignored_columns": list(self.ignored_columns),
            "header_row": self.header_row,
            "encoding": self.encoding,
            "sheet": self.sheet,
            "notes": list(self.notes),
        }


@dataclass(frozen=True, eq=False)
class Dataset:
    """Canonical tables (see ``bidwatch.schema``) plus provenance.

    Every table has all of its schema's columns (absent ones all null), and the internal
    columns ``_src`` (index into ``sources``) and ``_row`` (row in that source). ``tenders``
    holds every tender named by a tenders file or by a bid. After entity resolution ``bids``
    and ``items`` also have ``firm_id``, the resolved entity of the bidder, and
    ``contracts`` and ``inspections`` that of the contractor.
    """

    bids: pl.DataFrame
    tenders: pl.DataFrame
    firms: pl.DataFrame
    rejected: pl.DataFrame
    sources: tuple[SourceReport, ...]
    entities: pl.DataFrame | None = None
    notes: tuple[str, ...] = ()
    contracts: pl.DataFrame = field(default_factory=lambda: _empty("contracts"))
    change_orders: pl.DataFrame = field(default_factory=lambda: _empty("change_orders"))
    items: pl.DataFrame = field(default_factory=lambda: _empty("items"))
    reference_prices: pl.DataFrame = field(default_factory=lambda: _empty("reference_prices"))
    inspections: pl.DataFrame = field(default_factory=lambda: _empty("inspections"))

    def has(self, ref: str) -> bool:
        """Whether ``table.column`` holds at least one value."""
        table, _, column = ref.partition(".")
        frame: pl.DataFrame = getattr(self, table)
        return column in frame.columns and frame.get_column(column).null_count() < frame.height

    def missing(self, requires: Iterable[str]) -> list[str]:
        return sorted(r for r in requires if not self.has(r))

    def with_tables(self, **tables: Any) -> Dataset:
        return replace(self, **tables)

    @property
    def paths(self) -> list[str]:
        return [s.path for s in self.sources]


def _as_polars(frame: Any, name: str) -> pl.DataFrame:
    if isinstance(frame, pl.DataFrame):
        return frame
    try:
        import pandas as pd
    except ImportError:  # pragma: no cover - pandas is a dependency
        pd = None
    if pd is not None and isinstance(frame, pd.DataFrame):
        # A named or non-default index carries data (often the tender id): keep it.
        keep = frame.index.name is not None or not isinstance(frame.index, pd.RangeIndex)
        try:
            return pl.from_pandas(frame.reset_index(drop=not keep))
        except Exception as exc:  # pyarrow and polars raise several unrelated types
            raise InputError(
                f"{name}: the pandas DataFrame cannot be converted ({str(exc).splitlines()[0]}); "
                "give each column one type, e.g. df[col] = df[col].astype(str)."
            ) from None
    raise InputError(
        f"{name}: expected a file path, a polars DataFrame or a pandas DataFrame, got "
        f"{type(frame).__name__}."
    )


def _frame_source(frame: pl.DataFrame, table: str) -> RawTable:
    label = f"<{table} frame>"
    if ROW in frame.columns:
        raise InputError(f"{label}: column {ROW!r} is reserved by bidwatch; rename it.")
    frame = frame.with_row_index(ROW, offset=1).with_columns(pl.col(ROW).cast(pl.Int64))
    return RawTable(path=label, table=table, frame=frame, headers=tuple(frame.columns[1:]))


def _format(raw: RawTable, given: TableInput) -> str:
    if raw.path.startswith("<"):
        return "frame"
    if raw.canonical:
        return "ocds"
    return Path(raw.path).suffix.lstrip(".").lower() or "csv"


def load(
    bids: TableInput | None = None,
    tenders: TableInput | None = None,
    firms: TableInput | None = None,
    *,
    contracts: TableInput | None = None,
    change_orders: TableInput | None = None,
    items: TableInput | None = None,
    reference_prices: TableInput | None = None,
    inspections: TableInput | None = None,
    ocds: Sequence[str | Path] = (),
    mapping: Mapping | str | Path | None = None,
    progress: Callable[[str, int, int], None] | None = None,
    jobs: int | None = None,
) -> Dataset:
    """Read, normalise and validate inputs into a Dataset.

    Each table (``bids``, ``tenders``, ``firms`` and, after the award, ``contracts``,
    ``change_orders``, ``items``, ``reference_prices``, ``inspections``) is a path (CSV,
    Excel, Parquet) or a pandas or polars DataFrame; ``ocds`` lists OCDS JSON / JSON Lines
    files, whose tenders, bids, tenderers, contracts and amendments join the other inputs.
    Bad rows are rejected into ``Dataset.rejected``; a problem that makes a whole input
    unusable raises ``InputError``. ``progress(step, done, total)`` is called as each file
    is read and as each input's check starts. ``jobs`` inputs are checked at a time, on
    threads (default ``bidwatch.parallel.default_jobs()``); the dataset does not depend on
    it.
    """
    jobs = checked_jobs(jobs)
    if isinstance(mapping, str | Path):
        mapping = Mapping.load(mapping)
    mapping = mapping or Mapping()
    raws: list[tuple[RawTable, TableInput]] = []
    notes: list[str] = []
    given_tables = {
        "tenders": tenders,
        "bids": bids,
        "firms": firms,
        "contracts": contracts,
        "change_orders": change_orders,
        "items": items,
        "reference_prices": reference_prices,
        "inspections": inspections,
    }
    reading = sum(g is not None for g in given_tables.values()) + len(ocds)
    files_read = 0
    for table, given in given_tables.items():
        if given is None:
            continue
        if progress:
            progress(f"reading {table}", files_read, reading)
        files_read += 1
        if isinstance(given, str | Path):
            raws.append((read_source(Path(given), table, mapping.read_options(table)), given))
        else:
            raws.append((_frame_source(_as_polars(given, f"<{table} frame>"), table), given))
    if ocds:
        from bidwatch.ingest import ocds as ocds_reader
    seen = {Path(str(g)).resolve() for _, g in raws if isinstance(g, str | Path)}
    for path in ocds:
        if Path(path).resolve() in seen:
            notes.append(f"{path} was given twice; it is read once")
            continue
        seen.add(Path(path).resolve())
        if progress:
            progress(f"reading {Path(path).name}", files_read, reading)
        files_read += 1
        raws.extend((raw, path) for raw in ocds_reader.read(Path(path)))
    if not any(raw.table == "bids" for raw, _ in raws):
        raise InputError(
            "no bids given: pass a bids file (--bids, or bids.csv in the scanned directory) "
            "or OCDS files with bids (--ocds)."
        )

    def checking(src: int, finished: int) -> None:
        if progress:
            progress(f"checking {raws[src][0].table}", finished, len(raws))

    checks = [
        functools.partial(
            normalise,
            raw,
            src,
            user_columns=mapping.columns.get(raw.table, {}),
            values=mapping.values,
            date_format=mapping.date_format,
        )
        for src, (raw, _) in enumerate(raws)
    ]
    parsed = in_order(checks, jobs, checking)
    paths = [raw.path for raw, _ in raws]

    tables: dict[str, pl.DataFrame] = {}
    problems: list[pl.DataFrame] = [p.problems for p in parsed if p.problems.height]
    bad = _keys(problems)
    for table in TABLES:
        frames = [p.frame for (raw, _), p in zip(raws, parsed, strict=True) if raw.table == table]
        if not frames:
            tables[table] = _empty(table)
            continue
        combined = pl.concat(frames, how="vertical")
        clean = combined.join(bad, on=[SRC, ROW], how="anti") if bad.height else combined
        later = table_problems(table, clean, paths)
        if later.height:
            problems.append(later)
            clean = clean.join(_keys([later]), on=[SRC, ROW], how="anti")
        # One chunk per column: every step of the scan that reads columns whose chunks do
        # not line up realigns (copies) them first.
        tables[table] = clean.rechunk()

    rejected = _rejected(problems, raws)
    used = pl.concat([t.select(SRC) for t in tables.values()]).get_column(SRC).value_counts()
    rejected_rows = _keys(problems).get_column(SRC).value_counts()
    reports = _reports(raws, parsed, used, rejected_rows)
    all_tenders, tender_notes = _with_bid_tenders(tables["tenders"], tables["bids"])
    notes += tender_notes
    if tables["bids"].height == 0:
        bid_reports = [r for r in reports if r.table == "bids"]
        detail = "; ".join(
            f"{r.path}: {r.rows_read} read, {r.rows_rejected} rejected" for r in bid_reports
        )
        first = rejected.filter(pl.col("table") == "bids").head(3)
        reasons = "; ".join(
            f"row {r} {c}: {why}"
            for r, c, why in first.select("row", "column", "reason").iter_rows()
        )
        raise InputError(
            f"no usable bids ({detail}). First problems: {reasons or 'none'}. "
            "Fix those rows or the column mapping (--mapping)."
        )
    notes += _orphans(tables, all_tenders)
    return Dataset(
        bids=tables["bids"],
        tenders=all_tenders,
        firms=tables["firms"],
        rejected=rejected,
        sources=tuple(reports),
        notes=tuple(notes),
        **{name: tables[name] for name in AFTER_AWARD},
    )


def _orphans(tables: dict[str, pl.DataFrame], tenders: pl.DataFrame) -> list[str]:
    """Rows after the award that name a tender no bid or tender row knows: kept (the tender
    may lie outside the scanned bids), and said."""
    notes = []
    known = tenders.select("tender_id")
    for name in ("contracts", "change_orders", "items", "inspections"):
        frame = tables[name]
        if frame.height == 0:
            continue
        unknown = frame.join(known, on="tender_id", how="anti")
        if unknown.height:
            ids = unknown.get_column("tender_id").unique().sort()
            notes.append(
                f"{unknown.height} {name} row(s) name {ids.len()} tender(s) with no bids or "
                f"tender row (e.g. {', '.join(ids.head(3).to_list())}); they count only for "
                "their contractor's history"
            )
    return notes


def _empty(table: str) -> pl.DataFrame:
    schema = {c.name: c.dtype for c in TABLES[table].columns}
    schema[SRC] = pl.UInt16()
    schema[ROW] = pl.Int64()
    return pl.DataFrame(schema=schema)


def _keys(problems: list[pl.DataFrame]) -> pl.DataFrame:
    if not problems:
        return pl.DataFrame(schema={SRC: pl.UInt16, ROW: pl.Int64})
    return pl.concat([p.select(SRC, ROW) for p in problems]).unique()


def _rejected(
    problems: list[pl.DataFrame], raws: list[tuple[RawTable, TableInput]]
) -> pl.DataFrame:
    if not problems:
        return empty_rejected()
    paths = [raw.path for raw, _ in raws]
    tables = [raw.table for raw, _ in raws]
    idx = list(range(len(raws)))
    frame = pl.concat([p.select(SRC, ROW, "column", "value", "reason") for p in problems])
    located = [
        raw.locations.select(pl.lit(src, dtype=pl.UInt16).alias(SRC), ROW, "where")
        for src, (raw, _) in enumerate(raws)
        if raw.locations is not None
    ]
    if located:
        frame = frame.join(pl.concat(located), on=[SRC, ROW], how="left")
    else:
        frame = frame.with_columns(pl.lit(None, dtype=pl.String).alias("where"))
    return (
        frame.with_columns(
            pl.col(SRC)
            .cast(pl.Int64)
            .replace_strict(idx, paths, return_dtype=pl.String)
            .alias("file"),
            pl.col(SRC)
            .cast(pl.Int64)
            .replace_strict(idx, tables, return_dtype=pl.String)
            .alias("table"),
        )
        .rename({ROW: "row"})
        .sort(SRC, "row", "column", "reason")
        .select(list(REJECTED_SCHEMA))
    )


def _reports(
    raws: list[tuple[RawTable, TableInput]],
    parsed: list[Any],
    used: pl.DataFrame,
    rejected: pl.DataFrame,
) -> list[SourceReport]:
    """Counted per source, from the rows that reached the tables and the rows rejected: the
    two counts are independent, so rows read = used + rejected is a real check."""
    used_by = dict(used.iter_rows())
    rejected_by = dict(rejected.iter_rows())
    out = []
    for src, ((raw, given), p) in enumerate(zip(raws, parsed, strict=True)):
        out.append(
            SourceReport(
                path=raw.path,
                table=raw.table,
                format=_format(raw, given),
                rows_read=raw.rows,
                rows_used=int(used_by.get(src, 0)),
                rows_rejected=int(rejected_by.get(src, 0)),
                columns={
                    cm.source: cm.column
                    + (f" x{cm.scale:g}" if cm.scale not in (None, 1.0) else "")
                    for cm in p.columns
                },
                ignored_columns=p.ignored,
                header_row=raw.header_row,
                encoding=raw.encoding,
                sheet=raw.sheet,
                notes=raw.notes,
            )
        )
    return out


def _with_bid_tenders(tenders: pl.DataFrame, bids: pl.DataFrame) -> tuple[pl.DataFrame, list[str]]:
    """Add a bare row for each tender that bids name but no tenders input describes."""
    named = bids.select("tender_id").unique()
    extra = named.join(tenders.select("tender_id"), on="tender_id", how="anti")
    if extra.height == 0:
        return tenders, []
    filler = (
        extra.sort("tender_id")
        .with_columns(
            [
                pl.lit(None, dtype=dtype).alias(name)
                for name, dtype in tenders.schema.items()
                if name != "tender_id"
            ]
        )
        .select(tenders.columns)
    )
    note = (
        f"{extra.height} tender(s) appear only in bids; they are scanned without tender details"
        if tenders.height
        else f"no tenders input: {extra.height} tenders taken from the bids"
    )
    return pl.concat([tenders, filler]), [note]
