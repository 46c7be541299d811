"""Materials detectors: prices against reference prices, unbalanced bills, inspections."""

from __future__ import annotations

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
from bidwatch.detectors import REGISTRY
from bidwatch.detectors._after import priced_items, with_reference
from bidwatch.detectors._base import NotComputable, family
from bidwatch.detectors._inspections import judged
from bidwatch.detectors._stats import mid_p
from bidwatch.detectors.below_reference_price import BelowReferencePrice
from bidwatch.detectors.contractor_failures import ContractorFailures
from bidwatch.detectors.inspection_failures import InspectionFailures
from bidwatch.detectors.unbalanced_bid import UnbalancedBid, median_of_others
from bidwatch.schema import TABLES

from .conftest import FIXTURES, evidence, flagged
from .conftest import resolved as dataset

MATERIALS = (BelowReferencePrice, UnbalancedBid, InspectionFailures, ContractorFailures)


# ------------------------------------------------------------------ below-reference-price

TENDERS = {
    "tender_id": ["T1", "T2"],
    "region": ["阳新县", "阳新县"],
    "bid_deadline": ["2023-05-10", "2023-05-20"],
}
BIDS = {
    "tender_id": ["T1", "T1", "T2", "T2"],
    "bidder_id": ["W", "L", "W", "L"],
    "amount": [1_000_000.0, 1_100_000.0, 900_000.0, 950_000.0],
    "is_winner": [True, False, True, False],
}
REFS = {
    "material": ["HRB400钢筋", "P.O42.5水泥"],
    "region": ["阳新县", "阳新县"],
    "period": ["2023-05", "2023-05"],
    "unit": ["t", "t"],
    "unit_price": [4500.0, 500.0],
}


def items(rows: list[tuple[str, str, str, str, float, float]]) -> dict[str, list[Any]]:
    """tender, bidder, material, unit, quantity, unit price."""
    return {
        "tender_id": [r[0] for r in rows],
        "bidder_id": [r[1] for r in rows],
        "material": [r[2] for r in rows],
        "unit": [r[3] for r in rows],
        "quantity": [r[4] for r in rows],
        "unit_price": [r[5] for r in rows],
    }


def test_price_per_kg_is_compared_with_a_reference_per_tonne() -> None:
    data = dataset(
        tenders=TENDERS,
        bids=BIDS,
        items=items(
            [
                ("T1", "W", "HRB400钢筋", "kg", 50_000, 3.2),  # 3200/t: 0.711
                ("T2", "W", "HRB400钢筋", "公斤", 50_000, 4.2),  # 4200/t: 0.933
            ]
        ),
        reference_prices=REFS,
    )
    found = BelowReferencePrice().detect(data)
    assert flagged(found) == {"T1"}
    assert set(found.assessed.to_list()) == {"T1", "T2"}
    (item,) = evidence(found, "T1")["items"]
    assert item["ratio"] == pytest.approx(3200 / 4500)
    assert item["price_per_base_unit"] == pytest.approx(3200)
    assert item["base_unit"] == "t"
    assert item["reference"] == pytest.approx(4.5)  # in the item's unit, per kg
    assert item["shortfall"] == pytest.approx((4500 - 3200) * 50)
    row = found.frame.row(0, named=True)
    assert row["value"] == pytest.approx(3200 / 4500)
    assert row["threshold"] == 0.8
    assert row["firms"] == ["W"]


def test_reference_per_kg_against_a_price_per_tonne() -> None:
    refs = dict(REFS, unit=["kg", "t"], unit_price=[4.5, 500.0])
    data = dataset(
        tenders=TENDERS,
        bids=BIDS,
        items=items([("T1", "W", "HRB400钢筋", "t", 50, 3000.0)]),
        reference_prices=refs,
    )
    found = BelowReferencePrice().detect(data)
    (item,) = evidence(found, "T1")["items"]
    assert item["ratio"] == pytest.approx(3000 / 4500)


