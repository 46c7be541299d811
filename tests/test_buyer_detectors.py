"""buyer-concentration, benford-firm and benford-buyer: values checked against independent
computations, edge cases and calibration on honest simulated data."""

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
from bidwatch.detectors._base import NotComputable
from bidwatch.detectors._digits import BENFORD_SECOND, PRIOR_BIDS, clustering, leading_two
from bidwatch.detectors.benford_buyer import BenfordBuyer
from bidwatch.detectors.benford_firm import BenfordFirm
from bidwatch.detectors.buyer_concentration import BuyerConcentration
from bidwatch.findings import Findings

from .conftest import FIXTURES


def resolved(bids: pl.DataFrame, tenders: pl.DataFrame | None = None) -> Dataset:
    return entities.resolve(bidwatch.load(bids=bids, tenders=tenders))


def evidence(found: Findings, subject: str) -> dict[str, Any]:
    row = found.frame.filter(pl.col("subject_id") == subject)
    assert row.height == 1, f"{subject} not flagged"
    parsed: dict[str, Any] = json.loads(row.item(0, "evidence"))
    return parsed


def contests(rows: list[tuple[str, str, list[str], str]]) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(tender, buyer, bidders, winner) -> bids and tenders frames."""
    bids = [
        (tender, firm, 1000.0 + 10 * i, firm == winner)
        for tender, _, bidders, winner in rows
        for i, firm in enumerate(bidders)
    ]
    return (
        pl.DataFrame(bids, schema=["tender_id", "bidder_id", "amount", "is_winner"], orient="row"),
        pl.DataFrame(
            [(tender, buyer) for tender, buyer, _, _ in rows],
            schema=["tender_id", "buyer_id"],
            orient="row",
        ),
    )


# ------------------------------------------------------------------------ buyer-concentration


def test_concentration_chance_is_the_weighted_bonferroni_binomial_tail() -> None:
    # One buyer, 10 tenders of 4 bidders; A bids in all and wins 8; no record elsewhere.
    rows = [
        (f"T{t}", "X", ["A", "B", "C", "D"], "A" if t < 8 else "B" if t == 8 else "C")
        for t in range(10)
    ]
    data = resolved(*contests(rows))
    found = BuyerConcentration().detect(data)
    ev = evidence(found, "X")
    p = stats.binom.sf(7, 10, 0.25)
    # A made 10 of the buyer's 40 bids: its chance is weighted by 40 / 10.
    assert ev["chance"] == pytest.approx(4 * p, rel=1e-12)
    assert ev["q"] == pytest.approx(4 * p, rel=1e-12)  # one buyer: q = p
    assert found.frame.item(0, "score") == pytest.approx(1 - 4 * p)
    assert found.frame.item(0, "firms").to_list() == ["A"]
    (a,) = ev["dominant"]
    assert (a["wins"], a["bid_in"], a["fair"], a["strength"]) == (8, 10, 2.5, 1.0)
    assert a["won_tenders"] == [f"T{t}" for t in range(8)]
    assert ev["hhi"] == pytest.approx(0.8**2 + 0.1**2 + 0.1**2)
    assert "8 of the buyer's 10 tenders" in found.frame.item(0, "message")
    assert found.assessed.to_list() == ["X"]


def test_concentration_uses_the_firms_strength_elsewhere() -> None:
    rows = [
        (f"T{t}", "X", ["A", "B", "C", "D"], "A" if t < 8 else "B" if t == 8 else "C")
        for t in range(10)
    ]
    # Elsewhere (buyer Y, too small to assess): A wins 4 of 5 tenders of 4 bidders.
    rows += [(f"Y{t}", "Y", ["A", "E", "F", "G"], "A" if t < 4 else "E") for t in range(5)]
    data = resolved(*contests(rows))
    ev = evidence(BuyerConcentration(max_q=1.0).detect(data), "X")
    (a,) = (d for d in ev["dominant"] if d["firm"] == "A")
    # Strength: 3 average rivals; 4 + 2 wins in 5 + 2 x 4 tenders, pseudo-tenders included.
    field = 5 / (5 * 0.25)
    strength = (field - 1) * (4 + 2) / (5 - 4 + 2 * (field - 1))
    expected = 10 * strength / (strength + 3)
    assert a["strength"] == pytest.approx(strength)
    assert a["expected"] == pytest.approx(expected)
    assert (a["elsewhere_bids"], a["elsewhere_wins"]) == (5, 4)
    assert a["chance"] == pytest.approx(stats.binom.sf(7, 10, expected / 10))
    # A strong firm's wins are less surprising than an average firm's.
    assert a["chance"] > stats.binom.sf(7, 10, 0.25)


def test_concentration_through_sole_bidders_is_expected() -> None:
    rows = [(f"T{t}", "X", ["A"], "A") for t in range(9)]
    rows += [(f"U{t}", "X", ["A", "B", "C"], "B") for t in range(3)]
    data = resolved(*contests(rows))
    assert len(BuyerConcentration().detect(data)) == 0
    ev = evidence(BuyerConcentration(max_q=1.0).detect(data), "X")
    # A won 9 of 12 but nine were sole bids, won for sure: B's 3 of 3 at 1/3 each is the
    # least likely, weighted by the 18 bids / B's 3.
    assert [d["firm"] for d in ev["dominant"]] == ["B"]
    assert ev["chance"] == pytest.approx(18 / 3 * (1 / 3) ** 3)


def test_concentration_counts_only_tenders_with_one_winner() -> None:
    rows = [(f"T{t}", "X", ["A", "B", "C"], "A") for t in range(10)]
    bids, tenders = contests(rows)
    # A second winner in T0 makes its winner unknown: the buyer has 9 usable tenders.
    bids = bids.with_columns(
        pl.when((pl.col("tender_id") == "T0") & (pl.col("bidder_id") == "B"))
        .then(True)
        .otherwise(pl.col("is_winner"))
        .alias("is_winner")
    )
    with pytest.raises(NotComputable, match=r"no buyer has 10\+ tenders.*the most is 9"):
        BuyerConcentration().detect(resolved(bids, tenders))
    assert BuyerConcentration(min_tenders=9).detect(resolved(bids, tenders)).scanned == 1


def test_concentration_needs_a_buyer() -> None:
    bids, _ = contests([(f"T{t}", "X", ["A", "B"], "A") for t in range(12)])
    with pytest.raises(NotComputable, match="buyer_id or buyer_name"):
        BuyerConcentration().detect(resolved(bids))


def test_concentration_falls_back_to_the_buyer_name() -> None:
    bids, tenders = contests([(f"T{t}", "X", ["A", "B", "C", "D"], "A") for t in range(10)])
    tenders = tenders.select("tender_id", pl.lit("某某镇人民政府").alias("buyer_name"))
    found = BuyerConcentration().detect(resolved(bids, tenders))
    assert found.frame.get_column("subject_id").to_list() == ["某某镇人民政府"]


def test_concentration_is_calibrated_on_random_winners() -> None:
    rng = np.random.default_rng(11)
    firms = [f"C{i:02d}" for i in range(30)]
    rows = []
    for b in range(40):
        for t in range(15):
            bidders = [
                str(f) for f in rng.choice(firms, size=int(rng.integers(3, 8)), replace=False)
            ]
            rows.append((f"T{b}-{t}", f"B{b}", bidders, bidders[int(rng.integers(len(bidders)))]))
    found = BuyerConcentration(max_q=1.0).detect(resolved(*contests(rows)))
    chances = found.frame.get_column("evidence").map_elements(
        lambda e: json.loads(e)["chance"], return_dtype=pl.Float64
    )
    assert found.scanned == 40
    assert (chances < 0.05).mean() <= 0.1  # type: ignore[operator]
    assert found.frame.get_column("score").max() < 0.95  # type: ignore[operator]


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"min_tenders": 1}, "min_tenders"),
        ({"max_q": 0.0}, "max_q"),
        ({"max_q": 1.5}, "max_q"),
        ({"prior_wins": 0.0}, "prior_wins"),
    ],
)
def test_concentration_rejects_bad_parameters(kwargs: dict[str, Any], name: str) -> None:
    with pytest.raises(ValueError, match=name):
        BuyerConcentration(**kwargs)


# ------------------------------------------------------------------------- benford helpers


def test_leading_two_digits() -> None:
    amounts = [1234567.89, 1_000_000.0, 999_999.9999999, 1_199_999.9999999998, 0.0123, 5.0, 99.5]
    got = pl.DataFrame({"a": amounts}).select(leading_two(pl.col("a"))).to_series().to_list()
    assert got == [12, 10, 10, 12, 12, 50, 99]


def test_benford_second_digit_law() -> None:
    assert BENFORD_SECOND.sum(axis=1) == pytest.approx(np.ones(9))
    first = np.log10(1 + 1 / np.arange(1, 10))
    marginal = first @ BENFORD_SECOND
    # Benford's law for the second digit (Nigrini 2012, table 5.1).
    assert marginal.round(4).tolist() == [
        0.1197, 0.1139, 0.1088, 0.1043, 0.1003, 0.0967, 0.0934, 0.0904, 0.0876, 0.085
    ]  # fmt: skip


def test_clustering_of_digits_within_tenders() -> None:
    rng = np.random.default_rng(3)
    base = 10 ** rng.uniform(5, 7, size=3000)
    independent = pl.DataFrame(
        {
            "tender_id": np.repeat(np.arange(600), 5).astype(str),
            "amount": base,
        }
    )
    alike = pl.DataFrame(
        {"tender_id": np.repeat(np.arange(600), 5).astype(str), "amount": np.repeat(base[:600], 5)}
    )

    def rho(frame: pl.DataFrame) -> np.ndarray:
        digits = frame.with_columns(leading_two(pl.col("amount")).alias("dd")).select(
            "tender_id", (pl.col("dd") // 10).alias("d1"), (pl.col("dd") % 10).alias("d2")
        )
        return clustering(digits, BENFORD_SECOND)[0]

    assert np.abs(rho(independent)).max() < 0.1
    # Five copies of one bid: every cluster is one digit five times over.
    assert rho(alike) == pytest.approx(np.ones(9), abs=0.15)


# ---------------------------------------------------------------------------- benford-firm


def spread_bids(firm_amounts: dict[str, list[float]]) -> pl.DataFrame:
    """Each bid in a tender of its own: no clustering."""
    rows = [
        (f"T-{firm}-{i}", firm, amount)
        for firm, amounts in firm_amounts.items()
        for i, amount in enumerate(amounts)
    ]
    return pl.DataFrame(rows, schema=["tender_id", "bidder_id", "amount"], orient="row")


def test_firm_test_against_benford_is_pearsons_chi_square() -> None:
    rng = np.random.default_rng(6)
    natural = list(10 ** rng.uniform(5, 7, size=60))
    typed = [float(f"{d}{s}{rest:04d}00") for d, s, rest in zip(
        rng.integers(1, 10, size=40), rng.choice([3, 7], size=40), rng.integers(0, 9999, size=40),
        strict=True,
    )]  # fmt: skip
    data = resolved(spread_bids({"A": natural, "B": typed}))
    found = BenfordFirm(reference="benford", max_q=1.0).detect(data)
    assert found.assessed.to_list() == ["A", "B"]
    chances = []
    for firm, amounts in (("A", natural), ("B", typed)):
        ev = evidence(found, firm)
        pairs = [(int(f"{a:.15e}"[0]), int(f"{a:.15e}"[2])) for a in amounts]
        observed = np.bincount([b for _, b in pairs], minlength=10)
        expected = np.zeros(10)
        for a, _ in pairs:
            expected += [
                math.log10(1 + 1 / (10 * a + b)) / math.log10(1 + 1 / a) for b in range(10)
            ]
        chi2, p = stats.chisquare(observed, expected)
        assert ev["observed"] == observed.tolist()
        assert ev["expected"] == pytest.approx(expected, abs=1e-3)
        assert ev["chi_square"] == pytest.approx(chi2)
        assert ev["design_effect"] == 1.0
        assert ev["chance"] == pytest.approx(p)
        chances.append(p)
    q = stats.false_discovery_control(chances, method="bh")
    assert [evidence(found, f)["q"] for f in ("A", "B")] == pytest.approx(q)
    flagged = BenfordFirm(reference="benford").detect(data)
    assert flagged.frame.get_column("subject_id").to_list() == ["B"]
    message = flagged.frame.item(0, "message")
    assert "Benford's law" in message
    assert "<= 0.05" in message
    assert flagged.frame.item(0, "firms").to_list() == ["B"]


def test_firm_test_against_the_market_leaves_the_firm_out() -> None:
    rng = np.random.default_rng(8)
    firms = {f: list(10 ** rng.uniform(5, 7, size=40)) for f in ("A", "B", "C")}
    data = resolved(spread_bids(firms))
    found = BenfordFirm(max_q=1.0).detect(data)
    digits = {f: [(int(f"{a:.15e}"[0]), int(f"{a:.15e}"[2])) for a in v] for f, v in firms.items()}
    rest = np.zeros((9, 10))
    for a, b in digits["B"] + digits["C"]:
        rest[a - 1, b] += 1
    law = (rest + PRIOR_BIDS * BENFORD_SECOND) / (rest.sum(axis=1, keepdims=True) + PRIOR_BIDS)
    expected = sum(law[a - 1] for a, _ in digits["A"])
    ev = evidence(found, "A")
    assert ev["reference"] == "market"
    assert ev["expected"] == pytest.approx(expected, abs=1e-3)
    # The reference is itself a sample: the design effect carries its uncertainty.
    assert ev["design_effect"] > 1.0


def test_firm_test_needs_enough_bids() -> None:
    data = resolved(spread_bids({"A": [1.5e6] * 12, "B": [2.5e6] * 9}))
    with pytest.raises(NotComputable, match=r"no firm has 20\+ bids.*the most is 12"):
        BenfordFirm().detect(data)
    assert BenfordFirm(min_bids=12).detect(data).assessed.to_list() == ["A"]


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"min_bids": 9}, "min_bids"),
        ({"max_q": 0.0}, "max_q"),
        ({"reference": "uniform"}, "reference"),
    ],
)
def test_digit_tests_reject_bad_parameters(kwargs: dict[str, Any], name: str) -> None:
    for detector in (BenfordFirm, BenfordBuyer):
        with pytest.raises(ValueError, match=name):
            detector(**kwargs)


# --------------------------------------------------------------------------- benford-buyer


def clustered_market(seed: int, buyers: int, typed: str | None = None) -> Dataset:
    """Buyers of 8 tenders x 5 bids within 6% of the tender's amount; bids in the tenders
    of buyer ``typed`` have second digit 1, 4 or 7."""
    rng = np.random.default_rng(seed)
    tenders, bids = [], []
    for b in range(buyers):
        buyer = f"B{b:03d}"
        for t in range(8):
            tender = f"{buyer}-{t}"
            tenders.append((tender, buyer))
            base = 10 ** rng.uniform(5.5, 7.5)
            for i, amount in enumerate(base * (1 + rng.uniform(-0.06, 0.06, size=5))):
                text = f"{amount:.0f}"
                if buyer == typed:
                    text = text[0] + str(rng.choice([1, 4, 7])) + text[2:]
                bids.append((tender, f"X{i}", float(text)))
    return bidwatch.load(
        bids=pl.DataFrame(bids, schema=["tender_id", "bidder_id", "amount"], orient="row"),
        tenders=pl.DataFrame(tenders, schema=["tender_id", "buyer_id"], orient="row"),
    )


def test_buyer_test_is_calibrated_when_bids_of_a_tender_share_digits() -> None:
    data = clustered_market(seed=2, buyers=300)
    found = BenfordBuyer(max_q=1.0, min_bids=20).detect(data)
    parsed = [json.loads(e) for e in found.frame.get_column("evidence")]
    chance = np.array([e["chance"] for e in parsed])
    naive = np.array([stats.chi2.sf(e["chi_square"], 9) for e in parsed])
    assert found.scanned == 300
    assert 0.02 <= (chance < 0.05).mean() <= 0.09
    assert (chance < 0.001).sum() <= 2
    # Without the design effect a third of honest buyers would look deviant.
    assert (naive < 0.05).mean() > 0.25
    assert parsed[0]["within_tender_correlation"][0] > parsed[0]["within_tender_correlation"][8]


def test_buyer_with_typed_bids_is_flagged() -> None:
    found = BenfordBuyer(min_bids=20).detect(clustered_market(seed=4, buyers=60, typed="B007"))
    ranked = found.frame.sort("score", descending=True)
    assert ranked.item(0, "subject_id") == "B007"
    assert ranked.height <= 2
    assert ranked.item(0, "firms").to_list() == []
    ev = evidence(found, "B007")
    assert sum(ev["observed"][d] for d in (1, 4, 7)) == ev["bids"] == 40
    assert ev["tenders"] == 8


def test_buyer_test_needs_a_buyer() -> None:
    data = resolved(spread_bids({"A": list(np.linspace(1e6, 9e6, 40))}))
    with pytest.raises(NotComputable, match="buyer_id or buyer_name"):
        BenfordBuyer().detect(data)


# ------------------------------------------------------------------------------- all three


@pytest.mark.parametrize(
    "detector", [BuyerConcentration, BenfordFirm, BenfordBuyer], ids=lambda d: d.name
)
def test_golden_findings_invariant_to_row_order(detector: type) -> None:
    folder: Path = FIXTURES / "detectors" / detector.name
    data = resolved(pl.read_csv(folder / "bids.csv"), pl.read_csv(folder / "tenders.csv"))
    settings = {"min_bids": 20} if detector is not BuyerConcentration else {}
    first = detector(**settings).detect(data)
    shuffled = data.with_tables(
        bids=data.bids.sample(fraction=1.0, shuffle=True, seed=3),
        tenders=data.tenders.sample(fraction=1.0, shuffle=True, seed=4),
    )
    second = detector(**settings).detect(shuffled)
    assert len(first) == 1
    assert first.frame.equals(second.frame)
    assert first.assessed.equals(second.assessed)
