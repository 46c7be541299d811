"""The within-tender rule detectors: values computed by hand, edge cases, parameters."""

from __future__ import annotations

import itertools
import math
from datetime import datetime, timedelta
from typing import Any

import polars as pl
import pytest

import bidwatch
from bidwatch import entities
from bidwatch.config import Config
from bidwatch.detectors import get
from bidwatch.detectors._base import NotComputable
from bidwatch.findings import Finding

D0 = datetime(2024, 5, 20, 9, 30)


def resolved(bids: dict[str, list[Any]], **tenders: list[Any]) -> bidwatch.Dataset:
    frame = pl.DataFrame(bids)
    tender_frame = pl.DataFrame(tenders) if tenders else None
    return entities.resolve(bidwatch.load(bids=frame, tenders=tender_frame))


def findings(name: str, data: bidwatch.Dataset, **params: Any) -> dict[str, Finding]:
    return {f.subject.id: f for f in get(name)(**params).detect(data)}


def assessed(name: str, data: bidwatch.Dataset, **params: Any) -> list[str]:
    return get(name)(**params).detect(data).assessed.to_list()


# ------------------------------------------------------------------------------ round-bids


def _tail(chances: list[float], k: int) -> float:
    """P(at least k of independent events with these chances), by enumeration."""
    total = 0.0
    for outcome in itertools.product((0, 1), repeat=len(chances)):
        if sum(outcome) >= k:
            total += math.prod(c if o else 1 - c for c, o in zip(chances, outcome, strict=True))
    return total


def _unit(amount: float) -> int:
    cents = round(amount * 100)
    z = 0
    while z < 12 and cents % 10 ** (z + 1) == 0:
        z += 1
    return z


def _needed(amount: float, significant: int = 3) -> int:
    return min(max(len(str(round(amount * 100))) - significant, 0), 12)


def _habits(
    rows: list[tuple[str, str, float]],
    tender: str,
    won: set[tuple[str, str]] = frozenset(),  # type: ignore[assignment]
    prior: float = 10.0,
) -> list[float]:
    """Each bid of ``tender``: the mean of min(1, 10^(z - t)) over its firm's winning bids
    in other tenders and ``prior`` pseudo-bids written like the input's."""
    everyone = [_unit(a) for _, _, a in rows]
    out = []
    for t_id, firm, amount in rows:
        if t_id != tender:
            continue
        t = _needed(amount)
        reach = [
            min(1.0, 10.0 ** (_unit(a) - t))
            for o, f, a in rows
            if f == firm and o != tender and (o, f) in won
        ]
        base = sum(min(1.0, 10.0 ** (z - t)) for z in everyone) / len(everyone)
        out.append((sum(reach) + prior * base) / (len(reach) + prior))
    return out


def test_round_bid_chance_is_the_tail_of_the_bidders_habits() -> None:
    # 10 tenders of 4 priced bids; tender R has 3 round ones, tender Q one: 4 of 40 round.
    tenders, firms, amounts = [], [], []
    for t in range(10):
        for b in range(4):
            tenders.append(f"P{t}")
            firms.append(f"f{b}")
            amounts.append(1_000_000 + 12_345.67 * (b + 1) + 101.01 * t)
    amounts[0:4] = [1_234_567.89, 1_260_000.0, 1_270_000.0, 1_290_000.0]
    amounts[4] = 880_000.0
    tenders[0:4] = ["R"] * 4
    tenders[4:8] = ["Q"] * 4
    # f0 wins R, Q (with its round bid) and P2-P5; f1 wins P6-P9 with priced bids; f2 and
    # f3 never win, so only the input's mix speaks for them.
    won = {("R", "f0"), ("Q", "f0")} | {(f"P{t}", "f0") for t in range(2, 6)}
    won |= {(f"P{t}", "f1") for t in range(6, 10)}
    winner = [(t, f) in won for t, f in zip(tenders, firms, strict=True)]
    data = resolved(
        {"tender_id": tenders, "bidder_id": firms, "amount": amounts, "is_winner": winner}
    )
    found = findings("round-bids", data, max_chance=0.05)
    habits = _habits(list(zip(tenders, firms, amounts, strict=True)), "R", won)
    assert habits[0] > habits[2] == habits[3] > habits[1]
    tail = _tail(habits, 3)
    assert set(found) == {"R"}
    assert found["R"].value == pytest.approx(tail, rel=1e-9)
    assert found["R"].score == pytest.approx(1 - tail)
    assert found["R"].evidence["expected_round"] == pytest.approx(sum(habits))
    assert found["R"].firms == ("f1", "f2", "f3")  # the round bids, not the priced winner
    assert found["R"].evidence["round_bids"] == [1_260_000.0, 1_270_000.0, 1_290_000.0]


