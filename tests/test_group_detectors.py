"""Detectors of suspected groups: candidates, statistics, permutation nulls, planted rings."""

from __future__ import annotations

import itertools
import json
import math
from collections import Counter, defaultdict
from typing import Any

import numpy as np
import polars as pl
import pytest

import bidwatch
from bidwatch import entities
from bidwatch.dataset import Dataset
from bidwatch.detectors import _groups, bid_rotation
from bidwatch.detectors._base import NotComputable
from bidwatch.detectors._stats import bid_count_band
from bidwatch.detectors.benchmark_influence import RULES, BenchmarkInfluence
from bidwatch.detectors.benchmark_influence import _Pool as BenchmarkPool
from bidwatch.detectors.bid_rotation import BidRotation
from bidwatch.detectors.group_price_correlation import (
    GroupPriceCorrelation,
    _cell_correlation,
    _unit_sums,
)
from bidwatch.detectors.suspected_groups import SuspectedGroups

from .conftest import FIXTURES

GROUP_DETECTORS = (SuspectedGroups, BidRotation, GroupPriceCorrelation, BenchmarkInfluence)
CASES = FIXTURES / "detectors"


def resolved(folder: str, **drop: Any) -> Dataset:
    path = CASES / folder
    tenders = pl.read_csv(path / "tenders.csv")
    bids = pl.read_csv(path / "bids.csv")
    if drop.get("tenders"):
        tenders = tenders.drop(drop["tenders"])
    return entities.resolve(bidwatch.load(bids=bids, tenders=tenders))


def only(findings: Any) -> dict[str, Any]:
    assert len(findings) == 1, findings.frame
    row = findings.frame.row(0, named=True)
    row["evidence"] = json.loads(row["evidence"])
    return row


# ------------------------------------------------------------------------------- candidates


def test_expected_cobids_follow_the_market_null() -> None:
    """E_ij = sum over markets of d_i d_j Q / S^2, computed here tender by tender."""
    bids = pl.DataFrame(
        {
            "tender_id": ["A", "A", "A", "B", "B", "C", "C", "C", "D", "D", "E", "E", "E"],
            "bidder_id": ["p", "q", "r", "p", "q", "p", "q", "s", "q", "s", "p", "q", "r"],
            "amount": [1.0] * 13,
        }
    )
    tenders = pl.DataFrame(
        {
            "tender_id": ["A", "B", "C", "D", "E"],
            "region": ["x", "x", "x", "y", "y"],
            "category": ["road"] * 5,
        }
    )
    data = entities.resolve(bidwatch.load(bids=bids, tenders=tenders))
    c = _groups.candidates(data, min_pair_tenders=2, edge_p=0.5, min_members=3, group_fdr=1.0)
    market = dict(zip(tenders["tender_id"], tenders["region"], strict=True))
    bidders: dict[str, list[str]] = defaultdict(list)
    for t, f in zip(bids["tender_id"], bids["bidder_id"], strict=True):
        bidders[t].append(f)
    d: Counter[tuple[str, str]] = Counter()
    s: Counter[str] = Counter()
    q: Counter[str] = Counter()
    for t, who in bidders.items():
        s[market[t]] += len(who)
        q[market[t]] += len(who) * (len(who) - 1)
        for f in who:
            d[(f, market[t])] += 1
    pairs = c.pairs.join(c.firms, on="_f").join(
        c.firms.rename({"_f": "_f_b", "firm_id": "firm_b"}), on="_f_b"
    )
    got = {
        (a, b): (o, e) for a, b, o, e in pairs.select("firm_id", "firm_b", "obs", "expected").rows()
    }
    # Co-bids: p-q in A, B, C, E; p-r and q-r in A, E; q-s in C, D; p-s only in C.
    assert {k: v[0] for k, v in got.items()} == {
        ("p", "q"): 4,
        ("p", "r"): 2,
        ("q", "r"): 2,
        ("q", "s"): 2,
    }
    for (a, b), (obs, expected) in got.items():
        want = sum(d[(a, m)] * d[(b, m)] * q[m] / s[m] ** 2 for m in ("x", "y"))
        assert expected == pytest.approx(want)
        assert obs == sum(a in who and b in who for who in bidders.values())


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_pair_counts_and_expectations_equal_the_join_they_replace(seed: int) -> None:
    """The numpy pair counts and E_ij equal a polars self-join and group-by sum to the last
    bit (polars adds a group's floats with compensation, and so must the numpy sums), on
    real data and on a shuffled copy."""
    rng = np.random.default_rng(seed)
    rows = 3000
    tender = rng.integers(0, 400, rows)
    market_of = rng.integers(0, 7, 400).astype(np.uint32)
    # Firms bid mostly in a few markets, so that pairs meet in several of them.
    firm = (market_of[tender] * 5 + rng.integers(0, 60, rows)) % 90
    incidence = _groups._coded_incidence(tender, firm, market_of)
    copies = [incidence, _groups._shuffled(incidence, np.random.default_rng(seed))]
    for inc in copies:
        assert inc.equals(inc.sort("_t", "_f"))
        assert inc.select("_t", "_f").is_unique().all()
        search = _groups._search(inc, min_pair_tenders=2, edge_p=0.5, min_members=3)
        slim = inc.select("_t", "_f")
        want = (
            slim.join(slim, on="_t", suffix="_b")
            .filter(pl.col("_f") < pl.col("_f_b"))
            .group_by("_f", "_f_b")
            .agg(pl.len().cast(pl.Int64).alias("obs"))
            .filter(pl.col("obs") >= 2)
        )
        w = search.weights.select("_f", "_m", "w")
        expected = (
            want.select("_f", "_f_b")
            .join(w, on="_f")
            .join(w.rename({"_f": "_f_b", "w": "w_b"}), on=["_f_b", "_m"])
            .sort("_f", "_f_b", "_m")
            .group_by("_f", "_f_b", maintain_order=True)
            .agg((pl.col("w") * pl.col("w_b")).sum().alias("expected"))
        )
        want = want.join(expected, on=["_f", "_f_b"]).sort("_f", "_f_b")
        got = search.pairs.select("_f", "_f_b", "obs", "expected")
        assert got.height > 100
        assert got.equals(want)


