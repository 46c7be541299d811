"""Statistics the detectors share: per-tender bid moments, comparable tenders, Tukey fences.

Everything here is a polars group-by, join or window over all tenders at once; there is no
Python loop over tenders or bids.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, Literal

import numpy as np
import numpy.typing as npt
import polars as pl
from scipy import stats

from bidwatch.detectors._base import NotComputable, once, per_dataset, priced_bids, sig
from bidwatch.findings import Findings, SubjectKind, build

if TYPE_CHECKING:
    from bidwatch.dataset import Dataset

LOG_FLOOR = 1e-12


@per_dataset
def tender_prices(data: Dataset) -> pl.DataFrame:
    """One row per tender with priced bids: the bid screens of the literature.

    Columns: tender_id, n, mean, cv, spd, diffp, rd, skew, kurt, ks, b1, b2, top.
    Moments come from sums of relative deviations from the tender mean (scale-free and
    numerically stable); the two lowest bids from a min and a filtered min, so no group is
    sorted. Only the KS distance needs ranks. Definitions (García Rodríguez et al. 2022,
    Huber & Imhof 2019): cv = sd/mean (ddof 1); spd = (max-min)/min; diffp = (b2-b1)/b1;
    rd = (b2-b1)/sd of the bids other than the lowest; skew = adjusted Fisher-Pearson;
    kurt = bias-corrected excess kurtosis; ks = Kolmogorov-Smirnov distance of the bids
    from the uniform distribution on [min, max]. Rows are in tender_id order.
    """
    # Sorted by amount so that every tender's sums add up in the same order whatever the
    # input order: results are then identical to the last bit when rows are shuffled.
    bids = priced_bids(data).select("tender_id", "amount").sort("amount", "tender_id")
    amount = pl.col("amount")
    x = pl.col("x")
    # Rows are in amount order within each tender, so a row's ordinal rank among its
    # tender's bids is its position there.
    rel = bids.with_columns(
        (amount / amount.mean().over("tender_id") - 1.0).alias("x"),
        pl.int_range(1, pl.len() + 1, dtype=pl.UInt32).over("tender_id").alias("_i"),
        pl.len().over("tender_id").alias("_n"),
        amount.min().over("tender_id").alias("_min"),
        amount.max().over("tender_id").alias("_max"),
    )
    span = pl.col("_max") - pl.col("_min")
    u = pl.when(span > 0).then((amount - pl.col("_min")) / span).otherwise(0.5)
    ks_term = pl.max_horizontal(
        pl.col("_i") / pl.col("_n") - u, u - (pl.col("_i") - 1) / pl.col("_n")
    )
    # Every per-bid term first, so that the group-by only sums, counts and takes extremes
    # of plain columns (its fast paths).
    terms = rel.select(
        "tender_id",
        "amount",
        "x",
        (x**2).alias("x2"),
        (x**3).alias("x3"),
        (x**4).alias("x4"),
        pl.when(amount > pl.col("_min")).then(amount).alias("_above"),
        (amount == pl.col("_min")).alias("_is_min"),
        ks_term.alias("_ks"),
    )
    agg = terms.group_by("tender_id").agg(
        pl.len().alias("n"),
        amount.mean().alias("mean"),
        x.sum().alias("s1"),
        pl.col("x2").sum().alias("s2"),
        pl.col("x3").sum().alias("s3"),
        pl.col("x4").sum().alias("s4"),
        x.min().alias("xmin"),
        amount.min().alias("b1"),
        amount.max().alias("top"),
        pl.col("_above").min().alias("_above_min"),
        pl.col("_is_min").sum().alias("_at_min"),
        pl.col("_ks").max().alias("ks"),
    )
    n = pl.col("n").cast(pl.Float64)
    mu = pl.col("s1") / n
    m2 = pl.col("s2") / n - mu**2
    m3 = pl.col("s3") / n - 3 * mu * pl.col("s2") / n + 2 * mu**3
    m4 = pl.col("s4") / n - 4 * mu * pl.col("s3") / n + 6 * mu**2 * pl.col("s2") / n - 3 * mu**4
    var1 = (m2 * n / (n - 1)).clip(lower_bound=0.0)
    nl = n - 1
    s1l = pl.col("s1") - pl.col("xmin")
    s2l = pl.col("s2") - pl.col("xmin") ** 2
    var_losing = ((s2l - s1l**2 / nl) / (nl - 1)).clip(lower_bound=0.0)
    sd_losing = var_losing.sqrt() * pl.col("mean")
    b2 = pl.when(pl.col("_at_min") >= 2).then(pl.col("b1")).otherwise(pl.col("_above_min"))
    g2 = m4 / m2**2 - 3
    flat = m2 <= 1e-24
    out = agg.with_columns(b2.alias("b2")).select(
        "tender_id",
        "n",
        "mean",
        pl.when(n >= 2).then(var1.sqrt()).alias("cv"),
        pl.when(n >= 2).then((pl.col("top") - pl.col("b1")) / pl.col("b1")).alias("spd"),
        pl.when(n >= 2).then((pl.col("b2") - pl.col("b1")) / pl.col("b1")).alias("diffp"),
        # Losing bids all equal (b2 = top) have no spread: their sums leave rounding noise,
        # which would make a huge distance.
        pl.when((n >= 3) & (pl.col("b2") < pl.col("top")) & (sd_losing > 0))
        .then((pl.col("b2") - pl.col("b1")) / sd_losing)
        .alias("rd"),
        pl.when((n >= 3) & ~flat)
        .then((n * (n - 1)).sqrt() / (n - 2) * m3 / m2.pow(1.5))
        .alias("skew"),
        pl.when((n >= 4) & ~flat)
        .then(((n + 1) * g2 + 6) * (n - 1) / ((n - 2) * (n - 3)))
        .alias("kurt"),
        pl.when((n >= 2) & (pl.col("top") > pl.col("b1"))).then(pl.col("ks")).alias("ks"),
        "b1",
        "b2",
        "top",
    )
    # In tender order, so that a row's position is a code for its tender (``statistics``)
    # and findings drawn from it need no sorting.
    return out.sort("tender_id")


def rounding_unit(cents: pl.Expr) -> pl.Expr:
    """The power of ten, in cents, that an amount is written to: 1,230,000.00 -> 1,000,000
    (10,000 yuan); 1,234,567.89 -> 1 (a cent). How likely a coincidence is depends on it."""
    zeros = sum((cents % (10**k) == 0).cast(pl.Int64) for k in range(1, 13))
    return pl.lit(10, dtype=pl.Int64).pow(zeros)


def bid_lists(data: Dataset, tenders: pl.DataFrame) -> pl.DataFrame:
    """For the given tender_ids: priced amounts (ascending) and the firms that bid."""
    priced = priced_bids(data)
    firm = "firm_id" if "firm_id" in priced.columns else None
    # Only the columns the lists need go through the join: the bids are wide.
    bids = priced.select("tender_id", "amount", *([firm] if firm else [])).join(
        tenders.select("tender_id"), on="tender_id", how="semi"
    )
    aggs = [pl.col("amount").sort().alias("amounts")]
    if firm:
        aggs.append(pl.col(firm).drop_nulls().unique().sort().alias("bidders"))
    else:
        aggs.append(pl.lit([], dtype=pl.List(pl.String)).first().alias("bidders"))
    return bids.group_by("tender_id").agg(aggs)


# ------------------------------------------------------------------------ comparable tenders

UNSTATED = "unstated"


_BANDS = {k: f"{10 ** (k / 2):.2g}-{10 ** ((k + 1) / 2):.2g}" for k in range(-40, 60)}


def size_band(size: pl.Expr) -> pl.Expr:
    """Half-decade band of a tender's size, as text: "1e+06-3.2e+06"."""
    # The nudge puts powers of ten in the band they open, whatever log10 rounds them to.
    k = (size.log10() * 2 + 1e-9).floor().fill_nan(None).clip(-40, 59).cast(pl.Int64)
    return pl.when(size > 0).then(k.replace_strict(_BANDS, return_dtype=pl.String))


