"""Per-tender price screens: pandas groupby-apply, as people write it, against bidwatch.

    python benchmarks/naive_pandas.py [--bids /tmp/bidwatch-scale/t100000/bids.parquet]
                                      [--tenders 100000]

The screens are those of bidwatch's tender detectors (``bidwatch.detectors._stats
.tender_prices``): number of priced bids, coefficient of variation, relative spread,
relative gap between the two lowest bids, relative distance, skewness, excess kurtosis and
the Kolmogorov-Smirnov distance from a uniform spread. The pandas version is the usual
``bids.groupby("tender_id").apply(screens)`` with numpy and scipy.stats inside; bidwatch
computes all of them in one polars group-by. Both run in this process on the same priced
bids (an amount, status valid or unstated), both are checked to give the same numbers, and
the ratio of their times is printed. Reading the file is not timed; bidwatch's time
includes ``bidwatch.load`` checking the bids frame.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl
from scipy import stats

import bidwatch
from bidwatch.detectors._stats import tender_prices

SCREENS = ("n", "cv", "spd", "diffp", "rd", "skew", "kurt", "ks")


def screens(group: pd.DataFrame) -> pd.Series:
    """The screens of one tender, the way an analyst writes them."""
    a = np.sort(group["amount"].to_numpy())
    n = len(a)
    nan = float("nan")
    out = dict.fromkeys(SCREENS, nan)
    out["n"] = n
    if n < 2:
        return pd.Series(out)
    out["cv"] = a.std(ddof=1) / a.mean()
    out["spd"] = (a[-1] - a[0]) / a[0]
    out["diffp"] = (a[1] - a[0]) / a[0]
    if a[-1] > a[0]:
        out["ks"] = stats.kstest(a, "uniform", args=(a[0], a[-1] - a[0])).statistic
        if n >= 3:
            losing = a[1:]
            sd = losing.std(ddof=1)
            if sd > 0:
                out["rd"] = (a[1] - a[0]) / sd
            out["skew"] = stats.skew(a, bias=False)
        if n >= 4:
            out["kurt"] = stats.kurtosis(a, bias=False)
    return pd.Series(out)


def with_pandas(bids: pd.DataFrame) -> pd.DataFrame:
    with warnings.catch_warnings():
        # Near-constant tenders: scipy warns of lost precision, as it would for the analyst.
        warnings.simplefilter("ignore", RuntimeWarning)
        return bids.groupby("tender_id").apply(screens, include_groups=False)


def with_bidwatch(bids: pl.DataFrame) -> pl.DataFrame:
    return tender_prices(bidwatch.load(bids=bids)).select("tender_id", *SCREENS)


def priced(path: Path) -> pl.DataFrame:
    return (
        pl.read_parquet(path, columns=["tender_id", "amount", "status"])
        .filter(
            pl.col("amount").is_not_null()
            & (pl.col("status").is_null() | (pl.col("status") == "valid"))
        )
        .select("tender_id", "amount")
    )


def flat_losers(bids: pl.DataFrame) -> pl.DataFrame:
    """Tenders whose bids above the lowest are all equal: their relative distance divides by
    a spread of zero. bidwatch gives none; numpy's standard deviation of equal values can
    be rounding noise, and the pandas version then gives a huge one. The check requires
    bidwatch's to be missing there and leaves pandas' out."""
    return (
        bids.sort("amount")
        .group_by("tender_id")
        .agg(pl.col("amount").slice(1).n_unique().alias("_losing"))
        .filter(pl.col("_losing") == 1)
        .select("tender_id")
    )


def agree(
    fast: pl.DataFrame, slow: pd.DataFrame, flat: pl.DataFrame, tolerance: float = 1e-6
) -> int:
    """Assert that both give the same screens for every tender (defined for the same tenders,
    equal within ``tolerance``); returns the tenders compared."""
    slow_pl = pl.from_pandas(slow.reset_index()).with_columns(pl.col("tender_id").cast(pl.String))
    both = fast.join(slow_pl, on="tender_id", suffix="_pd", how="full", coalesce=True)
    if both.height != fast.height or both.height != slow_pl.height:
        raise AssertionError(f"tenders differ: {fast.height} against {slow_pl.height}")
    noisy = both.get_column("tender_id").is_in(flat.get_column("tender_id").implode()).to_numpy()
    for screen in SCREENS:
        x = both.get_column(screen).cast(pl.Float64).to_numpy()
        y = both.get_column(f"{screen}_pd").cast(pl.Float64).to_numpy()
        if screen == "rd":
            if not np.isnan(x[noisy]).all():
                raise AssertionError("rd: defined where the losing bids are all equal")
            x, y = x[~noisy], y[~noisy]
        known = ~np.isnan(x)
        if not np.array_equal(known, ~np.isnan(y)):
            raise AssertionError(f"{screen}: defined for different tenders")
        if not np.allclose(x[known], y[known], rtol=tolerance, atol=tolerance):
            worst = int(np.nanargmax(np.abs(x[known] - y[known])))
            raise AssertionError(f"{screen}: {x[known][worst]} against {y[known][worst]}")
    return both.height


def compare(bids: pl.DataFrame) -> dict[str, float]:
    """Time both on the same bids, check they agree; seconds and their ratio."""
    clock = time.perf_counter()
    fast = with_bidwatch(bids)
    polars_seconds = time.perf_counter() - clock
    frame = bids.to_pandas()
    clock = time.perf_counter()
    slow = with_pandas(frame)
    pandas_seconds = time.perf_counter() - clock
    tenders = agree(fast, slow, flat_losers(bids))
    return {
        "tenders": tenders,
        "bids": bids.height,
        "polars_seconds": polars_seconds,
        "pandas_seconds": pandas_seconds,
        "ratio": pandas_seconds / polars_seconds,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--bids",
        type=Path,
        default=Path("/tmp/bidwatch-scale/t100000/bids.parquet"),
        help="bids.parquet of `bidwatch synth --format parquet` (benchmarks/scale.py's cache)",
    )
    parser.add_argument(
        "--tenders", type=int, help="only the first N tenders (in sorted order) of the file"
    )
    args = parser.parse_args(argv)
    bids = priced(args.bids)
    if args.tenders:
        keep = bids.select(pl.col("tender_id").unique().sort().head(args.tenders))
        bids = bids.join(keep, on="tender_id", how="semi")
    row = compare(bids)
    print(
        f"{row['tenders']:,} tenders, {row['bids']:,} bids: bidwatch (one polars group-by) "
        f"{row['polars_seconds']:.2f} s, pandas groupby-apply {row['pandas_seconds']:.1f} s; "
        f"pandas/bidwatch = {row['ratio']:.0f}x; the screens agree"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
