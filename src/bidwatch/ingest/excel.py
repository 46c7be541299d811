"""Excel workbooks (.xlsx) through fastexcel (calamine), every cell read as text."""

from __future__ import annotations

import zipfile
from pathlib import Path
from xml.etree import ElementTree

import fastexcel

from bidwatch.errors import InputError
from bidwatch.ingest import RawTable, ReadOptions, grid_to_table

# Sheet names tried for each table before falling back to the first sheet.
SHEET_NAMES = {
    "bids": ("bids", "投标", "投标记录", "开标记录", "报价"),
    "tenders": ("tenders", "招标", "项目", "标段"),
    "firms": ("firms", "企业", "单位", "供应商"),
}


def read(path: Path, table: str, options: ReadOptions) -> RawTable:
    try:
        workbook = fastexcel.read_excel(path)
    except Exception as exc:  # fastexcel raises its own hierarchy for every kind of bad file
        raise InputError(f"{path}: cannot open as an Excel workbook ({exc}).") from None
    names = list(workbook.sheet_names)
    sheet = options.sheet or next(
        (n for n in names if n.strip().casefold() in SHEET_NAMES.get(table, ())), names[0]
    )
    if sheet not in names:
        raise InputError(
            f"{path}: no sheet named {sheet!r}; the workbook has {', '.join(map(repr, names))}. "
            "Set `sheet` under [options] in the mapping file."
        )
    grid = workbook.load_sheet(sheet, header_row=None, dtypes="string").to_polars()
    return grid_to_table(grid, path, table, options, first_row=first_row(path, sheet), sheet=sheet)


_MAIN = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
_REL = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}"
_PKG_REL = "{http://schemas.openxmlformats.org/package/2006/relationships}"


def first_row(path: Path, sheet: str) -> int:
    """The sheet row number of the first row holding a value.

    calamine (behind fastexcel) starts its grid there, skipping empty rows above it, so row
    numbers shown to the user must count from it. Read from the workbook's XML; 1 when the
    workbook does not say.
    """
    try:
        with zipfile.ZipFile(path) as book:
            workbook = ElementTree.fromstring(book.read("xl/workbook.xml"))
            rid = next(
                (
                    s.get(f"{_REL}id")
                    for s in workbook.iter(f"{_MAIN}sheet")
                    if s.get("name") == sheet
                ),
                None,
            )
            rels = ElementTree.fromstring(book.read("xl/_rels/workbook.xml.rels"))
            target = next(
                (
                    r.get("Target")
                    for r in rels.iter(f"{_PKG_REL}Relationship")
                    if r.get("Id") == rid
                ),
                None,
            )
            if rid is None or target is None:
                return 1
            member = target.lstrip("/") if target.startswith("/") else f"xl/{target}"
            with book.open(member) as xml:
                for _, element in ElementTree.iterparse(xml):
                    if element.tag == f"{_MAIN}row" and any(
                        (c.find(f"{_MAIN}v") is not None or c.find(f"{_MAIN}is") is not None)
                        for c in element.iter(f"{_MAIN}c")
                    ):
                        return int(element.get("r", "1"))
    except (KeyError, zipfile.BadZipFile, ElementTree.ParseError, ValueError):
        return 1
    return 1