def bid_count_band(n: pl.Expr) -> pl.Expr:
    return (
        pl.when(n <= 2)
        .then(pl.lit("2"))
        .when(n <= 4)
        .then(pl.lit("3-4"))
        .when(n <= 7)
        .then(pl.lit("5-7"))
        .when(n <= 11)
        .then(pl.lit("8-11"))
        .otherwise(pl.lit("12+"))
    )


def comparison_keys(data: Dataset, stats: pl.DataFrame) -> pl.DataFrame:
    """stats + award rule, category, size band and bid-count band of each tender.

    Size is the estimate where given, else the mean bid.
    """
    tenders = data.tenders.select("tender_id", "award_method", "category", "estimate")
    keyed = stats.join(tenders, on="tender_id", how="left", maintain_order="left")
    return keyed.with_columns(
        pl.col("award_method").fill_null(UNSTATED).alias("_rule"),
        pl.col("category").fill_null(UNSTATED).alias("_category"),
        size_band(pl.coalesce("estimate", "mean")).fill_null(UNSTATED).alias("_size"),
        bid_count_band(pl.col("n")).alias("_bids"),
    )


# From the finest comparison to the whole file.
LEVELS: tuple[tuple[str, ...], ...] = (
    ("_rule", "_category", "_size", "_bids"),
    ("_rule", "_size", "_bids"),
    ("_rule", "_bids"),
    ("_rule",),
    (),
)