def test_firms_that_always_round_are_not_flagged_for_it() -> None:
    # 48 tenders, each with two of r0-r2, who write every bid to a round figure and win the
    # even tenders with one, and p0-p2, who price theirs and win the odd ones.
    rows, winner = [], []
    for t in range(48):
        for b in (t % 3, (t + 1) % 3):
            rows.append((f"T{t}", f"r{b}", 1_000_000.0 + 10_000 * (b + t)))
            winner.append(t % 2 == 0 and b == t % 3)
        for b in range(3):
            rows.append((f"T{t}", f"p{b}", 1_003_456.78 + 1_001.01 * (b + t)))
            winner.append(t % 2 == 1 and b == t % 3)
    tenders, firms, amounts = (list(c) for c in zip(*rows, strict=True))

    def scan() -> dict[str, Finding]:
        bids = {"tender_id": tenders, "bidder_id": firms, "amount": amounts, "is_winner": winner}
        return findings("round-bids", resolved(bids))

    assert scan() == {}, "two round bids by firms that round even to win are expected"
    # p0-p2, who price even their winning bids, round in T1 only: that breaks their habit.
    for i, (t, f, _) in enumerate(rows):
        if t == "T1" and f.startswith("p"):
            amounts[i] = 2_000_000.0 + 100_000 * int(f[1])
    assert set(scan()) == {"T1"}


@pytest.mark.parametrize(
    ("amount", "significant", "is_round"),
    [
        (1_230_000.0, 3, True),
        (1_234_000.0, 3, False),
        (1_234_000.0, 4, True),
        (1_234_567.80, 8, True),
        (1_234_567.89, 8, False),
        (80_000.0, 1, True),
    ],
)
def test_roundness_counts_significant_digits(
    amount: float, significant: int, is_round: bool
) -> None:
    data = resolved(
        {
            "tender_id": ["T"] * 4 + ["U"] * 4,
            "bidder_id": list("abcdabcd"),
            "amount": [amount] * 4 + [1_111_111.11, 1_222_222.22, 1_333_333.33, 1_444_444.44],
        }
    )
    found = findings("round-bids", data, max_significant=significant, max_chance=1.0)
    assert ("T" in found) == is_round
    if is_round:
        assert found["T"].evidence["share_round_in_input"] == pytest.approx(0.5)


def test_round_bids_leave_out_bids_at_the_estimate() -> None:
    data = resolved(
        {
            "tender_id": ["T"] * 3 + ["U"] * 3 + ["V"] * 3,
            "bidder_id": list("abcabcabc"),
            "amount": [1_500_000.0] * 3
            + [1_111_111.11, 1_200_000.0, 1_300_000.0]
            + [1_234_567.89, 1_345_678.91, 1_456_789.12],
        },
        tender_id=["T", "U", "V"],
        estimate=[1_500_000.0, 1_500_000.0, 1_500_000.0],
    )
    found = get("round-bids")(max_chance=1.0).detect(data)
    assert found.assessed.to_list() == ["U", "V"]
    # T's bids equal the estimate and are not counted: 2 of the 6 counted bids are round,
    # and each firm's one other counted bid (in V) is priced.
    finding = next(iter(found))
    assert finding.evidence["share_round_in_input"] == pytest.approx(1 / 3)
    counted = [
        ("U", "a", 1_111_111.11),
        ("U", "b", 1_200_000.0),
        ("U", "c", 1_300_000.0),
        ("V", "a", 1_234_567.89),
        ("V", "b", 1_345_678.91),
        ("V", "c", 1_456_789.12),
    ]
    assert finding.value == pytest.approx(_tail(_habits(counted, "U"), 2), rel=1e-9)


