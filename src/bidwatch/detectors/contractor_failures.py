"""A contractor whose inspections, across its contracts, fail more often than the input's."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

import polars as pl

from bidwatch.detectors._base import Family, NotComputable, sig
from bidwatch.detectors._inspections import (
    FIRM,
    content_sort,
    disagreement_note,
    judged,
)
from bidwatch.detectors._pairs import fdr
from bidwatch.detectors._stats import mid_p
from bidwatch.findings import Findings, SubjectKind, build

if TYPE_CHECKING:
    from bidwatch.dataset import Dataset


@dataclass(frozen=True)
class ContractorFailures:
    """A contractor's quality inspections, across its contracts, fail more often than the
    input's failure rate explains.

    ## What it flags
    Contractors with at least `min_contracts` inspected contracts whose failed inspection
    rows are too many for the input-wide failure rate, at a false discovery rate of `max_q`
    across the contractors assessed.

    ## Why it is a risk
    One failed contract can be bad luck, a bad subcontractor or a bad season; failures that
    follow a contractor from contract to contract are its way of working. A firm that wins
    cheaply and builds short (偷工减料) leaves that record, and buyers who keep awarding it
    contracts, or inspectors who keep passing its other works, are where to look next. The
    Regulations on the Quality Management of Construction Projects (建设工程质量管理条例)
    art. 28 forbid cutting corners, and art. 64 fines it; the Construction Law (建筑法)
    art. 74 lets a serious case cost the contractor its qualification grade (资质).

    ## Method
    Rows are judged as `inspection-failures` judges them (a row fails when its result says
    so or its measured value falls short of the required one; the limit runs from the row's
    `limit`, else from the item). A row belongs to the contractor it names, else to the
    holder of its tender's contract (the contract's contractor, else the winning bidder).
    With r the share of all rows in the input that fail, a contractor with k failed rows of
    n gets the binomial mid-p P(X > k) + P(X = k) / 2, X ~ Bin(n, r). Contractors with at
    least `min_contracts` inspected contracts (distinct tenders) are assessed;
    Benjamini-Hochberg over them gives q, and a contractor is flagged when q <= `max_q`.
    Score = 1 - p. The mean shortfall of its failures (relative to the required value) says
    how far short they fell.

    ## Evidence
    Contracts inspected and those with a failure, rows and failed rows, the input's failure
    rate and the expected failures, p and q, and the mean and largest shortfall of the
    failures.

    ## Parameters
    - `min_contracts`: fewest inspected contracts a contractor needs to be assessed.
    - `max_q`: the false discovery rate: flag contractors whose Benjamini-Hochberg adjusted
      p-value is at most this.
    - `marginal`: a passing row is marginal when it clears its required value by less than
      this share of it (counted in the evidence).

    ## Known false positives
    A contractor that takes on the hard works (soft ground, mountain roads) or works where
    inspectors are strict fails more often at the same workmanship; many rows of one
    inspection campaign are not independent, which the binomial null ignores. A contractor
    named differently in inspections and in bids is two firms unless entity resolution
    joins them.

    ## References
    - 建设工程质量管理条例 (2000, rev. 2019), arts. 28, 64.
    - 中华人民共和国建筑法 (1997, rev. 2019), art. 74.
    - Benjamini, Y. & Hochberg, Y. (1995). Controlling the false discovery rate. JRSS B 57.
    - Lancaster, H. O. (1961). Significance tests in discrete distributions. JASA 56(294)
      (the mid-p value).
    """

    min_contracts: int = 2
    max_q: float = 0.05
    marginal: float = 0.02

    name: ClassVar[str] = "contractor-failures"
    subject: ClassVar[SubjectKind] = "firm"
    requires: ClassVar[frozenset[str]] = frozenset({"inspections.tender_id"})
    # A record across contracts: strong, but it also weighs on each of the firm's tenders
    # through the materials history.
    default_weight: ClassVar[float] = 0.75
    family: ClassVar[Family] = "materials"

    def __post_init__(self) -> None:
        if self.min_contracts < 1:
            raise ValueError(f"min_contracts must be >= 1, got {self.min_contracts}")
        if not 0 < self.max_q <= 1:
            raise ValueError(f"max_q must be in (0, 1], got {self.max_q}")
        if not 0 <= self.marginal < 1:
            raise ValueError(f"marginal must be in [0, 1), got {self.marginal}")

    def detect(self, data: Dataset) -> Findings:
        rows = judged(data, self.marginal)
        if rows.height == 0:
            raise NotComputable("no inspection rows")
        rate = float(rows.get_column("_failed").mean())  # type: ignore[arg-type]
        notes = disagreement_note(rows)
        unowned = rows.filter(pl.col(FIRM).is_null()).height
        if unowned:
            notes += (
                f"{unowned} inspection rows name no contractor and their tender has no "
                "contract or winner: they count for the failure rate only",
            )
        owned = rows.filter(pl.col(FIRM).is_not_null())
        failed = pl.col("_failed")
        # The mean shortfall adds the failures up in an order set by the rows' content alone;
        # only the columns aggregated are moved into that order.
        firms = (
            content_sort(
                owned, FIRM, carry=[FIRM, "tender_id", "_failed", "_marginal", "_shortfall"]
            )
            .group_by(FIRM)
            .agg(
                pl.len().alias("n"),
                failed.sum().alias("k"),
                pl.col("_marginal").sum().alias("marginal"),
                pl.col("tender_id").n_unique().alias("contracts"),
                pl.col("tender_id").filter(failed).unique().sort().alias("failed_contracts"),
                pl.col("_shortfall").filter(failed).mean().alias("mean_shortfall"),
                pl.col("_shortfall").filter(failed).max().alias("largest_shortfall"),
            )
            .filter(pl.col("contracts") >= self.min_contracts)
            .sort(FIRM)
        )
        if firms.height == 0:
            counts = owned.group_by(FIRM).agg(pl.col("tender_id").n_unique().alias("c"))
            most = int(counts.get_column("c").max() or 0)  # type: ignore[arg-type]
            raise NotComputable(
                f"no contractor has {self.min_contracts}+ inspected contracts (the most is "
                f"{most}); lower `min_contracts` under [detectors.{self.name}]"
            )
        p = mid_p(firms.get_column("k").to_numpy(), firms.get_column("n").to_numpy(), rate)
        firms = firms.with_columns(pl.Series("p", p), pl.Series("q", fdr(p)))
        flagged = firms.filter(pl.col("q") <= self.max_q)
        return build(
            flagged,
            detector=self.name,
            kind="firm",
            subject_id=pl.col(FIRM),
            score=1 - pl.col("p"),
            value=pl.col("q"),
            threshold=pl.lit(self.max_q),
            message=pl.format(
                "{} of {} inspection rows failed across {} contracts ({} with a failure), "
                "{} expected at the input's rate of {}% (p = {}, q = {} <= {}); failures "
                "fell short by {}% on average",
                "k",
                "n",
                "contracts",
                pl.col("failed_contracts").list.len(),
                sig(pl.col("n") * rate, 2),
                sig(pl.lit(rate * 100), 3),
                sig(pl.col("p"), 2),
                sig(pl.col("q"), 2),
                pl.lit(self.max_q),
                sig(pl.col("mean_shortfall").fill_null(0.0) * 100, 3),
            ),
            evidence={
                "contracts": pl.col("contracts"),
                "failed_contracts": pl.col("failed_contracts"),
                "rows": pl.col("n"),
                "failed": pl.col("k"),
                "marginal": pl.col("marginal"),
                "failure_rate": pl.lit(rate),
                "expected_failures": pl.col("n") * rate,
                "p": pl.col("p"),
                "q": pl.col("q"),
                "mean_shortfall": pl.col("mean_shortfall"),
                "largest_shortfall": pl.col("largest_shortfall"),
            },
            firms=pl.concat_list(pl.col(FIRM)),
            assessed=firms.get_column(FIRM),
            notes=notes,
        )