def compare(frame: pl.DataFrame, value: str, min_comparable: int) -> pl.DataFrame:
    """Place each row among its comparable rows: the finest comparison that holds at least
    ``min_comparable`` rows, down to the whole frame.

    Adds _level (0 finest .. 4 whole file), _count (rows compared with), _q1 and _q3 of
    ``value`` among them, and _pct, the row's mid-rank percentile among them. Every level's
    statistics are taken over all rows sharing that level's keys, so a tender that falls
    back to a coarser level is compared with everyone at that level.
    """
    column = frame.get_column(value) if value in frame.columns else None
    if (
        frame.height == 0
        or column is None
        or not (column.dtype == pl.Float64 or column.dtype.is_integer())
        or column.has_nulls()
        or (column.dtype == pl.Float64 and bool(column.is_nan().any()))
    ):
        return _compare_windows(frame, value, min_comparable)
    return _compare_sorted(frame, column.cast(pl.Float64).to_numpy(), min_comparable)


def _level_codes(frame: pl.DataFrame) -> list[npt.NDArray[np.int64]]:
    """Group codes of each level in LEVELS (dense from 0), built from the coarsest up: each
    level's keys are those of the next coarser level plus one column."""
    # (column added, level it completes), from the whole file (level 4) to the finest.
    steps = (("_rule", 3), ("_bids", 2), ("_size", 1), ("_category", 0))
    parts = frame.select(
        (
            pl.col(c).cast(pl.Categorical).to_physical()
            if frame.schema[c] == pl.String
            else pl.col(c).rank("dense")
        )
        .cast(pl.Int64)
        .fill_null(-1)
        + 1
        for c, _ in steps
    )
    codes: list[npt.NDArray[np.int64]] = [np.empty(0, dtype=np.int64)] * len(LEVELS)
    code = np.zeros(frame.height, dtype=np.int64)
    codes[len(LEVELS) - 1] = code
    for c, i in steps:
        part = parts.get_column(c).to_numpy()
        # code < rows and part < 2**32 (a categorical's physical code or a dense rank): the
        # product stays inside 64 bits.
        joint = code * (int(part.max()) + 1) + part
        code = np.unique(joint, return_inverse=True)[1].astype(np.int64, copy=False).ravel()
        codes[i] = code
    return codes