# ---------------------------------------------------------------------- cover-band / gap


def _ladder(tender: str, winner: float, steps: list[float]) -> list[tuple[str, str, float]]:
    bidders = ["w", *[f"l{i}" for i in range(1, len(steps) + 1)]]
    amounts = [winner, *[winner * (1 + s) for s in steps]]
    return [(tender, b, a) for b, a in zip(bidders, amounts, strict=True)]


def _price_data(rows: list[tuple[str, str, float]], rules: dict[str, str]) -> bidwatch.Dataset:
    return resolved(
        {
            "tender_id": [r[0] for r in rows],
            "bidder_id": [r[1] for r in rows],
            "amount": [r[2] for r in rows],
        },
        tender_id=list(rules),
        award_method=list(rules.values()),
    )


def test_cover_band_is_the_width_holding_k_losing_bids() -> None:
    rows = _ladder("A", 1_000_000.0, [0.001, 0.003, 0.05, 0.08])
    rows += _ladder("S", 1_000_000.0, [0.001, 0.003, 0.05])
    rows += _ladder("B", 2_000_000.0, [0.02, 0.04])
    data = _price_data(rows, {"A": "lowest_price", "S": "scoring", "B": "lowest_price"})
    found = findings("cover-band", data, threshold=0.01)
    assert set(found) == {"A"}
    assert found["A"].value == pytest.approx(0.003)
    assert found["A"].threshold == pytest.approx(0.01)
    assert found["A"].firms == ("l1", "l2", "w")  # the winner and the two covers in the band
    assert found["A"].evidence["losing_bids_in_band"] == 2
    # Scoring tenders are not judged; three covers need four bids, which B lacks.
    assert assessed("cover-band", data, threshold=0.01) == ["A", "B"]
    wider = findings("cover-band", data, threshold=0.01, covers=3)
    assert wider == {}
    assert assessed("cover-band", data, threshold=0.01, covers=3) == ["A"]


def test_cover_band_fence_needs_enough_tenders() -> None:
    data = _price_data(_ladder("A", 1_000_000.0, [0.01, 0.02]), {"A": "lowest_price"})
    with pytest.raises(NotComputable, match="min_comparable"):
        get("cover-band")().detect(data)


def test_cover_bid_gap_judges_lowest_price_and_unstated_rules_only() -> None:
    rows = _ladder("A", 1_000_000.0, [0.0004, 0.03])
    rows += _ladder("S", 1_000_000.0, [0.0004, 0.03])
    rows += _ladder("U", 1_000_000.0, [0.0004, 0.03])
    rows += _ladder("B", 1_000_000.0, [0.02, 0.03])
    data = _price_data(rows, {"A": "lowest_price", "S": "average_bid", "B": "lowest_price"})
    found = findings("cover-bid-gap", data, threshold=0.001)
    assert set(found) == {"A", "U"}
    assert found["A"].value == pytest.approx(0.0004)
    assert "0.0004 < 0.001" in found["A"].message
    assert assessed("cover-bid-gap", data, threshold=0.001) == ["A", "B", "U"]


# ------------------------------------------------------------------------ deep-discount-win


