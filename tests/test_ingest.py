"""Files as they arrive: encodings, delimiters, title blocks, Excel, Parquet, frames."""

from __future__ import annotations

import codecs
from datetime import datetime
from pathlib import Path

import pandas as pd
import polars as pl
import pytest
import xlsxwriter

import bidwatch
from bidwatch.errors import InputError

CHINESE = (
    "项目编号,投标人,投标报价(万元),是否中标,投标时间\n"
    "ZB-001,大冶市路通公路工程有限公司,123.45,是,2024/5/1 10:00\n"
    "ZB-001,湖北鄂东建设集团有限公司,125.10,否,2024-05-01 10:05\n"
    "ZB-002,黄石市交通建设有限责任公司,壹佰贰拾万元整,是,2024年5月3日\n"
)


def bids_of(data: bidwatch.Dataset) -> list[tuple[str, str, float]]:
    return [
        (t, n, round(a, 2))
        for t, n, a in data.bids.select("tender_id", "bidder_name", "amount").iter_rows()
    ]


EXPECTED = [
    ("ZB-001", "大冶市路通公路工程有限公司", 1234500.0),
    ("ZB-001", "湖北鄂东建设集团有限公司", 1251000.0),
    ("ZB-002", "黄石市交通建设有限责任公司", 1200000.0),
]


@pytest.mark.parametrize(
    ("encoding", "bom"),
    [("utf-8", b""), ("utf-8", codecs.BOM_UTF8), ("gbk", b""), ("gb18030", b""), ("utf-16", b"")],
)
def test_csv_encodings_detected(tmp_path: Path, encoding: str, bom: bytes) -> None:
    path = tmp_path / "bids.csv"
    path.write_bytes(bom + CHINESE.encode(encoding))
    data = bidwatch.load(bids=path)
    assert bids_of(data) == EXPECTED
    assert data.rejected.height == 0
    report = data.sources[0]
    assert report.encoding in {"utf-8", "utf-8-sig", "gb18030", "utf-16"}
    if encoding in ("gbk", "gb18030"):
        assert report.encoding == "gb18030"
    assert report.columns["投标报价(万元)"] == "amount x10000"


def test_gb18030_only_characters(tmp_path: Path) -> None:
    # 㙟 is outside GBK but inside GB18030, as in some rural place names.
    text = "tender_id,bidder_name,amount\nT1,㙟村建筑队,100\n"
    path = tmp_path / "bids.csv"
    path.write_bytes(text.encode("gb18030"))
    data = bidwatch.load(bids=path)
    assert data.bids.get_column("bidder_name").to_list() == ["㙟村建筑队"]


def test_undecodable_file_names_line_and_fix(tmp_path: Path) -> None:
    path = tmp_path / "bids.csv"
    path.write_bytes(b"tender_id,amount\nT1,100\nT2,\x81\x20\xff\n")
    with pytest.raises(InputError) as err:
        bidwatch.load(bids=path)
    message = str(err.value)
    assert str(path) in message
    assert "line 3" in message
    assert "encoding" in message


@pytest.mark.parametrize("delimiter", [";", "\t", "|"])
def test_delimiters(tmp_path: Path, delimiter: str) -> None:
    path = tmp_path / "bids.csv"
    path.write_text(CHINESE.replace(",", delimiter), encoding="utf-8")
    assert bids_of(bidwatch.load(bids=path)) == EXPECTED


def test_title_block_above_header(tmp_path: Path) -> None:
    path = tmp_path / "bids.csv"
    path.write_text("某某镇道路硬化工程开标记录表\n\n" + CHINESE, encoding="utf-8")
    data = bidwatch.load(bids=path)
    assert bids_of(data) == EXPECTED
    assert data.sources[0].header_row == 3
    assert data.rejected.height == 0
    # spreadsheet row numbers count the title block
    assert data.bids.get_column("_row").to_list() == [4, 5, 6]


