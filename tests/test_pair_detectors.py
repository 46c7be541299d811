"""Detectors across tenders: cobid-pairs, persistent-loser, market-allocation, trace-network.

Each statistic is checked against an independent computation (scipy.stats laws, numpy
convolutions) on hand-built markets.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal
from scipy import stats

import bidwatch
from bidwatch import entities
from bidwatch.config import Config
from bidwatch.dataset import Dataset
from bidwatch.detectors._base import NotComputable
from bidwatch.detectors._pairs import (
    Incidence,
    _distinct_rows,
    _log_factorials,
    bid_codes,
    binom_law,
    cobid_counts,
    coded_incidence,
    fdr,
    hypergeom_law,
    sum_tails,
)
from bidwatch.detectors.cobid_pairs import CobidPairs, _cells
from bidwatch.detectors.market_allocation import MarketAllocation, _shared_buyers
from bidwatch.detectors.persistent_loser import (
    PersistentLoser,
    _bidders,
    _slots,
    _top_winners,
)
from bidwatch.detectors.trace_network import TraceNetwork
from bidwatch.findings import Findings, group_id

from .conftest import FIXTURES


def dataset(bids: list[dict[str, Any]], tenders: list[dict[str, Any]] | None = None) -> Dataset:
    frame = pl.DataFrame(bids)
    if "amount" not in frame.columns:
        frame = frame.with_columns(pl.lit(1000.0).alias("amount"))
    return entities.resolve(
        bidwatch.load(bids=frame, tenders=pl.DataFrame(tenders) if tenders else None)
    )


def evidence(found: Findings, subject: str) -> dict[str, Any]:
    row = found.frame.filter(pl.col("subject_id") == subject)
    assert row.height == 1, f"{subject} not flagged"
    parsed: dict[str, Any] = json.loads(row.get_column("evidence")[0])
    return parsed


# ----------------------------------------------------------------------------- sum_tails


def convolved(laws: list[np.ndarray]) -> np.ndarray:
    pmf = np.array([1.0])
    for law in laws:
        pmf = np.convolve(pmf, law)
    return pmf


def test_sum_tails_matches_a_direct_convolution_of_hypergeometric_laws() -> None:
    rng = np.random.default_rng(1)
    # Three subjects with 1, 3 and 2 markets; caps below, at and far above the support.
    subject = np.array([0, 1, 1, 1, 2, 2])
    total = rng.integers(10, 40, subject.size)
    good = np.minimum(rng.integers(2, 15, subject.size), total)
    draws = np.minimum(rng.integers(2, 15, subject.size), total)
    cap = np.array([3, 9, 200])
    thresholds = [np.array([3, 9, 5]), np.array([0, 2, 200])]
    out = sum_tails(
        subject, np.minimum(good, draws), hypergeom_law(total, good, draws), cap, thresholds
    )
    for s in range(3):
        rows = np.flatnonzero(subject == s)
        laws = [
            stats.hypergeom.pmf(np.arange(min(good[r], draws[r]) + 1), total[r], good[r], draws[r])
            for r in rows
        ]
        pmf = convolved(laws)
        for (below, above), t in zip(out, thresholds, strict=True):
            assert below[s] == pytest.approx(pmf[: t[s]].sum(), rel=1e-9, abs=1e-300)
            assert above[s] == pytest.approx(pmf[t[s] :].sum(), rel=1e-9, abs=1e-300)


def test_sum_tails_keeps_the_digits_of_tiny_tails() -> None:
    # 60 trials at 1/2 each, over two slots: P(S = 0) = 2^-60, far below 1 - P(S >= 1)'s reach.
    subject = np.array([0, 0])
    trials = np.array([20, 40])
    chance = np.array([0.5, 0.5])
    ((below, above),) = sum_tails(
        subject, trials, binom_law(trials, chance), np.array([1]), [np.array([1])]
    )
    assert below[0] == pytest.approx(2.0**-60, rel=1e-9)
    assert above[0] == pytest.approx(1.0)
    ((below, above),) = sum_tails(
        subject, trials, binom_law(trials, chance), np.array([60]), [np.array([60])]
    )
    assert above[0] == pytest.approx(2.0**-60, rel=1e-9)


def test_sum_tails_of_no_subject_is_empty() -> None:
    empty = np.zeros(0, dtype=np.int64)
    ((below, above),) = sum_tails(empty, empty, binom_law(empty, np.zeros(0)), empty, [empty])
    assert below.size == above.size == 0


def test_sum_tails_of_a_subject_does_not_depend_on_the_others() -> None:
    # Subjects with 1 to 6 markets, convolved together and alone: the same digits, and the
    # same as a direct convolution, whatever the mix of row counts in the batch.
    rng = np.random.default_rng(7)
    count = np.array([3, 1, 6, 2, 6, 4])
    subject = np.repeat(np.arange(count.size), count)
    total = rng.integers(20, 60, subject.size)
    good = rng.integers(3, 20, subject.size)
    draws = rng.integers(3, 20, subject.size)
    cap = np.array([5, 2, 12, 7, 9, 30])
    law = hypergeom_law(total, good, draws)
    ((below, above),) = sum_tails(subject, np.minimum(good, draws), law, cap, [cap])
    start = np.concatenate([[0], np.cumsum(count)[:-1]])
    for s in range(count.size):
        rows = np.arange(start[s], start[s] + count[s])
        ((alone_below, alone_above),) = sum_tails(
            np.zeros(count[s], dtype=np.int64),
            np.minimum(good, draws)[rows],
            hypergeom_law(total[rows], good[rows], draws[rows]),
            cap[s : s + 1],
            [cap[s : s + 1]],
        )
        assert (alone_below[0], alone_above[0]) == (below[s], above[s])
        laws = [
            stats.hypergeom.pmf(np.arange(min(good[r], draws[r]) + 1), total[r], good[r], draws[r])
            for r in rows
        ]
        pmf = convolved(laws)
        assert below[s] == pytest.approx(pmf[: cap[s]].sum(), rel=1e-9, abs=1e-300)
        assert above[s] == pytest.approx(pmf[cap[s] :].sum(), rel=1e-9, abs=1e-300)


def test_hypergeom_tail_asks_repeated_rows_once_with_the_same_values() -> None:
    rng = np.random.default_rng(7)
    total = rng.integers(20, 40, 300)
    good = rng.integers(0, 20, 300)
    draws = rng.integers(0, 20, 300)
    _, sf = hypergeom_law(total, good, draws)
    rows = rng.integers(0, 300, 2000)  # many rows asked twice or more
    x = rng.integers(0, 10, 2000)
    expected = stats.hypergeom.sf(x, total[rows], good[rows], draws[rows])
    assert np.array_equal(sf(rows, x), expected)
    assert np.array_equal(sf(rows[:1], x[:1]), expected[:1])


def test_sum_tails_lower_only_gives_the_same_lower_tails() -> None:
    rng = np.random.default_rng(3)
    subject = np.repeat(np.arange(4), [2, 5, 1, 3])
    trials = rng.integers(1, 30, subject.size)
    chance = rng.uniform(0.05, 0.9, subject.size)
    cap = np.array([4, 20, 1, 9])
    thresholds = [cap, np.array([0, 3, 1, 2])]
    full = sum_tails(subject, trials, binom_law(trials, chance), cap, thresholds)
    lower = sum_tails(subject, trials, binom_law(trials, chance), cap, thresholds, lower_only=True)
    for (below, _), (low, high) in zip(full, lower, strict=True):
        assert np.array_equal(below, low)
        assert np.isnan(high).all()


def test_sum_tails_lower_only_follows_hypergeometric_sums_to_any_cap_with_the_same_digits() -> None:
    # Lower-only widths round caps up to a few significant bits, not to 2^j - 1: the cells
    # below the cap take the same terms in the same order, so the tails keep every digit.
    rng = np.random.default_rng(11)
    count = rng.integers(1, 8, 300)
    subject = np.repeat(np.arange(count.size), count)
    total = rng.integers(10, 400, subject.size)
    good = rng.integers(0, 200, subject.size) % (total + 1)
    draws = rng.integers(0, 200, subject.size) % (total + 1)
    support = np.minimum(good, draws)
    cap = rng.integers(0, 120, count.size)
    thresholds = [cap, rng.integers(0, 120, count.size) % (cap + 1)]
    law = hypergeom_law(total, good, draws)
    full = sum_tails(subject, support, law, cap, thresholds)
    lower = sum_tails(subject, support, law, cap, thresholds, lower_only=True)
    upper = sum_tails(subject, support, law, cap, thresholds, upper_only=True)
    for (below, above), (low, none_above), (none_below, high) in zip(
        full, lower, upper, strict=True
    ):
        assert below.tobytes() == low.tobytes()
        assert above.tobytes() == high.tobytes()
        assert np.isnan(none_above).all()
        assert np.isnan(none_below).all()
    with pytest.raises(ValueError, match="exclude each other"):
        sum_tails(subject, support, law, cap, thresholds, lower_only=True, upper_only=True)


def test_hypergeom_pmf_is_the_log_factorial_formula_to_the_last_digit() -> None:
    # The reference is the plain formula, cell by cell, with out-of-support cells at 0; the
    # grid runs past the supports so that clipped indices are exercised.
    rng = np.random.default_rng(5)
    total = rng.integers(0, 300, 5000)
    good = rng.integers(0, 300, 5000) % (total + 1)
    draws = rng.integers(0, 300, 5000) % (total + 1)
    lf = _log_factorials(int(total.max()))
    pmf, _ = hypergeom_law(total, good, draws)
    rows = rng.integers(0, 5000, 3000)
    x = np.arange(40, dtype=np.int64)
    n, a, d = (v[rows, None] for v in (total, good, draws))
    k = x[None, :]
    inside = (k <= np.minimum(a, d)) & (k >= d - (n - a))
    k = np.where(inside, k, 0)
    log = lf[a] + lf[n - a] + lf[d] + lf[n - d] - lf[n] - lf[k]
    log = log - lf[np.maximum(a - k, 0)] - lf[np.maximum(d - k, 0)]
    log -= lf[np.maximum(n - a - d + k, 0)]
    expected = np.where(inside, np.exp(log), 0.0)
    got = pmf(rows, x)
    assert got.tobytes() == expected.tobytes()
    assert got[0] == pytest.approx(stats.hypergeom.pmf(x, n[0], a[0], d[0]), rel=1e-9, abs=1e-300)


def test_distinct_rows_packed_or_sorted_name_each_distinct_tuple_once() -> None:
    rng = np.random.default_rng(2)
    small = [rng.integers(0, 5, 400) for _ in range(3)]
    # Columns whose product of ranges overflows 64 bits take the sorting path.
    large = [rng.integers(0, 3, 400) * (1 << 40) + rng.integers(0, 2, 400) for _ in range(2)]
    for columns in (small, large, [np.zeros(0, dtype=np.int64)] * 2):
        first, back = _distinct_rows(*columns)
        stacked = np.stack(columns, axis=1)
        assert np.unique(stacked[first], axis=0).shape[0] == first.shape[0]
        assert np.array_equal(stacked[first][back], stacked)
        assert first.shape[0] == np.unique(stacked, axis=0).shape[0]


def test_shared_buyers_match_a_self_join_of_the_firms_buyers() -> None:
    rng = np.random.default_rng(6)
    for _ in range(40):
        width = int(rng.integers(1, 15))
        at = pl.DataFrame(
            {
                "_mb": rng.integers(0, 8, 40).astype(np.uint64) * 1000,
                "_r": rng.integers(0, width, 40).astype(np.uint32),
            }
        ).unique()
        at = at.with_columns(pl.Series("k", rng.integers(1, 9, at.height), dtype=pl.UInt32))
        key = (pl.col("_r").cast(pl.UInt64) * width + pl.col("_r_b")).alias("_key")
        expected = (
            at.join(at, on="_mb", suffix="_b")
            .filter(pl.col("_r") < pl.col("_r_b"))
            .group_by(key)
            .agg(
                pl.len().alias("x"),
                pl.col("k_b").sum().alias("b_at_a"),
                pl.col("k").sum().alias("a_at_b"),
            )
            .sort("_key")
        )
        assert_frame_equal(_shared_buyers(at, width), expected)
    empty = pl.DataFrame(schema={"_mb": pl.UInt64, "_r": pl.UInt32, "k": pl.UInt32})
    assert _shared_buyers(empty, 3).height == 0


def test_bidders_match_a_group_by_of_the_valid_bids() -> None:
    rng = np.random.default_rng(10)
    bids = [
        {
            "tender_id": f"T{rng.integers(0, 12)}",
            "bidder_id": f"B{rng.integers(0, 6)}",
            "is_winner": bool(rng.random() < 0.3),
            "status": ["valid", None, "disqualified"][rng.integers(0, 3)],
        }
        for _ in range(150)
    ]
    data = dataset(bids)
    # B0's bids have no resolved firm: rivals all the same, each a bidder of its own.
    firm = pl.when(pl.col("bidder_id") == "B0").then(None).otherwise(pl.col("firm_id"))
    data = dataclasses.replace(data, bids=data.bids.with_columns(firm.alias("firm_id")))
    codes = bid_codes(data)
    row = pl.int_range(pl.len(), dtype=pl.UInt64) + codes.firms.len()
    expected = (
        pl.concat(
            [
                data.bids.select(
                    (pl.col("status").is_null() | (pl.col("status") == "valid")).alias("_ok"),
                    pl.col("firm_id").is_not_null().alias("_firm"),
                    pl.col("is_winner").fill_null(False),
                ),
                codes.frame,
            ],
            how="horizontal",
        )
        .filter("_ok")
        .select(
            "_t", pl.coalesce(pl.col("_f").cast(pl.UInt64), row).alias("_w"), "_firm", "is_winner"
        )
        .group_by("_t", "_w")
        .agg(pl.col("_firm").first(), pl.col("is_winner").any())
    )
    bidders, tenders = _bidders(data)
    firms = pl.col("_firm")
    assert_frame_equal(bidders.filter(firms), expected.filter(firms), check_row_order=False)
    # Bids without a firm are numbered by row: only how many there are per tender matters.
    assert_frame_equal(
        bidders.group_by("_t", "_firm", "is_winner").len(),
        expected.group_by("_t", "_firm", "is_winner").len(),
        check_row_order=False,
    )
    counted = (
        expected.group_by("_t")
        .agg(pl.len().alias("n"), pl.col("is_winner").sum().alias("w"))
        .filter(pl.col("w") > 0)
    )
    assert_frame_equal(tenders, counted, check_row_order=False)
    assert tenders.height > 0
    assert not bidders.get_column("_firm").all()


def test_slots_match_a_group_by_and_sort() -> None:
    rng = np.random.default_rng(9)
    for _ in range(20):
        bids = pl.DataFrame(
            {
                "_s": pl.Series(rng.integers(0, 5, 80), dtype=pl.UInt32),
                "n": pl.Series(rng.integers(1, 9, 80), dtype=pl.UInt32),
                "w": pl.Series(rng.integers(0, 3, 80), dtype=pl.UInt32),
            }
        )
        expected = bids.group_by("_s", "n", "w").agg(pl.len().alias("c")).sort("_s", "n", "w")
        assert_frame_equal(_slots(bids), expected)
    assert _slots(bids.clear()).height == 0


def test_top_winners_match_counting_sorting_and_taking_the_first() -> None:
    rng = np.random.default_rng(8)
    for _ in range(40):
        lost = pl.DataFrame(
            {
                "_s": pl.Series(rng.integers(0, 6, 50), dtype=pl.UInt32),
                "_win": pl.Series(rng.integers(0, 5, 50) * 7, dtype=pl.UInt64),
                "_t": pl.Series(np.arange(50), dtype=pl.UInt32),
            }
        )
        expected = (
            lost.group_by("_s", "_win")
            .agg(pl.len().alias("lost_to"))
            .sort(["_s", "lost_to", "_win"], descending=[False, True, False])
            .group_by("_s", maintain_order=True)
            .agg(pl.all().first(), pl.col("_win").len().alias("winners"))
        )
        assert_frame_equal(_top_winners(lost), expected)
    assert _top_winners(lost.clear()).height == 0


def _random_incidence(rng: np.random.Generator, *, tenders: int, firms: int) -> pl.DataFrame:
    """Distinct (tender _t, firm _f) codes of 60 random bids, sorted."""
    return (
        pl.DataFrame(
            {
                "_t": rng.integers(0, tenders, 60).astype(np.uint32),
                "_f": rng.integers(0, firms, 60).astype(np.uint32),
            }
        )
        .unique()
        .sort("_t", "_f")
    )


def test_cobid_cells_match_joins_of_the_firms_markets() -> None:
    rng = np.random.default_rng(4)
    for _ in range(40):
        firms = int(rng.integers(2, 12))
        markets = int(rng.integers(1, 5))
        tender_market = pl.Series(rng.integers(0, markets, 10), dtype=pl.UInt32)
        tender_market = tender_market.scatter(rng.integers(0, 10, 2), None)  # unknown markets
        frame = _random_incidence(rng, tenders=10, firms=firms)
        frame = frame.with_columns(tender_market.gather(frame.get_column("_t")).alias("_m"))
        found = Incidence(
            frame=frame,
            tenders=pl.DataFrame({"_m": tender_market}),
            firms=pl.Series([f"F{i}" for i in range(firms)]),
        )
        first = rng.integers(0, firms, 15).astype(np.uint32)
        second = rng.integers(0, firms, 15).astype(np.uint32)
        pairs = pl.DataFrame({"_fa": first, "_fb": second}).with_row_index("_s")
        size = frame.group_by("_m").agg(pl.col("_t").n_unique().alias("N"))
        active = frame.group_by("_f", "_m").agg(pl.len().alias("n"))
        expected = (
            pairs.join(active, left_on="_fa", right_on="_f")
            .join(active, left_on=["_fb", "_m"], right_on=["_f", "_m"])
            .rename({"n": "a", "n_right": "b"})
            .join(size, on="_m")
            .sort("_s", "_m")
            .select("_s", "_fa", "_fb", "_m", "a", "b", "N")
        )
        assert_frame_equal(_cells(found, first, second), expected)


def test_coded_incidence_codes_follow_the_names_and_are_built_once() -> None:
    data = dataset(
        [
            {"tender_id": "T2", "bidder_id": "B"},
            {"tender_id": "T2", "bidder_id": "A"},
            {"tender_id": "T1", "bidder_id": "C"},
            {"tender_id": "T1", "bidder_id": "A"},
            {"tender_id": "T1", "bidder_id": "A"},
        ],
        [
            {"tender_id": "T1", "region": "south", "category": "road"},
            {"tender_id": "T2", "region": "north", "category": "road"},
        ],
    )
    found = coded_incidence(data)
    assert coded_incidence(data) is found
    firms = found.firms.to_list()
    assert firms == sorted(firms)
    assert len(firms) == 3
    assert found.tenders.get_column("tender_id").to_list() == ["T1", "T2"]
    assert found.tenders.get_column("market").to_list() == ["south / road", "north / road"]
    # "north / road" sorts first, so it is market 0 although T1 comes first.
    assert found.tenders.get_column("_m").to_list() == [1, 0]
    named = found.frame.with_columns(
        found.firms.gather(found.frame.get_column("_f")).alias("firm_id"),
        found.tenders.get_column("tender_id").gather(found.frame.get_column("_t")),
    )
    expected = data.bids.select("tender_id", "firm_id").unique()
    assert named.height == 4
    assert named.select("tender_id", "firm_id").sort(pl.all()).equals(expected.sort(pl.all()))


def test_bid_codes_follow_the_names_row_for_row_and_are_built_once() -> None:
    data = dataset(
        [
            {"tender_id": "T2", "bidder_id": "B"},
            {"tender_id": "T1", "bidder_id": "A"},
            {"tender_id": "T3", "bidder_id": "C"},
        ]
    )
    data = dataclasses.replace(
        data,
        bids=data.bids.with_columns(
            pl.when(pl.col("tender_id") == "T3")
            .then(None)
            .otherwise(pl.col("firm_id"))
            .alias("firm_id")
        ),
    )
    codes = bid_codes(data)
    assert bid_codes(data) is codes
    assert codes.tenders.to_list() == ["T1", "T2", "T3"]
    assert codes.firms.to_list() == sorted(data.bids.get_column("firm_id").drop_nulls())
    assert codes.frame.get_column("_t").to_list() == [1, 0, 2]
    named = codes.firms.gather(codes.frame.get_column("_f").drop_nulls())
    assert named.to_list() == data.bids.get_column("firm_id").drop_nulls().to_list()
    assert codes.frame.get_column("_f").is_null().to_list() == [False, False, True]


def test_cobid_counts_match_a_self_join_of_the_incidence() -> None:
    rng = np.random.default_rng(3)
    for _ in range(50):
        firms = int(rng.integers(1, 12))
        frame = _random_incidence(rng, tenders=8, firms=firms)
        found = Incidence(
            frame=frame, tenders=pl.DataFrame(), firms=pl.Series([f"F{i}" for i in range(firms)])
        )
        key = (pl.col("_f").cast(pl.UInt64) * firms + pl.col("_f_b")).alias("_key")
        joined = (
            frame.join(frame, on="_t", suffix="_b")
            .filter(pl.col("_f") < pl.col("_f_b"))
            .group_by(key)
            .agg(pl.len().cast(pl.UInt32).alias("k"))
        )
        for least in (1, 3):
            expected = joined.filter(pl.col("k") >= least).sort("_key")
            assert cobid_counts(found, least).equals(expected)
    empty = Incidence(
        frame=pl.DataFrame(schema={"_t": pl.UInt32, "_f": pl.UInt32}),
        tenders=pl.DataFrame(),
        firms=pl.Series([], dtype=pl.String),
    )
    assert cobid_counts(empty, 1).height == 0


def test_fdr_is_benjamini_hochberg_and_ignores_order() -> None:
    p = np.array([0.01, 0.04, 0.03, 0.2, 0.01])
    q = fdr(p)
    assert q == pytest.approx(stats.false_discovery_control(p))
    order = np.array([3, 1, 4, 0, 2])
    assert fdr(p[order]) == pytest.approx(q[order])
    assert q[0] == q[4]


# --------------------------------------------------------------------------- cobid-pairs


def cobid_market() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Market R1 / road, 20 tenders: A and B each bid in 7 and meet in 6; C bids in all 20.
    Market R2 / road, 10 tenders: A and B each in 3, meeting in 2."""
    bids, tenders = [], []
    for i in range(20):
        t = f"R1-{i:02d}"
        tenders.append({"tender_id": t, "region": "R1", "category": "road"})
        bids.append({"tender_id": t, "bidder_id": "C"})
        if i < 7:
            bids.append({"tender_id": t, "bidder_id": "A"})
        if 1 <= i < 8:
            bids.append({"tender_id": t, "bidder_id": "B"})
    for i in range(10):
        t = f"R2-{i:02d}"
        tenders.append({"tender_id": t, "region": "R2", "category": "road"})
        bids.append({"tender_id": t, "bidder_id": "D"})
        if i < 3:
            bids.append({"tender_id": t, "bidder_id": "A"})
        if 1 <= i < 4:
            bids.append({"tender_id": t, "bidder_id": "B"})
    return bids, tenders