def test_deep_discount_implicates_the_winner_only() -> None:
    data = resolved(
        {
            "tender_id": ["A", "A", "A", "B", "B"],
            "bidder_id": ["w", "x", "y", "w", "x"],
            "amount": [550_000.0, 600_000.0, 640_000.0, 900_000.0, 950_000.0],
            "is_winner": [True, False, False, True, False],
        },
        tender_id=["A", "B"],
        estimate=[1_000_000.0, 1_000_000.0],
    )
    found = findings("deep-discount-win", data, threshold=0.6)
    assert set(found) == {"A"}
    assert found["A"].value == pytest.approx(0.55)
    assert found["A"].firms == ("w",)
    assert "0.55 < 0.6" in found["A"].message


# ------------------------------------------------------------------------- single-valid-bid


def _valid_bid_market(
    singles: dict[str, list[str | None]], others: int, procedure: dict[str, str] | None = None
) -> bidwatch.Dataset:
    tender, bidder, amount, status = [], [], [], []
    for tid, statuses in singles.items():
        for i, s in enumerate(statuses):
            tender.append(tid)
            bidder.append(f"b{i}")
            amount.append(None if s == "withdrawn" else 1_500_000.0 + 1000 * i)
            status.append(s)
    for t in range(others):
        for i in range(3):
            tender.append(f"O{t:02d}")
            bidder.append(f"b{i}")
            amount.append(1_500_000.0 + 1000 * i)
            status.append("valid")
    ids = sorted(set(tender))
    procedure = procedure or {}
    return resolved(
        {"tender_id": tender, "bidder_id": bidder, "amount": amount, "status": status},
        tender_id=ids,
        procedure=[procedure.get(t, "open") for t in ids],
    )


def test_single_valid_bid_scores_by_rarity_among_comparable_tenders() -> None:
    singles: dict[str, list[str | None]] = {
        "A": ["valid"],
        "B": ["valid", "disqualified", "withdrawn"],
        "C": [None, "disqualified"],  # no status counts as valid
        "D": ["valid", "valid", "disqualified"],  # two valid: not flagged
        "E": ["valid"],  # single source: not assessed
    }
    data = _valid_bid_market(singles, others=15, procedure={"E": "single_source"})
    found = findings("single-valid-bid", data, min_comparable=10)
    share = 3 / 19  # A, B, C among the 19 assessed tenders
    assert set(found) == {"A", "B", "C"}
    assert found["B"].value == pytest.approx(share)
    assert found["B"].score == pytest.approx(1 - share)
    assert found["B"].evidence["set_aside"] == ["disqualified", "withdrawn"]
    assert found["B"].firms == ("b0",)
    assert "E" not in assessed("single-valid-bid", data, min_comparable=10)
    # Where single bids are common they say little: above max_share nothing is flagged.
    assert findings("single-valid-bid", data, min_comparable=10, max_share=0.15) == {}


def test_single_valid_bid_needs_a_comparison() -> None:
    data = _valid_bid_market({"A": ["valid"]}, others=3)
    with pytest.raises(NotComputable, match="min_comparable"):
        get("single-valid-bid")().detect(data)


# ---------------------------------------------------------------------- lowest-disqualified


def _status_data(
    rows: list[tuple[str, str, float | None, str, bool]], rules: dict[str, str]
) -> bidwatch.Dataset:
    return resolved(
        {
            "tender_id": [r[0] for r in rows],
            "bidder_id": [r[1] for r in rows],
            "amount": [r[2] for r in rows],
            "status": [r[3] for r in rows],
            "is_winner": [r[4] for r in rows],
        },
        tender_id=list(rules),
        award_method=list(rules.values()),
    )