def test_candidate_codes_are_the_ranks_of_the_resolved_ids(
    synthetic: tuple[Dataset, pl.DataFrame],
) -> None:
    """The candidates take their tender and firm codes from the scan's shared incidence:
    they must be the ranks of the ids among bids with both a tender and a resolved firm,
    with every tender in its own market and each (tender, firm) once, sorted."""
    data, _ = synthetic
    # Bids without a resolved firm must neither get a code nor shift the others.
    bids = data.bids.with_columns(
        pl.when(pl.int_range(pl.len()) % 7 == 0).then(None).otherwise("firm_id").alias("firm_id")
    )
    data = data.with_tables(bids=bids)
    c = _groups.candidates(data, min_pair_tenders=3, edge_p=0.001, min_members=3, group_fdr=0.1)
    resolved_bids = bids.select("tender_id", "firm_id").drop_nulls()
    tender_ids = resolved_bids.get_column("tender_id").unique().sort()
    firm_ids = resolved_bids.get_column("firm_id").unique().sort()
    assert c.tenders.get_column("tender_id").to_list() == tender_ids.to_list()
    assert c.tenders.get_column("_t").to_list() == list(range(tender_ids.len()))
    assert c.firms.get_column("firm_id").to_list() == firm_ids.to_list()
    assert c.firms.get_column("_f").to_list() == list(range(firm_ids.len()))
    want = (
        resolved_bids.unique()
        .join(c.tenders.select("tender_id", "_t", "_m"), on="tender_id")
        .join(c.firms, on="firm_id")
        .with_columns(pl.len().over("_t").cast(pl.Int64).alias("n"))
        .select("_t", "_f", "_m", "n")
        .sort("_t", "_f")
    )
    assert c.incidence.equals(want)
    assert c.incidence.schema == want.schema


def test_runs_are_numpy_unique_with_counts() -> None:
    rng = np.random.default_rng(3)
    for size in (0, 1, 2, 1000):
        key = rng.integers(0, 50, size).astype(np.uint64)
        want_key, want_count = np.unique(key, return_counts=True)
        got_key, got_count = _groups._runs(key.copy())
        assert np.array_equal(got_key, want_key)
        assert np.array_equal(got_count, want_count)