def test_excel(tmp_path: Path) -> None:
    path = tmp_path / "bids.xlsx"
    book = xlsxwriter.Workbook(path)
    sheet = book.add_worksheet("开标记录")
    sheet.write(0, 0, "某某镇道路硬化工程开标记录表")
    sheet.write_row(2, 0, ["项目编号", "投标人", "投标报价(万元)", "是否中标", "投标时间"])
    stamp = book.add_format({"num_format": "yyyy-mm-dd hh:mm"})
    rows = [
        ("ZB-001", "大冶市路通公路工程有限公司", 123.45, "是", datetime(2024, 5, 1, 10, 0)),
        ("ZB-001", "湖北鄂东建设集团有限公司", 125.1, "否", datetime(2024, 5, 1, 10, 5)),
        ("ZB-002", "黄石市交通建设有限责任公司", "壹佰贰拾万元整", "是", datetime(2024, 5, 3)),
        ("ZB-002", "某公司", "待定", "否", datetime(2024, 5, 3)),
    ]
    for i, (tid, name, amount, won, when) in enumerate(rows, start=3):
        sheet.write_row(i, 0, [tid, name, amount, won])
        sheet.write_datetime(i, 4, when, stamp)
    book.close()
    data = bidwatch.load(bids=path)
    assert bids_of(data) == EXPECTED
    assert data.sources[0].sheet == "开标记录"
    assert data.bids.get_column("submitted_at").to_list()[0] == datetime(2024, 5, 1, 10, 0)
    rejected = data.rejected.row(0, named=True)
    assert (rejected["row"], rejected["column"], rejected["value"]) == (7, "amount", "待定")
    assert data.sources[0].rows_read == 4
    assert data.sources[0].rows_rejected == 1


def test_parquet_keeps_types(tmp_path: Path) -> None:
    path = tmp_path / "bids.parquet"
    pl.DataFrame(
        {
            "tender_id": [1, 1, 2],
            "bidder_id": [1305, 881, 1305],
            "amount": [11169000, 11427370, -1],
            "is_winner": [0, 1, 1],
        }
    ).write_parquet(path)
    data = bidwatch.load(bids=path)
    assert data.bids.get_column("tender_id").to_list() == ["1", "1"]
    assert data.bids.get_column("bidder_id").to_list() == ["1305", "881"]
    assert data.bids.get_column("is_winner").to_list() == [False, True]
    assert data.rejected.get_column("row").to_list() == [3]


def test_pandas_and_polars_frames() -> None:
    frame = pd.DataFrame({"Tender": ["a", "a", "b"], "Bid_value": [10.0, 11.0, 12.0]})
    from_pandas = bidwatch.load(bids=frame)
    from_polars = bidwatch.load(bids=pl.from_pandas(frame))
    assert from_pandas.bids.select("tender_id", "amount").equals(
        from_polars.bids.select("tender_id", "amount")
    )
    assert from_pandas.sources[0].path == "<bids frame>"
    assert from_pandas.tenders.get_column("tender_id").sort().to_list() == ["a", "b"]


def test_mapping_file(tmp_path: Path) -> None:
    (tmp_path / "bids.csv").write_text(
        "标段,单位,报价金额（元）,评标方法\nA,甲,100,抽签\nA,乙,110,抽签\n", encoding="utf-8"
    )
    (tmp_path / "mapping.toml").write_text(
        '[bids]\n"标段" = "tender_id"\n"单位" = "bidder_name"\n', encoding="utf-8"
    )
    data = bidwatch.load(bids=tmp_path / "bids.csv", mapping=tmp_path / "mapping.toml")
    assert data.bids.get_column("amount").to_list() == [100.0, 110.0]
    assert data.sources[0].ignored_columns == ("评标方法",)


@pytest.mark.parametrize(
    ("mapping", "fragment"),
    [
        ('[bids]\n"x" = "amout"\n', "not a bids column"),
        ('[bidz]\n"x" = "amount"\n', "unknown section [bidz]"),
        ('[options]\nencodng = "gbk"\n', "unknown option 'encodng'"),
        ('[values.status]\n"ok" = "fine"\n', "use one of valid, disqualified, withdrawn"),
        ("[bids\n", "not valid TOML"),
    ],
)
def test_mapping_mistakes_are_named(tmp_path: Path, mapping: str, fragment: str) -> None:
    (tmp_path / "mapping.toml").write_text(mapping, encoding="utf-8")
    (tmp_path / "bids.csv").write_text("tender_id,amount\nT1,1\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"mapping\.toml") as err:
        bidwatch.load(bids=tmp_path / "bids.csv", mapping=tmp_path / "mapping.toml")
    assert fragment in str(err.value)


def test_stray_quote_is_refused_not_swallowed(tmp_path: Path) -> None:
    rows = ["tender_id,bidder_name,amount", "T1,A,5", 'T1,"B,6'] + [
        f"T{i},X{i},{i}" for i in range(2, 200)
    ]
    path = tmp_path / "bids.csv"
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"row 3, column 2, runs over \d+ lines") as err:
        bidwatch.load(bids=path)
    assert "double quote" in str(err.value)