def _compare_sorted(
    frame: pl.DataFrame, y: npt.NDArray[np.float64], min_comparable: int
) -> pl.DataFrame:
    """``compare`` for a value without nulls or NaN: each needed group sorted once in numpy,
    with the arithmetic of polars' linear quantile and average rank, so that the results
    equal the window version's to the last bit."""
    n = len(y)
    codes = _level_codes(frame)
    sizes = [np.bincount(code)[code] for code in codes]
    level = np.full(n, len(LEVELS) - 1, dtype=np.int32)
    for i in reversed(range(len(LEVELS) - 1)):
        level[sizes[i] >= min_comparable] = i
    count = np.empty(n, dtype=np.uint32)
    q1 = np.empty(n)
    q3 = np.empty(n)
    pct = np.empty(n)
    for i, code in enumerate(codes):
        rows = level == i
        if not rows.any():
            continue
        # Only the groups some row is compared in: every row of those groups, sorted by
        # group, then value.
        needed = np.zeros(int(code.max()) + 1, dtype=bool)
        needed[code[rows]] = True
        members = np.flatnonzero(needed[code])
        order = members[np.lexsort((y[members], code[members]))]
        group = code[order]
        values = y[order]
        m = len(order)
        group_start = np.empty(m, dtype=bool)
        group_start[0] = True
        np.not_equal(group[1:], group[:-1], out=group_start[1:])
        starts = np.flatnonzero(group_start)
        lengths = np.diff(np.append(starts, m))
        which = np.cumsum(group_start) - 1
        quartiles = []
        for prob in (0.25, 0.75):
            # polars' "linear" quantile: index (n - 1) p, interpolated between floor and
            # ceiling, the lower value itself where both are equal.
            at = (lengths - 1.0) * prob
            low = at.astype(np.int64)
            high = np.ceil(at).astype(np.int64)
            below = values[starts + low]
            above = values[starts + high]
            with np.errstate(invalid="ignore"):  # inf - inf, where the two are equal anyway
                step = (at - low) * (above - below) + below
            quartiles.append(np.where(below == above, below, step))
        # Average rank: ties share the mean of their 1-based positions in the group.
        run_start = group_start.copy()
        run_start[1:] |= values[1:] != values[:-1]
        first = np.flatnonzero(run_start)
        last = np.append(first[1:], m) - 1
        offset = starts[which[first]]
        run_rank = ((first - offset) + (last - offset)) / 2.0 + 1.0
        rank = run_rank[np.cumsum(run_start) - 1]
        chosen = rows[order]
        target = order[chosen]
        mine = which[chosen]
        count[target] = lengths[mine]
        q1[target] = quartiles[0][mine]
        q3[target] = quartiles[1][mine]
        if LEVELS[i]:
            pct[target] = (rank[chosen] - 0.5) / lengths[mine].astype(np.float64)
        else:
            # Over the whole frame the count is one number, which polars divides by as a
            # multiplication by its reciprocal.
            pct[target] = (rank[chosen] - 0.5) * (1.0 / float(m))
    return frame.with_columns(
        pl.Series("_level", level, dtype=pl.Int32),
        pl.Series("_count", count, dtype=pl.UInt32),
        pl.Series("_q1", q1, dtype=pl.Float64),
        pl.Series("_q3", q3, dtype=pl.Float64),
        pl.Series("_pct", pct, dtype=pl.Float64),
    )


def _compare_windows(frame: pl.DataFrame, value: str, min_comparable: int) -> pl.DataFrame:
    """``compare`` by polars windows, for values with nulls or NaN (which windows rank and
    count in their own way)."""
    y = pl.col(value)
    per_level = []
    for i, keys in enumerate(LEVELS):

        def over(expr: pl.Expr, keys: tuple[str, ...] = keys) -> pl.Expr:
            return expr.over(list(keys)) if keys else expr

        count = over(pl.len())
        per_level += [
            count.alias(f"_c{i}"),
            over(y.quantile(0.25, "linear")).alias(f"_q1_{i}"),
            over(y.quantile(0.75, "linear")).alias(f"_q3_{i}"),
            ((over(y.rank("average")) - 0.5) / count).alias(f"_pct_{i}"),
        ]
    frame = frame.with_columns(per_level)
    level: pl.Expr = pl.lit(len(LEVELS) - 1)
    for i in reversed(range(len(LEVELS) - 1)):
        level = pl.when(pl.col(f"_c{i}") >= min_comparable).then(pl.lit(i)).otherwise(level)
    frame = frame.with_columns(level.alias("_level"))
    chosen = []
    for name in ("_c", "_q1_", "_q3_", "_pct_"):
        pick: pl.Expr = pl.lit(None)
        for i in range(len(LEVELS)):
            pick = pl.when(pl.col("_level") == i).then(pl.col(f"{name}{i}")).otherwise(pick)
        chosen.append(pick.alias({"_c": "_count"}.get(name, name.rstrip("_"))))
    helper = [f"{name}{i}" for name in ("_c", "_q1_", "_q3_", "_pct_") for i in range(len(LEVELS))]
    return frame.with_columns(chosen).drop(helper)


def comparison_evidence() -> pl.Expr:
    lvl = pl.col("_level")
    return pl.struct(
        award_method=pl.when(lvl <= 3).then(pl.col("_rule")),
        category=pl.when(lvl == 0).then(pl.col("_category")),
        size_band=pl.when(lvl <= 1).then(pl.col("_size")),
        bids=pl.when(lvl <= 2).then(pl.col("_bids")),
        tenders=pl.col("_count"),
    )