def test_lowest_disqualified_scores_the_saving_forgone() -> None:
    rows = [
        ("A", "w", 1_000_000.0, "valid", True),
        ("A", "x", 920_000.0, "disqualified", False),
        ("A", "y", 1_050_000.0, "valid", False),
        ("V", "w", 1_000_000.0, "valid", True),
        ("V", "x", 920_000.0, "disqualified", False),
        ("T", "w", 1_000_000.0, "valid", True),  # a valid bid ties with the disqualified one
        ("T", "x", 980_000.0, "disqualified", False),
        ("T", "y", 980_000.0, "valid", False),
    ]
    data = _status_data(rows, {"A": "lowest_price", "V": "average_bid", "T": "lowest_price"})
    found = findings("lowest-disqualified", data)
    assert set(found) == {"A"}
    saving = (1_000_000 - 920_000) / 1_000_000
    assert found["A"].value == pytest.approx(saving)
    assert found["A"].score == pytest.approx(1 - math.exp(-saving / 0.05))
    assert found["A"].firms == ("w",)
    assert found["A"].evidence["set_aside"] == {"status": "disqualified", "amount": 920_000.0}
    assert assessed("lowest-disqualified", data) == ["A", "T"]
    everywhere = ("lowest_price", "average_bid")
    assert set(findings("lowest-disqualified", data, award_methods=everywhere)) == {"A", "V"}
    assert findings("lowest-disqualified", data, min_saving=0.1) == {}


def test_award_methods_come_from_a_toml_list() -> None:
    config = Config.from_dict(
        {"detectors": {"lowest-disqualified": {"award_methods": ["scoring", "unstated"]}}}
    )
    chosen = next(d for d in config.detectors() if d.name == "lowest-disqualified")
    assert chosen.award_methods == ("scoring", "unstated")
    with pytest.raises(ValueError, match="award_methods"):
        get("lowest-disqualified")(award_methods=("lowest",))


# ---------------------------------------------------------------------------- sole-survivor


def test_sole_survivor_chance_is_the_rate_to_the_power_of_the_rivals() -> None:
    rows: list[tuple[str, str, float | None, str, bool]] = [
        ("A", "w", 1_000_000.0, "valid", True),
        ("A", "x", 990_000.0, "disqualified", False),
        ("A", "y", None, "withdrawn", False),
        ("B", "w", 1_000_000.0, "valid", True),
        ("B", "x", 1_010_000.0, "valid", False),
        ("B", "y", 1_020_000.0, "disqualified", False),
        ("C", "w", 1_000_000.0, "disqualified", True),  # the winner set aside: inconsistent
        ("C", "x", 990_000.0, "disqualified", False),
    ]
    rows += [(f"P{i}", b, 1_000_000.0 + i, "valid", b == "w") for i in range(4) for b in "wxy"]
    data = _status_data(rows, {})
    found = findings("sole-survivor", data, max_chance=0.5)
    rate = 4 / 13  # set-aside bids among the 13 losing bids (C's winner is not one)
    assert set(found) == {"A"}
    assert found["A"].value == pytest.approx(rate**2)
    assert found["A"].firms == ("w",)
    assert "C" not in assessed("sole-survivor", data)
    assert findings("sole-survivor", data, max_chance=rate**2 * 0.99) == {}


# ------------------------------------------------------------------------------ late-winner


def _timed(minutes_before: dict[str, list[float]], deadlines: bool = True) -> bidwatch.Dataset:
    """Bidder 0 wins; times are minutes before a common deadline."""
    tender, bidder, amount, winner, at = [], [], [], [], []
    for tid, minutes in minutes_before.items():
        for i, m in enumerate(minutes):
            tender.append(tid)
            bidder.append(f"b{i}")
            amount.append(1_000_000.0 + i)
            winner.append(i == 0)
            at.append(D0 - timedelta(minutes=m))
    ids = list(minutes_before)
    extra: dict[str, list[Any]] = {"tender_id": ids}
    if deadlines:
        extra["bid_deadline"] = [D0] * len(ids)
    else:
        extra["award_method"] = ["lowest_price"] * len(ids)
    return resolved(
        {
            "tender_id": tender,
            "bidder_id": bidder,
            "amount": amount,
            "is_winner": winner,
            "submitted_at": at,
        },
        **extra,
    )


