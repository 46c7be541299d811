"""Nothing lost: every input row is used or rejected with file, row, column, value, reason."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

import bidwatch
from bidwatch.errors import InputError

MESSY = """项目编号,投标人编号,投标人,投标报价,投标状态,是否中标,投标时间
T1,A,甲公司,"1,000,000",有效,是,2024-05-01 10:00
T1,B,乙公司,1050000,有效,否,2024-05-01 10:05
T1,B,乙公司,1060000,有效,否,2024-05-01 10:06
T1,C,丙公司,,废标,否,
T2,A,甲公司,abc,有效,否,
,D,丁公司,12,有效,否,
T2,E,戊公司,-5,有效,否,notadate
T2,F,己公司,980000,作废?,否,

T2,G,庚公司,990000,有效,maybe,
T2,H,辛公司,,有效,否,
T2,I,壬公司,995000,有效,否,2024-05-02,extra
"""


@pytest.fixture
def messy(tmp_path: Path) -> bidwatch.Dataset:
    path = tmp_path / "bids.csv"
    path.write_text(MESSY, encoding="utf-8")
    return bidwatch.load(bids=path)


def test_rows_read_equal_used_plus_rejected(messy: bidwatch.Dataset) -> None:
    report = messy.sources[0]
    assert report.rows_read == 12
    assert report.rows_used == messy.bids.height
    assert report.rows_read == report.rows_used + report.rows_rejected
    rejected_rows = set(messy.rejected.get_column("row").to_list())
    used_rows = set(messy.bids.get_column("_row").to_list())
    assert rejected_rows.isdisjoint(used_rows)
    assert rejected_rows | used_rows == set(range(2, 14))


def test_each_problem_has_its_reason(messy: bidwatch.Dataset) -> None:
    by_row: dict[int, list[tuple[str, str | None, str]]] = {}
    for row in messy.rejected.iter_rows(named=True):
        by_row.setdefault(row["row"], []).append((row["column"], row["value"], row["reason"]))
    assert "duplicated bid" in by_row[4][0][2]
    assert "row 3" in by_row[4][0][2]
    assert by_row[6][0][:2] == ("amount", "abc")
    assert by_row[7][0][0] == "tender_id"
    assert "empty" in by_row[7][0][2]
    assert {c for c, _, _ in by_row[8]} == {"amount", "submitted_at"}
    assert by_row[9][0][0] == "status"
    assert "[values.status]" in by_row[9][0][2]
    assert by_row[10][0][2] == "empty row"
    assert by_row[11][0][0] == "is_winner"
    assert by_row[12][0][0] == "amount"
    assert "needs a price" in by_row[12][0][2]
    assert "more fields than the header" in by_row[13][0][2]
    assert 5 not in by_row, "a disqualified bid may have no price"
    assert set(messy.rejected.get_column("file").unique()) == {messy.sources[0].path}


def test_used_rows_parsed(messy: bidwatch.Dataset) -> None:
    rows = messy.bids.sort("_row").select("bidder_id", "amount", "status", "is_winner").rows()
    assert rows == [
        ("A", 1000000.0, "valid", True),
        ("B", 1050000.0, "valid", False),
        ("C", None, "disqualified", False),
    ]


def test_duplicates_across_files_name_the_other_file(tmp_path: Path) -> None:
    first = tmp_path / "tenders.csv"
    first.write_text("tender_id,title\nT1,Road\nT1,Road again\n", encoding="utf-8")
    bids = pl.DataFrame({"tender_id": ["T1"], "amount": [5.0]})
    data = bidwatch.load(bids=bids, tenders=first)
    assert data.tenders.get_column("title").to_list() == ["Road"]
    reason = data.rejected.get_column("reason").to_list()[0]
    assert "duplicated tender: T1 already given at row 2" in reason


def test_tenders_from_bids_and_unknown_tenders(tmp_path: Path) -> None:
    tenders = pl.DataFrame({"tender_id": ["T1", "T3"], "estimate": [100.0, 200.0]})
    bids = pl.DataFrame({"tender_id": ["T1", "T2"], "amount": [90.0, 80.0]})
    data = bidwatch.load(bids=bids, tenders=tenders)
    assert sorted(data.tenders.get_column("tender_id").to_list()) == ["T1", "T2", "T3"]
    assert any("appear only in bids" in n for n in data.notes)


def test_missing_required_column_is_fatal_and_explains(tmp_path: Path) -> None:
    path = tmp_path / "bids.csv"
    path.write_text("标段名称,单位,价格说明\nA,B,C\n", encoding="utf-8")
    with pytest.raises(InputError) as err:
        bidwatch.load(bids=path)
    message = str(err.value)
    assert str(path) in message
    assert "tender_id" in message
    assert "amount" in message
    assert "'单位'" in message, "the columns found are listed"
    assert "--mapping" in message


def test_no_usable_bids_is_fatal(tmp_path: Path) -> None:
    path = tmp_path / "bids.csv"
    path.write_text("tender_id,amount\nT1,abc\nT2,-1\n", encoding="utf-8")
    with pytest.raises(InputError, match="no usable bids") as err:
        bidwatch.load(bids=path)
    assert "row 2 amount" in str(err.value)


@pytest.mark.parametrize(
    ("name", "content", "fragment"),
    [
        ("bids.csv", b"", "empty"),
        ("bids.xls", b"\xd0\xcf", "save as .xlsx"),
        ("bids.xlsx", b"not a zip", "cannot open as an Excel workbook"),
        ("bids.parquet", b"PAR1junk", "cannot read as Parquet"),
        ("bids.dat", b"x", "unknown file type"),
    ],
)
def test_unreadable_files(tmp_path: Path, name: str, content: bytes, fragment: str) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(InputError, match=fragment) as err:
        bidwatch.load(bids=path)
    assert str(path) in str(err.value)


def test_duplicate_headers_are_fatal(tmp_path: Path) -> None:
    path = tmp_path / "bids.csv"
    path.write_text("tender_id,amount,amount\nT1,1,2\n", encoding="utf-8")
    with pytest.raises(InputError, match="appears twice"):
        bidwatch.load(bids=path)


def test_two_headers_for_one_column_are_fatal(tmp_path: Path) -> None:
    path = tmp_path / "bids.csv"
    path.write_text("tender_id,投标人,投标单位,amount\nT1,a,b,1\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"both map to bids\.bidder_name"):
        bidwatch.load(bids=path)


def test_the_same_file_twice_is_read_once(tmp_path: Path) -> None:
    from .conftest import FIXTURES

    package = FIXTURES / "ingest" / "ocds" / "release_package_lots.json"
    once = bidwatch.load(ocds=[package])
    twice = bidwatch.load(ocds=[package, package])
    assert twice.bids.height == once.bids.height
    assert any("given twice" in n for n in twice.notes)
    for report in twice.sources:
        assert report.rows_read == report.rows_used + report.rows_rejected


def test_counts_come_from_the_tables_not_from_each_other(tmp_path: Path) -> None:
    path = tmp_path / "bids.csv"
    path.write_text(MESSY, encoding="utf-8")
    data = bidwatch.load(bids=path)
    report = data.sources[0]
    assert report.rows_used == data.bids.filter(pl.col("_src") == 0).height
    assert report.rows_rejected == data.rejected.get_column("row").n_unique()


def test_bids_that_name_no_firm_are_rejected(tmp_path: Path) -> None:
    long_name = "路通" * 5000
    path = tmp_path / "bids.csv"
    path.write_text(
        "tender_id,bidder_id,bidder_name,amount\n"
        "T1,,有限公司,10\n"
        "T1,,!!!,11\n"
        "T1,,,12\n"
        "T1,A7,有限公司,13\n"
        f"T1,,{long_name},14\n"
        "T1,,Acme 路桥 GmbH,15\n"
        "T1,,\x07大冶市路通\u200b公路工程有限公司,16\n",
        encoding="utf-8",
    )
    data = bidwatch.load(bids=path)
    reasons = dict(data.rejected.select("row", "reason").iter_rows())
    assert set(reasons) == {2, 3, 4}
    assert "names no firm" in reasons[2]
    assert "names no firm" in reasons[3]
    assert "names no bidder" in reasons[4]
    kept = data.bids.get_column("bidder_name").to_list()
    assert "大冶市路通公路工程有限公司" in kept, "control and format characters are dropped"
    result = bidwatch.scan(data)
    assert result.ranking("firm").height == 4