def test_a_reference_given_per_t_and_per_kg_does_not_repeat_items() -> None:
    refs = {
        "material": ["HRB400钢筋", "HRB400钢筋"],
        "region": ["阳新县", "阳新县"],
        "period": ["2023-05", "2023-05"],
        "unit": ["t", "kg"],
        "unit_price": [4400.0, 4.6],
    }
    data = dataset(
        tenders=TENDERS,
        bids=BIDS,
        items=items([("T1", "W", "HRB400钢筋", "t", 50, 3000.0)]),
        reference_prices=refs,
    )
    compared = with_reference(priced_items(data), data)
    assert compared.height == 1
    assert compared.item(0, "_reference") == pytest.approx(4500.0)  # median of 4400, 4600


def test_missing_references_are_noted_not_guessed_and_not_assessed() -> None:
    data = dataset(
        tenders=TENDERS,
        bids=BIDS,
        items=items(
            [
                ("T1", "W", "HRB400钢筋", "kg", 50_000, 3.2),
                ("T2", "W", "70#道路石油沥青", "t", 300, 1000.0),  # no reference at all
                ("T2", "W", "HRB400钢筋", "kg", 1000, 1.0),
                ("T2", "W", "P.O42.5水泥", "t", 10, 490.0),
            ]
        ),
        reference_prices=dict(REFS, period=["2023-04", "2023-05"]),  # steel: April only
    )
    found = BelowReferencePrice().detect(data)
    assert len(found) == 0
    # T1's only key item has no reference: T1 is not assessed; T2 is, on its cement.
    assert found.assessed.to_list() == ["T2"]
    text = " ".join(found.notes)
    assert "3 key-material items" in text
    assert "no reference price for 70#道路石油沥青 (1 item)" in text
    assert "no reference price for HRB400钢筋 in 2023-05 (2 items)" in text


def test_no_reference_anywhere_is_not_computable() -> None:
    data = dataset(
        tenders=TENDERS,
        bids=BIDS,
        items=items([("T1", "W", "70#道路石油沥青", "t", 300, 1000.0)]),
        reference_prices=REFS,
    )
    with pytest.raises(NotComputable, match="no reference price for 70#道路石油沥青"):
        BelowReferencePrice().detect(data)


def test_different_dimensions_are_never_compared() -> None:
    data = dataset(
        tenders=TENDERS,
        bids=BIDS,
        items=items(
            [
                ("T1", "W", "HRB400钢筋", "m3", 30, 100.0),  # per volume: the reference is per t
                ("T1", "W", "P.O42.5水泥", "t", 10, 490.0),
            ]
        ),
        reference_prices=REFS,
    )
    found = BelowReferencePrice().detect(data)
    assert len(found) == 0
    assert found.assessed.to_list() == ["T1"]  # on the cement alone
    assert any("per another kind of unit than m3" in note for note in found.notes)


def test_only_the_contract_holders_bill_is_judged() -> None:
    data = dataset(
        tenders=TENDERS,
        bids=BIDS,
        items=items(
            [
                ("T1", "L", "HRB400钢筋", "t", 50, 1000.0),
                ("T1", "W", "HRB400钢筋", "t", 50, 4400.0),
            ]
        ),
        reference_prices=REFS,
    )
    assert len(BelowReferencePrice().detect(data)) == 0
    # A contract held by L (not the lowest bidder W) makes L's bill the one that counts.
    with_contract = dataset(
        tenders=TENDERS,
        bids=BIDS,
        items=items(
            [
                ("T1", "L", "HRB400钢筋", "t", 50, 1000.0),
                ("T1", "W", "HRB400钢筋", "t", 50, 4400.0),
            ]
        ),
        reference_prices=REFS,
        contracts={"tender_id": ["T1"], "contractor_id": ["L"], "contract_amount": [1.1e6]},
    )
    found = BelowReferencePrice().detect(with_contract)
    assert flagged(found) == {"T1"}
    assert found.frame.item(0, "firms").to_list() == ["L"]
    assert evidence(found, "T1")["bid_value_from"] == "bid"


