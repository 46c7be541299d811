"""Per-tender screens against scipy, comparison groups, and the award-rule direction."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from scipy import stats

import bidwatch
from bidwatch import entities
from bidwatch.detectors import get
from bidwatch.detectors._stats import _compare_windows, compare, size_band, tender_prices


def dataset(
    bids: dict[str, list[float]], methods: dict[str, str] | None = None
) -> bidwatch.Dataset:
    rows = [(t, a) for t, amounts in bids.items() for a in amounts]
    frame = pl.DataFrame(rows, schema=["tender_id", "amount"], orient="row")
    tenders = None
    if methods:
        tenders = pl.DataFrame({"tender_id": list(methods), "award_method": list(methods.values())})
    return entities.resolve(bidwatch.load(bids=frame, tenders=tenders))


def test_screens_match_scipy() -> None:
    rng = np.random.default_rng(3)
    bids = {
        f"T{i}": list(np.round(rng.lognormal(13, 0.1, size=rng.integers(4, 12)), 2))
        for i in range(50)
    }
    got = tender_prices(dataset(bids)).sort("tender_id")
    for row in got.iter_rows(named=True):
        b = np.sort(np.array(bids[row["tender_id"]]))
        assert row["n"] == len(b)
        assert row["cv"] == pytest.approx(np.std(b, ddof=1) / np.mean(b), rel=1e-9)
        assert row["spd"] == pytest.approx((b[-1] - b[0]) / b[0], rel=1e-9)
        assert row["diffp"] == pytest.approx((b[1] - b[0]) / b[0], rel=1e-9)
        assert row["rd"] == pytest.approx((b[1] - b[0]) / np.std(b[1:], ddof=1), rel=1e-7)
        assert row["skew"] == pytest.approx(stats.skew(b, bias=False), rel=1e-6, abs=1e-9)
        assert row["kurt"] == pytest.approx(stats.kurtosis(b, bias=False), rel=1e-6, abs=1e-9)
        ks = stats.kstest(b, stats.uniform(loc=b[0], scale=b[-1] - b[0]).cdf).statistic
        assert row["ks"] == pytest.approx(ks, rel=1e-9)


def test_degenerate_tenders() -> None:
    got = tender_prices(
        dataset(
            {
                "one": [5.0],
                "same": [7.0, 7.0, 7.0, 7.0],
                "tie": [3.0, 3.0, 4.0],
                "flat losers": [62.11, 158.37, 158.37, 158.37, 158.37],
                "tied lowest": [58.2, 58.2, 58.2, 58.2],
            }
        )
    )
    rows = {r["tender_id"]: r for r in got.iter_rows(named=True)}
    # Losing bids all equal have no spread: no relative distance, not rounding noise.
    assert rows["flat losers"]["rd"] is None
    assert rows["flat losers"]["spd"] == pytest.approx((158.37 - 62.11) / 62.11)
    assert rows["tied lowest"]["rd"] is None
    assert rows["tie"]["rd"] == 0.0
    assert rows["one"]["cv"] is None
    assert rows["same"]["cv"] == 0.0
    assert rows["same"]["skew"] is None
    assert rows["same"]["ks"] is None
    assert rows["tie"]["diffp"] == 0.0


def test_screens_reproduce_the_published_ones(shared_data) -> None:  # type: ignore[no-untyped-def]
    path = shared_data / "garcia2022" / "DB_Collusion_Switzerland_Ticino_processed.csv"
    raw = pl.read_csv(path)
    bids = raw.select(
        pl.col("Tender").cast(pl.String).alias("tender_id"), pl.col("Bid_value").alias("amount")
    )
    got = tender_prices(bidwatch.load(bids=bids))
    published = raw.group_by(pl.col("Tender").cast(pl.String).alias("tender_id")).agg(
        pl.col("CV", "SPD", "KURT", "SKEW", "KSTEST").first()
    )
    both = got.join(published, on="tender_id").drop_nulls()
    assert both.height > 200
    for ours, theirs in [
        ("cv", "CV"),
        ("spd", "SPD"),
        ("kurt", "KURT"),
        ("skew", "SKEW"),
        ("ks", "KSTEST"),
    ]:
        assert ((both[ours] - both[theirs]).abs() < 1e-4 + 1e-9).all(), ours


def test_comparison_falls_back_to_everyone_at_the_coarser_level() -> None:
    frame = pl.DataFrame(
        {
            "_rule": ["lowest_price"] * 12,
            "_category": ["road"] * 10 + ["water", "water"],
            "_size": ["1e6"] * 12,
            "_bids": ["5-7"] * 12,
            "y": [float(i) for i in range(12)],
        }
    )
    out = compare(frame, "y", min_comparable=5)
    roads = out.filter(pl.col("_category") == "road")
    water = out.filter(pl.col("_category") == "water")
    assert roads.get_column("_level").unique().to_list() == [0]
    assert roads.get_column("_count").unique().to_list() == [10]
    assert water.get_column("_level").unique().to_list() == [1]
    assert water.get_column("_count").unique().to_list() == [12], "water is compared with all 12"
    assert water.get_column("_q3").unique().to_list() == [8.25]
    assert water.get_column("_pct").to_list() == pytest.approx([10.5 / 12, 11.5 / 12])


@pytest.mark.parametrize("seed", range(40))
def test_sorted_comparison_equals_the_window_one(seed: int) -> None:
    """compare() sorts each group in numpy; it must give the polars windows' results to the
    last bit: ties, groups of one, null keys, integer values, infinities, every level."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 300))

    def keys(distinct: int) -> list[str | None]:
        return [None if rng.random() < 0.05 else f"k{x}" for x in rng.integers(0, distinct, n)]

    choices = [
        rng.normal(size=n),
        rng.integers(0, 5, n) * 0.1,
        np.round(rng.exponential(size=n), 1),
        rng.integers(-3, 3, n),
        np.where(rng.random(n) < 0.1, np.inf, rng.normal(size=n) * 1e5),
    ]
    frame = pl.DataFrame(
        {
            "_rule": keys(3),
            "_category": keys(20),
            "_size": keys(5),
            "_bids": keys(4),
            "y": choices[seed % 5],
        }
    )
    least = int(rng.integers(4, 60))
    fast = compare(frame, "y", least)
    slow = _compare_windows(frame, "y", least)
    assert fast.schema == slow.schema
    assert fast.equals(slow)


