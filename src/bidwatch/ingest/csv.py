"""CSV in UTF-8, UTF-8 with BOM, UTF-16 with BOM or GBK/GB18030, detected from the bytes."""

from __future__ import annotations

import codecs
import csv as pycsv
import io
import sys
from pathlib import Path

import polars as pl

from bidwatch.errors import InputError
from bidwatch.ingest import RawTable, ReadOptions, grid_to_table

DELIMITERS = (",", ";", "\t", "|")
# A quoted field running over more lines than this is a stray quote, not an address.
MAX_FIELD_LINES = 20


def decode(data: bytes, path: Path, encoding: str | None) -> tuple[str, str]:
    """Decode file bytes; returns (text, encoding used).

    Detection order: a BOM; strict UTF-8; strict GB18030 (a superset of GBK and GB2312, the
    encodings of Chinese Excel exports). Valid UTF-8 is almost never valid GB18030 by
    accident, so trying UTF-8 first is safe.
    """
    if encoding:
        try:
            return data.decode(encoding), encoding
        except LookupError:
            raise InputError(
                f"{path}: unknown encoding {encoding!r} in the mapping file; "
                "use e.g. utf-8, gb18030 or utf-16."
            ) from None
        except UnicodeDecodeError as exc:
            raise InputError(
                f"{path}: not valid {encoding} at byte {exc.start} "
                f"(0x{data[exc.start]:02x}); fix `encoding` in the mapping file or remove it "
                "to let bidwatch detect the encoding."
            ) from None
    if data.startswith(codecs.BOM_UTF8):
        return _strict(data[len(codecs.BOM_UTF8) :], "utf-8", path), "utf-8-sig"
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return _strict(data, "utf-16", path), "utf-16"
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError as utf8_error:
        try:
            return data.decode("gb18030"), "gb18030"
        except UnicodeDecodeError:
            line = data[: utf8_error.start].count(b"\n") + 1
            raise InputError(
                f"{path}: cannot decode line {line} (byte {utf8_error.start}, "
                f"0x{data[utf8_error.start]:02x}) as UTF-8 or GB18030. Save the file as UTF-8, "
                'or set `encoding = "..."` under [options] in the mapping file.'
            ) from None


def _strict(data: bytes, encoding: str, path: Path) -> str:
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise InputError(
            f"{path}: the file starts with a {encoding} byte-order mark but line {line} "
            f"(byte {exc.start}) is not valid {encoding}. Re-save the file in one encoding."
        ) from None


def sniff_delimiter(text: str) -> str:
    """The delimiter that splits the first non-empty lines most often and most evenly."""
    lines = [ln for ln in text.splitlines()[:20] if ln.strip()]
    if not lines:
        return ","
    best, best_score = ",", -1
    for delim in DELIMITERS:
        counts = [ln.count(delim) for ln in lines]
        score = max(counts) * 10 + counts.count(max(counts))
        if max(counts) > 0 and score > best_score:
            best, best_score = delim, score
    return best


def read(path: Path, table: str, options: ReadOptions) -> RawTable:
    data = path.read_bytes()
    text, encoding = decode(data, path, options.encoding)
    if "\r" in text and "\n" not in text:  # old Mac line endings
        text = text.replace("\r", "\n")
        data = b""
    delimiter = options.delimiter or sniff_delimiter(text)
    try:
        grid = pl.read_csv(
            io.BytesIO(data if encoding == "utf-8" and data else text.encode("utf-8")),
            has_header=False,
            infer_schema=False,
            separator=delimiter,
            raise_if_empty=False,
        )
    except pl.exceptions.PolarsError:
        grid = _read_ragged(text, delimiter, path)
    _check_quotes(grid, path)
    return grid_to_table(grid, path, table, options, encoding=encoding)


def _check_quotes(grid: pl.DataFrame, path: Path) -> None:
    """A stray double quote opens a field that swallows the lines after it: refuse the file
    rather than read thousands of rows as one cell."""
    if grid.height == 0:
        return
    lines = grid.select(
        [pl.col(c).str.count_matches("\n").max().alias(c) for c in grid.columns]
    ).row(0)
    worst = max((n or 0 for n in lines), default=0)
    if worst <= MAX_FIELD_LINES:
        return
    column = grid.columns[[n or 0 for n in lines].index(worst)]
    row = (
        grid.with_row_index("_i")
        .filter(pl.col(column).str.count_matches("\n") == worst)
        .get_column("_i")[0]
    )
    position = grid.columns.index(column) + 1
    raise InputError(
        f"{path}: the field in row {row + 1}, column {position}, runs over {worst} lines: "
        'a double quote (") there opens a quoted field that never closes. Remove the stray '
        "quote or close it, then read the file again."
    )


def _read_ragged(text: str, delimiter: str, path: Path) -> pl.DataFrame:
    """Rows of uneven width (a title line, a stray delimiter): pad every row to the widest.

    Extra fields are kept as extra, unnamed columns, so a row with a stray field can be
    rejected by name later instead of being truncated here.
    """
    pycsv.field_size_limit(sys.maxsize)
    try:
        rows = list(pycsv.reader(io.StringIO(text), delimiter=delimiter))
    except pycsv.Error as exc:
        raise InputError(f"{path}: not readable as CSV ({exc}).") from None
    width = max((len(r) for r in rows), default=0)
    columns = {
        f"column_{i + 1}": [r[i] if i < len(r) and r[i] != "" else None for r in rows]
        for i in range(width)
    }
    return pl.DataFrame(columns, schema=dict.fromkeys(columns, pl.String))