def test_kahan_sums_add_each_group_in_row_order() -> None:
    group = np.array([0, 0, 0, 2, 2])
    value = np.array([1.0, 1e-16, 1e-16, 0.5, 0.25])
    total = _groups._kahan_sums(group, value, 4)
    # Plain addition loses both 1e-16 terms against 1.0; compensation keeps them.
    assert total[0] == 1.0 + 2e-16
    assert total[0] != (1.0 + 1e-16) + 1e-16
    assert total.tolist()[1:] == [0.0, 0.75, 0.0]


def test_group_qvalues_are_an_empirical_false_discovery_rate() -> None:
    strength = np.array([30.0, 12.0, 9.0, 9.0, 4.0])
    chance = np.array([10.0, 5.0, 3.5, 8.0, 2.0, 4.5])  # two shuffled copies
    expected, q = _groups.group_qvalues(strength, chance, runs=2)
    # Shuffled groups at least as strong, per copy: 0, 0, 1 (10) / 2, 1 / 2, 4 (not 2.0
    # and 3.5) / 2.
    assert expected == pytest.approx([0.0, 0.0, 0.5, 0.5, 2.0])
    # Over the real groups at least as strong (1, 2, 4, 4, 5), then the running minimum
    # from the weakest up.
    assert q == pytest.approx([0.0, 0.0, 0.125, 0.125, 0.4])


def _shuffled_within_markets(data: Dataset, seed: int) -> Dataset:
    """Bidders shuffled among the bids of each region x category: the market null."""
    rng = np.random.default_rng(seed)
    bids = data.bids.join(data.tenders.select("tender_id", "region", "category"), on="tender_id")
    bids = bids.with_columns(pl.Series("_k", rng.random(bids.height))).sort(
        "region", "category", "_k"
    )
    shuffled = bids.with_columns(
        pl.col("firm_id").shuffle(seed=seed).over("region", "category")
    ).unique(["tender_id", "firm_id"], keep="first", maintain_order=True)
    return data.with_tables(bids=shuffled.drop("region", "category", "_k"))


@pytest.fixture(scope="module")
def synthetic() -> tuple[Dataset, pl.DataFrame]:
    from bidwatch import synth

    made = synth.generate(3000, seed=1)
    data = entities.resolve(bidwatch.load(bids=made.bids, tenders=made.tenders, firms=made.firms))
    return data, made.truth_firms


def test_no_group_forms_when_bidders_are_shuffled_within_markets(
    synthetic: tuple[Dataset, pl.DataFrame],
) -> None:
    data, _ = synthetic
    settings = {"min_pair_tenders": 3, "edge_p": 0.001, "min_members": 3, "group_fdr": 0.1}
    real = _groups.candidates(data, **settings)  # type: ignore[arg-type]
    assert real.groups.height >= 10
    assert real.groups.get_column("q").max() <= 0.1  # type: ignore[operator]
    for seed in (1, 2, 3):
        null = _groups.candidates(_shuffled_within_markets(data, seed), **settings)  # type: ignore[arg-type]
        assert null.groups.height == 0


# ------------------------------------------------------------------------ permutation helpers


def test_permutation_p_counts_ties_as_extreme() -> None:
    observed = np.array([0.5, 2.0, np.nan])
    null = np.array([[0.1, 2.0, 1.0], [0.5, 1.0, 1.0], [0.7, 3.0, 1.0], [0.2, 0.0, 1.0]])
    p = _groups.permutation_p(observed, null)
    assert p[:2] == pytest.approx([(1 + 2) / 5, (1 + 2) / 5])
    assert math.isnan(p[2])


def test_label_permutation_draws_every_relabelling_alike() -> None:
    # Group 0: four units, two inside; group 1: three units, one inside.
    group = np.array([0, 0, 0, 0, 1, 1, 1])
    value = np.array([1.0, 2.0, 4.0, 8.0, 10.0, 20.0, 40.0])
    inside = np.array([1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0])
    observed, null = _groups.label_permutation(group, value, inside, 6000, np.random.default_rng(0))
    assert observed == pytest.approx([(1 + 2) / 2 - (4 + 8) / 2, 40 - (10 + 20) / 2])
    want0 = Counter(
        round((a + b) / 2 - (15 - a - b) / 2, 9) for a, b in itertools.combinations(value[:4], 2)
    )
    got0 = Counter(np.round(null[:, 0], 9))
    assert set(got0) == set(want0)
    for key in want0:
        assert got0[key] / 6000 == pytest.approx(1 / 6, abs=0.03)
    got1 = Counter(np.round(null[:, 1], 9))
    assert set(got1) == {round(v - (70 - v) / 2, 9) for v in value[4:]}