def test_comparison_of_values_with_nulls_and_nan() -> None:
    frame = pl.DataFrame(
        {
            "_rule": ["a"] * 6,
            "_category": ["c"] * 6,
            "_size": ["s"] * 6,
            "_bids": ["b"] * 6,
            "y": [1.0, None, 3.0, float("nan"), 2.0, 2.0],
        }
    )
    out = compare(frame, "y", min_comparable=4)
    assert out.equals(_compare_windows(frame, "y", 4))
    assert out.get_column("_count").to_list() == [6] * 6
    assert out.get_column("_pct").is_null().to_list() == [False, True, False, False, False, False]


def test_direction_follows_the_award_rule() -> None:
    rng = np.random.default_rng(5)
    bids: dict[str, list[float]] = {}
    methods: dict[str, str] = {}
    for rule in ("lowest_price", "scoring"):
        for i in range(40):
            bids[f"{rule}-{i}"] = list(1e6 * (1 + rng.normal(0, 0.05, size=6)))
            methods[f"{rule}-{i}"] = rule
        bids[f"{rule}-tight"] = [1e6, 1.001e6, 1.002e6, 1.0015e6, 1.0005e6, 1.0025e6]
        bids[f"{rule}-wide"] = [1e6, 1.5e6, 2.1e6, 0.7e6, 1.9e6, 0.8e6]
        methods[f"{rule}-tight"] = methods[f"{rule}-wide"] = rule
    found = get("bid-cv")().detect(dataset(bids, methods))
    flagged = set(found.frame.get_column("subject_id").to_list())
    assert "lowest_price-tight" in flagged
    assert "lowest_price-wide" not in flagged
    assert "scoring-wide" in flagged
    assert "scoring-tight" not in flagged


def test_fixed_threshold_and_not_computable() -> None:
    small = dataset({"a": [100.0, 100.1, 100.2], "b": [100.0, 120.0, 140.0]})
    from bidwatch.detectors._base import NotComputable

    with pytest.raises(NotComputable, match="set `threshold`"):
        get("bid-cv")().detect(small)
    found = get("bid-cv")(threshold=0.01).detect(small)
    assert found.frame.get_column("subject_id").to_list() == ["a"]
    assert found.frame.get_column("threshold").to_list() == pytest.approx([0.01])


def test_parameters_are_checked() -> None:
    with pytest.raises(ValueError, match="fence"):
        get("bid-cv")(fence=-1)
    with pytest.raises(ValueError, match="min_bids"):
        get("bid-kurtosis")(min_bids=3)
    with pytest.raises(ValueError, match="max_chance"):
        get("identical-bids")(max_chance=0)


def test_size_bands_are_half_decades_that_powers_of_ten_open() -> None:
    sizes = pl.DataFrame({"s": [1e6, 999_999.0, 3_162_278.0, 3.2e6, 1e7, 0.0, None]})
    bands = sizes.select(size_band(pl.col("s"))).to_series().to_list()
    assert bands == [
        "1e+06-3.2e+06",
        "3.2e+05-1e+06",
        "3.2e+06-1e+07",
        "3.2e+06-1e+07",
        "1e+07-3.2e+07",
        None,
        None,
    ]