def test_a_bill_that_names_no_bidder_is_the_contracts() -> None:
    bill = items([("T1", "", "HRB400钢筋", "t", 50, 3000.0)])
    del bill["bidder_id"]
    data = dataset(tenders=TENDERS, bids=BIDS, items=bill, reference_prices=REFS)
    found = BelowReferencePrice().detect(data)
    assert flagged(found) == {"T1"}
    assert found.frame.item(0, "firms").to_list() == ["W"]


def test_items_priced_at_zero_are_not_prices() -> None:
    data = dataset(
        tenders=TENDERS,
        bids=BIDS,
        items=items(
            [("T1", "W", "HRB400钢筋", "t", 50, 0.0), ("T1", "W", "P.O42.5水泥", "t", 10, 480.0)]
        ),
        reference_prices=REFS,
    )
    found = BelowReferencePrice().detect(data)
    assert len(found) == 0
    assert found.assessed.to_list() == ["T1"]


def test_score_grows_with_the_share_of_the_bid_short() -> None:
    def score(quantity: float) -> float:
        data = dataset(
            tenders=TENDERS,
            bids=BIDS,
            items=items([("T1", "W", "HRB400钢筋", "t", quantity, 3000.0)]),
            reference_prices=REFS,
        )
        found = BelowReferencePrice().detect(data)
        return float(found.frame.item(0, "score"))

    depth = 1 - (3000 / 4500) / 0.8
    small, large = score(1), score(100)
    assert small == pytest.approx(1 - (1 - depth) * math.exp(-1500 / 1e6 / 0.02))
    assert depth < small < large < 1


def test_below_reference_needs_key_materials() -> None:
    data = dataset(
        tenders=TENDERS,
        bids=BIDS,
        items=items([("T1", "W", "电缆", "m", 50, 3.0)]),
        reference_prices=REFS,
    )
    with pytest.raises(NotComputable, match="key material"):
        BelowReferencePrice().detect(data)


# ------------------------------------------------------------------------ unbalanced-bid

CODES = ("A", "B", "C", "D", "E")
RATES = (20.0, 30.0, 40.0, 50.0, 60.0)


def unbalanced_market(
    winner: dict[str, float], tenders: int = 12, bidders: int = 4, seed: int = 1
) -> Dataset:
    """Tenders of five items (quantity 100 each) priced by W (the winner) and L1.. around a
    common rate; W's prices in tender T00 are multiplied by ``winner`` per code."""
    rng = np.random.default_rng(seed)
    rows: list[tuple[str, str, str, float]] = []
    bids: list[tuple[str, str, float, bool]] = []
    for t in range(tenders):
        tid = f"T{t:02d}"
        for b in range(bidders):
            who = "W" if b == 0 else f"L{b}"
            total = 0.0
            for code, rate in zip(CODES, RATES, strict=True):
                price = rate * float(rng.uniform(0.95, 1.05))
                if tid == "T00" and who == "W":
                    price = rate * winner.get(code, 1.0)
                rows.append((tid, who, code, round(price, 2)))
                total += price * 100
            bids.append((tid, who, round(total, 2), who == "W"))
    return dataset(
        bids={
            "tender_id": [b[0] for b in bids],
            "bidder_id": [b[1] for b in bids],
            "amount": [b[2] for b in bids],
            "is_winner": [b[3] for b in bids],
        },
        items={
            "tender_id": [r[0] for r in rows],
            "bidder_id": [r[1] for r in rows],
            "item_code": [r[2] for r in rows],
            "unit": ["m3"] * len(rows),
            "quantity": [100.0] * len(rows),
            "unit_price": [r[3] for r in rows],
        },
    )