def test_cobid_p_value_is_the_exact_stratified_hypergeometric_tail() -> None:
    data = dataset(*cobid_market())
    found = CobidPairs(max_q=1.0).detect(data)
    got = evidence(found, "A|B")
    # 8 co-bids: 6 in R1 (20 tenders, 7 and 7 bids), 2 in R2 (10 tenders, 3 and 3 bids).
    r1 = stats.hypergeom.pmf(np.arange(8), 20, 7, 7)
    r2 = stats.hypergeom.pmf(np.arange(4), 10, 3, 3)
    pmf = np.convolve(r1, r2)
    assert got["cobids"] == 8
    assert got["p"] == pytest.approx(pmf[8:].sum(), rel=1e-9)
    assert got["p_selected"] == pytest.approx(pmf[8:].sum() / pmf[3:].sum(), rel=1e-9)
    assert got["expected"] == pytest.approx(7 * 7 / 20 + 3 * 3 / 10)
    markets = {m["market"]: m for m in got["markets"]}
    assert markets["R1 / road"]["together"] == 6
    assert markets["R2 / road"] == {
        "market": "R2 / road",
        "tenders": 10,
        "bids_a": 3,
        "bids_b": 3,
        "together": 2,
        "expected": pytest.approx(0.9),
    }
    assert len(got["tenders"]) == 8