def test_huge_stray_quote_is_refused(tmp_path: Path) -> None:
    rows = ["tender_id,bidder_name,amount", 'T1,"A,5'] + [
        f"T{i},{'X' * 200},{i}" for i in range(2, 2000)
    ]
    path = tmp_path / "bids.csv"
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    with pytest.raises(InputError, match="double quote"):
        bidwatch.load(bids=path)


def test_old_mac_line_endings(tmp_path: Path) -> None:
    path = tmp_path / "bids.csv"
    path.write_bytes(b"tender_id,amount\rT1,5\rT2,6\r")
    assert bidwatch.load(bids=path).bids.get_column("amount").to_list() == [5.0, 6.0]


@pytest.mark.parametrize("header", ["amount(万元)", "投标报价（万元）", "bid_price(万元)"])
def test_unit_in_any_header_scales(tmp_path: Path, header: str) -> None:
    path = tmp_path / "bids.csv"
    path.write_text(f"tender_id,{header}\nT1,12\nT1,1.5\n", encoding="utf-8")
    assert bidwatch.load(bids=path).bids.get_column("amount").to_list() == [120000.0, 15000.0]


def test_excel_row_numbers_when_the_sheet_starts_lower(tmp_path: Path) -> None:
    path = tmp_path / "bids.xlsx"
    book = xlsxwriter.Workbook(path)
    sheet = book.add_worksheet("bids")
    sheet.write_row(2, 1, ["tender_id", "bidder_name", "amount"])
    sheet.write_row(3, 1, ["T1", "A", 5])
    sheet.write_row(4, 1, ["T1", "B", "abc"])
    sheet.write_row(7, 1, ["T2", "C", -1])
    book.close()
    data = bidwatch.load(bids=path)
    assert data.sources[0].header_row == 3
    assert data.bids.get_column("_row").to_list() == [4]
    bad = data.rejected.filter(pl.col("column") == "amount").select("row", "value").rows()
    assert bad == [(5, "abc"), (8, "-1")]


def test_one_decimal_convention_per_column(tmp_path: Path) -> None:
    path = tmp_path / "bids.csv"
    path.write_text(
        'tender_id,amount\nT1,"1.234"\nT1,"1.234,5"\nT1,"1.234.567"\n', encoding="utf-8"
    )
    assert bidwatch.load(bids=path).bids.get_column("amount").to_list() == [
        1234.0,
        1234.5,
        1234567.0,
    ]
    path.write_text('tender_id,amount\nT1,"1.234"\nT1,"1,234.5"\n', encoding="utf-8")
    assert bidwatch.load(bids=path).bids.get_column("amount").to_list() == [1.234, 1234.5]


def test_pandas_index_with_data_is_kept() -> None:
    frame = pd.DataFrame({"amount": [10.0, 11.0]}, index=pd.Index(["T1", "T2"], name="tender_id"))
    data = bidwatch.load(bids=frame)
    assert data.bids.get_column("tender_id").to_list() == ["T1", "T2"]


def test_unconvertible_pandas_frame_is_an_input_error() -> None:
    frame = pd.DataFrame({"tender_id": ["T1", "T2"], "amount": [100.0, "1,234"]})
    with pytest.raises(InputError, match=r"<bids frame>: the pandas DataFrame cannot be converted"):
        bidwatch.load(bids=frame)


def test_nested_parquet_column_is_an_input_error(tmp_path: Path) -> None:
    path = tmp_path / "bids.parquet"
    pl.DataFrame({"tender_id": ["T1"], "bidder_name": [["A", "B"]], "amount": [1.0]}).write_parquet(
        path
    )
    with pytest.raises(InputError, match="'bidder_name' holds List"):
        bidwatch.load(bids=path)


def test_float_ids() -> None:
    frame = pl.DataFrame({"tender_id": [1e20, float("nan"), 12.0], "amount": [1.0, 2.0, 3.0]})
    data = bidwatch.load(bids=frame)
    assert sorted(data.bids.get_column("tender_id").to_list()) == ["12", "1e+20"]
    assert data.rejected.get_column("reason").to_list() == [
        "tender_id is empty; every bid row needs one"
    ]