def test_unbalanced_bill_is_flagged_and_balanced_is_not() -> None:
    data = unbalanced_market({"E": 1.8, "A": 0.5, "B": 0.5})
    found = UnbalancedBid(min_comparable=10).detect(data)
    assert flagged(found) == {"T00"}
    ev = evidence(found, "T00")
    compared = sum(r * m for r, m in zip(RATES, (0.5, 0.5, 1, 1, 1.8), strict=True))
    assert ev["high_share"] == pytest.approx(60 * 1.8 / compared)
    assert ev["low_share"] == pytest.approx((20 * 0.5 + 30 * 0.5) / compared)
    assert ev["bills_assessed"] == 48
    assert {i["item_code"] for i in ev["items"]} == {"A", "B", "E"}
    far = [abs(math.log(i["ratio"])) for i in ev["items"]]
    assert far == sorted(far, reverse=True)  # the furthest from its reference first
    assert all(i["reference_is"] == "median of 3 other bids" for i in ev["items"])
    # One side only is not unbalanced.
    assert len(UnbalancedBid(min_comparable=10).detect(unbalanced_market({"E": 1.8}))) == 0
    assert len(UnbalancedBid(min_comparable=10).detect(unbalanced_market({"A": 0.4}))) == 0


def test_unbalanced_reference_excludes_the_bill_itself() -> None:
    # With two bidders, each has one other: min_peers=2 leaves no reference at all.
    data = unbalanced_market({"E": 1.8, "A": 0.5, "B": 0.5}, bidders=2)
    with pytest.raises(NotComputable, match="no bill has 4\\+ items"):
        UnbalancedBid(threshold=0.05).detect(data)
    found = UnbalancedBid(threshold=0.05, min_peers=1).detect(data)
    assert flagged(found) == {"T00"}


def test_unbalanced_fence_needs_enough_bills_unless_a_threshold_is_set() -> None:
    data = unbalanced_market({"E": 1.8, "A": 0.5, "B": 0.5}, tenders=3)
    with pytest.raises(NotComputable, match="needs at least 30 bills"):
        UnbalancedBid().detect(data)
    found = UnbalancedBid(threshold=0.1).detect(data)
    assert flagged(found) == {"T00"}
    assert found.frame.item(0, "threshold") == 0.1


def test_unbalanced_never_compares_an_item_across_dimensions() -> None:
    data = unbalanced_market({})
    bad = data.items.with_columns(
        pl.when((pl.col("tender_id") == "T01") & (pl.col("bidder_id") != "W"))
        .then(pl.lit("t"))
        .otherwise(pl.col("unit"))
        .alias("unit")
    )
    found = UnbalancedBid(min_comparable=10).detect(data.with_tables(items=bad))
    # W's bill in T01 is in m3, its rivals' in t: nothing to compare it with.
    assert "T01" not in found.assessed.to_list()
    assert "T02" in found.assessed.to_list()


def test_median_of_others_matches_a_self_join() -> None:
    rng = np.random.default_rng(3)
    n = 3000
    frame = pl.DataFrame(
        {
            "g": rng.integers(0, 400, n).astype(str),
            "m": np.arange(n).astype(str),
            "v": rng.integers(0, 6, n).astype(float),
        }
    )
    got = median_of_others(frame, ["g"], "m", "v")
    want = (
        frame.join(frame, on="g", suffix="_p")
        .filter(pl.col("m") != pl.col("m_p"))
        .group_by("g", "m")
        .agg(pl.col("v_p").median().alias("want"), pl.len().alias("c"))
    )
    both = got.join(want, on=["g", "m"], how="left")
    assert both.height == n
    alone = both.filter(pl.col("want").is_null())
    assert alone.get_column("_others").null_count() == alone.height
    assert (alone.get_column("_count") == 0).all()
    paired = both.filter(pl.col("want").is_not_null())
    assert paired.height > n / 2
    assert (paired.get_column("_others") == paired.get_column("want")).all()
    assert (paired.get_column("_count") == paired.get_column("c")).all()