def test_cobid_q_is_benjamini_hochberg_over_the_tested_pairs() -> None:
    data = dataset(*cobid_market())
    found = CobidPairs(max_q=1.0).detect(data)
    tested = sorted(found.assessed.to_list())
    # C meets A 7 times and B 7 times; D meets A and B 3 times each.
    assert tested == ["A|B", "A|C", "A|D", "B|C", "B|D"]
    selected = {s: evidence(found, s)["p_selected"] for s in tested}
    q = fdr(np.array([selected[s] for s in tested]))
    for s, expect in zip(tested, q, strict=True):
        assert evidence(found, s)["q"] == pytest.approx(expect)
    # C bids in every R1 tender: meeting it is certain, p = 1.
    assert selected["A|C"] == pytest.approx(1.0)


def test_cobid_pairs_below_min_cobids_are_not_tested() -> None:
    data = dataset(*cobid_market())
    found = CobidPairs(min_cobids=4, max_q=1.0).detect(data)
    assert sorted(found.assessed.to_list()) == ["A|B", "A|C", "B|C"]


def test_cobid_without_markets_uses_the_whole_input() -> None:
    bids, _ = cobid_market()
    found = CobidPairs(max_q=1.0).detect(dataset(bids))
    got = evidence(found, "A|B")
    assert [m["market"] for m in got["markets"]] == ["all tenders"]
    assert got["p"] == pytest.approx(stats.hypergeom.sf(7, 30, 10, 10), rel=1e-9)
    (note,) = found.notes
    assert "no region or category" in note
    assert CobidPairs(max_q=1.0).detect(dataset(*cobid_market())).notes == ()


