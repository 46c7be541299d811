"""Two firms that bid together far more often than their activity explains."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

import numpy as np
import polars as pl

from bidwatch.detectors._base import sig
from bidwatch.detectors._pairs import (
    Incidence,
    cobid_counts,
    coded_incidence,
    fdr,
    hypergeom_law,
    market_notes,
    pair_id,
    sum_tails,
)
from bidwatch.findings import Findings, SubjectKind, build

if TYPE_CHECKING:
    from bidwatch.dataset import Dataset


@dataclass(frozen=True)
class CobidPairs:
    """Two firms bid in the same tenders far more often than chance, given how many tenders
    of their market each of them bids in.

    ## What it flags
    Pairs of firms that bid together in at least `min_cobids` tenders, and more often than
    the number of tenders each bids in would give by chance within the markets where both
    bid, at a false discovery rate of `max_q` across all pairs tested.

    ## Why it is a risk
    Cover bidding and bid rotation (陪标, 轮流坐庄) need the ring's firms in the same
    tenders: the covers turn up wherever the designated winner bids, which is how bidders
    agree on the winner (招标投标法实施条例 art. 39(2)). OECD (2009) counts patterns of
    who bids with whom among the signs of bid rigging, and co-bidding networks single out
    cartels in auction data (Wachs & Kertész 2019). Firms that compete honestly meet as
    often as their activity makes them meet.

    ## Method
    A market is the tenders of one region and category (of one region, or one category, when
    only one is given; the whole input when neither is). For a pair A, B and each market c
    where both bid: N_c tenders with a bid from a known firm, A bids in a_c of them, B in
    b_c. If each firm's tenders were a random subset of its market's tenders, independent of
    the other firm's, the tenders both bid in would be hypergeometric in each market (a_c
    draws from N_c with b_c marked), and their total K over the pair's markets the sum of
    these independent counts: its exact distribution is their convolution. Bids of every
    status count (a disqualified cover bid still shows who came). The pair's p-value is
    P(K >= k) for the k tenders it bid in together. Only pairs with k >= `min_cobids` are
    tested, and the test is conditioned on that selection: p_sel = P(K >= k) /
    P(K >= `min_cobids`) is uniform among tested pairs when the null holds, so that the
    Benjamini-Hochberg procedure across the tested pairs keeps the expected share of false
    discoveries at `max_q`. A pair is flagged when its adjusted p-value q <= `max_q`.
    Expected co-bids: sum a_c b_c / N_c. Score = 1 - q, the confidence that the pair does
    not meet by chance; with the default `max_q` every flagged pair scores at least 0.99.

    ## Evidence
    Co-bids, the expected number, p, p_sel and q; per market the tenders, each firm's bids,
    the co-bids and the expected co-bids; the tenders bid together and how many of them
    each firm won.

    ## Parameters
    - `min_cobids`: fewest tenders two firms must have bid in together to be tested.
    - `max_q`: the false discovery rate: flag pairs whose Benjamini-Hochberg adjusted
      p-value is at most this.

    ## Known false positives
    Firms that both favour large tenders, which draw many bidders (the null treats every
    tender of a market alike, so busy firms in a market of mixed sizes meet somewhat more
    than expected); specialists of a niche within one category (bridge maintenance within
    "bridge"); firms that enter or leave the market at the same time (time is not a
    market); parent and subsidiary, or members of one group (which art. 34 of the
    implementing regulations also bars from one tender); with neither region nor category
    in the input, firms of one town compared with the whole country.

    ## References
    - 中华人民共和国招标投标法实施条例 (2011), art. 39.
    - OECD (2009). Guidelines for fighting bid rigging in public procurement.
    - Wachs, J. & Kertész, J. (2019). A network approach to cartel detection in public
      auction markets. Scientific Reports 9, 10818.
    - Benjamini, Y. & Hochberg, Y. (1995). Controlling the false discovery rate. JRSS B 57.
    - Fithian, W., Sun, D. & Taylor, J. (2014). Optimal inference after model selection.
      arXiv:1410.2597 (tests conditional on the selection event).
    """

    min_cobids: int = 3
    max_q: float = 0.01

    name: ClassVar[str] = "cobid-pairs"
    subject: ClassVar[SubjectKind] = "pair"
    requires: ClassVar[frozenset[str]] = frozenset({"bids.firm_id"})
    # Meeting often is circumstantial: niche markets and firm groups meet often too.
    default_weight: ClassVar[float] = 0.5

    def __post_init__(self) -> None:
        if self.min_cobids < 2:
            raise ValueError(f"min_cobids must be >= 2, got {self.min_cobids}")
        if not 0 < self.max_q <= 1:
            raise ValueError(f"max_q must be in (0, 1], got {self.max_q}")

    def detect(self, data: Dataset) -> Findings:
        found = coded_incidence(data)
        codes = found.frame
        width = found.firms.len()
        counted = cobid_counts(found, self.min_cobids)
        if counted.height == 0:
            return Findings.empty()
        pair_key = counted.get_column("_key")
        first, second = (pair_key // width).cast(pl.UInt32), (pair_key % width).cast(pl.UInt32)
        candidates = pl.DataFrame(
            {
                "_fa": first,
                "_fb": second,
                "firm_a": found.firms.gather(first),
                "firm_b": found.firms.gather(second),
                "k": counted.get_column("k"),
            }
        ).with_row_index("_s")
        # A market's tenders are those with a resolved bid: nobody could be drawn to the others.
        size = codes.group_by("_m").agg(pl.col("_t").n_unique().alias("N"))
        active = codes.group_by("_f", "_m").agg(pl.len().alias("n"))
        cells = (
            candidates.select("_s", "_fa", "_fb")
            .join(active, left_on="_fa", right_on="_f")
            .join(active, left_on=["_fb", "_m"], right_on=["_f", "_m"])
            .rename({"n": "a", "n_right": "b"})
            .join(size, on="_m")
            .sort("_s", "_m")
        )
        subject = cells.get_column("_s").cast(pl.Int64).to_numpy()
        total, a, b = (cells.get_column(c).cast(pl.Int64).to_numpy() for c in ("N", "a", "b"))
        k = candidates.get_column("k").cast(pl.Int64).to_numpy()
        (_, p), (_, reach) = sum_tails(
            subject,
            np.minimum(a, b),
            hypergeom_law(total, a, b),
            cap=k,
            thresholds=[k, np.full_like(k, self.min_cobids)],
        )
        selected = np.clip(np.divide(p, reach, out=p.copy(), where=reach > 0), 0.0, 1.0)
        expected = np.bincount(subject, weights=a * b / total, minlength=k.shape[0])
        tested = candidates.with_columns(
            pl.Series("p", p),
            pl.Series("p_sel", selected),
            pl.Series("q", fdr(selected)),
            pl.Series("expected", expected),
            pair_id().alias("pair"),
        )
        flagged = tested.filter(pl.col("q") <= self.max_q)
        flagged = flagged.join(self._details(flagged, cells, found, data.bids), on="_s")
        return build(
            flagged,
            detector=self.name,
            kind="pair",
            subject_id=pl.col("pair"),
            score=1 - pl.col("q"),
            value=pl.col("q"),
            threshold=pl.lit(self.max_q),
            message=pl.format(
                "{} and {} bid together in {} tenders, {} expected from their {} and {} bids "
                "among {} tenders of their markets; q = {} <= {}",
                "firm_a",
                "firm_b",
                "k",
                sig(pl.col("expected"), 2),
                "bids_a",
                "bids_b",
                "market_tenders",
                sig(pl.col("q"), 2),
                pl.lit(self.max_q),
            ),
            evidence={
                "cobids": pl.col("k"),
                "expected": pl.col("expected"),
                "p": pl.col("p"),
                "p_selected": pl.col("p_sel"),
                "q": pl.col("q"),
                "markets": pl.col("markets"),
                "tenders": pl.col("tenders"),
                "won_by": pl.struct(
                    pl.col("wins_a").alias("firm_a"), pl.col("wins_b").alias("firm_b")
                ),
            },
            firms=pl.concat_list("firm_a", "firm_b"),
            assessed=tested.get_column("pair"),
            notes=market_notes(data),
        )

    @staticmethod
    def _details(
        flagged: pl.DataFrame, cells: pl.DataFrame, found: Incidence, bids: pl.DataFrame
    ) -> pl.DataFrame:
        """Per flagged pair: markets with their counts, the shared tenders and wins."""
        codes = found.frame
        pairs = flagged.select("_s", "_fa", "_fb")
        wins = (
            bids.filter(pl.col("is_winner").fill_null(False))
            .select("tender_id", "firm_id")
            .join(found.tenders.select("tender_id", "_t"), on="tender_id")
            .join(found.firms.to_frame().with_row_index("_f"), on="firm_id")
            .select("_t", "_f")
            .unique()
            .with_columns(pl.lit(1).alias("_won"))
        )
        together = (
            pairs.join(codes, left_on="_fa", right_on="_f")
            .join(
                codes.select("_t", "_f"),
                left_on=["_fb", "_t"],
                right_on=["_f", "_t"],
                how="semi",
            )
            .join(wins, left_on=["_fa", "_t"], right_on=["_f", "_t"], how="left")
            .join(wins, left_on=["_fb", "_t"], right_on=["_f", "_t"], how="left", suffix="_b")
        )
        per_market = together.group_by("_s", "_m").agg(pl.len().alias("together"))
        labels = found.tenders.select("_m", "market").drop_nulls("_m").unique("_m")
        markets = (
            cells.join(pairs.select("_s"), on="_s")
            .join(per_market, on=["_s", "_m"], how="left")
            .join(labels, on="_m")
            .sort("_s", "_m")
            .group_by("_s", maintain_order=True)
            .agg(
                pl.struct(
                    "market",
                    pl.col("N").alias("tenders"),
                    pl.col("a").alias("bids_a"),
                    pl.col("b").alias("bids_b"),
                    pl.col("together").fill_null(0),
                    (pl.col("a") * pl.col("b") / pl.col("N")).alias("expected"),
                ).alias("markets"),
                pl.col("N").sum().alias("market_tenders"),
                pl.col("a").sum().alias("bids_a"),
                pl.col("b").sum().alias("bids_b"),
            )
        )
        shared = (
            together.join(found.tenders.select("_t", "tender_id"), on="_t")
            .group_by("_s")
            .agg(
                pl.col("tender_id").sort().alias("tenders"),
                pl.col("_won").sum().alias("wins_a"),
                pl.col("_won_b").sum().alias("wins_b"),
            )
        )
        return markets.join(shared, on="_s")