# -------------------------------------------------------------------------- suspected-groups


def test_suspected_group_evidence_is_what_the_bids_say() -> None:
    data = resolved("suspected-groups")
    row = only(SuspectedGroups().detect(data))
    members = sorted(row["firms"])
    assert members == ["F1", "F2", "F3"]
    ev = row["evidence"]
    bids = data.bids.select("tender_id", "firm_id", "amount").to_dicts()
    by_tender: dict[str, set[str]] = defaultdict(set)
    for b in bids:
        by_tender[b["tender_id"]].add(b["firm_id"])
    joint = sorted(t for t, who in by_tender.items() if len(who & set(members)) >= 2)
    assert ev["tenders"] == joint
    co_bids = sum(math.comb(len(by_tender[t] & set(members)), 2) for t in joint)
    assert ev["cohesion"]["co_bids"] == co_bids
    # One market: E = sum over member pairs of d_i d_j Q / S^2.
    n = {t: len(who) for t, who in by_tender.items()}
    s_all, q_all = sum(n.values()), sum(k * (k - 1) for k in n.values())
    d = {f: sum(f in who for who in by_tender.values()) for f in members}
    expected = sum(d[a] * d[b] for a, b in itertools.combinations(members, 2)) * q_all / s_all**2
    assert ev["cohesion"]["expected"] == pytest.approx(expected)
    # Exclusivity: members' bids in joint tenders, and those expected by chance.
    member_bids = [(t, f) for t, who in by_tender.items() for f in who if f in members]
    assert ev["exclusivity"]["bids"] == len(member_bids)
    assert ev["exclusivity"]["bids_in_joint_tenders"] == sum(t in joint for t, _ in member_bids)
    chance = sum(
        1 - math.exp(-(n[t] - 1) * (sum(d.values()) - d[f]) / s_all) for t, f in member_bids
    )
    assert ev["exclusivity"]["expected_by_chance"] == pytest.approx(chance)
    # Pricing: log(bid / estimate) less its mean, averaged per tender, inside minus outside.
    estimate = dict(data.tenders.select("tender_id", "estimate").iter_rows())
    lr = [
        (b["tender_id"], b["firm_id"], math.log(b["amount"] / estimate[b["tender_id"]]))
        for b in bids
    ]
    mean = sum(x for _, _, x in lr) / len(lr)
    per_tender: dict[str, list[float]] = defaultdict(list)
    for t, f, x in lr:
        if f in members:
            per_tender[t].append(x - mean)
    inside = [sum(v) / len(v) for t, v in per_tender.items() if t in joint]
    outside = [sum(v) / len(v) for t, v in per_tender.items() if t not in joint]
    diff = sum(inside) / len(inside) - sum(outside) / len(outside)
    assert ev["pricing"]["log_price_difference"] == pytest.approx(diff)
    assert ev["pricing"]["p_value"] == pytest.approx(1 / 200)
    parts = [ev["cohesion"]["part"], ev["exclusivity"]["part"], ev["pricing"]["part"]]
    assert parts[0] == pytest.approx(1 - expected / co_bids)
    assert row["score"] == pytest.approx(sum(parts) / 3)


def test_suspected_groups_near_miss_is_assessed_once_joint_tenders_suffice() -> None:
    data = resolved("suspected-groups")
    default = SuspectedGroups().detect(data)
    assert default.scanned == 1
    lowered = SuspectedGroups(min_tenders=4).detect(data)
    assert lowered.scanned == 2
    flagged = {tuple(sorted(f)) for f in lowered.frame.get_column("firms").to_list()}
    assert ("N1", "N2", "N3") in flagged  # they bid only together: exclusivity 1


