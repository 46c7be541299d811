"""Excel workbooks (.xlsx) through fastexcel (calamine), every cell read as text."""

from __future__ import annotations

from pathlib import Path

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
    return grid_to_table(grid, path, table, options, sheet=sheet)