def test_items_without_a_code_are_matched_by_their_description() -> None:
    data = unbalanced_market({"E": 1.8, "A": 0.5, "B": 0.5})
    named = data.items.with_columns(
        pl.col("item_code")
        .replace_strict(
            dict(zip(CODES, ("挖 土方", "回填（方）", "基层", "面层", "铺装"), strict=True))
        )
        .alias("description"),
        pl.lit(None, dtype=pl.String).alias("item_code"),
    ).with_columns(
        # W writes a space and full-width brackets the others leave out: the same items.
        pl.when(pl.col("bidder_id") != "W")
        .then(pl.col("description").str.replace_all(r"[\s（）]", ""))
        .otherwise(pl.col("description"))
        .alias("description")
    )
    found = UnbalancedBid(min_comparable=10).detect(data.with_tables(items=named))
    assert flagged(found) == {"T00"}
    assert evidence(found, "T00")["items_compared"] == 5


# ----------------------------------------------------------------------------- inspections


def inspections(
    rows: list[tuple[str, str, float | None, float | None, str | None, str | None]],
    contractor: str | None = "W",
) -> dict[str, list[Any]]:
    """tender, item, measured, required, limit, result."""
    out: dict[str, list[Any]] = {
        "tender_id": [r[0] for r in rows],
        "item": [r[1] for r in rows],
        "measured": [r[2] for r in rows],
        "required": [r[3] for r in rows],
        "unit": ["mm"] * len(rows),
        "limit": [r[4] for r in rows],
        "result": [r[5] for r in rows],
    }
    if contractor is not None:
        out["contractor_id"] = [contractor] * len(rows)
    return out


def test_shortfall_for_min_and_max_limits() -> None:
    data = dataset(
        bids=BIDS,
        inspections=inspections(
            [
                ("T1", "厚度", 90.0, 100.0, None, None),  # min: 10% short
                ("T1", "厚度", 110.0, 100.0, None, None),  # min: passes by 10%
                ("T1", "弯沉", 46.0, 40.0, None, None),  # inferred max: 15% over
                ("T1", "路面平整度", 1.9, 2.0, None, None),  # inferred max: passes by 5%
                ("T1", "Roughness IRI", 2.2, 2.0, None, None),  # inferred max: 10% over
                ("T1", "水胶比", 0.45, 0.45, None, None),  # max: exactly at it, marginal
                ("T1", "裂缝宽度", 0.25, 0.2, None, None),  # max: 25% over
                ("T1", "custom", 105.0, 100.0, "max", None),  # the row's limit wins
                ("T2", "压实度", 95.5, 96.0, "min", "pass"),  # values say fail
                ("T2", "强度", None, None, None, "fail"),  # result only
                ("T2", "强度", 30.5, 30.0, None, None),  # passes by 1.7%: marginal
            ]
        ),
    )
    rows = judged(data, 0.02).sort("_src", "_row")
    assert rows.get_column("_limit").to_list() == [
        "min", "min", "max", "max", "max", "max", "max", "max", "min", "min", "min",
    ]  # fmt: skip
    shortfall = rows.get_column("_shortfall").to_list()
    expected = [0.1, 0.0, 0.15, 0.0, 0.1, 0.0, 0.25, 0.05, 0.5 / 96, None, 0.0]
    for got, want in zip(shortfall, expected, strict=True):
        assert got == pytest.approx(want) if want is not None else got is None
    assert rows.get_column("_failed").to_list() == [
        True, False, True, False, True, False, True, True, True, True, False,
    ]  # fmt: skip
    assert rows.get_column("_marginal").to_list() == [
        False, False, False, False, False, True, False, False, False, False, True,
    ]  # fmt: skip
    assert rows.get_column("_disagrees").to_list()[8] is True