def test_suspected_groups_without_estimates_score_structure_only() -> None:
    data = resolved("suspected-groups", tenders=["estimate"])
    row = only(SuspectedGroups().detect(data))
    ev = row["evidence"]
    assert ev["pricing"]["p_value"] is None
    assert row["score"] == pytest.approx((ev["cohesion"]["part"] + ev["exclusivity"]["part"]) / 2)
    assert "no estimates" in row["message"]


# ------------------------------------------------------------------------------ bid-rotation


def _rotation_market(order: str, *, dated: bool = True) -> Dataset:
    """Three firms A, B, C meet in len(order) tenders (plus background); order[i] wins."""
    rng = np.random.default_rng(3)
    rows, tenders = [], []
    for i, winner in enumerate(order):
        t = f"R{i:02d}"
        tenders.append((t, f"2023-{1 + i // 28:02d}-{1 + i % 28:02d}" if dated else None))
        for f in "ABC":
            rows.append((t, f, 100.0 + i + (f != winner), f == winner))
    for i in range(60):  # background: fifteen firms, four a tender
        t = f"Z{i:02d}"
        tenders.append((t, "2023-06-01" if dated else None))
        for k, f in enumerate(rng.choice(15, size=4, replace=False)):
            rows.append((t, f"X{f}", 100.0 + k, k == 0))
    bids = pl.DataFrame(
        rows, schema=["tender_id", "bidder_id", "amount", "is_winner"], orient="row"
    )
    tdf = pl.DataFrame(tenders, schema=["tender_id", "published_at"], orient="row")
    return entities.resolve(bidwatch.load(bids=bids, tenders=tdf))


def test_rotation_statistics_by_hand() -> None:
    order = "ABCABCACBABC"
    data = _rotation_market(order)
    row = only(BidRotation(max_p=1.0).detect(data))
    ev = row["evidence"]
    assert ev["winners_in_order"] == list(order)
    assert ev["member_wins"] == 12
    counts = Counter(order)
    entropy = -sum(c / 12 * math.log(c / 12) for c in counts.values())
    assert ev["evenness"] == pytest.approx(entropy / math.log(3))
    # Waiting: wins since the member's previous win, capped at 3, over 3.
    last: dict[str, int] = {}
    waits = []
    for i, w in enumerate(order):
        if w in last:
            waits.append(min(i - last[w], 3) / 3)
        last[w] = i
    # Order: share of moves to the winner's most common next winner (never itself).
    moves = Counter(itertools.pairwise(order))
    best = sum(max((moves[(a, b)] for b in "ABC" if b != a), default=0) for a in "ABC")
    assert ev["turn_taking"] == pytest.approx((sum(waits) / len(waits) + best / 11) / 2)
    changes = sum(a != b for a, b in itertools.pairwise(order))
    assert ev["winner_changes"] == pytest.approx(changes / 11)
    assert ev["ordered_by"] == "published_at"
    assert row["value"] < 0.01


def test_rotation_statistics_in_blocks_equal_all_replicates_at_once() -> None:
    """The replicates are worked out a block at a time: every bit as all at once."""
    rng = np.random.default_rng(5)
    size = rng.integers(2, 9, 700)
    group = np.repeat(np.arange(size.size), rng.integers(2, 40, size.size))
    slots = rng.integers(0, size[group], (30, group.size))
    assert (1 << 17) // group.size < 30  # more than one block
    for timed in (True, False):
        whole = bid_rotation._block_statistics(slots, group, size.size, size, timed=timed)
        blocks = bid_rotation._statistics(slots, group, size.size, size, timed=timed)
        for a, b in zip(whole, blocks, strict=True):
            assert np.array_equal(a, b, equal_nan=True)


def test_rotation_is_flagged_and_a_leader_is_not() -> None:
    data = resolved("bid-rotation")
    found = BidRotation().detect(data)
    assert found.scanned == 2
    assert [sorted(f) for f in found.frame.get_column("firms")] == [["F1", "F2", "F3"]]
    assert found.frame.get_column("score").to_list() == [pytest.approx(1 - 1 / 200)]