def test_late_winner_chance_uses_the_input_distribution_of_leads() -> None:
    times = {"A": [5.0, 600.0, 900.0, 1200.0], "B": [30.0, 10.0, 800.0, 1000.0]}
    times |= {f"P{i}": [300.0 + i, 400.0, 500.0, 700.0] for i in range(6)}
    data = _timed(times)
    found = findings("late-winner", data, max_chance=0.1)
    f = 1 / 32  # only A's winning bid is as late as itself, among 32 timed bids
    assert set(found) == {"A"}  # B's winner came 30 min before, but a rival came later
    assert found["A"].value == pytest.approx((1 - (1 - f) ** 4) / 4)
    assert found["A"].firms == ("b0",)
    assert found["A"].evidence["lead_minutes"] == pytest.approx(5.0)
    assert findings("late-winner", data, max_chance=0.1, window_hours=0.05) == {}


def test_late_winner_after_the_deadline_and_without_one() -> None:
    data = _timed({"A": [-10.0, 60.0], "B": [300.0, 400.0]})
    found = findings("late-winner", data, max_chance=0.5)
    assert "10.0 min after the deadline" in found["A"].message
    # Without deadlines only the order is known: chance 1/n.
    bare = _timed({"A": [5.0, 60.0, 90.0, 120.0]}, deadlines=False)
    only = findings("late-winner", bare, max_chance=0.3)
    assert only["A"].value == pytest.approx(1 / 4)
    assert "no deadline known" in only["A"].message
    assert findings("late-winner", bare, max_chance=0.2) == {}


def test_late_winner_needs_submission_times() -> None:
    data = resolved(
        {
            "tender_id": ["A", "A"],
            "bidder_id": ["a", "b"],
            "amount": [1.0, 2.0],
            "is_winner": [True, False],
            "submitted_at": [None, D0],
        }
    )
    assert get("late-winner")().detect(data).assessed.to_list() == []
    with pytest.raises(NotComputable, match="submitted_at"):
        get("late-winner")().detect(data.with_tables(bids=data.bids.clear()))


# ----------------------------------------------------------------------------- short-period


def _periods(rows: list[tuple[str, str | None, datetime, datetime]]) -> bidwatch.Dataset:
    return resolved(
        {
            "tender_id": [r[0] for r in rows],
            "bidder_id": ["a"] * len(rows),
            "amount": [1.0] * len(rows),
            "is_winner": [True] * len(rows),
        },
        tender_id=[r[0] for r in rows],
        procedure=[r[1] for r in rows],
        published_at=[r[2] for r in rows],
        bid_deadline=[r[3] for r in rows],
    )


def test_short_period_counts_calendar_days_and_applies_the_law_to_tenders() -> None:
    published = datetime(2024, 3, 1, 16, 0)
    rows: list[tuple[str, str | None, datetime, datetime]] = [
        ("D20", "open", published, datetime(2024, 3, 21, 9, 30)),  # 19.7 clock days
        ("D19", "open", published, datetime(2024, 3, 20, 17, 0)),  # 19.04 clock days
        ("U19", None, published, datetime(2024, 3, 20, 9, 30)),
        ("N15", "negotiated", published, datetime(2024, 3, 16, 9, 30)),
    ]
    data = _periods(rows)
    found = findings("short-period", data)  # 4 tenders: no fence, the law alone
    assert set(found) == {"D19", "U19"}
    assert found["D19"].value == 19
    assert found["D19"].threshold == 20
    assert found["D19"].firms == ("a",)
    assert "< 20 days legal minimum" in found["D19"].message
    assert assessed("short-period", data) == ["D19", "D20", "N15", "U19"]
    assert set(findings("short-period", data, legal_minimum_days=19)) == set()


def test_short_period_fence_and_percentile() -> None:
    start = datetime(2024, 1, 8, 10, 0)
    rows: list[tuple[str, str | None, datetime, datetime]] = [
        (f"B{d}", "negotiated", start, start + timedelta(days=d)) for d in range(20, 30)
    ]
    rows.append(("S", "negotiated", start, start + timedelta(days=5)))
    data = _periods(rows)
    found = findings("short-period", data, min_comparable=10)
    # Periods 5, 20..29: quartiles 21.5 and 26.5 (linear), fence 21.5 - 1.5 x 5 = 14.
    assert set(found) == {"S"}
    assert found["S"].threshold == pytest.approx(14.0)
    assert "5 days < 14.0 days (lower fence of 11 comparable tenders)" in found["S"].message
    assert found["S"].score == pytest.approx((11 - 0.5) / 11)


