"""Works completed implausibly fast for their size or plan, or long after the planned date."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

import polars as pl

from bidwatch.detectors._after import contractors
from bidwatch.detectors._base import Family, NotComputable, sig
from bidwatch.detectors._contracts import (
    compare_contracts,
    contract_comparison,
    day_text,
    days,
    shared_contracts,
    upper_fence,
)
from bidwatch.detectors._stats import UNSTATED
from bidwatch.findings import Findings, SubjectKind, build

if TYPE_CHECKING:
    from bidwatch.dataset import Dataset

# The three tests, by the prefix of their columns: fast for the contract's size, ahead of
# its own plan, overrun of its plan.
SIZE, PLAN, OVER = "_s", "_p", "_o"


@dataclass(frozen=True)
class DeliveryAnomaly:
    """The works were completed implausibly fast for the contract's size or plan, or overran
    the planned completion far more than comparable contracts.

    ## What it flags
    Contracts whose duration (actual_completion - signed_at, else the award date) is far
    shorter than contracts of their size and category take, or far shorter than their own
    planned duration ("fast"), and contracts whose actual duration overran the planned one
    far more than comparable contracts or than `max_overrun` ("overrun"). The message says
    which.

    ## Why it is a risk
    Works finished in a fraction of the time their size needs were seldom built as
    specified: layers left out, curing cut short, or the completion recorded on paper.
    The Regulations on the Quality Management of Construction Projects (建设工程质量管理条例)
    art. 10 forbid the buyer to compress a reasonable construction period, and the
    Regulations on Government Investment (政府投资条例) art. 24 require the period to be set
    reasonably and kept. A long overrun is the other face of a below-cost price: a
    contractor without the means to build stalls, and delay is where claims and change
    orders start (Decarolis 2014 finds both after deep-discount awards).

    ## Method
    Fast for its size: x = log contract amount (else the winning bid), y = log duration in
    days. The slope b of y on x is one step of Tukey's resistant line, fitted after
    centring x and y on their category medians (so that categories of different sizes and
    speeds do not make the slope): the contracts are split into thirds by centred x, and
    b = (median y of the upper third - median y of the lower third) / (median x of the
    upper third - median x of the lower third), 0 when the two x medians coincide. The
    intercept a is the median of y - b x in the contract's category when it has at least
    `min_comparable` contracts, else among all contracts. r = y - a - b x is log(actual /
    expected duration); the contract is fast when -r lies above the upper fence Q3 +
    `fence` x IQR of -r among comparable contracts. Needs `min_comparable` contracts with
    an amount. Ahead of plan and overrun: q = log(actual / planned duration), the planned
    duration running from the same start to planned_completion; the contract is fast when q
    lies below Q1 - `fence` x IQR of q among comparable contracts, and overran when q lies
    above Q3 + `fence` x IQR (or when actual / planned - 1 exceeds `max_overrun`, which
    replaces that fence). Comparable contracts: same category and half-decade band of
    amount, else the band, else all, the finest group with `min_comparable` contracts; a
    zero IQR leaves the fence at the quartile, so every test also needs a departure of at
    least `min_gap`: a duration at least that share shorter than expected (or planned), an
    overrun at least that share of the planned duration (most contracts finishing on the
    planned day would otherwise put the fence at zero). Score: the mid-rank percentile of
    the departure among the comparison group (of -r, of -q, of q), the largest among the
    tests crossed. value and threshold: the ratio (actual / expected, actual / planned) or
    the overrun share, and its limit, of the test with the highest score.

    ## Evidence
    Start (and whether from signing or the award), planned and actual completion, duration
    and amount; per test computed: its value, limit, where the limit comes from, percentile
    and comparison group; for the size test also the expected duration and the line (slope,
    intercept, whether the category's own); the tests crossed.

    ## Parameters
    - `fence`: Tukey multiplier of the interquartile range of each test's departure.
    - `min_comparable`: fewest contracts a comparison group, and the line, need.
    - `max_overrun`: fixed overrun limit replacing the fence, e.g. 0.5 for half the planned
      duration (None: fence).
    - `min_gap`: least departure flagged: a duration at least this share shorter than
      expected or planned, an overrun at least this share of the planned duration.

    ## Known false positives
    Fast: a contract amount inflated by equipment or materials supplied, not built; works
    started before the contract was signed (the duration is measured from signing); a
    generous planned duration; a completion date that is the acceptance of a first
    section. Overrun: suspensions the buyer ordered, land acquisition and permits, weather;
    extensions agreed in change orders (the planned date is the contract's, not the
    amended one).

    ## References
    - 建设工程质量管理条例 (2000, rev. 2019), art. 10.
    - 政府投资条例 (State Council Decree No. 712, 2019), art. 24.
    - Decarolis, F. (2014). Awarding price, contract performance, and bids screening:
      evidence from procurement auctions. AEJ: Applied Economics 6(1).
    - Tukey, J. W. (1977). Exploratory Data Analysis. Addison-Wesley (resistant line).
    """

    fence: float = 1.5
    min_comparable: int = 30
    max_overrun: float | None = None
    min_gap: float = 0.25

    name: ClassVar[str] = "delivery-anomaly"
    subject: ClassVar[SubjectKind] = "tender"
    requires: ClassVar[frozenset[str]] = frozenset({"contracts.actual_completion"})
    # Dates are recorded loosely and honest works overrun: a lead for a site visit.
    default_weight: ClassVar[float] = 0.75
    family: ClassVar[Family] = "materials"

    def __post_init__(self) -> None:
        if self.fence < 0:
            raise ValueError(f"fence must be >= 0, got {self.fence}")
        if self.min_comparable < 4:
            raise ValueError(f"min_comparable must be >= 4, got {self.min_comparable}")
        if self.max_overrun is not None and self.max_overrun < 0:
            raise ValueError(f"max_overrun must be >= 0 or None, got {self.max_overrun}")
        if not 0 <= self.min_gap < 1:
            raise ValueError(f"min_gap must be in [0, 1), got {self.min_gap}")

    def detect(self, data: Dataset) -> Findings:
        contracts = shared_contracts(data).with_columns(
            pl.coalesce(
                pl.when(pl.col("contract_amount") > 0).then(pl.col("contract_amount")),
                "_winning",
            ).alias("_amount"),
            days(pl.col("actual_completion"), pl.col("_start")).alias("_days"),
            days(pl.col("planned_completion"), pl.col("_start")).alias("_planned_days"),
        )
        done = contracts.filter(pl.col("actual_completion").is_not_null())
        timed = done.filter(pl.col("_days") > 0)
        if timed.height == 0:
            raise NotComputable(
                "no contract has a start (signed_at or the tender's awarded_at) and an "
                f"actual_completion after it ({done.height} contract(s) with an "
                "actual_completion)"
            )
        notes = list(self._notes(done))
        size, size_notes = self._size_test(timed)
        plan, plan_notes = self._plan_tests(timed)
        notes += [*size_notes, *plan_notes]
        tests = [t for t in (size, plan) if t is not None]
        if not tests:
            raise NotComputable("; ".join(notes))
        frame = timed.select(
            "tender_id",
            "contract_amount",
            "_amount",
            "_start",
            "signed_at",
            "planned_completion",
            "actual_completion",
            "_days",
            "_planned_days",
        )
        for test in tests:
            frame = frame.join(test, on="tender_id", how="left")
        for prefix, columns in TEST_COLUMNS.items():
            missing = [c for c in columns if f"{prefix}{c}" not in frame.columns]
            frame = frame.with_columns(
                pl.lit(None, dtype=columns[c]).alias(f"{prefix}{c}") for c in missing
            ).with_columns(pl.col(f"{prefix}_cross").fill_null(False))
        assessed = frame.filter(pl.any_horizontal(pl.col(f"{p}_pct").is_not_null() for p in TESTS))
        crossed = pl.col(f"{SIZE}_cross") | pl.col(f"{PLAN}_cross") | pl.col(f"{OVER}_cross")
        flagged = assessed.filter(crossed).join(contractors(data), on="tender_id", how="left")
        return self._build(flagged, assessed.get_column("tender_id"), tuple(notes))

    def _notes(self, done: pl.DataFrame) -> tuple[str, ...]:
        notes = []
        no_start = done.filter(pl.col("_start").is_null()).height
        if no_start:
            notes.append(
                f"{no_start} completed contract(s) have no signed_at and no tender awarded_at "
                "to measure the duration from: not judged"
            )
        backwards = done.filter(pl.col("_days") <= 0).height
        if backwards:
            notes.append(
                f"{backwards} contract(s) were completed on or before the day they started: "
                "the dates are taken as errors and not judged"
            )
        return tuple(notes)

    def _limit(self, fence: pl.Expr, gap: float) -> tuple[pl.Expr, pl.Expr]:
        """(limit, where it comes from): the fence, or `min_gap`'s departure when larger."""
        how = (
            pl.when(fence >= gap)
            .then(pl.format("fence of {} comparable contracts", pl.col("_count")))
            .otherwise(pl.lit(f"min_gap {self.min_gap:g}"))
        )
        return pl.max_horizontal(fence, pl.lit(gap)), how

    def _size_test(self, timed: pl.DataFrame) -> tuple[pl.DataFrame | None, tuple[str, ...]]:
        """Fast for its size: the residual of log duration on a resistant line in log amount."""
        sized = timed.filter(pl.col("_amount") > 0)
        notes: tuple[str, ...] = ()
        unsized = timed.height - sized.height
        if unsized:
            notes += (
                f"{unsized} completed contract(s) have neither a contract_amount nor a winning "
                "bid: their speed for their size is not judged",
            )
        if sized.height < self.min_comparable:
            return None, (
                *notes,
                f"speed for size not judged: {sized.height} contract(s) have a duration and "
                f"an amount, fewer than min_comparable = {self.min_comparable} to fit a line",
            )
        line = sized.with_columns(
            pl.col("_amount").log().alias("_x"),
            pl.col("_days").log().alias("_y"),
            pl.col("category").fill_null(UNSTATED).alias("_cat"),
        )
        slope = resistant_slope(line)
        line = line.with_columns((pl.col("_y") - slope * pl.col("_x")).alias("_level_y"))
        own = pl.len().over("_cat") >= self.min_comparable
        intercept = (
            pl.when(own)
            .then(pl.col("_level_y").median().over("_cat"))
            .otherwise(pl.col("_level_y").median())
        )
        line = (
            line.with_columns(intercept.alias("_a"), own.alias("_own"))
            .with_columns((pl.col("_y") - pl.col("_a") - slope * pl.col("_x")).alias("_r"))
            .with_columns((-pl.col("_r")).alias("_fast"))
        )
        placed = compare_contracts(line, "_fast", "_amount", self.min_comparable)
        limit, how = self._limit(upper_fence(self.fence), -math.log(1.0 - self.min_gap))
        test = placed.select(
            "tender_id",
            (pl.col("_fast") > limit).alias(f"{SIZE}_cross"),
            pl.col("_pct").alias(f"{SIZE}_pct"),
            pl.col("_r").exp().alias(f"{SIZE}_value"),
            (-limit).exp().alias(f"{SIZE}_limit"),
            how.alias(f"{SIZE}_how"),
            contract_comparison().alias(f"{SIZE}_compared"),
            (pl.col("_a") + slope * pl.col("_x")).exp().alias(f"{SIZE}_expected"),
            pl.struct(
                slope=pl.lit(slope), intercept=pl.col("_a"), category_line=pl.col("_own")
            ).alias(f"{SIZE}_line"),
        )
        return test, notes

    def _plan_tests(self, timed: pl.DataFrame) -> tuple[pl.DataFrame | None, tuple[str, ...]]:
        """Ahead of plan and overrun: log(actual / planned duration) among comparable
        contracts."""
        planned = timed.filter(pl.col("_planned_days") > 0)
        notes: tuple[str, ...] = ()
        unplanned = timed.height - planned.height
        if unplanned:
            notes += (
                f"{unplanned} completed contract(s) have no planned_completion after their "
                "start: their speed against the plan and their overrun are not judged",
            )
        fenced = planned.height >= self.min_comparable
        if planned.height == 0 or (not fenced and self.max_overrun is None):
            return None, (
                *notes,
                f"plan not judged: {planned.height} contract(s) have a planned duration, "
                f"fewer than min_comparable = {self.min_comparable} for a fence; set "
                "`max_overrun` for a fixed overrun limit",
            )
        if not fenced:
            notes += (
                f"speed against the plan not judged: {planned.height} contract(s) have a "
                f"planned duration, fewer than min_comparable = {self.min_comparable}; the "
                "overrun is judged against max_overrun alone",
            )
        frame = planned.with_columns(
            (pl.col("_days") / pl.col("_planned_days")).log().alias("_q"),
            days(pl.col("actual_completion"), pl.col("planned_completion")).alias("_late"),
        )
        placed = compare_contracts(frame, "_q", "_amount", self.min_comparable)
        iqr = pl.col("_q3") - pl.col("_q1")
        ahead, ahead_how = self._limit(
            -(pl.col("_q1") - self.fence * iqr), -math.log(1.0 - self.min_gap)
        )
        if self.max_overrun is None:
            over, over_how = self._limit(upper_fence(self.fence), math.log1p(self.min_gap))
        else:
            fixed = math.log1p(max(self.max_overrun, self.min_gap))
            over = pl.lit(fixed)
            over_how = pl.lit(
                "max_overrun" if self.max_overrun >= self.min_gap else f"min_gap {self.min_gap:g}"
            )
        test = placed.select(
            "tender_id",
            (pl.lit(fenced) & (-pl.col("_q") > ahead)).alias(f"{PLAN}_cross"),
            pl.when(pl.lit(fenced)).then(1.0 - pl.col("_pct")).alias(f"{PLAN}_pct"),
            pl.col("_q").exp().alias(f"{PLAN}_value"),
            pl.when(pl.lit(fenced)).then((-ahead).exp()).alias(f"{PLAN}_limit"),
            ahead_how.alias(f"{PLAN}_how"),
            contract_comparison().alias(f"{PLAN}_compared"),
            (pl.col("_q") > over).alias(f"{OVER}_cross"),
            pl.col("_pct").alias(f"{OVER}_pct"),
            pl.col("_q").exp().sub(1.0).alias(f"{OVER}_value"),
            over.exp().sub(1.0).alias(f"{OVER}_limit"),
            over_how.alias(f"{OVER}_how"),
            contract_comparison().alias(f"{OVER}_compared"),
            pl.col("_late").alias(f"{OVER}_late"),
        )
        return test, notes

    def _build(
        self, flagged: pl.DataFrame, assessed: pl.Series, notes: tuple[str, ...]
    ) -> Findings:
        scores = {p: pl.when(pl.col(f"{p}_cross")).then(pl.col(f"{p}_pct")) for p in TESTS}
        best = pl.max_horizontal(*scores.values())
        # The test of the highest score gives value and threshold (size, plan, overrun on ties).
        value: pl.Expr = pl.lit(None, dtype=pl.Float64)
        threshold: pl.Expr = pl.lit(None, dtype=pl.Float64)
        for p in reversed(TESTS):
            top = scores[p] == best
            value = pl.when(top).then(pl.col(f"{p}_value")).otherwise(value)
            threshold = pl.when(top).then(pl.col(f"{p}_limit")).otherwise(threshold)
        size_text = pl.when(pl.col(f"{SIZE}_cross")).then(
            pl.format(
                "fast for its size: completed in {} days, {} x the {} days expected for a "
                "contract of {} "
                "(< {} x, {})",
                day_text(pl.col("_days")),
                sig(pl.col(f"{SIZE}_value"), 3),
                day_text(pl.col(f"{SIZE}_expected")),
                sig(pl.col("_amount"), 6),
                sig(pl.col(f"{SIZE}_limit"), 3),
                pl.col(f"{SIZE}_how"),
            )
        )
        plan_text = pl.when(pl.col(f"{PLAN}_cross")).then(
            pl.format(
                "fast for its plan: completed in {} days, {} x the planned {} days (< {} x, {})",
                day_text(pl.col("_days")),
                sig(pl.col(f"{PLAN}_value"), 3),
                day_text(pl.col("_planned_days")),
                sig(pl.col(f"{PLAN}_limit"), 3),
                pl.col(f"{PLAN}_how"),
            )
        )
        over_text = pl.when(pl.col(f"{OVER}_cross")).then(
            pl.format(
                "overrun: completed {} days after the planned date, {}% of the planned {} "
                "days (> {}%, {})",
                day_text(pl.col(f"{OVER}_late")),
                sig(pl.col(f"{OVER}_value") * 100, 3),
                day_text(pl.col("_planned_days")),
                sig(pl.col(f"{OVER}_limit") * 100, 3),
                pl.col(f"{OVER}_how"),
            )
        )

        def result(p: str, **extra: pl.Expr) -> pl.Expr:
            fields = {
                "value": pl.col(f"{p}_value"),
                "limit": pl.col(f"{p}_limit"),
                "limit_from": pl.col(f"{p}_how"),
                "crossed": pl.col(f"{p}_cross"),
                "percentile": pl.col(f"{p}_pct"),
                "compared_with": pl.col(f"{p}_compared"),
                **extra,
            }
            known = pl.col(f"{p}_value").is_not_null() & pl.col(f"{p}_pct").is_not_null()
            return pl.when(known).then(pl.struct([e.alias(k) for k, e in fields.items()]))

        date = "%Y-%m-%d"
        return build(
            flagged,
            detector=self.name,
            kind="tender",
            subject_id=pl.col("tender_id"),
            score=best,
            value=value,
            threshold=threshold,
            message=pl.concat_str(
                [size_text, plan_text, over_text], separator="; ", ignore_nulls=True
            ),
            evidence={
                "crossed": pl.concat_list(
                    pl.when(pl.col(f"{SIZE}_cross")).then(pl.lit("fast for its size")),
                    pl.when(pl.col(f"{PLAN}_cross")).then(pl.lit("fast for its plan")),
                    pl.when(pl.col(f"{OVER}_cross")).then(pl.lit("overrun")),
                ).list.drop_nulls(),
                "start": pl.col("_start").dt.strftime(date),
                "start_from": pl.when(pl.col("signed_at").is_not_null())
                .then(pl.lit("signed_at"))
                .otherwise(pl.lit("awarded_at")),
                "planned_completion": pl.col("planned_completion").dt.strftime(date),
                "actual_completion": pl.col("actual_completion").dt.strftime(date),
                "days": pl.col("_days"),
                "planned_days": pl.col("_planned_days"),
                "amount": pl.col("_amount"),
                "amount_from": pl.when(pl.col("contract_amount") > 0)
                .then(pl.lit("contract_amount"))
                .otherwise(pl.lit("winning bid")),
                "for_size": result(
                    SIZE,
                    expected_days=pl.col(f"{SIZE}_expected"),
                    line=pl.col(f"{SIZE}_line"),
                ),
                "for_plan": result(PLAN),
                "overrun": result(OVER, days_late=pl.col(f"{OVER}_late")),
            },
            firms=pl.concat_list(pl.col("firm_id")).list.drop_nulls(),
            assessed=assessed,
            notes=notes,
        )


TESTS = (SIZE, PLAN, OVER)
_COMPARED = pl.Struct({"category": pl.String, "size_band": pl.String, "contracts": pl.UInt32})
_LINE = pl.Struct({"slope": pl.Float64, "intercept": pl.Float64, "category_line": pl.Boolean})
_COMMON: dict[str, pl.DataType] = {
    "_cross": pl.Boolean(),
    "_pct": pl.Float64(),
    "_value": pl.Float64(),
    "_limit": pl.Float64(),
    "_how": pl.String(),
    "_compared": _COMPARED,
}
# Every column of each test, without its prefix, for a test that could not be computed.
TEST_COLUMNS: dict[str, dict[str, pl.DataType]] = {
    SIZE: {**_COMMON, "_expected": pl.Float64(), "_line": _LINE},
    PLAN: dict(_COMMON),
    OVER: {**_COMMON, "_late": pl.Float64()},
}


def resistant_slope(line: pl.DataFrame) -> float:
    """One step of Tukey's resistant line of _y on _x, both centred on their _cat medians.

    Thirds by centred x (ties broken by centred y, so the split does not depend on row
    order); slope = difference of the y medians of the outer thirds over the difference of
    their x medians, 0 when those x medians coincide.
    """
    centred = line.select(
        (pl.col("_x") - pl.col("_x").median().over("_cat")).alias("_xc"),
        (pl.col("_y") - pl.col("_y").median().over("_cat")).alias("_yc"),
    ).sort("_xc", "_yc")
    third = centred.height // 3
    if third == 0:
        return 0.0
    medians = [pl.col("_xc").median(), pl.col("_yc").median()]
    low_x, low_y = centred.head(third).select(medians).row(0)
    high_x, high_y = centred.tail(third).select(medians).row(0)
    run = float(high_x - low_x)
    if run <= 0:
        return 0.0
    return float(high_y - low_y) / run