def test_rotation_without_dates_tests_evenness_alone() -> None:
    data = _rotation_market("ABC" * 4, dated=False)
    row = only(BidRotation(max_p=1.0).detect(data))
    assert row["evidence"]["turn_taking"] is None
    assert row["evidence"]["winner_changes"] is None
    assert "no dates" in row["message"]
    assert row["evidence"]["ordered_by"] is None
    # A perfectly even split 4-4-4 of 12 wins among three firms present each time happens
    # by chance with probability 12! / (4!^3 3^12) = 0.065.
    assert row["value"] == pytest.approx(0.065, abs=0.04)


def test_rotation_needs_winners() -> None:
    data = resolved("bid-rotation")
    data = data.with_tables(
        bids=data.bids.with_columns(pl.lit(None, dtype=pl.Boolean).alias("is_winner"))
    )
    with pytest.raises(NotComputable, match="is_winner"):
        BidRotation().detect(data)


# -------------------------------------------------------------------- group-price-correlation


def test_pair_correlation_is_pearson_over_ordered_pairs() -> None:
    rng = np.random.default_rng(5)
    m = np.array([2, 3, 4, 2, 3])
    cell = np.array([0, 0, 0, 1, 1])
    e = rng.normal(size=m.sum())
    unit = np.repeat(np.arange(m.size), m)
    s1, s2 = _unit_sums(e[None, :], unit, m.size)
    got = _cell_correlation(s1, s2, m, cell, 2)[0]
    for c in (0, 1):
        xs, ys = [], []
        for u in np.flatnonzero(cell == c):
            values = e[unit == u]
            for i, j in itertools.permutations(range(values.size), 2):
                xs.append(values[i])
                ys.append(values[j])
        assert got[c] == pytest.approx(np.corrcoef(xs, ys)[0, 1])


def test_price_correlation_flags_covers_priced_off_the_winner() -> None:
    found = GroupPriceCorrelation(max_p=1.0).detect(resolved("group-price-correlation"))
    rows = {tuple(sorted(r["firms"])): r for r in found.frame.iter_rows(named=True)}
    ring, near = rows[("F1", "F2", "F3")], rows[("N1", "N2", "N3")]
    correlation = {k: json.loads(r["evidence"])["correlation"] for k, r in rows.items()}
    assert correlation[("F1", "F2", "F3")] > 0.9
    assert correlation[("N1", "N2", "N3")] < 0.5
    assert ring["value"] == pytest.approx(1 / 200), "value is the p-value, threshold max_p"
    assert ring["threshold"] == 1.0
    assert ring["score"] == pytest.approx(1 - 1 / 200)
    assert near["score"] < 0.5


def test_price_correlation_runs_without_estimates() -> None:
    data = resolved("group-price-correlation", tenders=["estimate"])
    found = GroupPriceCorrelation(max_p=1.0).detect(data)
    assert found.scanned == 2
    for r in found.frame.iter_rows(named=True):
        assert json.loads(r["evidence"])["model"]["of"] == "log bid on log size"


# ------------------------------------------------------------------------ benchmark-influence


def test_benchmark_shift_by_hand() -> None:
    data = resolved("benchmark-influence")
    row = only(BenchmarkInfluence().detect(data))
    assert sorted(row["firms"]) == ["F1", "F2", "F3", "F4"]
    ev = row["evidence"]
    shifts = []
    for t in ev["tenders"]:
        bids = data.bids.filter(pl.col("tender_id") == t)
        amounts = bids.get_column("amount").to_list()
        kept = bids.filter(
            ~pl.col("firm_id").str.starts_with("F") | pl.col("is_winner")
        ).get_column("amount")
        before = sum(amounts) / len(amounts)
        shifts.append(abs(before - kept.mean()) / before)  # type: ignore[operator]
    assert ev["mean_benchmark_shift"] == pytest.approx(sum(shifts) / len(shifts))
    assert ev["closest_bid_changes"] == 6
    assert ev["mean_benchmark_shift"] > 5 * ev["mean_shift_of_random_bids"]
    assert row["value"] == ev["p_value"]