def test_cobid_flags_only_below_max_q() -> None:
    data = dataset(*cobid_market())
    everything = CobidPairs(max_q=1.0).detect(data)
    q = evidence(everything, "A|B")["q"]
    assert len(CobidPairs(max_q=q).detect(data).frame.filter(pl.col("subject_id") == "A|B"))
    assert not len(CobidPairs(max_q=q * 0.99).detect(data).frame)


def test_cobid_finds_nothing_to_test_without_repeated_meetings() -> None:
    bids = [{"tender_id": f"T{i}", "bidder_id": b} for i in range(3) for b in (f"A{i}", f"B{i}")]
    found = CobidPairs().detect(dataset(bids))
    assert len(found) == 0
    assert found.scanned == 0


@pytest.mark.parametrize(
    ("detector", "kwargs", "parameter"),
    [
        (CobidPairs, {"min_cobids": 1}, "min_cobids"),
        (CobidPairs, {"max_q": 0.0}, "max_q"),
        (PersistentLoser, {"min_bids": 0}, "min_bids"),
        (PersistentLoser, {"max_q": 1.5}, "max_q"),
        (PersistentLoser, {"min_winner_share": 1.2}, "min_winner_share"),
        (MarketAllocation, {"min_tenders": 0}, "min_tenders"),
        (MarketAllocation, {"max_q": -0.1}, "max_q"),
        (TraceNetwork, {"max_firms": 1}, "max_firms"),
        (TraceNetwork, {"min_tenders": 1}, "min_tenders"),
    ],
)
def test_bad_parameters_are_refused_by_name(
    detector: type, kwargs: dict[str, Any], parameter: str
) -> None:
    with pytest.raises(ValueError, match=parameter):
        detector(**kwargs)