def test_mid_p_matches_the_binomial() -> None:
    k, n, rate = np.array([0, 3, 10]), np.array([10, 10, 10]), 0.1
    want = [
        sum(stats.binom.pmf(j, nn, rate) for j in range(kk + 1, nn + 1))
        + 0.5 * stats.binom.pmf(kk, nn, rate)
        for kk, nn in zip(k, n, strict=True)
    ]
    assert mid_p(k, n, rate) == pytest.approx(want)
    assert mid_p([0], [5], 0.0)[0] == pytest.approx(0.5)


def inspected_market(failures: dict[str, int], rows: int = 10) -> dict[str, Any]:
    """One contract per entry, won by W-<tender>, with ``rows`` rows of which the first
    ``failures`` fall 5% short."""
    tenders = sorted(failures)
    data: list[tuple[str, str, float | None, float | None, str | None, str | None]] = []
    for t in tenders:
        data += [
            (t, "厚度", 95.0 if j < failures[t] else 101.0, 100.0, None, None) for j in range(rows)
        ]
    bids = {
        "tender_id": tenders,
        "bidder_id": [f"W-{t}" for t in tenders],
        "amount": [1e6] * len(tenders),
        "is_winner": [True] * len(tenders),
    }
    return {"bids": bids, "inspections": inspections(data, contractor=None)}


def test_inspection_failures_by_count_and_by_depth() -> None:
    market = inspected_market({f"B{i}": i % 2 for i in range(20)} | {"F": 6, "N": 2})
    deep = market["inspections"]
    deep["measured"][0] = 80.0  # B0's first row: 20% short
    data = dataset(**market)
    found = InspectionFailures().detect(data)
    assert flagged(found) == {"F", "B0"}
    rate = 19 / 220  # ten odd B contracts, F, N and B0's deep failure
    f = found.frame.filter(pl.col("subject_id") == "F").row(0, named=True)
    assert f["value"] == pytest.approx(mid_p([6], [10], rate)[0])
    assert f["firms"] == ["W-F"]  # no contractor named: the winner holds it
    b0 = found.frame.filter(pl.col("subject_id") == "B0").row(0, named=True)
    assert b0["value"] == pytest.approx(0.2)
    assert b0["threshold"] == 0.1
    assert b0["score"] == pytest.approx(1 - mid_p([1], [10], rate)[0] * math.exp(-2))
    assert evidence(found, "B0")["inspections"][0]["shortfall"] == pytest.approx(0.2)
    assert len(found.assessed) == 22


def test_a_single_failure_flags_by_its_depth_unless_min_failures_is_one() -> None:
    # Two rows per contract, 1 in 40 rows failing: one failure in two rows has mid-p 0.025.
    market = inspected_market({f"B{i:02d}": 0 for i in range(19)} | {"N": 1}, rows=2)
    data = dataset(**market)
    assert len(InspectionFailures().detect(data)) == 0
    found = InspectionFailures(min_failures=1).detect(data)
    assert flagged(found) == {"N"}
    assert found.frame.item(0, "value") == pytest.approx(mid_p([1], [2], 1 / 40)[0])


def test_inspections_of_unknown_tenders_are_not_tenders_but_count_for_the_rate() -> None:
    market = inspected_market({"T1": 0, "T2": 5})
    market["inspections"]["tender_id"][:10] = ["ZZ"] * 10
    data = dataset(**market)
    found = InspectionFailures().detect(data)
    assert set(found.assessed.to_list()) == {"T2"}
    assert any("no bids or tender row" in n for n in found.notes)


def test_contractor_failures_across_contracts() -> None:
    failures = {f"B{i:02d}": i % 3 == 0 for i in range(30)}
    market = inspected_market({k: int(v) for k, v in failures.items()} | {"F1": 4, "F2": 4})
    bids = market["bids"]
    bids["bidder_id"] = [f"C{i % 15:02d}" for i in range(30)] + ["FX", "FX"]
    data = dataset(**market)
    found = ContractorFailures().detect(data)
    assert flagged(found) == {"FX"}
    ev = evidence(found, "FX")
    assert (ev["contracts"], ev["failed"], ev["rows"]) == (2, 8, 20)
    assert ev["mean_shortfall"] == pytest.approx(0.05)
    assert found.frame.item(0, "score") == pytest.approx(1 - ev["p"])
    assert len(found.assessed) == 16
    with pytest.raises(NotComputable, match="no contractor has 3\\+ inspected contracts"):
        ContractorFailures(min_contracts=3).detect(data)