def _random_pool(seed: int) -> Any:
    """A pool of average-bid and scoring tenders with random bids, one winner each."""
    rng = np.random.default_rng(seed)
    sizes = rng.integers(2, 16, size=400)
    tender = np.repeat(np.arange(sizes.size), sizes)
    place = np.arange(tender.size) - np.repeat(np.cumsum(sizes) - sizes, sizes)
    bids = pl.DataFrame(
        {
            "tender_id": [f"T{t:04d}" for t in tender],
            "_tc": tender + 1,
            "_pos": place,
            # The winner last; some tenders without one (every bid removable).
            "_keep": (place == np.repeat(sizes, sizes) - 1) & np.repeat(sizes % 5 != 0, sizes),
            "_rule": np.where(np.repeat(rng.random(sizes.size) < 0.3, sizes), *RULES),
            "amount": np.round(rng.lognormal(10, 0.3, tender.size), -2),
        }
    )
    return BenchmarkPool.build(bids)


@pytest.mark.parametrize("seed", [0, 1])
def test_comparable_tenders_share_rule_and_bids_else_band_else_rule(seed: int) -> None:
    pool = _random_pool(seed)
    rule = pool.keys.get_column("_rule").to_numpy()
    band = pl.select(bid_count_band(pl.Series(pool.n))).to_series().to_numpy()
    capacity = np.minimum(pool.removable, pool.n - 1)
    rng = np.random.default_rng(seed + 10)
    units = pl.DataFrame(
        {
            "_rule": rng.choice(RULES, 300),
            "n": rng.integers(2, 16, 300),
            "r": rng.integers(1, 6, 300),
        }
    )
    first, count, entry = pool.comparable(units, 6)
    for u, (unit_rule, n, r) in enumerate(units.iter_rows()):
        unit_band = pl.select(bid_count_band(pl.lit(n))).item()
        able = capacity >= r
        levels = [
            able & (rule == unit_rule) & (pool.n == n),
            able & (rule == unit_rule) & (band == unit_band),
            able & (rule == unit_rule),
            able,
        ]
        want = next(
            (set(np.flatnonzero(level)) for level in levels[:3] if level.sum() >= 6),
            set(np.flatnonzero(levels[3])),
        )
        got = set(entry[first[u] : first[u] + count[u]]) if want else set()
        assert got == want, (unit_rule, n, r)


def test_benchmark_measures_equal_the_bid_by_bid_sums() -> None:
    pool = _random_pool(2)
    rng = np.random.default_rng(3)
    units = 200
    r = rng.integers(1, 6, units)
    able = np.flatnonzero(np.minimum(pool.removable, pool.n - 1) >= 5)
    tender = rng.choice(able, (7, units))
    offset = rng.random((7, units))
    judged = rng.random(units) < 0.4
    shift, changed = pool.measures(tender, r, judged, offset=offset)
    for i, u in itertools.product(range(7), range(units)):
        t = tender[i, u]
        amounts = pool.amount[pool.start[t] : pool.start[t] + pool.n[t]]
        removable = int(pool.removable[t])
        start = math.floor(offset[i, u] * removable)
        gone = [k < removable and (k - start) % removable < r[u] for k in range(pool.n[t])]
        lost = 0.0
        for amount, out in zip(amounts, gone, strict=True):
            lost += amount * out  # bid order, as the detector adds them
        before = pool.total[t] / pool.n[t]
        after = (pool.total[t] - lost) / (pool.n[t] - min(r[u], removable))
        assert shift[i, u] == abs(before - after) / before
        if judged[u]:
            left = [k for k in range(pool.n[t]) if not gone[k]]
            closest_before = min(left, key=lambda k: (abs(amounts[k] - before), k))
            d_before = abs(amounts[closest_before] - before)
            d_after = min(abs(amounts[k] - after) for k in left)
            same = any(
                abs(amounts[k] - before) == d_before and abs(amounts[k] - after) == d_after
                for k in left
            )
            assert changed[i, u] == (not same)
        else:
            assert changed[i, u] == 0


def test_benchmark_influence_needs_average_bid_or_scoring_tenders() -> None:
    data = resolved("suspected-groups")  # lowest-price tenders only
    with pytest.raises(NotComputable, match="average_bid or scoring"):
        BenchmarkInfluence().detect(data)


# ------------------------------------------------------------------------------- contract