# ---------------------------------------------------------------------- persistent-loser


def loser_market() -> list[dict[str, Any]]:
    """L bids in 12 tenders: 6 with 2 valid bidders, 6 with 4; it wins one. W wins 9 of
    L's losses. One more tender of L's is undecided and one bid of L's is disqualified."""
    bids: list[dict[str, Any]] = []
    for i in range(12):
        t = f"T{i:02d}"
        rivals = ["W"] if i < 6 else ["W", f"X{i}", f"Y{i}"]
        winner = "L" if i == 0 else ("W" if i < 10 else rivals[-1])
        for firm in ["L", *rivals]:
            bids.append({"tender_id": t, "bidder_id": firm, "is_winner": firm == winner})
    bids += [
        {"tender_id": "U1", "bidder_id": "L", "is_winner": False},
        {"tender_id": "U1", "bidder_id": "W", "is_winner": False},
        {"tender_id": "U2", "bidder_id": "L", "is_winner": False, "status": "disqualified"},
        {"tender_id": "U2", "bidder_id": "W", "is_winner": True, "status": "valid"},
    ]
    return bids


def poisson_binomial_cdf(k: int, chances: list[float]) -> float:
    pmf = convolved([np.array([1 - c, c]) for c in chances])
    return float(pmf[: k + 1].sum())


def test_loser_p_value_is_the_exact_poisson_binomial_tail() -> None:
    found = PersistentLoser(min_bids=10, max_q=1.0).detect(dataset(loser_market()))
    got = evidence(found, "L")
    chances = [1 / 2] * 6 + [1 / 4] * 6
    assert got["bids"] == 12  # the undecided and the disqualified bid do not count
    assert got["wins"] == 1
    assert got["expected_wins"] == pytest.approx(sum(chances))
    assert got["p"] == pytest.approx(poisson_binomial_cdf(1, chances), rel=1e-9)
    assert got["winner"] == "W"
    assert got["lost_to_winner"] == 9
    assert got["losses"] == 11
    assert got["winner_share"] == pytest.approx(9 / 11)
    assert got["tenders_lost_to_winner"] == [f"T{i:02d}" for i in range(1, 10)]
    row = found.frame.filter(pl.col("subject_id") == "L")
    assert row.get_column("firms").to_list() == [["L", "W"]]


