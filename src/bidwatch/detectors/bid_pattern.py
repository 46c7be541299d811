"""The shape of a tender's bids, over every price screen at once."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

import numpy as np
import polars as pl

from bidwatch.detectors._base import NotComputable, sig
from bidwatch.detectors._stats import (
    TenderScreen,
    bid_lists,
    compare,
    comparison_evidence,
    screen_frame,
    tender_prices,
)
from bidwatch.detectors.bid_cv import BidCV
from bidwatch.detectors.bid_kurtosis import BidKurtosis
from bidwatch.detectors.bid_skewness import BidSkewness
from bidwatch.detectors.bid_spread import BidSpread
from bidwatch.detectors.bid_uniformity import BidUniformity
from bidwatch.detectors.lowest_gap import LowestGap
from bidwatch.detectors.relative_distance import RelativeDistance
from bidwatch.detectors.winner_near_estimate import WinnerNearEstimate
from bidwatch.findings import Findings, SubjectKind, build

if TYPE_CHECKING:
    from bidwatch.dataset import Dataset

SCREENS: tuple[type[TenderScreen], ...] = (
    BidCV,
    BidSpread,
    LowestGap,
    RelativeDistance,
    BidSkewness,
    BidKurtosis,
    BidUniformity,
    WinnerNearEstimate,
)


@dataclass(frozen=True)
class BidPattern:
    """Taken over all price screens together, the bids look more collusive than those of
    most comparable tenders.

    ## What it flags
    It grades every tender with enough bids by where its bids sit, on average over the price
    screens, among comparable tenders: a composite index, like the corruption risk indices
    of procurement research, rather than a flag. The other screens flag outliers; this one
    ranks the many tenders in between, and its score stays near 0 for ordinary tenders.

    ## Why it is a risk
    Each screen captures one effect of bid rigging on the distribution of bids (lower
    variance, a designated winner apart from clustered cover bids, a winning price near the
    ceiling), and each is noisy in one tender. Cartels move several of them at once, so the
    average position over all screens separates collusive tenders far better than any
    single outlier rule (Huber & Imhof 2019 combine the same screens; this is the
    unsupervised counterpart).

    ## Method
    For every screen (`bid-cv`, `bid-spread`, `lowest-gap`, `relative-distance`,
    `bid-skewness`, `bid-kurtosis`, `bid-uniformity`, and `winner-near-estimate` where
    estimates and winners are known) the tender's mid-rank percentile on the suspicious side
    among comparable tenders (same award rule, category, size band and bid-count band, or
    coarser, as in `bid-cv`; the suspicious side follows the award rule) is taken with each
    screen's default direction. The pattern is the mean of the available percentiles, for
    tenders with at least `min_bids` priced bids and `min_screens` screens. The pattern is
    ranked again among comparable tenders; p is that percentile, and the score is
    p^`sharpness`: the chance that the tender looks more collusive than `sharpness`
    comparable tenders drawn at random (p^4: 0.06 at the median, 0.66 at the 90th
    percentile, 0.96 at the 99th). Every assessed tender with p of at least `report_from`
    gets a finding (by default all of them, so that the whole ranking is graded).

    ## Evidence
    The percentile p among the comparison group, the comparison group, each screen's value
    and percentile, and the bid amounts.

    ## Parameters
    - `min_comparable`: fewest tenders a comparison group needs before it is used.
    - `min_bids`: fewest priced bids a tender needs to be assessed.
    - `min_screens`: fewest screens that must be defined for a tender to be assessed.
    - `sharpness`: exponent k of the score p^k; higher keeps more of the risk for the
      most collusive-looking tenders.
    - `report_from`: lowest percentile p that gets a finding (0: every assessed tender;
      0.9: the top tenth of each comparison group).

    ## Known false positives
    Whole markets whose honest bidding looks like collusion (standardised works priced from
    one schedule, few local bidders) rank only against each other, but a file that mixes
    them with competitive markets in one comparison group puts them on top; give tenders a
    category to separate them. A low score is not evidence of competition, only of bids that
    look like those of most comparable tenders.

    ## References
    - Huber, M. & Imhof, D. (2019). Machine learning with screens for detecting bid-rigging
      cartels. International Journal of Industrial Organization 65.
    - Imhof, D. (2017). Simple statistical screens to detect bid rigging. FSES WP 484.
    - OECD (2018). Summary of the workshop on cartel screening in the digital era.
    """

    min_comparable: int = 30
    min_bids: int = 3
    min_screens: int = 4
    sharpness: int = 4
    report_from: float = 0.0

    name: ClassVar[str] = "bid-pattern"
    subject: ClassVar[SubjectKind] = "tender"
    requires: ClassVar[frozenset[str]] = frozenset({"bids.amount"})
    default_weight: ClassVar[float] = 1.5

    def __post_init__(self) -> None:
        if self.min_comparable < 4:
            raise ValueError(f"min_comparable must be >= 4, got {self.min_comparable}")
        if self.min_bids < 3:
            raise ValueError(f"min_bids must be >= 3, got {self.min_bids}")
        if not 1 <= self.min_screens <= len(SCREENS):
            raise ValueError(f"min_screens must be in 1..{len(SCREENS)}, got {self.min_screens}")
        if self.sharpness < 1:
            raise ValueError(f"sharpness must be >= 1, got {self.sharpness}")
        if not 0 <= self.report_from < 1:
            raise ValueError(f"report_from must be in [0, 1), got {self.report_from}")

    def detect(self, data: Dataset) -> Findings:
        parts = []
        codes = tender_prices(data).select("tender_id").with_row_index("_t")
        for screen_type in SCREENS:
            screen = screen_type(min_comparable=self.min_comparable)
            if data.missing(screen.requires):
                continue
            try:
                frame = screen_frame(screen, data)
            except NotComputable:
                continue
            if "_t" not in frame.columns:
                frame = frame.join(codes, on="tender_id", maintain_order="left")
            parts.append(
                frame.select(
                    "_t",
                    pl.lit(screen.label).alias("screen"),
                    "value",
                    pl.col("_pct").alias("percentile"),
                )
            )
        if not parts:
            raise NotComputable("no tender has enough priced bids for any price screen")
        # Stacked in the order of the screens' labels, which each tender's percentiles are
        # summed in (a sequential sum per tender, as polars sums a group of a few rows).
        parts.sort(key=lambda part: str(part.get_column("screen")[0]) if part.height else "")
        stacked = pl.concat(parts)
        tender = stacked.get_column("_t").to_numpy()
        percentile = stacked.get_column("percentile").to_numpy()
        counts = np.bincount(tender, minlength=codes.height)
        sums = np.bincount(tender, weights=percentile, minlength=codes.height)
        present = np.flatnonzero(counts >= self.min_screens)
        # Each tender's screens by percentile (highest first), then label.
        label = np.repeat(np.arange(len(parts)), [part.height for part in parts])
        order = np.lexsort((label, -percentile, tender))
        listed = (
            stacked[order]
            .with_columns(pl.col("_t").set_sorted())
            .group_by("_t", maintain_order=True)
            .agg(pl.struct("screen", "value", "percentile").alias("screens"))
        )
        pattern = pl.DataFrame(
            {
                "_t": pl.Series(present, dtype=pl.UInt32),
                "_pattern": sums[present] / counts[present],
                "_screens": pl.Series(counts[present], dtype=pl.UInt32),
            }
        ).join(listed, on="_t", how="left", maintain_order="left")
        first = SCREENS[0](min_comparable=self.min_comparable)
        keys = screen_frame(first, data).select(
            "tender_id", "_t", "n", "_rule", "_category", "_size", "_bids"
        )
        keyed = (
            pattern.join(keys, on="_t", maintain_order="left")
            .filter(pl.col("n") >= self.min_bids)
            .drop("_t")
        )
        if keyed.height < self.min_comparable:
            raise NotComputable(
                f"needs at least {self.min_comparable} tenders with {self.min_bids}+ priced bids "
                f"and {self.min_screens} screens, found {keyed.height}; lower `min_comparable`"
            )
        ranked = compare(keyed, "_pattern", self.min_comparable)
        reported = ranked.filter(pl.col("_pct") >= self.report_from)
        reported = reported.join(bid_lists(data, reported), on="tender_id", how="left")
        top = (
            pl.col("screens")
            .list.head(3)
            .list.eval(
                pl.format(
                    "{} {} (p {})",
                    pl.element().struct.field("screen"),
                    sig(pl.element().struct.field("value"), 3),
                    pl.element().struct.field("percentile").round(2),
                )
            )
        )
        return build(
            reported,
            detector=self.name,
            kind="tender",
            subject_id=pl.col("tender_id"),
            score=pl.col("_pct") ** self.sharpness,
            value=pl.col("_pct"),
            threshold=pl.lit(None, dtype=pl.Float64),
            message=pl.format(
                "bids more collusion-like than {}% of {} comparable tenders; strongest: {}",
                (pl.col("_pct") * 100).round(0).cast(pl.Int64),
                pl.col("_count"),
                top.list.join("; "),
            ),
            evidence={
                "percentile": pl.col("_pct"),
                "mean_screen_percentile": pl.col("_pattern"),
                "compared_with": comparison_evidence(),
                "screens": pl.col("screens"),
                "bids": pl.col("amounts"),
            },
            firms=pl.col("bidders"),
            assessed=ranked.get_column("tender_id"),
        )
