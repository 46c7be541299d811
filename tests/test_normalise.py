"""Values as people write them: amounts, dates, yes/no, method names, headers with units."""

from __future__ import annotations

from datetime import datetime

import polars as pl
import pytest

from bidwatch.normalise import amount_text, chinese_amount, date_text, parse_column
from bidwatch.schema import BIDS, TENDERS, header_key, split_unit


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1234567.89", 1234567.89),
        ("1,234,567.89", 1234567.89),
        ("¥1,234,567", 1234567.0),
        ("￥１２３，４５６", 123456.0),
        ("RMB 1,000", 1000.0),
        ("$ 250.5", 250.5),
        ("€1.234,56", 1234.56),
        ("12,5", 12.5),
        ("123.4万", 1234000.0),
        ("123.4万元", 1234000.0),
        ("1.2亿", 120000000.0),
        ("3,000元", 3000.0),
        ("壹佰贰拾万元整", 1200000.0),
        ("叁仟元伍角", 3000.5),
        ("壹亿贰仟万元整", 120000000.0),
        ("拾万元", 100000.0),
        ("1 234 567", 1234567.0),
        ("1.5e6", 1500000.0),
    ],
)
def test_amounts(text: str, expected: float) -> None:
    value, problem = amount_text(text)
    assert problem is None
    assert value == pytest.approx(expected)


@pytest.mark.parametrize("text", ["abc", "12元3", "nan", "inf", "--5", "1,2,3.4.5"])
def test_bad_amounts_say_why(text: str) -> None:
    value, problem = amount_text(text)
    assert value is None
    assert problem is not None
    assert repr(text) in problem


def test_header_unit_scales_plain_numbers_only() -> None:
    assert amount_text("123.4", 10000.0) == (1234000.0, None)
    assert amount_text("壹佰万元整", 10000.0) == (1000000.0, None)
    assert amount_text("3,000元", 10000.0) == (3000.0, None)


def test_chinese_amount_rejects_other_text() -> None:
    assert chinese_amount("一二三abc") is None
    assert chinese_amount("伍拾元") == (50.0, True)
    assert chinese_amount("伍拾") == (50.0, False)
    assert chinese_amount("一二三") is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-03-01", datetime(2024, 3, 1)),
        ("2024/3/1 9:30", datetime(2024, 3, 1, 9, 30)),
        ("2024年3月1日", datetime(2024, 3, 1)),
        ("2024年3月1日 09:30", datetime(2024, 3, 1, 9, 30)),
        ("20240301", datetime(2024, 3, 1)),
        ("1050537600", datetime(2003, 4, 17)),
        ("45352", datetime(2024, 3, 1)),
        ("2016-06-02T12:00:00+03:00", datetime(2016, 6, 2, 9, 0)),
        ("2024-03-01T09:30:00Z", datetime(2024, 3, 1, 9, 30)),
    ],
)
def test_dates(text: str, expected: datetime) -> None:
    assert date_text(text) == (expected, None)


def test_date_format_from_mapping() -> None:
    assert date_text("01.03.2024", "%d.%m.%Y") == (datetime(2024, 3, 1), None)
    value, problem = date_text("2024-03-01", "%d.%m.%Y")
    assert value is None
    assert problem is not None
    assert "date_format" in problem


def test_column_parse_is_vectorised_and_reports_each_bad_row() -> None:
    source = pl.Series(["1,000", "2000", None, "x", "-5", "0", "壹万元"])
    values, problems = parse_column(BIDS.column("amount"), source, None, {}, None)
    assert values.to_list() == [1000.0, 2000.0, None, None, None, None, 10000.0]
    reasons = problems.to_list()
    assert reasons[:3] == [None, None, None]
    assert "not a number" in reasons[3]
    assert "negative" in reasons[4]
    assert "zero" in reasons[5]
    assert reasons[6] is None


def test_amounts_no_tender_could_have_are_refused() -> None:
    source = pl.Series(["1e17", "999999999999999", "2亿亿"])
    values, problems = parse_column(BIDS.column("amount"), source, None, {}, None)
    assert values.to_list() == [None, 999_999_999_999_999.0, None]
    reasons = problems.to_list()
    assert "amount 1e17 is above 1e+15" in reasons[0]
    assert "check the unit" in reasons[0]
    assert reasons[1] is None
    floats = pl.Series([1e17, 1.5e6])
    values, problems = parse_column(BIDS.column("amount"), floats, None, {}, None)
    assert values.to_list() == [None, 1.5e6]


def test_booleans() -> None:
    source = pl.Series(["是", "否", "1", "0", "TRUE", "no", None, "maybe", "1.0"])
    values, problems = parse_column(BIDS.column("is_winner"), source, None, {}, None)
    assert values.to_list() == [True, False, True, False, True, False, None, None, True]
    assert problems.to_list()[7] is not None
    assert sum(p is not None for p in problems.to_list()) == 1


def test_award_methods_by_word_and_marker() -> None:
    source = pl.Series(
        ["最低价", "经评审的最低投标价法", "综合评估法（暗标）", "合理低价法", "priceOnly", "抽签"]
    )
    values, problems = parse_column(TENDERS.column("award_method"), source, None, {}, None)
    assert values.to_list() == [
        "lowest_price",
        "lowest_price",
        "scoring",
        "average_bid",
        "lowest_price",
        None,
    ]
    last = problems.to_list()[-1]
    assert "[values.award_method]" in last


def test_user_value_map_wins() -> None:
    source = pl.Series(["抽签"])
    values, problems = parse_column(
        TENDERS.column("award_method"),
        source,
        None,
        {"award_method": {"抽签": "average_bid"}},
        None,
    )
    assert values.to_list() == ["average_bid"]
    assert problems.to_list() == [None]


def test_ids_lose_spreadsheet_decimals() -> None:
    values, _ = parse_column(
        BIDS.column("bidder_id"), pl.Series([1305.0, 7.0, 2.5]), None, {}, None
    )
    assert values.to_list() == ["1305", "7", "2.5"]
    values, _ = parse_column(
        BIDS.column("bidder_id"), pl.Series([" 1305.0 ", "", "A7"]), None, {}, None
    )
    assert values.to_list() == ["1305", None, "A7"]


def test_headers() -> None:
    assert split_unit("投标报价（万元）") == ("投标报价", 10000.0)
    assert split_unit("Pre-Tender Estimate (PTE)") == ("Pre-Tender Estimate (PTE)", None)
    assert header_key(" Bid_Value ") == "bidvalue"
    assert header_key("项目 编号") == "项目编号"