def test_inspection_detectors_need_rows() -> None:
    data = dataset(bids=BIDS)
    for detector in (InspectionFailures(), ContractorFailures()):
        with pytest.raises(NotComputable, match="no inspection rows"):
            detector.detect(data)


# ------------------------------------------------------------------------------ contract


@pytest.mark.parametrize(
    ("detector", "bad"),
    [
        (BelowReferencePrice, {"max_ratio": 0.0}),
        (BelowReferencePrice, {"max_ratio": 1.2}),
        (BelowReferencePrice, {"scale": 0.0}),
        (UnbalancedBid, {"high": 1.0}),
        (UnbalancedBid, {"low": 1.0}),
        (UnbalancedBid, {"low": 0.0}),
        (UnbalancedBid, {"threshold": 0.0}),
        (UnbalancedBid, {"threshold": 0.6}),
        (UnbalancedBid, {"fence": -1.0}),
        (UnbalancedBid, {"min_share": 0.8}),
        (UnbalancedBid, {"min_items": 1}),
        (UnbalancedBid, {"min_peers": 0}),
        (UnbalancedBid, {"min_comparable": 3}),
        (InspectionFailures, {"max_p": 0.0}),
        (InspectionFailures, {"max_p": 1.0}),
        (InspectionFailures, {"max_shortfall": 0.0}),
        (InspectionFailures, {"min_failures": 0}),
        (InspectionFailures, {"marginal": 1.0}),
        (ContractorFailures, {"min_contracts": 0}),
        (ContractorFailures, {"max_q": 0.0}),
        (ContractorFailures, {"marginal": -0.1}),
    ],
)
def test_parameters_are_validated(detector: type, bad: dict[str, float]) -> None:
    (name,) = bad
    with pytest.raises(ValueError, match=name):
        detector(**bad)


def test_materials_detectors_are_registered_in_their_family() -> None:
    for detector in MATERIALS:
        assert detector in REGISTRY
        assert family(detector) == "materials"


def golden(name: str) -> Dataset:
    folder: Path = FIXTURES / "detectors" / name
    tables = {t: folder / f"{t}.csv" for t in TABLES if (folder / f"{t}.csv").exists()}
    return entities.resolve(bidwatch.load(**tables))


@pytest.mark.parametrize("detector", MATERIALS, ids=lambda d: d.name)
def test_invariant_to_row_order_and_input_untouched(detector: type) -> None:
    data = golden(detector.name)
    before = {name: getattr(data, name).clone() for name in TABLES}
    first = detector().detect(data)
    for name, frame in before.items():
        assert getattr(data, name).equals(frame), name
    for seed in (1, 2, 3):
        shuffled = data.with_tables(
            **{
                name: getattr(data, name).sample(fraction=1.0, shuffle=True, seed=seed + i)
                for i, name in enumerate(TABLES)
            }
        )
        again = detector().detect(shuffled)
        assert again.frame.equals(first.frame)
        assert again.assessed.equals(first.assessed)
        assert again.notes == first.notes
    assert len(first) > 0


@pytest.mark.parametrize("detector", MATERIALS, ids=lambda d: d.name)
def test_missing_after_award_tables_are_skipped_with_a_reason(detector: type) -> None:
    data = golden(detector.name)
    bare = data.with_tables(
        items=data.items.clear(),
        reference_prices=data.reference_prices.clear(),
        inspections=data.inspections.clear(),
    )
    assert bare.missing(detector.requires)
    with pytest.raises(NotComputable):
        detector().detect(bare)
