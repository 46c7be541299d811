"""benchmarks/scale.py and benchmarks/naive_pandas.py on tiny data: what they measure is real."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from benchmarks import naive_pandas, scale

from .conftest import random_market


def test_exponent_is_the_slope_of_log_time_against_log_bids() -> None:
    small = {"scan_seconds": 2.0, "bids": 1_000}
    assert scale.exponent(small, {"scan_seconds": 20.0, "bids": 10_000}) == pytest.approx(1.0)
    assert scale.exponent(small, {"scan_seconds": 200.0, "bids": 10_000}) == pytest.approx(2.0)


def test_watchdog_kills_a_process_above_its_memory_limit() -> None:
    hog = "import time; x = bytearray(400 * 2**20); x[::4096] = b'1' * 102400; time.sleep(30)"
    done = scale.run_limited([sys.executable, "-c", hog], max_rss_gib=0.2)
    assert done["killed"]
    assert done["seconds"] < 20
    assert done["watch_peak_gib"] > 0.2


def test_watchdog_leaves_a_small_process_alone() -> None:
    done = scale.run_limited([sys.executable, "-c", "print('ok')"], max_rss_gib=4.0)
    assert not done["killed"]
    assert done["returncode"] == 0
    assert done["stdout"].strip() == "ok"


def test_machine_is_described() -> None:
    info = scale.machine()
    assert info["cores"] >= 1
    assert info["versions"]["polars"] == pl.__version__
    assert "cores" in scale.describe(info)


def test_a_tiny_scan_is_measured_stage_by_stage(tmp_path: Path) -> None:
    row = scale.measure(200, tmp_path, max_rss_gib=8.0, jobs=1)
    assert "error" not in row, row.get("error")
    assert row["synth"] is not None  # generated, then cached
    assert (tmp_path / "t200" / "bids.parquet").is_file()
    assert (tmp_path / "out200" / "tenders.csv").is_file()
    assert not (tmp_path / "out200" / "report.html").exists()  # --no-html, as a user runs it
    assert row["tenders"] == 200
    assert row["bids"] > 200
    assert row["detectors"] >= 30
    stages = row["stages"]
    assert list(scale.grouped(stages)) == ["load", "entities", "detectors", "risk", "write"]
    assert set(stages) == set(scale.GROUPS)
    assert all(seconds >= 0 for seconds in stages.values())
    # The stages are parts of the command's time, not more.
    assert sum(stages.values()) <= row["scan_seconds"] * 1.01
    # Each detector ran inside the detector stage.
    each = row["detector_seconds"]
    assert "bid-pattern" in each
    assert len(each) == row["detectors"]
    assert 0 < max(each.values()) <= stages["detectors"]
    assert row["jobs"] == 1
    assert row["bids_per_second"] == pytest.approx(row["bids"] / row["scan_seconds"])
    assert 0 < row["peak_scan_gib"] <= row["peak_gib"] < 8.0
    table = scale.render([row])
    assert "| 200 |" in table
    assert "Slowest detectors at 200 tenders (one at a time):" in table
    assert "2 at a time, each timed beside others" in scale.render([{**row, "jobs": 2}])


def _bids(tenders: int, seed: int) -> pl.DataFrame:
    _, bids = random_market(seed=seed, tenders=tenders)
    return bids.select(pl.col("tender_id").cast(pl.String), pl.col("amount").cast(pl.Float64))


def test_pandas_and_bidwatch_screens_agree() -> None:
    bids = _bids(120, seed=5)
    row = naive_pandas.compare(bids)
    assert row["tenders"] == bids.get_column("tender_id").n_unique()
    assert row["pandas_seconds"] > 0
    assert row["polars_seconds"] > 0


def test_the_agreement_check_catches_a_wrong_screen() -> None:
    bids = _bids(60, seed=6)
    fast = naive_pandas.with_bidwatch(bids)
    slow = naive_pandas.with_pandas(bids.to_pandas())
    flat = naive_pandas.flat_losers(bids)
    assert naive_pandas.agree(fast, slow, flat) == fast.height
    wrong = slow.copy()
    wrong.iloc[0, wrong.columns.get_loc("cv")] *= 1.01
    with pytest.raises(AssertionError, match="cv"):
        naive_pandas.agree(fast, wrong, flat)
    flat_bids = pl.DataFrame(
        {"tender_id": ["F"] * 4, "amount": [3517671.29, 3679350.37, 3679350.37, 3679350.37]}
    )
    fast_flat = naive_pandas.with_bidwatch(flat_bids)
    assert fast_flat.item(0, "rd") is None
    noisy = fast_flat.with_columns(pl.lit(2.8e14).alias("rd"))
    slow_flat = naive_pandas.with_pandas(flat_bids.to_pandas())
    with pytest.raises(AssertionError, match="losing bids are all equal"):
        naive_pandas.agree(noisy, slow_flat, naive_pandas.flat_losers(flat_bids))
    missing = slow.copy()
    missing.iloc[np.flatnonzero(missing["n"] >= 3)[0], missing.columns.get_loc("skew")] = np.nan
    with pytest.raises(AssertionError, match="skew"):
        naive_pandas.agree(fast, missing, flat)