# ---------------------------------------------------------------------------- screen scoring

Direction = Literal["low", "high"]


@dataclass(frozen=True)
class TenderScreen:
    """Base of the per-tender price screens: a statistic judged against comparable tenders.

    A subclass names the statistic and, per award rule, which side of it is suspicious.
    """

    threshold: float | None = None
    fence: float = 1.5
    min_comparable: int = 30
    min_bids: int = 3

    name: ClassVar[str]
    subject: ClassVar[SubjectKind] = "tender"
    requires: ClassVar[frozenset[str]] = frozenset({"bids.amount"})
    # Outlier flags are thresholded views of the percentiles bid-pattern averages.
    default_weight: ClassVar[float] = 0.0
    statistic: ClassVar[str]
    label: ClassVar[str]
    meaning: ClassVar[dict[Direction, str]]
    low_under: ClassVar[frozenset[str]] = frozenset()
    log_scale: ClassVar[bool] = False
    # The fewest bids the statistic is defined for (one for a winning bid's ratio).
    fewest_bids: ClassVar[int] = 2
    # A statistic that is a positive ratio takes only a positive threshold.
    positive: ClassVar[bool] = False

    def __post_init__(self) -> None:
        if self.fence < 0:
            raise ValueError(f"fence must be >= 0, got {self.fence}")
        if self.min_comparable < 4:
            raise ValueError(f"min_comparable must be >= 4, got {self.min_comparable}")
        if self.min_bids < self.fewest_bids:
            raise ValueError(f"min_bids must be >= {self.fewest_bids}, got {self.min_bids}")
        positive = self.log_scale or self.positive
        if self.threshold is not None and positive and self.threshold <= 0:
            raise ValueError(f"threshold must be > 0 for {self.label}, got {self.threshold}")

    def statistics(self, data: Dataset) -> pl.DataFrame:
        """tender_id, n, mean and ``value`` for every tender the screen can assess, and _t,
        the tender's row in ``tender_prices`` (an integer code in tender order)."""
        return (
            tender_prices(data)
            .with_row_index("_t")
            .filter((pl.col("n") >= self.min_bids) & pl.col(self.statistic).is_not_null())
            .select("tender_id", "_t", "n", "mean", pl.col(self.statistic).alias("value"))
        )

    def detect(self, data: Dataset) -> Findings:
        return outliers(self, data)

    def transform(self, value: pl.Expr) -> pl.Expr:
        return value.clip(lower_bound=LOG_FLOOR).log() if self.log_scale else value

    def inverse(self, t: pl.Expr) -> pl.Expr:
        return t.exp() if self.log_scale else t

    def limit_of(self, threshold: float) -> float:
        return math.log(max(threshold, LOG_FLOOR)) if self.log_scale else threshold


def winning_ratios(data: Dataset, min_bids: int) -> pl.DataFrame:
    """tender_id, n, mean and ``value``, the winning bid over the estimate, for tenders with
    a winner, an estimate and at least ``min_bids`` priced bids."""
    winners = (
        data.bids.lazy()
        .filter(pl.col("is_winner").fill_null(False) & pl.col("amount").is_not_null())
        .join(data.tenders.lazy().select("tender_id", "estimate"), on="tender_id")
        .filter(pl.col("estimate") > 0)
        .group_by("tender_id")
        .agg((pl.col("amount") / pl.col("estimate")).max().alias("value"))
        .collect()
    )
    return (
        tender_prices(data)
        .select("tender_id", "n", "mean")
        .join(winners, on="tender_id", maintain_order="left")
        .filter(pl.col("n") >= min_bids)
    )


def screen_frame(screen: TenderScreen, data: Dataset) -> pl.DataFrame:
    """Every tender the screen can assess, placed among its comparable tenders.

    Columns: those of ``statistics`` (tender_id, n, mean, value, and _t where the screen's
    statistic comes from ``tender_prices``), _sign (-1 where low values are suspicious),
    _y = _sign x transform(value), so that higher is always more suspicious, the comparison
    keys, and _level, _count, _q1, _q3, _pct from ``compare``. Cached per dataset and
    settings, so that the outlier screens and ``bid-pattern`` share the work.
    """
    return once(
        data,
        (screen_frame, type(screen), screen.min_bids, screen.min_comparable),
        lambda: _screen_frame(screen, data),
    )