def test_loser_needs_a_dominant_winner() -> None:
    data = dataset(loser_market())
    assert len(PersistentLoser(min_bids=10, max_q=1.0, min_winner_share=9 / 11).detect(data))
    share = PersistentLoser(min_bids=10, max_q=1.0, min_winner_share=0.82).detect(data)
    assert "L" not in share.frame.get_column("subject_id").to_list()
    assert "L" in share.assessed.to_list()


def test_loser_with_its_expected_wins_has_p_one() -> None:
    found = PersistentLoser(min_bids=10, max_q=1.0, min_winner_share=0.0).detect(
        dataset(loser_market())
    )
    # W bids in 13 decided tenders and wins 10 of them, against 5.5 expected.
    assert evidence(found, "W")["p"] == 1.0
    assert sorted(found.assessed.to_list()) == ["L", "W"]


def test_loser_dominant_winner_ties_go_to_the_smaller_id() -> None:
    bids = []
    for i in range(10):
        winner = "B" if i % 2 else "A"
        for firm in ("L", "A", "B"):
            bids.append({"tender_id": f"T{i}", "bidder_id": firm, "is_winner": firm == winner})
    found = PersistentLoser(min_bids=10, max_q=1.0).detect(dataset(bids))
    got = evidence(found, "L")
    assert got["winner"] == "A"
    assert got["winner_share"] == 0.5
    assert got["p"] == pytest.approx((2 / 3) ** 10)


def test_loser_without_winners_recorded_assesses_no_one() -> None:
    bids = [{"tender_id": f"T{i}", "bidder_id": b} for i in range(12) for b in ("L", "W")]
    found = PersistentLoser().detect(dataset(bids))
    assert len(found) == 0
    assert found.scanned == 0


# --------------------------------------------------------------------- market-allocation


