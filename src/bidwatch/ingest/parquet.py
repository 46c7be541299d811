"""Parquet files: columns keep their stored types; normalise converts them."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from bidwatch.errors import InputError
from bidwatch.ingest import ROW, RawTable


def read(path: Path, table: str) -> RawTable:
    try:
        frame = pl.read_parquet(path)
    except Exception as exc:  # polars and the parquet decoder raise several unrelated types
        raise InputError(f"{path}: cannot read as Parquet ({exc}).") from None
    if ROW in frame.columns:
        raise InputError(f"{path}: column {ROW!r} is reserved by bidwatch; rename it.")
    # One chunk per column, as the row number has: expressions over columns whose chunks
    # do not line up realign (copy) them again at every step of normalising.
    frame = frame.rechunk().with_row_index(ROW, offset=1).with_columns(pl.col(ROW).cast(pl.Int64))
    return RawTable(path=str(path), table=table, frame=frame, headers=tuple(frame.columns[1:]))