def _screen_frame(screen: TenderScreen, data: Dataset) -> pl.DataFrame:
    stats = screen.statistics(data)
    if stats.height == 0:
        raise NotComputable(
            f"no tender has {screen.min_bids}+ priced bids with a defined {screen.label}"
        )
    keyed = comparison_keys(data, stats)
    low = pl.col("_rule").is_in(list(screen.low_under)) | low_if_unstated(screen)
    keyed = keyed.with_columns(pl.when(low).then(-1.0).otherwise(1.0).alias("_sign"))
    keyed = keyed.with_columns((pl.col("_sign") * screen.transform(pl.col("value"))).alias("_y"))
    return compare(keyed, "_y", screen.min_comparable)


def outliers(screen: TenderScreen, data: Dataset) -> Findings:
    """Flag tenders whose statistic lies beyond the fence of their comparison group.

    The fence is Q3 + fence x IQR of _y in the comparison group (Q3 alone when the IQR is
    zero) or the fixed ``threshold``; the score is the tender's mid-rank percentile of _y.
    """
    keyed = screen_frame(screen, data)
    if screen.threshold is None:
        if keyed.height < screen.min_comparable:
            raise NotComputable(
                f"needs at least {screen.min_comparable} tenders with {screen.min_bids}+ priced "
                f"bids for a data-driven fence, found {keyed.height}; set `threshold` under "
                f"[detectors.{screen.name}] to use a fixed limit, or lower `min_comparable`"
            )
        limit_y = pl.col("_q3") + screen.fence * (pl.col("_q3") - pl.col("_q1"))
        how = pl.format(
            "{} fence of {} comparable tenders",
            pl.when(pl.col("_sign") < 0).then(pl.lit("lower")).otherwise(pl.lit("upper")),
            pl.col("_count"),
        )
    else:
        limit_y = pl.col("_sign") * screen.limit_of(screen.threshold)
        how = pl.lit("fixed threshold")
    flagged = (
        keyed.with_columns(limit_y.alias("_limit_y"), how.alias("_how"))
        .filter(pl.col("_y") > pl.col("_limit_y"))
        .with_columns(screen.inverse(pl.col("_sign") * pl.col("_limit_y")).alias("_limit"))
    )
    flagged = flagged.join(bid_lists(data, flagged), on="tender_id", how="left")
    low = pl.col("_sign") < 0
    return build(
        flagged,
        detector=screen.name,
        kind="tender",
        subject_id=pl.col("tender_id"),
        score=pl.col("_pct"),
        value=pl.col("value"),
        threshold=pl.col("_limit"),
        message=pl.format(
            "{}: {} {} {} {} ({})",
            pl.when(low)
            .then(pl.lit(screen.meaning["low"]))
            .otherwise(pl.lit(screen.meaning["high"])),
            pl.lit(screen.label),
            sig(pl.col("value")),
            pl.when(low).then(pl.lit("<")).otherwise(pl.lit(">")),
            sig(pl.col("_limit")),
            pl.col("_how"),
        ),
        evidence={
            "statistic": pl.lit(screen.label),
            "value": pl.col("value"),
            "limit": pl.col("_limit"),
            "suspicious_side": pl.when(low).then(pl.lit("low")).otherwise(pl.lit("high")),
            "percentile": pl.col("_pct"),
            "compared_with": comparison_evidence(),
            "bids": pl.col("amounts"),
        },
        firms=pl.col("bidders"),
        assessed=keyed.get_column("tender_id"),
    )


def low_if_unstated(screen: TenderScreen) -> pl.Expr:
    """Tenders with no stated award rule are judged as lowest-price awards."""
    return pl.lit("lowest_price" in screen.low_under) & (pl.col("_rule") == UNSTATED)


def mid_p(
    successes: npt.ArrayLike, trials: npt.ArrayLike, rate: npt.ArrayLike
) -> npt.NDArray[np.float64]:
    """Binomial mid-p upper tail: P(X > k) + P(X = k) / 2 for X ~ Bin(n, rate), the chance
    of k or more events (the k-th counting half) among n if each happened at ``rate``."""
    k = np.asarray(successes, dtype=np.int64)
    n = np.asarray(trials, dtype=np.int64)
    return np.asarray(stats.binom.sf(k, n, rate) + 0.5 * stats.binom.pmf(k, n, rate))
