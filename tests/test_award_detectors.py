"""Award and delivery detectors: abnormally low bids, settlement growth, delivery dates and
contractor capacity."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
from scipy import stats

import bidwatch
from bidwatch import entities
from bidwatch.dataset import Dataset
from bidwatch.detectors._base import NotComputable, family
from bidwatch.detectors.abnormally_low_bid import (
    AbnormallyLowBid,
    anomaly_thresholds,
    target_bids,
)
from bidwatch.detectors.capacity_mismatch import CapacityMismatch
from bidwatch.detectors.delivery_anomaly import DeliveryAnomaly, resistant_slope
from bidwatch.detectors.settlement_growth import SettlementGrowth
from bidwatch.findings import Findings
from bidwatch.schema import TABLES

from .conftest import FIXTURES, evidence, flagged
from .conftest import resolved as dataset

DETECTORS = (AbnormallyLowBid, SettlementGrowth, DeliveryAnomaly, CapacityMismatch)


def bids_of(tenders: dict[str, list[float]], winners: bool = True) -> dict[str, list[Any]]:
    """Bids of each tender in the order given; the first is the winner when ``winners``."""
    rows: dict[str, list[Any]] = {"tender_id": [], "bidder_id": [], "amount": [], "is_winner": []}
    for tender, amounts in tenders.items():
        for i, amount in enumerate(amounts):
            rows["tender_id"].append(tender)
            rows["bidder_id"].append("W" if i == 0 else f"L{i}")
            rows["amount"].append(float(amount))
            rows["is_winner"].append((i == 0) if winners else None)
    return rows


@pytest.mark.parametrize("detector", DETECTORS, ids=lambda d: d.name)
def test_materials_family(detector: type) -> None:
    assert family(detector) == "materials"


# ---------------------------------------------------------------------- abnormally-low-bid

TEN = [700, 800, 820, 840, 850, 860, 870, 880, 900, 950]


def test_anomaly_threshold_by_hand() -> None:
    # Ten bids on an estimate of 1000: one set aside at each end (ceil(10 / 10) = 1), so the
    # discounts left are 0.20 0.18 0.16 0.15 0.14 0.13 0.12 0.10: m = 1.18 / 8 = 0.1475;
    # above m: 0.20 0.18 0.16 0.15, excesses 0.0525 0.0325 0.0125 0.0025, s = 0.025;
    # T = 0.1725.
    data = dataset(bids=bids_of({"T": TEN}), tenders={"tender_id": ["T"], "estimate": [1000.0]})
    row = anomaly_thresholds(data, 5).row(0, named=True)
    assert (row["_n"], row["_k"]) == (10, 1)
    assert row["_wing_mean"] == pytest.approx(852.5)
    assert row["_m"] == pytest.approx(0.1475)
    assert row["_s"] == pytest.approx(0.025)
    assert row["_t"] == pytest.approx(0.1725)


@pytest.mark.parametrize(("n", "k"), [(5, 1), (10, 1), (11, 2), (20, 2), (21, 3), (30, 3)])
def test_wing_cut_rounds_up(n: int, k: int) -> None:
    amounts = [1000.0 + 10 * i for i in range(n)]
    data = dataset(bids=bids_of({"T": amounts}))
    row = anomaly_thresholds(data, 5).row(0, named=True)
    assert row["_k"] == k
    kept = amounts[k : n - k]
    assert row["_wing_mean"] == pytest.approx(sum(kept) / len(kept))


def test_anomaly_threshold_without_estimate_is_the_discount_from_the_trimmed_mean() -> None:
    # 100 and 140 are cut; the mean left is 125; discounts 0.04 0 -0.04: m = 0 exactly,
    # s = 0.04 (only 120 lies below the mean), T = 0.04.
    data = dataset(bids=bids_of({"T": [100, 120, 125, 130, 140]}))
    row = anomaly_thresholds(data, 5).row(0, named=True)
    assert row["_m"] == 0.0
    assert row["_t"] == pytest.approx(0.04)


def test_identical_discounts_give_no_excess() -> None:
    data = dataset(bids=bids_of({"T": [90, 100, 100, 100, 110]}))
    row = anomaly_thresholds(data, 5).row(0, named=True)
    assert row["_s"] == 0.0
    assert row["_t"] == pytest.approx(0.0)


def test_the_lowest_bid_is_always_at_or_beyond_the_threshold() -> None:
    rng = np.random.default_rng(3)
    tenders = {
        f"T{i}": list(np.round(1e6 * rng.lognormal(0, 0.08, int(rng.integers(5, 25))), -2))
        for i in range(200)
    }
    estimates = {"tender_id": list(tenders), "estimate": [1.1e6] * len(tenders)}
    data = dataset(bids=bids_of(tenders, winners=False), tenders=estimates)
    low = (
        data.bids.group_by("tender_id")
        .agg(pl.col("amount").min().alias("low"))
        .join(anomaly_thresholds(data, 5), on="tender_id")
        .with_columns((1 - pl.col("low") / 1.1e6).alias("d"))
    )
    assert low.height == 200
    assert (low.get_column("d") >= low.get_column("_t") - 1e-12).all()


def test_the_bid_judged_is_the_winner_else_the_lowest_valid_bid() -> None:
    data = dataset(
        bids={
            "tender_id": ["A", "A", "A", "B", "B", "B", "C", "C"],
            "bidder_id": ["a1", "a2", "a3", "b1", "b2", "b3", "c1", "c2"],
            "amount": [100.0, 90.0, 95.0, 80.0, 85.0, 70.0, 50.0, 60.0],
            "is_winner": [True, False, False, None, None, None, None, None],
            "status": ["valid", "valid", "valid", "valid", "valid", "disqualified", None, None],
        }
    )
    target, unpriced = target_bids(data)
    rows = {r["tender_id"]: r for r in target.iter_rows(named=True)}
    assert unpriced == 0
    assert (rows["A"]["_amount"], rows["A"]["_firm"], rows["A"]["_won"]) == (100.0, "a1", True)
    # B has no winner: its lowest valid bid (the disqualified 70 does not count).
    assert (rows["B"]["_amount"], rows["B"]["_firm"], rows["B"]["_won"]) == (80.0, "b1", False)
    assert rows["C"]["_amount"] == 50.0


def test_fixed_excess_judges_one_tender_alone() -> None:
    data = dataset(bids=bids_of({"T": TEN}), tenders={"tender_id": ["T"], "estimate": [1000.0]})
    with pytest.raises(NotComputable, match="max_excess"):
        AbnormallyLowBid().detect(data)
    # The winner's discount 0.30 is 0.1275 beyond T = 0.1725.
    found = AbnormallyLowBid(max_excess=0.10).detect(data)
    ev = evidence(found, "T")
    assert ev["anomaly_threshold"]["excess"] == pytest.approx(0.1275)
    assert ev["crossed"] == ["anomaly threshold"]
    assert found.frame.item(0, "threshold") == pytest.approx(1 - 0.1725 - 0.10)
    # No comparison: the score is 1 - (1 - p_b), p_b its (only) percentile.
    assert found.frame.item(0, "score") == pytest.approx(0.5)
    assert len(AbnormallyLowBid(max_excess=0.13).detect(data)) == 0


def test_max_ratio_needs_an_estimate_and_flags_below_it() -> None:
    data = dataset(
        bids=bids_of({"T": [650.0, 700.0], "U": [650.0, 700.0]}),
        tenders={"tender_id": ["T", "U"], "estimate": [1000.0, None]},
    )
    found = AbnormallyLowBid(max_ratio=0.7).detect(data)
    assert flagged(found) == {"T"}
    assert found.assessed.to_list() == ["T"]
    assert any("no reference" in note for note in found.notes)
    assert "below max_ratio 0.7" in found.frame.item(0, "message")


def test_nothing_to_judge_by_is_not_computable() -> None:
    data = dataset(bids=bids_of({"T": [650.0, 700.0, 720.0]}))
    with pytest.raises(NotComputable, match="no tender can be judged"):
        AbnormallyLowBid().detect(data)
    priceless = dataset(
        bids={"tender_id": ["T"], "bidder_id": ["a"], "amount": [None], "status": ["withdrawn"]}
    )
    with pytest.raises(NotComputable, match="no tender has a winning bid"):
        AbnormallyLowBid().detect(priceless)


def test_score_is_one_minus_the_geometric_mean_of_the_tails() -> None:
    found = golden("abnormally-low-bid")
    for subject in flagged(found):
        ev = evidence(found, subject)
        tails = [
            1 - part["percentile"]
            for part in (ev["anomaly_threshold"], ev["comparable_tenders"])
            if part and part.get("percentile") is not None
        ]
        score = found.frame.filter(pl.col("subject_id") == subject).item(0, "score")
        assert score == pytest.approx(1 - math.prod(tails) ** (1 / len(tails)))


@pytest.mark.parametrize(
    "params",
    [
        {"min_bids": 2},
        {"fence": -0.1},
        {"min_comparable": 3},
        {"max_ratio": 0.0},
        {"max_ratio": 1.2},
        {"max_excess": -0.01},
        {"max_excess": 1.0},
    ],
)
def test_abnormally_low_bid_rejects_bad_parameters(params: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=next(iter(params))):
        AbnormallyLowBid(**params)


# ----------------------------------------------------------------------- settlement-growth


def contracts_data(
    rows: list[tuple[str, float, float | None]],
    orders: list[tuple[str, float | None, str, str]] | None = None,
    estimate: float | None = None,
) -> Dataset:
    """(tender, contract amount, final amount) per contract; change orders (tender, amount,
    approved_at, reason)."""
    tenders = [r[0] for r in rows]
    return dataset(
        bids=bids_of({t: [a] for t, a, _ in rows}),
        tenders={
            "tender_id": tenders,
            "category": ["road"] * len(rows),
            "estimate": [estimate] * len(rows),
            "awarded_at": ["2023-01-01"] * len(rows),
        },
        contracts={
            "tender_id": tenders,
            "contractor_id": ["W"] * len(rows),
            "contract_amount": [a for _, a, _ in rows],
            "final_amount": [f for _, _, f in rows],
            "signed_at": ["2023-01-11"] * len(rows),
            "planned_completion": ["2023-07-30"] * len(rows),  # 200 days
        },
        change_orders=None
        if orders is None
        else {
            "tender_id": [o[0] for o in orders],
            "amount": [o[1] for o in orders],
            "approved_at": [o[2] for o in orders],
            "reason": [o[3] for o in orders],
        },
    )


def test_growth_from_the_settlement_else_the_change_orders() -> None:
    data = contracts_data(
        [("S", 1000.0, 1300.0), ("C", 1000.0, None), ("U", 1000.0, None)],
        orders=[
            ("S", 50.0, "2023-02-01", "设计变更"),  # settled: the final amount governs
            ("C", 150.0, "2023-03-01", "工程量增加"),
            ("C", 100.0, "2023-01-21", "设计变更"),
        ],
    )
    found = SettlementGrowth(min_comparable=4).detect(data)
    assert flagged(found) == {"S", "C"}
    assert sorted(found.assessed.to_list()) == ["C", "S"]
    settled, changed = evidence(found, "S"), evidence(found, "C")
    assert (settled["growth_basis"], settled["growth"]) == ("settled amount", pytest.approx(0.3))
    assert (changed["growth_basis"], changed["growth"]) == ("change orders", pytest.approx(0.25))
    # Listed in date order; the first came 10 of the 200 planned days after signing.
    assert [o["approved_at"] for o in changed["change_orders"]] == ["2023-01-21", "2023-03-01"]
    assert changed["days_to_first_change"] == pytest.approx(10.0)
    assert changed["raised_by"]["early_change"] == pytest.approx(1 - 10 / 200)
    assert changed["raised_by"]["many_changes"] == pytest.approx(0.5)
    assert changed["raised_by"]["cheap_win"] == 0.0  # no estimate: unknown counts nothing
    assert any("1 of 3 contract(s) have neither" in note for note in found.notes)
    assert any("judged against max_growth alone" in note for note in found.notes)


def test_score_is_the_percentile_raised_by_the_signs() -> None:
    data = contracts_data(
        [("S", 1000.0, 1300.0), ("C", 1000.0, None)],
        orders=[("C", 150.0, "2023-03-01", "a"), ("C", 100.0, "2023-01-21", "b")],
    )
    found = SettlementGrowth(min_comparable=4).detect(data)
    ev = evidence(found, "C")
    r = sum(ev["raised_by"].values()) / 4
    score = found.frame.filter(pl.col("subject_id") == "C").item(0, "score")
    assert score == pytest.approx(1 - (1 - ev["percentile"]) * (1 - r))


def test_the_limit_is_the_larger_of_fence_and_max_growth() -> None:
    growths = [0.0, 0.01, 0.01, 0.02, 0.02, 0.03, 0.03, 0.04, 0.08, 0.09]
    rows = [(f"B{i}", 1000.0, 1000.0 * (1 + g)) for i, g in enumerate(growths)]
    data = contracts_data(rows)
    # Q1 = 0.0125, Q3 = 0.0375 (linear), fence 0.075: 0.08 and 0.09 cross it, not max_growth.
    assert len(SettlementGrowth(min_comparable=10).detect(data)) == 0
    found = SettlementGrowth(min_comparable=10, max_growth=None).detect(data)
    assert flagged(found) == {"B8", "B9"}
    assert found.frame.get_column("threshold").to_list() == [pytest.approx(0.075)] * 2


def test_settlement_growth_without_a_fence_or_growth() -> None:
    few = contracts_data([("S", 1000.0, 1300.0)])
    with pytest.raises(NotComputable, match="max_growth"):
        SettlementGrowth(max_growth=None).detect(few)
    unknown = contracts_data([("U", 1000.0, None)])
    with pytest.raises(NotComputable, match="no contract has a settled amount"):
        SettlementGrowth().detect(unknown)


@pytest.mark.parametrize("params", [{"max_growth": -0.1}, {"fence": -1.0}, {"min_comparable": 2}])
def test_settlement_growth_rejects_bad_parameters(params: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=next(iter(params))):
        SettlementGrowth(**params)


# ------------------------------------------------------------------------ delivery-anomaly


def test_resistant_slope_recovers_a_line_across_categories() -> None:
    x = np.log(np.linspace(2e5, 5e7, 90))
    category = np.array(["road", "bridge", "water"] * 30)
    offset = np.select([category == "road", category == "bridge"], [0.0, 0.8], -0.5)
    line = pl.DataFrame({"_x": x, "_y": 1.0 + 0.35 * x + offset, "_cat": category})
    assert resistant_slope(line) == pytest.approx(0.35)
    flat = pl.DataFrame({"_x": [1.0] * 6, "_y": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0], "_cat": ["a"] * 6})
    assert resistant_slope(flat) == 0.0


def delivery_data(rows: list[tuple[str, float, str | None, str, str]]) -> Dataset:
    """(tender, amount, signed_at, planned_completion, actual_completion) per contract."""
    tenders = [r[0] for r in rows]
    return dataset(
        bids=bids_of({t: [a] for t, a, *_ in rows}),
        tenders={"tender_id": tenders, "category": ["road"] * len(rows)},
        contracts={
            "tender_id": tenders,
            "contractor_id": ["W"] * len(rows),
            "contract_amount": [r[1] for r in rows],
            "signed_at": [r[2] for r in rows],
            "planned_completion": [r[3] for r in rows],
            "actual_completion": [r[4] for r in rows],
        },
    )


def test_a_fixed_overrun_limit_with_few_contracts() -> None:
    data = delivery_data(
        [
            ("A", 1e6, "2023-01-01", "2023-04-11", "2023-06-10"),  # 100 days planned, 60 late
            ("B", 1e6, "2023-01-01", "2023-04-11", "2023-05-11"),  # 30 late: under 0.5
            ("C", 1e6, "2023-01-01", "2023-04-11", "2023-01-01"),  # on the day it started
            ("D", 1e6, None, "2023-04-11", "2023-05-01"),  # no start
        ]
    )
    with pytest.raises(NotComputable, match="max_overrun"):
        DeliveryAnomaly().detect(data)
    found = DeliveryAnomaly(max_overrun=0.5).detect(data)
    assert flagged(found) == {"A"}
    assert sorted(found.assessed.to_list()) == ["A", "B"]
    assert found.frame.item(0, "value") == pytest.approx(0.6)
    assert found.frame.item(0, "threshold") == pytest.approx(0.5)
    assert "overrun: completed 60 days after the planned date" in found.frame.item(0, "message")
    notes = " ".join(found.notes)
    assert "speed for size not judged" in notes
    assert "1 completed contract(s) have no signed_at" in notes
    assert "1 contract(s) were completed on or before the day they started" in notes


def test_min_gap_guards_a_zero_spread() -> None:
    # Thirty contracts on the planned day: the fence of log(actual / planned) is 0.
    rows = [
        (f"B{i:02d}", 1e6 * (1 + i), "2023-01-01", "2023-05-01", "2023-05-01") for i in range(30)
    ]
    rows += [
        ("late10", 2e6, "2023-01-01", "2023-05-01", "2023-05-13"),  # 12 of 120 days
        ("late30", 2e6, "2023-01-01", "2023-05-01", "2023-06-06"),  # 36 of 120 days
    ]
    found = DeliveryAnomaly().detect(delivery_data(rows))
    assert "late30" in flagged(found)
    assert "late10" not in flagged(found)
    assert evidence(found, "late30")["overrun"]["limit_from"] == "min_gap 0.25"


def test_delivery_needs_dates() -> None:
    data = delivery_data([("A", 1e6, None, "2023-04-11", "2023-06-10")])
    with pytest.raises(NotComputable, match="no contract has a start"):
        DeliveryAnomaly().detect(data)


@pytest.mark.parametrize(
    "params",
    [
        {"fence": -1.0},
        {"min_comparable": 3},
        {"max_overrun": -0.5},
        {"min_gap": 1.0},
        {"min_gap": -0.1},
    ],
)
def test_delivery_anomaly_rejects_bad_parameters(params: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=next(iter(params))):
        DeliveryAnomaly(**params)


# ----------------------------------------------------------------------- capacity-mismatch


def capacity_data(firms: dict[str, list[Any]] | None, amount: float = 5e6) -> Dataset:
    return dataset(
        bids={
            "tender_id": ["T", "T", "U"],
            "bidder_id": ["A", "B", "B"],
            "bidder_name": ["Alpha Co", "Beta Co", "Beta Co"],
            "amount": [amount, amount * 1.1, 2e6],
            "is_winner": [True, False, True],
        },
        tenders={"tender_id": ["T", "U"], "awarded_at": ["2023-06-30", "2023-06-30"]},
        contracts={
            "tender_id": ["T"],
            "contractor_name": ["Alpha Co"],
            "contract_amount": [amount],
        },
        firms=firms,
    )


def test_capacity_needs_registry_values() -> None:
    with pytest.raises(NotComputable, match="neither registered_capital"):
        CapacityMismatch().detect(capacity_data(None))
    bare = capacity_data({"firm_id": ["A"], "name": ["Alpha Co"]})
    with pytest.raises(NotComputable, match="neither registered_capital"):
        CapacityMismatch().detect(bare)


def test_capacity_ratio_and_age_by_hand() -> None:
    data = capacity_data(
        {
            "firm_id": ["A", "B"],
            "name": ["Alpha Co", "Beta Co"],
            "registered_capital": [2e5, 1e7],
            "founded_on": ["2023-04-01", "2023-08-01"],
        }
    )
    found = CapacityMismatch().detect(data)
    # T: 5,000,000 over 200,000 = 25 x, founded 90 days before the award.
    assert flagged(found) == {"T"}
    ev = evidence(found, "T")
    assert ev["contractor"] == "A"
    assert ev["value_from"] == "contract_amount"
    assert (ev["capital_ratio"], ev["age_days"]) == (pytest.approx(25.0), 90)
    assert ev["crossed"] == ["capital ratio", "firm age"]
    capital, youth = 1 - 10 / 25, 1 - 90 / 180
    assert found.frame.item(0, "score") == pytest.approx(1 - (1 - capital) * (1 - youth))
    # U: held by B, founded after the award: noted, not judged on age; its capital passes.
    assert "U" in found.assessed.to_list()
    assert any("founding date is after the award" in note for note in found.notes)


def test_capacity_with_the_winning_bid_and_unlisted_firms() -> None:
    data = capacity_data(
        {"firm_id": ["B"], "name": ["Beta Co"], "registered_capital": [1e5]}, amount=5e6
    )
    found = CapacityMismatch().detect(data)
    # U has no contract row: its winning bid, 2,000,000, is 20 x B's capital.
    assert flagged(found) == {"U"}
    assert evidence(found, "U")["value_from"] == "winning bid"
    assert any("not in the registry (e.g. A)" in note for note in found.notes)


@pytest.mark.parametrize("params", [{"max_capital_ratio": 0.0}, {"min_age_days": -1}])
def test_capacity_mismatch_rejects_bad_parameters(params: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=next(iter(params))):
        CapacityMismatch(**params)


# ------------------------------------------------------------------------- every detector


def load_golden(name: str) -> Dataset:
    folder = FIXTURES / "detectors" / name
    tables = {t: folder / f"{t}.csv" for t in TABLES if (folder / f"{t}.csv").exists()}
    return entities.resolve(bidwatch.load(**tables))


def parameters(name: str) -> dict[str, Any]:
    import tomllib

    config = tomllib.loads((FIXTURES / "detectors" / name / "config.toml").read_text())
    params: dict[str, Any] = config["detectors"].get(name, {})
    return params


def golden(name: str) -> Findings:
    detector = next(d for d in DETECTORS if d.name == name)
    return detector(**parameters(name)).detect(load_golden(name))


@pytest.mark.parametrize("detector", DETECTORS, ids=lambda d: d.name)
def test_golden_findings_do_not_depend_on_row_order(detector: type) -> None:
    data = load_golden(detector.name)
    params = parameters(detector.name)
    shuffled = data.with_tables(
        **{
            name: getattr(data, name).sample(fraction=1.0, shuffle=True, seed=seed)
            for seed, name in enumerate(TABLES, start=7)
        }
    )
    first = detector(**params).detect(data)
    second = detector(**params).detect(shuffled)
    assert len(first) > 0
    assert first.frame.equals(second.frame)
    assert first.assessed.equals(second.assessed)
    assert first.notes == second.notes


@pytest.mark.parametrize("detector", DETECTORS, ids=lambda d: d.name)
def test_golden_evidence_is_json_and_names_the_firm(detector: type) -> None:
    found = golden(detector.name)
    for row in found.frame.iter_rows(named=True):
        assert json.loads(row["evidence"])
        assert len(row["firms"]) == 1


def test_fixtures_exist() -> None:
    for detector in DETECTORS:
        assert Path(FIXTURES / "detectors" / detector.name / "README.md").exists()


def test_change_order_reasons_concentrated_on_deep_wins() -> None:
    from bidwatch.detectors.settlement_growth import reason_concentration

    tenders = [f"T{i:02d}" for i in range(20)]
    # Ten deep wins (percentile 0.9) and ten shallow ones (0.2); "工程量增加" comes from
    # the deep wins eight times of nine, "设计变更" evenly.
    depth = pl.DataFrame(
        {
            "tender_id": tenders,
            "_win_ratio": [0.7] * 10 + [0.95] * 10,
            "_win_pct": [0.9] * 10 + [0.2] * 10,
        }
    )
    reasons = ["工程量增加"] * 8 + ["设计变更", "设计变更"] + ["工程量增加"] + ["设计变更"] * 9
    data = dataset(
        bids={"tender_id": tenders, "bidder_id": ["A"] * 20, "amount": [1.0] * 20},
        change_orders={"tender_id": tenders, "amount": [10.0] * 20, "reason": reasons},
    )
    out = reason_concentration(data, depth, min_orders=5)
    rows = {r["tender_id"]: r for r in out.iter_rows(named=True)}
    deep = rows["T00"]
    assert deep["_reason"] == "工程量增加"
    assert (deep["_reason_orders"], deep["_reason_deep"]) == (9, 8)
    assert deep["_deep_share"] == pytest.approx(0.5)
    p = stats.binom.sf(8, 9, 0.5) + 0.5 * stats.binom.pmf(8, 9, 0.5)
    assert deep["_concentrated"] == pytest.approx(1 - p)
    # 设计变更 falls on deep wins 2 times of 11, under the base share: no sign.
    assert rows["T19"]["_concentrated"] == 0.0
    assert reason_concentration(data, depth, min_orders=10)["_concentrated"].max() == 0.0