@pytest.mark.parametrize(
    ("detector", "field", "bad"),
    [
        (SuspectedGroups, "min_members", 2),
        (SuspectedGroups, "edge_p", 0.0),
        (BidRotation, "group_fdr", 0.0),
        (SuspectedGroups, "min_score", 1.5),
        (SuspectedGroups, "permutations", 5),
        (BidRotation, "min_win_share", 1.2),
        (BidRotation, "max_p", 0.0),
        (BidRotation, "min_pair_tenders", 1),
        (GroupPriceCorrelation, "min_tenders", 2),
        (GroupPriceCorrelation, "min_comparable", 0),
        (BenchmarkInfluence, "max_p", 2.0),
        (BenchmarkInfluence, "min_tenders", 0),
    ],
)
def test_invalid_parameters_are_refused_by_name(detector: type, field: str, bad: Any) -> None:
    with pytest.raises(ValueError, match=field):
        detector(**{field: bad})


def test_group_ids_agree_between_detectors(synthetic: tuple[Dataset, pl.DataFrame]) -> None:
    data, _ = synthetic
    ids = [set(d().detect(data).assessed.to_list()) for d in GROUP_DETECTORS]
    union = set().union(*ids)
    for found in ids:
        assert found
    c = _groups.candidates(data, min_pair_tenders=3, edge_p=0.001, min_members=3, group_fdr=0.1)
    assert union <= set(c.groups.get_column("group_id").to_list())


def test_repeatable_on_a_fresh_dataset(synthetic: tuple[Dataset, pl.DataFrame]) -> None:
    data, _ = synthetic
    # A copy is another dataset to the caches: everything is computed again.
    copy = data.with_tables(bids=data.bids.clone())
    for detector in GROUP_DETECTORS:
        assert detector().detect(data).frame.equals(detector().detect(copy).frame)


# --------------------------------------------------------------------------- planted rings


# Schemes whose members bid in the same tenders (the others plant single firms, or firms
# that keep apart).
COBIDDING = ("rotation", "cover_bidding", "shared_traces", "identical_bids", "arithmetic_bids")


def _ring_match(found: Any, truth: pl.DataFrame) -> tuple[float, float, list[str]]:
    """Firm precision (members in the ring most of the group belongs to), recall over firms
    of co-bidding rings, and the ring of each flagged group."""
    ring = dict(zip(truth["bidder_id"], truth["group"], strict=True))
    hits, flagged, rings = 0, 0, []
    for members in found.frame.get_column("firms").to_list():
        labels = [ring.get(m, "") for m in members]
        best, count = Counter(labels).most_common(1)[0]
        flagged += len(members)
        hits += count if best else 0
        rings.append(best)
    target = truth.filter(pl.col("group").str.replace(r"-\d+$", "").is_in(COBIDDING))
    found_rings = Counter(rings)
    recall = sum(min(found_rings[g], 1) * n for g, n in target.group_by("group").len().iter_rows())
    return hits / max(flagged, 1), recall / max(target.height, 1), rings


def test_suspected_groups_recover_planted_rings(synthetic: tuple[Dataset, pl.DataFrame]) -> None:
    data, truth = synthetic
    precision, recall, rings = _ring_match(SuspectedGroups().detect(data), truth)
    assert precision >= 0.9
    assert recall >= 0.6
    assert "" not in rings


def test_bid_rotation_flags_rotating_rings(synthetic: tuple[Dataset, pl.DataFrame]) -> None:
    data, truth = synthetic
    found = BidRotation().detect(data)
    _, _, rings = _ring_match(found, truth)
    rotating = sum(r.startswith("rotation") for r in rings)
    assert rotating >= 1
    # The others are rings too, but not rotating ones: no more than chance at max_p allows.
    assert len(rings) - rotating <= max(1, 0.01 * found.scanned)


def test_benchmark_influence_flags_rings_that_steer(
    synthetic: tuple[Dataset, pl.DataFrame],
) -> None:
    data, truth = synthetic
    _, _, rings = _ring_match(BenchmarkInfluence().detect(data), truth)
    assert rings
    steady = ("shared_traces", "identical_bids", "arithmetic_bids")  # covers hug the winner
    assert not [r for r in rings if r.startswith(steady)]


def test_price_correlation_flags_rings_with_tracking_covers(
    synthetic: tuple[Dataset, pl.DataFrame],
) -> None:
    data, truth = synthetic
    precision, _, rings = _ring_match(GroupPriceCorrelation().detect(data), truth)
    assert rings
    assert precision >= 0.9