def allocation_market(shared: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """12 buyers of R / road with 3 tenders each; A bids at buyers 0-5, B at buyers
    6-11 except that the first ``shared`` of B's buyers are A's; C bids everywhere."""
    bids, tenders = [], []
    b_buyers = list(range(shared)) + list(range(6 + shared, 12))
    for j in range(12):
        for k in range(3):
            t = f"B{j:02d}-{k}"
            tenders.append(
                {"tender_id": t, "buyer_name": f"Buyer {j:02d}", "region": "R", "category": "road"}
            )
            bids.append({"tender_id": t, "bidder_id": "C"})
            if j < 6 and k < 2:
                bids.append({"tender_id": t, "bidder_id": "A"})
            if j in b_buyers and k < 2:
                bids.append({"tender_id": t, "bidder_id": "B"})
    return bids, tenders


@pytest.mark.parametrize("shared", [0, 1, 2])
def test_allocation_p_value_is_the_hypergeometric_lower_tail(shared: int) -> None:
    data = dataset(*allocation_market(shared))
    found = MarketAllocation(min_tenders=10, max_q=1.0).detect(data)
    got = evidence(found, "A|B")
    assert got["shared_buyers"] == shared
    # Each firm bid twice at each buyer it shares with the other: 2 x shared tenders at
    # the other's buyers, which hold 18 of the 36 tenders; 12 tenders each.
    assert got["b_at_a"] == got["a_at_b"] == 2 * shared
    assert got["expected_b_at_a"] == got["expected_a_at_b"] == pytest.approx(6.0)
    one_way = stats.hypergeom.cdf(2 * shared, 36, 18, 12)
    assert got["p_b_at_a"] == pytest.approx(one_way, rel=1e-9)
    assert got["p"] == pytest.approx(one_way, rel=1e-9)
    (market,) = got["markets"]
    assert market["buyers_a"] == [f"Buyer {j:02d}" for j in range(6)]
    assert market["shared"] == shared
    assert market["tenders"] == 36
    assert market["tenders_at_a_buyers"] == 18
    assert len(market["together"]) == 2 * shared


def test_allocation_p_value_is_the_larger_of_the_two_ways() -> None:
    """S keeps to one small buyer of 10 tenders, A to its 12 buyers of 3: S stays away
    from A's 36 tenders far more surely than A stays away from S's 10."""
    bids, tenders = allocation_market(0)
    for k in range(10):
        t = f"S-{k}"
        tenders.append({"tender_id": t, "buyer_name": "Small", "region": "R", "category": "road"})
        bids += [{"tender_id": t, "bidder_id": "S"}, {"tender_id": t, "bidder_id": "C"}]
    found = MarketAllocation(min_tenders=10, max_q=1.0).detect(dataset(bids, tenders))
    got = evidence(found, "A|S")
    s_at_a = stats.hypergeom.cdf(0, 46, 18, 10)  # S's 10 tenders, none at A's 18
    a_at_s = stats.hypergeom.cdf(0, 46, 10, 12)  # A's 12 tenders, none at S's 10
    assert got["p_b_at_a"] == pytest.approx(s_at_a, rel=1e-9)
    assert got["p_a_at_b"] == pytest.approx(a_at_s, rel=1e-9)
    assert got["p"] == pytest.approx(max(s_at_a, a_at_s), rel=1e-9)


def test_allocation_pairs_that_meet_at_their_buyers_get_p_one() -> None:
    found = MarketAllocation(min_tenders=10, max_q=1.0).detect(dataset(*allocation_market(0)))
    # C bids at every buyer: it shares all of A's and B's.
    assert evidence(found, "A|C")["p"] == 1.0
    assert sorted(found.assessed.to_list()) == ["A|B", "A|C", "B|C"]
    flagged = MarketAllocation(min_tenders=10).detect(dataset(*allocation_market(0)))
    assert flagged.frame.get_column("subject_id").to_list() == ["A|B"]


def test_allocation_needs_enough_tenders_in_one_market() -> None:
    found = MarketAllocation(min_tenders=13).detect(dataset(*allocation_market(0)))
    assert sorted(found.assessed.to_list()) == []


def test_allocation_needs_markets() -> None:
    bids, tenders = allocation_market(0)
    for t in tenders:
        del t["region"], t["category"]
    with pytest.raises(NotComputable, match="needs markets"):
        MarketAllocation().detect(dataset(bids, tenders))


def test_allocation_refuses_markets_too_coarse_to_test() -> None:
    # A, B and C are active in the one market: three pairs.
    with pytest.raises(NotComputable, match="3 pairs of firms share a market, above max_pairs"):
        MarketAllocation(max_pairs=2).detect(dataset(*allocation_market(0)))
    assert MarketAllocation(max_pairs=3).detect(dataset(*allocation_market(0))).scanned == 3


def test_allocation_needs_buyers() -> None:
    bids, tenders = allocation_market(0)
    for t in tenders:
        del t["buyer_name"]
    with pytest.raises(NotComputable, match="buyer"):
        MarketAllocation().detect(dataset(bids, tenders))


# ------------------------------------------------------------------------- trace-network


def traced(rows: list[tuple[str, str, dict[str, str]]]) -> list[dict[str, Any]]:
    """Bids (tender, firm, traces); every bid also carries a machine code of its own."""
    return [
        {"tender_id": t, "bidder_id": f, "machine_code": f"own-{f}-{t}", **extra}
        for t, f, extra in rows
    ]


def test_trace_network_joins_chains_into_one_group() -> None:
    bids = traced(
        [
            ("T1", "A", {"phone": "138 0000 1111"}),
            ("T2", "B", {"phone": "13800001111", "deposit_account": "6222 1"}),
            ("T3", "C", {"deposit_account": "6222 1"}),
            ("T4", "C", {"deposit_account": "62221"}),
            ("T4", "D", {}),
        ]
    )
    found = TraceNetwork().detect(dataset(bids))
    assert found.frame.get_column("subject_id").to_list() == [group_id(["A", "B", "C"])]
    assert found.frame.get_column("firms").to_list() == [["A", "B", "C"]]
    got = evidence(found, group_id(["A", "B", "C"]))
    links = {link["trace"]: link for link in got["links"]}
    # Deposit account: C carried it in two tenders, so it is C's; B used it once.
    assert links["deposit_account"]["t"] == 1
    assert [c["firm"] for c in links["deposit_account"]["carriers"]] == ["C", "B"]
    # Scores: deposit 0.99 x (1 - 1/2), phone 0.85 x (1 - 1/2), combined over trace types.
    score = found.frame.get_column("score")[0]
    assert score == pytest.approx(1 - (1 - 0.99 / 2) * (1 - 0.85 / 2))


def test_trace_network_score_grows_with_the_tenders_of_the_link() -> None:
    rows = [("T0", "A", {"mac_address": "00:11:22:33:44:55"})]
    rows += [(f"T{i}", "B", {"mac_address": "00-11-22-33-44-55"}) for i in range(1, 4)]
    found = TraceNetwork().detect(dataset(traced(rows)))
    # B carries the MAC in three tenders and is its main carrier; A used it in one.
    assert found.frame.get_column("score")[0] == pytest.approx(0.97 * 0.5)
    rows += [(f"U{i}", "A", {"mac_address": "001122334455"}) for i in range(1, 4)]
    found = TraceNetwork().detect(dataset(traced(rows)))
    # Now A carries it in four tenders: B's three uses are the link.
    assert found.frame.get_column("score")[0] == pytest.approx(0.97 * (1 - 2.0**-3))


def test_trace_network_leaves_one_tender_to_shared_traces() -> None:
    bids = traced([("T1", "A", {"email": "x@y.cn"}), ("T1", "B", {"email": "X@Y.CN"})])
    found = TraceNetwork().detect(dataset(bids))
    assert len(found) == 0
    assert found.assessed.to_list() == [group_id(["A", "B"])]


def test_trace_network_ignores_defaults_and_placeholders() -> None:
    rows = [(f"T{i}", f"F{i}", {"document_author": "Administrator"}) for i in range(4)]
    rows += [("U1", "P", {"phone": "-"}), ("U2", "Q", {"phone": "-"})]
    found = TraceNetwork(max_firms=3).detect(dataset(traced(rows)))
    assert len(found) == 0
    assert any("administrator" in note for note in found.notes)
    assert len(TraceNetwork(max_firms=4).detect(dataset(traced(rows)))) == 1


def test_trace_network_links_person_names_only_within_a_region() -> None:
    bids = traced(
        [("T1", "A", {"project_manager": "王伟"}), ("T2", "B", {"project_manager": "王 伟"})]
    )
    apart = [{"tender_id": "T1", "region": "阳新县"}, {"tender_id": "T2", "region": "大冶市"}]
    together = [{"tender_id": "T1", "region": "阳新县"}, {"tender_id": "T2", "region": "阳新县"}]
    assert len(TraceNetwork().detect(dataset(bids, apart))) == 0
    assert len(TraceNetwork().detect(dataset(bids, together))) == 1
    # A machine code is one machine wherever it is.
    machines = traced([("T1", "A", {"mac_address": "AA"}), ("T2", "B", {"mac_address": "aa"})])
    assert len(TraceNetwork().detect(dataset(machines, apart))) == 1


def test_trace_network_needs_a_trace_column() -> None:
    bids = [{"tender_id": "T1", "bidder_id": "A"}, {"tender_id": "T2", "bidder_id": "B"}]
    with pytest.raises(NotComputable, match="trace"):
        TraceNetwork().detect(dataset(bids))


# ------------------------------------------------------------------ row order, fixtures


@pytest.mark.parametrize(
    "name", ["cobid-pairs", "persistent-loser", "market-allocation", "trace-network"]
)
def test_golden_cases_do_not_depend_on_row_order(name: str) -> None:
    """The conformance market gives some of these detectors nothing to say: their golden
    cases, shuffled, check that findings do not depend on the order of rows."""
    folder: Path = FIXTURES / "detectors" / name
    tenders = folder / "tenders.csv"
    bids = pl.read_csv(folder / "bids.csv", infer_schema=False)
    (detector,) = Config.load(folder / "config.toml").detectors()
    frames = []
    for seed in (None, 1, 2):
        shuffled = bids if seed is None else bids.sample(fraction=1.0, shuffle=True, seed=seed)
        table = pl.read_csv(tenders, infer_schema=False) if tenders.exists() else None
        if table is not None and seed is not None:
            table = table.sample(fraction=1.0, shuffle=True, seed=seed)
        frames.append(detector.detect(entities.resolve(bidwatch.load(shuffled, table))).frame)
    assert len(frames[0]) > 0
    assert frames[0].equals(frames[1])
    assert frames[0].equals(frames[2])


# ------------------------------------------------------------ trace detectors, round 4
# shared-traces and trace-network read the bids' traces through one coding built for both
# (shared_traces.trace_codes, handed from the first to the second).


def _round4_traced() -> Dataset:
    """Phones written several ways, a placeholder, a missing value and a machine code."""
    bids = [
        {"tender_id": "T1", "bidder_id": "A", "phone": "138 0000 1111", "machine_code": "M-1"},
        {"tender_id": "T1", "bidder_id": "B", "phone": "13800001111", "machine_code": "m1"},
        {"tender_id": "T2", "bidder_id": "A", "phone": "8613800001111", "machine_code": "M-2"},
        {"tender_id": "T3", "bidder_id": "B", "phone": "-", "machine_code": "M-2"},
        {"tender_id": "T3", "bidder_id": "C", "phone": None, "machine_code": "M-2"},
        {"tender_id": "T4", "bidder_id": "C", "phone": "13800001111", "machine_code": "M-3"},
    ]
    return dataset(bids)


def _round4_same(a: Findings, b: Findings) -> None:
    assert a.frame.equals(b.frame)
    assert a.assessed.to_list() == b.assessed.to_list()
    assert a.notes == b.notes


def test_round4_trace_codes_number_each_written_value() -> None:
    from bidwatch.detectors.shared_traces import _trace_codes

    data = _round4_traced()
    present = ["phone", "machine_code"]
    codes = _trace_codes(data, present)
    keys = codes.keys
    # Each trace's values in their text's order, traces in the order asked for.
    for trace in present:
        written = keys.filter(pl.col("trace") == trace).get_column("value")
        assert written.to_list() == sorted(data.bids.get_column(trace).drop_nulls().unique())
    # Each bid's code names its own written value; a missing value gets keys.height.
    for i, trace in enumerate(present):
        column = data.bids.get_column(trace).to_list()
        for code, value in zip(codes.values[i].tolist(), column, strict=True):
            if value is None:
                assert code == keys.height
            else:
                assert keys.get_column("value")[code] == value
    # Placeholders and missing values carry no key; spellings of one phone share one.
    key_of = dict(zip(keys.get_column("value"), codes.key_of[:-1].tolist(), strict=True))
    assert codes.key_of[-1] == 0
    assert key_of["-"] == 0
    phone = {key_of[v] for v in ("138 0000 1111", "13800001111", "8613800001111")}
    assert len(phone) == 1
    assert 0 not in phone
    # Resolved firms per key: the phone is on A, B and C; "m1" and "M-1" differ.
    assert codes.firms[phone.pop()] == 3
    assert codes.firms[key_of["M-2"]] == 3
    assert codes.firms[key_of["M-1"]] == 1
    # Keys number (trace, key) in that order.
    ranked = keys.drop_nulls("_k").sort("_k")
    assert ranked.select("trace", "key").rows() == sorted(ranked.select("trace", "key").rows())


def test_round4_trace_detectors_agree_alone_and_sharing_the_codes() -> None:
    from bidwatch.detectors.shared_traces import SharedTraces

    for max_firms in (2, 20):
        shared, network = SharedTraces(max_firms=max_firms), TraceNetwork(max_firms=max_firms)
        alone = [shared.detect(_round4_traced()), network.detect(_round4_traced())]
        for order in ((0, 1), (1, 0), (0, 0, 1, 1)):
            data = _round4_traced()
            for i in order:
                _round4_same((shared, network)[i].detect(data), alone[i])
    # T1: the phone; T3: machine code M-2. A, B and C are linked by both.
    assert alone[0].frame.get_column("subject_id").to_list() == ["T1", "T3"]
    assert alone[1].frame.get_column("firms").to_list() == [["A", "B", "C"]]


def test_round4_unresolved_bids_count_as_bidders_of_their_own() -> None:
    """A bid without a firm is a bidder of its own for shared-traces and left out of
    trace-network: a phone on two firms and one such bid is a default at max_firms=2 for
    the first only."""
    from bidwatch.detectors.shared_traces import SharedTraces

    bids = [
        {"tender_id": "T1", "bidder_id": "A", "phone": "138 0000 1111"},
        {"tender_id": "T1", "bidder_id": "B", "phone": "13800001111"},
        {"tender_id": "T2", "bidder_id": "A", "phone": "13800001111"},
        {"tender_id": "T3", "bidder_id": "B", "phone": "8613800001111"},
        {"tender_id": "T3", "bidder_id": "C", "phone": "13800001111"},
    ]
    data = dataset(bids)
    firm = pl.when(pl.col("bidder_id") == "C").then(None).otherwise(pl.col("firm_id"))
    data = dataclasses.replace(data, bids=data.bids.with_columns(firm.alias("firm_id")))
    found = SharedTraces(max_firms=2).detect(data)
    assert len(found) == 0
    assert found.notes == (
        "phone '13800001111' is carried by 3 firms: treated as a default, not a trace",
    )
    linked = TraceNetwork(max_firms=2).detect(data)
    assert linked.frame.get_column("firms").to_list() == [["A", "B"]]
    assert linked.notes == ()
    # A and B share the phone in T1; each carried it twice, so the smaller id is its main
    # carrier and B's uses in T1 and T3 are borrowed: 0.85 x (1 - 2^-2).
    assert linked.frame.get_column("score")[0] == pytest.approx(0.85 * 0.75)
