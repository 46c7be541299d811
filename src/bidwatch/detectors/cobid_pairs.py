"""Two firms that bid together far more often than their activity explains."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

import numpy as np
import numpy.typing as npt
import polars as pl

from bidwatch.detectors._base import sig
from bidwatch.detectors._pairs import (
    Incidence,
    bid_codes,
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


def _cells(
    found: Incidence, first: npt.NDArray[np.uint32], second: npt.NDArray[np.uint32]
) -> pl.DataFrame:
    """One row per pair _s (the pairs of firms ``first`` and ``second``, numbered in their
    order) and market _m both bid in, sorted by pair then market: each firm's tenders
    there (a, b) and the market's N (its tenders with a resolved bid: nobody could be
    drawn to the others).

    Each firm's (firm, market) counts are one sorted run of 64-bit keys: a pair's cells are
    the markets of the firm active in fewer, looked up among the other's, in numpy rather
    than two many-to-many joins and a sort of their result."""
    frame = found.frame.drop_nulls("_m")
    markets = int(found.tenders.get_column("_m").drop_nulls().to_numpy().max(initial=0)) + 1
    key = frame.get_column("_f").cast(pl.UInt64).to_numpy() * np.uint64(markets)
    key += frame.get_column("_m").cast(pl.UInt64).to_numpy()
    keys, counts = np.unique(key, return_counts=True)
    firm = (keys // np.uint64(markets)).astype(np.int64)
    market = (keys % np.uint64(markets)).astype(np.int64)
    size = np.bincount(
        frame.get_column("_m").to_numpy()[_first_of_tender(frame)], minlength=markets
    )
    # Each firm's run of keys: offsets[f] to offsets[f + 1].
    offsets = np.searchsorted(firm, np.arange(found.firms.len() + 1))
    lo_a, lo_b = offsets[first], offsets[second]
    span_a = offsets[first.astype(np.int64) + 1] - lo_a
    span_b = offsets[second.astype(np.int64) + 1] - lo_b
    few_a = span_a <= span_b
    lo, span = np.where(few_a, lo_a, lo_b), np.where(few_a, span_a, span_b)
    many = np.where(few_a, second, first).astype(np.uint64)
    pair = np.repeat(np.arange(first.shape[0]), span)
    # Row of each (pair, market of its fewer-market firm) among the keys: lo plus its rank
    # in the run; a run is in market order, so the cells come out sorted.
    row = np.arange(pair.shape[0]) - np.repeat(np.cumsum(span) - span, span) + lo[pair]
    wanted = many[pair] * np.uint64(markets) + keys[row] % np.uint64(markets)
    other = np.minimum(np.searchsorted(keys, wanted), max(keys.shape[0] - 1, 0))
    both = np.flatnonzero(keys[other] == wanted)
    pair, row, other = pair[both], row[both], other[both]
    swap = ~few_a[pair]
    row_a, row_b = np.where(swap, other, row), np.where(swap, row, other)
    return pl.DataFrame(
        {
            "_s": pl.Series(pair, dtype=pl.UInt32),
            "_fa": pl.Series(first[pair], dtype=pl.UInt32),
            "_fb": pl.Series(second[pair], dtype=pl.UInt32),
            "_m": pl.Series(market[row], dtype=pl.UInt32),
            "a": pl.Series(counts[row_a], dtype=pl.UInt32),
            "b": pl.Series(counts[row_b], dtype=pl.UInt32),
            "N": pl.Series(size[market[row]], dtype=pl.UInt32),
        }
    )


def _wins(found: Incidence, data: Dataset) -> pl.DataFrame:
    """Distinct (_t, _f) of the winning bids of resolved firms, on the incidence's codes:
    the bids' shared codes carried over, with no join on tender or firm names."""
    if found.tender_code is None or found.firm_code is None:
        raise ValueError("cobid-pairs: the incidence must be built by coded_incidence(data)")
    won = data.bids.get_column("is_winner").fill_null(False)
    picked = bid_codes(data).frame.filter(won).drop_nulls()
    tender = found.tender_code[picked.get_column("_t").to_numpy()]
    firm = found.firm_code[picked.get_column("_f").to_numpy()]
    return pl.DataFrame(
        {"_t": pl.Series(tender, dtype=pl.UInt32), "_f": pl.Series(firm, dtype=pl.UInt32)}
    ).unique()


def _first_of_tender(frame: pl.DataFrame) -> npt.NDArray[np.bool_]:
    """The first row of each tender's run in the incidence (sorted by tender)."""
    tender = frame.get_column("_t").to_numpy()
    return np.concatenate([[True], tender[1:] != tender[:-1]])[: tender.shape[0]]


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
        cells = _cells(found, first.to_numpy(), second.to_numpy())
        subject = cells.get_column("_s").cast(pl.Int64).to_numpy()
        total, a, b = (cells.get_column(c).cast(pl.Int64).to_numpy() for c in ("N", "a", "b"))
        k = candidates.get_column("k").cast(pl.Int64).to_numpy()
        (_, p), (_, reach) = sum_tails(
            subject,
            np.minimum(a, b),
            hypergeom_law(total, a, b),
            cap=k,
            thresholds=[k, np.full_like(k, self.min_cobids)],
            upper_only=True,
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
        flagged = flagged.join(self._details(flagged, cells, found, data), on="_s")
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
        flagged: pl.DataFrame, cells: pl.DataFrame, found: Incidence, data: Dataset
    ) -> pl.DataFrame:
        """Per flagged pair: markets with their counts, the shared tenders and wins."""
        codes = found.frame
        pairs = flagged.select("_s", "_fa", "_fb")
        wins = _wins(found, data).with_columns(pl.lit(1).alias("_won"))
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
