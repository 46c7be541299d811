"""A contract's quality inspections fail more often than the input's, or fall far short."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

import polars as pl

from bidwatch.detectors._base import Family, NotComputable, sig
from bidwatch.detectors._bills import known_tenders
from bidwatch.detectors._inspections import (
    FIRM,
    content_sort,
    disagreement_note,
    judged,
    rows_evidence,
)
from bidwatch.detectors._stats import mid_p
from bidwatch.findings import Findings, SubjectKind, build

if TYPE_CHECKING:
    from bidwatch.dataset import Dataset

# Evidence lists at most this many rows per contract (failures first, the largest first).
_SHOWN = 20


@dataclass(frozen=True)
class InspectionFailures:
    """The quality inspections of a contract fail more often than the input's rate explains,
    or one falls far short of its required value.

    ## What it flags
    Tenders whose contract's inspection rows fail significantly more often than inspection
    rows across the input (at least `min_failures` failed rows, binomial mid-p at most
    `max_p`), or hold a failure whose shortfall from the required value exceeds
    `max_shortfall`.

    ## Why it is a risk
    Thin pavements, under-compacted bases, weak concrete and missing rebar are what a cheap
    win is recovered by once the works are under way (偷工减料). A failed inspection is the
    record of it: the Construction Law (建筑法) art. 58 makes the contractor answer for
    building to the design and the standards, and the Regulations on the Quality Management
    of Construction Projects (建设工程质量管理条例) art. 28 forbid cutting corners (偷工减料)
    and art. 29 require materials to be tested before they are used. Many failures, or one
    far below the requirement, are more than the noise of measurement.

    ## Method
    Each row is judged against its required value: the row's `limit` says whether the
    measured value must reach it (min) or stay under it (max); where it is empty, items of
    deflection (弯沉), roughness (平整度, IRI), water-cement or water-binder ratio (水灰比,
    水胶比), crack width (裂缝宽度), clay content (含泥量) and permeability (渗水系数) are
    maxima and every other item a minimum. shortfall = (required - measured) / required for
    a minimum, (measured - required) / required for a maximum, clipped at 0. A row fails
    when its result says fail or its shortfall is positive (a recorded result that the
    values contradict is counted in the notes); it is marginal when it passes by less than
    `marginal` of the required value. With r the share of all rows in the input that
    fail, a contract with k failed rows of n gets the binomial mid-p P(X > k) + P(X = k) / 2,
    X ~ Bin(n, r): the chance of so many failures at the input's rate. Flagged when
    k >= `min_failures` and p <= `max_p`, or when the largest shortfall s exceeds
    `max_shortfall`. Contracts are inspected on a few rows (2-5 is common), and one failure
    in two rows is already "significant" at a failure rate of 4%: a single failed row is a
    fact about the works, not a pattern, so by default it is judged by its depth alone.
    Score = 1 - p x
    exp(-s / `max_shortfall`): one minus the p-value, raised towards 1 by the largest
    shortfall (a shortfall of `max_shortfall` shrinks p by 1/e).

    ## Evidence
    Rows, failed and marginal rows, the input-wide failure rate, the expected failures, p,
    the largest shortfall, and the failed and marginal rows (item, measured, required, unit,
    limit, shortfall or margin, recorded result, date).

    ## Parameters
    - `max_p`: flag a contract whose failures are this unlikely at the input's failure rate.
    - `min_failures`: fewest failed rows for the count to flag a contract (1: any failure
      can, where few rows make it unlikely).
    - `max_shortfall`: flag a contract with a failure this far (relative) short of its
      required value, and the shortfall that shrinks p by 1/e in the score.
    - `marginal`: a passing row is marginal when it clears its required value by less than
      this share of it.

    ## Known false positives
    Inspections are not drawn alike across contracts: a contract inspected on items that
    often fail (compaction more than thickness), or re-inspected after a complaint, fails
    more often at the same workmanship; many rows of one measurement campaign are not
    independent. A required value entered as the design value where the standard allows a
    tolerance makes small shortfalls out of passes (the recorded result then disagrees,
    which the notes count).

    ## References
    - 中华人民共和国建筑法 (1997, rev. 2019), art. 58.
    - 建设工程质量管理条例 (2000, rev. 2019), arts. 28, 29.
    - JTG F80/1-2017 公路工程质量检验评定标准 (Quality inspection and evaluation standards
      for highway engineering).
    - Lancaster, H. O. (1961). Significance tests in discrete distributions. JASA 56(294)
      (the mid-p value).
    """

    max_p: float = 0.05
    # On 20,000 synthetic contracts inspected on 2-5 rows each, a single failure flagged 252
    # honest contracts of 18,135 (at 1, p = 0.041); two or more flag 68, and the planted
    # ones are still found by their depth.
    min_failures: int = 2
    max_shortfall: float = 0.1
    marginal: float = 0.02

    name: ClassVar[str] = "inspection-failures"
    subject: ClassVar[SubjectKind] = "tender"
    requires: ClassVar[frozenset[str]] = frozenset({"inspections.tender_id"})
    # The works themselves falling short: the most direct evidence of the family.
    default_weight: ClassVar[float] = 1.0
    family: ClassVar[Family] = "materials"

    def __post_init__(self) -> None:
        if not 0 < self.max_p < 1:
            raise ValueError(f"max_p must be in (0, 1), got {self.max_p}")
        if self.min_failures < 1:
            raise ValueError(f"min_failures must be >= 1, got {self.min_failures}")
        if not self.max_shortfall > 0:
            raise ValueError(f"max_shortfall must be > 0, got {self.max_shortfall}")
        if not 0 <= self.marginal < 1:
            raise ValueError(f"marginal must be in [0, 1), got {self.marginal}")

    def detect(self, data: Dataset) -> Findings:
        rows = judged(data, self.marginal)
        if rows.height == 0:
            raise NotComputable("no inspection rows")
        rate = float(rows.get_column("_failed").mean())  # type: ignore[arg-type]
        notes = disagreement_note(rows)
        rows, orphan = known_tenders(rows, data)
        notes += orphan
        if rows.height == 0:
            raise NotComputable(
                "no inspection row names a tender of the input's bids or tenders: " + orphan[0]
            )
        failed = pl.col("_failed")
        shown = failed | pl.col("_marginal")
        # Counts and maxima do not depend on the order of the rows; only the evidence
        # lists do, and they hold the failed and marginal rows alone: those are sorted
        # (by content, failures first, the largest shortfall first).
        per_tender = rows.group_by("tender_id").agg(
            pl.len().alias("n"),
            failed.sum().alias("k"),
            pl.col("_marginal").sum().alias("marginal"),
            pl.col("_shortfall").filter(failed).max().fill_null(0.0).alias("s"),
            pl.col(FIRM).drop_nulls().unique().sort().alias("firms"),
        )
        evidence = (
            content_sort(
                rows.filter(shown).with_columns((-pl.col("_shortfall")).alias("_depth")),
                "_depth",
            )
            .sort(~failed, maintain_order=True)
            .group_by("tender_id")
            .agg(rows_evidence().head(_SHOWN).alias("rows"))
        )
        per_tender = (
            per_tender.join(evidence, on="tender_id", how="left")
            .with_columns(pl.col("rows").fill_null(pl.lit([], dtype=evidence.schema["rows"])))
            .sort("tender_id")
        )
        p = mid_p(
            per_tender.get_column("k").to_numpy(), per_tender.get_column("n").to_numpy(), rate
        )
        per_tender = per_tender.with_columns(pl.Series("p", p))
        by_count = (pl.col("k") >= self.min_failures) & (pl.col("p") <= self.max_p)
        by_depth = pl.col("s") > self.max_shortfall
        flagged = per_tender.filter(by_count | by_depth)
        return build(
            flagged,
            detector=self.name,
            kind="tender",
            subject_id=pl.col("tender_id"),
            score=1 - pl.col("p") * (-pl.col("s") / self.max_shortfall).exp(),
            value=pl.when(by_count).then(pl.col("p")).otherwise(pl.col("s")),
            threshold=pl.when(by_count)
            .then(pl.lit(self.max_p))
            .otherwise(pl.lit(self.max_shortfall)),
            message=pl.format(
                "{} of {} inspection rows failed, {} expected at the input's rate of {}% "
                "(p = {}{} {}); largest shortfall {}% of the required value{} {}%",
                "k",
                "n",
                sig(pl.col("n") * rate, 2),
                sig(pl.lit(rate * 100), 3),
                sig(pl.col("p"), 2),
                pl.when(pl.col("p") <= self.max_p).then(pl.lit(" <=")).otherwise(pl.lit(" >")),
                pl.lit(self.max_p),
                sig(pl.col("s") * 100, 3),
                pl.when(by_depth).then(pl.lit(" >")).otherwise(pl.lit(" <=")),
                pl.lit(round(self.max_shortfall * 100, 6)),
            ),
            evidence={
                "rows": pl.col("n"),
                "failed": pl.col("k"),
                "marginal": pl.col("marginal"),
                "failure_rate": pl.lit(rate),
                "expected_failures": pl.col("n") * rate,
                "p": pl.col("p"),
                "largest_shortfall": pl.col("s"),
                "inspections": pl.col("rows"),
            },
            firms=pl.col("firms"),
            assessed=per_tender.get_column("tender_id"),
            notes=notes,
        )
