"""Behaviour particular to one detector, beyond the golden cases and the shared contract."""

from __future__ import annotations

import json
import math

import polars as pl
import pytest

import bidwatch
from bidwatch import entities
from bidwatch.detectors import get
from bidwatch.detectors._base import NotComputable
from bidwatch.identifiers import trace_key


def resolved(bids: dict[str, list[object]], **tenders: list[object]) -> bidwatch.Dataset:
    frame = pl.DataFrame(bids)
    tender_frame = pl.DataFrame(tenders) if tenders else None
    return entities.resolve(bidwatch.load(bids=frame, tenders=tender_frame))


@pytest.mark.parametrize(
    ("trace", "a", "b"),
    [
        ("phone", "+86 138-0000-1234", "13800001234"),
        ("phone", "0086 13800001234", "138 0000 1234"),
        ("mac_address", "28-D2-44-92-65-6A", "28:d2:44:92:65:6a"),
        ("machine_code", " ABC123 ", "abc123"),
        ("address", "黄石市 下陆区，团城山路8号", "黄石市下陆区团城山路8号"),
        ("email", "Bids@Example.COM", "bids@example.com"),
    ],
)
def test_trace_values_written_differently_are_equal(trace: str, a: str, b: str) -> None:
    keys = (
        pl.DataFrame({"value": [a, b]})
        .select(trace_key(trace, pl.col("value")))
        .to_series()
        .to_list()
    )
    assert keys[0] == keys[1]


def test_shared_traces_need_a_trace_column() -> None:
    data = resolved({"tender_id": ["T"] * 2, "bidder_id": ["a", "b"], "amount": [1.0, 2.0]})
    with pytest.raises(NotComputable, match="no trace column"):
        get("shared-traces")().detect(data)


def test_one_firm_under_two_spellings_is_not_two_bidders() -> None:
    data = resolved(
        {
            "tender_id": ["T", "T", "T"],
            "bidder_name": ["Road One Co", "ROAD ONE CO", "Other Co"],
            "amount": [1.0, 2.0, 3.0],
            "machine_code": ["M1", "M1", "M2"],
        }
    )
    assert len(get("shared-traces")().detect(data)) == 0


def test_shared_traces_without_bidder_identities_count_rows() -> None:
    data = resolved(
        {
            "tender_id": ["T", "T", "U"],
            "amount": [1.0, 2.0, 3.0],
            "deposit_account": ["A", "A", "B"],
        }
    )
    found = get("shared-traces")().detect(data)
    assert found.frame.get_column("subject_id").to_list() == ["T"]
    assert found.frame.get_column("firms").to_list() == [[]]


def test_shared_trace_score_combines_trace_types() -> None:
    data = resolved(
        {
            "tender_id": ["T"] * 3,
            "bidder_id": ["a", "b", "c"],
            "amount": [1.0, 2.0, 3.0],
            "ip_address": ["10.0.0.1", "10.0.0.1", "10.0.0.2"],
            "address": ["X路1号", "X路1号", "Y路2号"],
        }
    )
    finding = next(iter(get("shared-traces")().detect(data)))
    assert finding.score == pytest.approx(1 - (1 - 0.8) * (1 - 0.6))
    assert {s["trace"] for s in finding.evidence["shared"]} == {"ip_address", "address"}
    assert finding.firms == ("a", "b")


def test_identical_bid_chance() -> None:
    data = resolved(
        {
            "tender_id": ["T"] * 4,
            "bidder_id": ["a", "b", "c", "d"],
            "amount": [1234567.0, 1234567.0, 1300000.0, 1400000.0],
        }
    )
    finding = next(iter(get("identical-bids")().detect(data)))
    width = 1400000.0 - 1234567.0
    assert finding.value == pytest.approx(6 * 1.0 / width)
    assert finding.firms == ("a", "b")


def test_regular_difference_chance() -> None:
    amounts = [1000000.01, 1010000.02, 1020000.03, 1100000.00]
    data = resolved({"tender_id": ["T"] * 4, "bidder_id": list("abcd"), "amount": amounts})
    finding = next(iter(get("regular-differences")().detect(data)))
    gap = (1100000.00 - 1000000.01) * 100 / 3
    assert finding.value == pytest.approx(math.comb(2, 1) * (2 * 3 / gap))
    step = finding.evidence["steps"][0]
    assert step["kind"] == "arithmetic"
    assert step["step"] == pytest.approx(10000.01)
    assert finding.firms == ("a", "b", "c")


def test_bid_pattern_grades_every_assessed_tender(market: bidwatch.Dataset) -> None:
    data = entities.resolve(market)
    found = get("bid-pattern")().detect(data)
    assert found.frame.height == found.scanned
    scores = found.frame.select("value", "score")
    assert (scores["score"] - scores["value"] ** 4).abs().max() < 1e-12  # type: ignore[operator]
    evidence = json.loads(found.frame.get_column("evidence")[0])
    assert 4 <= len(evidence["screens"]) <= 8
    top = get("bid-pattern")(report_from=0.9).detect(data)
    assert top.scanned == found.scanned
    assert 0 < top.frame.height < 0.2 * found.scanned


def test_identical_bids_of_unknown_bidders_count_when_their_rows_differ() -> None:
    differ = resolved(
        {
            "tender_id": ["T", "T", "T"],
            "amount": [1234567.89, 1234567.89, 1300000.0],
            "is_winner": [True, False, False],
        }
    )
    assert get("identical-bids")().detect(differ).frame.get_column("subject_id").to_list() == ["T"]
    # Rows alike in every field may be one bid recorded twice (a consortium, member by member).
    alike = resolved({"tender_id": ["T", "T", "T"], "amount": [1234567.89, 1234567.89, 1300000.0]})
    assert len(get("identical-bids")().detect(alike)) == 0


def test_round_identical_bids_implicate_no_one() -> None:
    data = resolved(
        {
            "tender_id": ["T"] * 5,
            "bidder_id": list("abcde"),
            "amount": [1000000.0, 1000000.0, 1234567.89, 1234567.89, 1300000.0],
        }
    )
    finding = next(iter(get("identical-bids")().detect(data)))
    assert finding.firms == ("c", "d")
    assert [g["amount"] for g in finding.evidence["groups"]] == [1234567.89]


def test_regular_differences_names_each_kind_of_step() -> None:
    amounts = [1000000.01, 1100000.02, 1200000.03, 1309090.94]
    data = resolved({"tender_id": ["T"] * 4, "bidder_id": list("abcd"), "amount": amounts})
    message = next(iter(get("regular-differences")().detect(data))).message
    assert "1 step(s) of equal difference and 1 step(s) of equal ratio" in message