# ----------------------------------------------------------------------- submission-cluster


def test_submission_cluster_chance_is_the_union_bound() -> None:
    # Five bidders over a window of 3000 minutes (first upload to deadline); three within 4
    # minutes two days before the deadline, in one run.
    data = _timed({"A": [1000.0, 2880.0, 2882.0, 2884.0, 3000.0]})
    found = findings("submission-cluster", data)
    share = 4 / 3000
    assert found["A"].value == pytest.approx(5 * math.comb(4, 2) * share**2)
    assert found["A"].firms == ("b1", "b2", "b3")
    assert [r["bidder"] for r in found["A"].evidence["run"]] == ["b3", "b2", "b1"]


def test_submission_cluster_runs_break_at_long_gaps() -> None:
    # Uploads 3000, 2890, 2878, 2866 and 10 minutes before the deadline: gaps of 12 minutes
    # break runs at the default 10, and join b, c, d at 12.
    data = _timed({"A": [3000.0, 2890.0, 2878.0, 2866.0, 10.0]})
    assert findings("submission-cluster", data, max_chance=1.0) == {}
    joined = findings("submission-cluster", data, max_chance=1.0, max_gap_minutes=12.0)
    assert joined["A"].firms == ("b1", "b2", "b3")
    assert joined["A"].value == pytest.approx(5 * math.comb(4, 2) * (24 / 3000) ** 2)
    assert joined["A"].evidence["bidders_in_tender"] == 5


def test_submission_cluster_spans_count_at_least_a_minute() -> None:
    # Three uploads in the same second, an hour before the deadline: the span counts as the
    # one-minute recording resolution, over the 60-minute window.
    data = _timed({"A": [60.0, 60.0, 60.0]})
    found = findings("submission-cluster", data, max_chance=1.0)
    assert found["A"].value == pytest.approx(3 * math.comb(2, 2) * (1 / 60) ** 2)
    # Bidders unknown: each row is a bidder of its own.
    anonymous = data.with_tables(
        bids=data.bids.with_columns(pl.lit(None, pl.String).alias("firm_id"))
    )
    same = findings("submission-cluster", anonymous, max_chance=1.0)
    assert same["A"].value == pytest.approx(found["A"].value)
    assert same["A"].firms == ()


# ------------------------------------------------------------------------------- parameters


@pytest.mark.parametrize(
    ("name", "param", "value"),
    [
        ("round-bids", "max_significant", 0),
        ("round-bids", "min_round", 0),
        ("round-bids", "max_chance", 0.0),
        ("cover-band", "covers", 0),
        ("cover-band", "threshold", -0.1),
        ("cover-band", "min_bids", 1),
        ("cover-bid-gap", "threshold", 0.0),
        ("deep-discount-win", "min_bids", 0),
        ("single-valid-bid", "max_share", 0.0),
        ("single-valid-bid", "min_comparable", 3),
        ("lowest-disqualified", "min_saving", 1.0),
        ("lowest-disqualified", "saving_scale", 0.0),
        ("sole-survivor", "max_chance", 1.5),
        ("late-winner", "window_hours", -1.0),
        ("late-winner", "min_bids", 1),
        ("short-period", "legal_minimum_days", -1),
        ("short-period", "fence", -1.0),
        ("submission-cluster", "max_gap_minutes", 0.0),
        ("submission-cluster", "min_bidders", 1),
    ],
)
def test_bad_parameters_are_named(name: str, param: str, value: object) -> None:
    with pytest.raises(ValueError, match=param):
        get(name)(**{param: value})
