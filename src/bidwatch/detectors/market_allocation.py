"""Two firms active in the same market that keep to different buyers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

import numpy as np
import numpy.typing as npt
import polars as pl
from scipy import sparse

from bidwatch.detectors._base import NotComputable, sig
from bidwatch.detectors._pairs import (
    Incidence,
    coded_incidence,
    fdr,
    hypergeom_law,
    market_columns,
    pair_id,
    sum_tails,
)
from bidwatch.findings import Findings, SubjectKind, build
from bidwatch.schema import buyer

if TYPE_CHECKING:
    from bidwatch.dataset import Dataset


def _shared_buyers(at: pl.DataFrame, width: int) -> pl.DataFrame:
    """Per pair of (firm, market) rows _r < _r_b sharing a buyer of that market (``_key``,
    _r * width + _r_b, sorted): x, the buyers both bid for; b_at_a, the second's tenders
    there; a_at_b, the first's.

    With A the 0/1 matrix of rows by (market, buyer) and K its tender counts (each >= 1),
    these are the upper triangles of A A', A K' and K A': sparse products of one pattern,
    rather than a self-join materialising every shared buyer of every pair and grouping it.
    Integer sums: the order of the terms does not matter."""
    schema = {"_key": pl.UInt64, "x": pl.UInt32, "b_at_a": pl.UInt32, "a_at_b": pl.UInt32}
    if at.height == 0:
        return pl.DataFrame(schema=schema)
    _, column = np.unique(at.get_column("_mb").to_numpy(), return_inverse=True)
    row = at.get_column("_r").to_numpy().astype(np.int64)
    shape = (width, int(column.max()) + 1)
    ones = sparse.csr_array((np.ones(row.shape[0], dtype=np.int32), (row, column)), shape=shape)
    counts = at.get_column("k").to_numpy().astype(np.int32)
    tenders = sparse.csr_array((counts, (row, column)), shape=shape)
    values: list[npt.NDArray[np.int32]] = []
    upper = first = second = np.zeros(0, dtype=np.int64)
    # One product at a time, its upper triangle kept: at most one full product in memory.
    for left, right in ((ones, ones), (ones, tenders), (tenders, ones)):
        product = sparse.csr_array(left @ right.T)
        product.sort_indices()
        if not values:
            first = np.repeat(np.arange(width, dtype=np.int64), np.diff(product.indptr))
            upper = product.indices > first
            first, second = first[upper], product.indices[upper].astype(np.int64)
        elif product.nnz != upper.shape[0]:
            raise RuntimeError("market-allocation: shared buyers' products differ in pattern")
        values.append(product.data[upper])
        del product
    key = first.astype(np.uint64) * np.uint64(width) + second.astype(np.uint64)
    return pl.DataFrame(
        [
            pl.Series(name, column_values, dtype=schema[name])
            for name, column_values in zip(schema, [key, *values], strict=True)
        ]
    )


@dataclass(frozen=True)
class MarketAllocation:
    """Two firms both active in a market each keep away from the other's buyers: far
    fewer of their tenders fall at the other's buyers than if each chose its tenders
    independently of the other.

    ## What it flags
    Pairs of firms that each bid in at least `min_tenders` tenders of a market (region and
    category) and that, both ways, bid at the other's buyers less than chance allows, at a
    false discovery rate of `max_q` across all pairs assessed.

    ## Why it is a risk
    Market allocation (划分市场) splits buyers or territories among cartel members: each
    keeps to its own buyers and stays away from the others', so no member ever has to bid
    against another. It needs no cover bids and leaves no trace inside any one tender; it
    shows only across tenders, as firms of one market that never meet at the same buyer
    (OECD 2009 describes market allocation among the forms of bid rigging). Bidders who
    agree that some of them stay out collude under 招标投标法实施条例 art. 39(3); the
    Anti-Monopoly Law art. 17(3) forbids competitors to divide a market.

    ## Method
    A market is the tenders of one region and category (of one region, or one category, when
    only one is given; without either the test is not run: across a whole input firms keep
    to their own towns' buyers by geography). A buyer is the tender's buyer_id,
    else its buyer_name. For a pair A, B and each market c where both have at least
    `min_tenders` tenders (bids of any status): N_c tenders of the market have a bid from a
    known firm, K_c(A) of them are at A's buyers (the buyers A bid for in c), and B bid in
    n_c(B) tenders of c. If B chose its tenders independently of A, the number of B's tenders
    at A's buyers would be hypergeometric (n_c(B) draws from N_c with K_c(A) marked); over
    the pair's markets, the total X(B->A) has the exact law of the convolution of these
    counts, and p(B->A) = P(X <= x) for the x observed. The same with A and B swapped gives
    p(A->B). An allocation keeps both apart, so the pair's p is the larger of the two: a
    firm that keeps to one small buyer is far from everyone else's buyers, but the others'
    tenders seldom fall at its one buyer by chance either, and only both ways together say
    that the two keep out of each other's way. Pairs at or above the expected number either
    way get p = 1. Benjamini-Hochberg across every pair assessed gives q; a pair is flagged
    when q <= `max_q`. Score = 1 - q. Counting tenders rather than buyers gives the test its
    power: a split of 15 buyers between two firms leaves no sign at buyer level (no overlap
    among 5 and 5 of 15 buyers happens 8% of the time), but 20 tenders that all avoid a
    third of the market's tenders do (under 0.1%).

    ## Evidence
    The tenders each firm bid at the other's buyers and the number expected, the buyers
    they share, p both ways, the pair's p and q; per market its tenders, each firm's
    tenders and buyers (ids), the shared buyers and the tenders both bid in.

    ## Parameters
    - `min_tenders`: fewest tenders each firm needs in a market for the pair to be
      assessed there.
    - `max_q`: the false discovery rate: flag pairs whose Benjamini-Hochberg adjusted
      p-value is at most this.
    - `max_pairs`: most pairs of firms active in one market, summed over markets, that
      the detector will test; above it the markets are too coarse to mean anything (and
      the pairs would not fit in memory), and the detector says so instead of running.

    ## Known false positives
    Firms that work near home: the null takes every tender of the market as open to both,
    so two firms from opposite ends of a county, each keeping to its own townships, look
    like a split. Markets coarser than where firms really work, buyers that prequalify or
    keep lists of approved firms, specialists of different kinds of works within one
    category, and firms active in different years (time is not a market) do the same.
    Allocation by region rather than by buyer is out of reach: firms of different regions
    are never compared. Check the members' home towns and years of activity before
    reading a finding as an agreement.

    ## References
    - OECD (2009). Guidelines for fighting bid rigging in public procurement.
    - 中华人民共和国招标投标法实施条例 (2011), art. 39; 中华人民共和国反垄断法 (2022),
      art. 17(3).
    - Benjamini, Y. & Hochberg, Y. (1995). Controlling the false discovery rate. JRSS B 57.
    """

    min_tenders: int = 10
    max_q: float = 0.01
    max_pairs: int = 20_000_000

    name: ClassVar[str] = "market-allocation"
    subject: ClassVar[SubjectKind] = "pair"
    requires: ClassVar[frozenset[str]] = frozenset({"bids.firm_id"})
    # Keeping apart is circumstantial: firms have home towns and specialties.
    default_weight: ClassVar[float] = 0.5

    def __post_init__(self) -> None:
        if self.min_tenders < 1:
            raise ValueError(f"min_tenders must be >= 1, got {self.min_tenders}")
        if not 0 < self.max_q <= 1:
            raise ValueError(f"max_q must be in (0, 1], got {self.max_q}")
        if self.max_pairs < 1:
            raise ValueError(f"max_pairs must be >= 1, got {self.max_pairs}")

    def detect(self, data: Dataset) -> Findings:
        if not (data.has("tenders.buyer_id") or data.has("tenders.buyer_name")):
            raise NotComputable("needs the tenders' buyer (buyer_id or buyer_name)")
        if not market_columns(data):
            raise NotComputable(
                "needs markets (a region or category for tenders): across the whole input, "
                "firms of different towns keep to different buyers by geography"
            )
        found = coded_incidence(data)
        # Buyers get integer codes too, in the order of their names: the pairs of firms
        # active in one market, and the buyers they share, are joins over codes.
        buyers = found.tenders.select("_t", "tender_id").join(
            data.tenders.select("tender_id", buyer().alias("buyer")).unique("tender_id"),
            on="tender_id",
            how="left",
            maintain_order="left",
        )
        buyer_names = buyers.get_column("buyer").drop_nulls().unique().sort()
        coded = buyer_names.to_frame().with_row_index("_b")
        buyers = buyers.join(coded, on="buyer", how="left", maintain_order="left")
        incidence = found.frame.drop_nulls("_m").join(buyers.select("_t", "_b"), on="_t")
        # A tender has one market and one buyer: the tenders of a market, and of a buyer in
        # it, are counted over the tenders (``buyers`` is row for row with found.tenders),
        # not over their bids.
        per_tender = pl.DataFrame(
            [found.tenders.get_column("_m"), buyers.get_column("_b")]
        ).drop_nulls("_m")
        sizes = per_tender.group_by("_m").agg(pl.len().alias("N"))
        load = per_tender.drop_nulls("_b").group_by("_m", "_b").agg(pl.len().alias("load"))
        # Each firm's tenders per market and buyer (null: tenders without one), in one pass
        # over the bids; its tenders and buyers per market follow from these.
        per_buyer = incidence.group_by("_f", "_m", "_b").agg(pl.len().alias("k"))
        active = (
            per_buyer.group_by("_f", "_m")
            .agg(
                pl.col("k").sum().cast(pl.UInt32).alias("n"),
                pl.col("_b").is_not_null().sum().cast(pl.UInt32).alias("a"),
            )
            .filter((pl.col("n") >= self.min_tenders) & (pl.col("a") > 0))
        )
        # A firm's buyers in a market, with its tenders at each and the market's.
        spread = (
            per_buyer.drop_nulls("_b")
            .join(active.select("_f", "_m"), on=["_f", "_m"], how="semi")
            .join(load, on=["_m", "_b"])
        )
        # Each (firm, market) of the test gets a row number _r, in the order of firm then
        # market, so that a pair within a market is the one 64-bit key _r * width + _r_b.
        active = (
            active.join(
                spread.group_by("_f", "_m").agg(pl.col("load").sum().alias("K")), on=["_f", "_m"]
            )
            .sort("_f", "_m")
            .with_row_index("_r")
        )
        width = active.height
        per_market = active.group_by("_m").agg(pl.len().alias("firms"))
        pairs_to_test = int(
            per_market.select((pl.col("firms") * (pl.col("firms") - 1) // 2).sum()).item()
        )
        if pairs_to_test > self.max_pairs:
            raise NotComputable(
                f"{pairs_to_test:,} pairs of firms share a market, above max_pairs "
                f"({self.max_pairs:,}): the markets are too coarse for this test; give "
                "tenders a region and a category, or raise min_tenders"
            )
        pair_key = (pl.col("_r").cast(pl.UInt64) * width + pl.col("_r_b")).alias("_key")
        cells = (
            active.join(active, on="_m", suffix="_b")
            .filter(pl.col("_f") < pl.col("_f_b"))
            .join(sizes, on="_m")
            .rename({"a_b": "b"})
            .with_columns(pair_key)
        )
        if cells.height == 0:
            return Findings.empty()
        # At the buyers both bid for: how many, B's tenders there (all at A's buyers) and
        # A's (all at B's). A (market, buyer) is one 64-bit key too.
        at = spread.join(active.select("_f", "_m", "_r"), on=["_f", "_m"]).select(
            (pl.col("_m").cast(pl.UInt64) * buyer_names.len() + pl.col("_b")).alias("_mb"),
            "_r",
            "k",
        )
        shared = _shared_buyers(at, width)
        cells = (
            cells.join(shared, on="_key", how="left")
            .with_columns(
                pl.col("x", "b_at_a", "a_at_b").fill_null(0),
                (pl.col("_f").cast(pl.UInt64) * found.firms.len() + pl.col("_f_b")).alias("_p"),
            )
            .sort("_p", "_m")
            .with_columns(
                pl.col("_p").rle_id().cast(pl.Int64).alias("_s"),
                (pl.col("n_b") * pl.col("K") / pl.col("N")).alias("e_b_at_a"),
                (pl.col("n") * pl.col("K_b") / pl.col("N")).alias("e_a_at_b"),
            )
        )
        names = found.firms.to_frame().with_row_index("_f")
        pairs = (
            cells.group_by("_s", maintain_order=True)
            .agg(
                pl.col("_f", "_f_b").first(),
                pl.col("x", "b_at_a", "a_at_b", "e_b_at_a", "e_a_at_b").sum(),
            )
            .join(names, on="_f")
            .join(names.rename({"_f": "_f_b", "firm_id": "firm_b"}), on="_f_b")
            .rename({"firm_id": "firm_a"})
            .sort("_s")
        )
        subject = cells.get_column("_s").to_numpy()
        total = cells.get_column("N").cast(pl.Int64).to_numpy()
        # Only pairs below expectation both ways can be kept apart; the rest keep p = 1.
        apart = np.flatnonzero(
            (pairs.get_column("b_at_a") < pairs.get_column("e_b_at_a")).to_numpy()
            & (pairs.get_column("a_at_b") < pairs.get_column("e_a_at_b")).to_numpy()
        )
        one_way = []
        for observed, marked, draws in (("b_at_a", "K", "n_b"), ("a_at_b", "K_b", "n")):
            k, d = (cells.get_column(c).cast(pl.Int64).to_numpy() for c in (marked, draws))
            x = pairs.get_column(observed).cast(pl.Int64).to_numpy()
            p = np.ones(x.shape[0])
            rows = np.isin(subject, apart)
            remap = np.full(x.shape[0], -1, dtype=np.int64)
            remap[apart] = np.arange(apart.shape[0])
            ((low, _),) = sum_tails(
                remap[subject[rows]],
                np.minimum(k, d)[rows],
                hypergeom_law(total[rows], k[rows], d[rows]),
                cap=x[apart] + 1,
                thresholds=[x[apart] + 1],
                lower_only=True,
            )
            p[apart] = low
            one_way.append(p)
        p_b_at_a, p_a_at_b = one_way
        p = np.maximum(p_b_at_a, p_a_at_b)
        assessed = pairs.with_columns(
            pl.Series("p_b_at_a", p_b_at_a),
            pl.Series("p_a_at_b", p_a_at_b),
            pl.Series("p", p),
            pl.Series("q", fdr(p)),
            pair_id().alias("pair"),
        )
        flagged = assessed.filter(pl.col("q") <= self.max_q)
        flagged = flagged.join(self._details(flagged, cells, incidence, found, buyers), on="_s")
        return build(
            flagged,
            detector=self.name,
            kind="pair",
            subject_id=pl.col("pair"),
            score=1 - pl.col("q"),
            value=pl.col("q"),
            threshold=pl.lit(self.max_q),
            message=pl.format(
                "{} and {} keep to their own buyers in {}: {} bid {} times at {}'s buyers "
                "({} expected), {} {} times at {}'s ({} expected); they share {} of their {} "
                "and {} buyers; q = {} <= {}",
                "firm_a",
                "firm_b",
                "where",
                "firm_b",
                "b_at_a",
                "firm_a",
                sig(pl.col("e_b_at_a"), 2),
                "firm_a",
                "a_at_b",
                "firm_b",
                sig(pl.col("e_a_at_b"), 2),
                "x",
                "buyers_a",
                "buyers_b",
                sig(pl.col("q"), 2),
                pl.lit(self.max_q),
            ),
            evidence={
                "b_at_a": pl.col("b_at_a"),
                "expected_b_at_a": pl.col("e_b_at_a"),
                "a_at_b": pl.col("a_at_b"),
                "expected_a_at_b": pl.col("e_a_at_b"),
                "shared_buyers": pl.col("x"),
                "p_b_at_a": pl.col("p_b_at_a"),
                "p_a_at_b": pl.col("p_a_at_b"),
                "p": pl.col("p"),
                "q": pl.col("q"),
                "markets": pl.col("markets"),
            },
            firms=pl.concat_list("firm_a", "firm_b"),
            assessed=assessed.get_column("pair"),
        )

    @staticmethod
    def _details(
        flagged: pl.DataFrame,
        cells: pl.DataFrame,
        incidence: pl.DataFrame,
        found: Incidence,
        buyers: pl.DataFrame,
    ) -> pl.DataFrame:
        """Per flagged pair: each market with the firms' buyers and the tenders both bid in."""
        rows = cells.join(flagged.select("_s"), on="_s")
        where = found.tenders.select("_m", "market").drop_nulls("_m").unique("_m")
        bought = (
            incidence.drop_nulls("_b")
            .join(
                rows.select(pl.concat_list("_f", "_f_b").alias("_f"), "_m").explode("_f"),
                on=["_f", "_m"],
                how="semi",
            )
            .join(buyers.select("_t", "buyer"), on="_t")
            .group_by("_f", "_m")
            .agg(pl.col("buyer").unique().sort().alias("buyers"))
        )
        together = (
            rows.select("_s", "_f", "_f_b", "_m")
            .join(incidence.select("_f", "_m", "_t"), on=["_f", "_m"])
            .join(
                incidence.select("_f", "_t"),
                left_on=["_f_b", "_t"],
                right_on=["_f", "_t"],
                how="semi",
            )
            .join(found.tenders.select("_t", "tender_id"), on="_t")
            .group_by("_s", "_m")
            .agg(pl.col("tender_id").sort().alias("together"))
        )
        return (
            rows.join(together, on=["_s", "_m"], how="left")
            .join(where, on="_m")
            .join(bought, on=["_f", "_m"])
            .join(bought.rename({"_f": "_f_b", "buyers": "buyers_b"}), on=["_f_b", "_m"])
            .sort("_s", "_m")
            .group_by("_s", maintain_order=True)
            .agg(
                pl.struct(
                    "market",
                    pl.col("N").alias("tenders"),
                    pl.col("n").alias("tenders_a"),
                    pl.col("n_b").alias("tenders_b"),
                    pl.col("buyers").alias("buyers_a"),
                    pl.col("buyers_b"),
                    pl.col("x").alias("shared"),
                    pl.col("K").alias("tenders_at_a_buyers"),
                    pl.col("K_b").alias("tenders_at_b_buyers"),
                    pl.col("b_at_a"),
                    pl.col("e_b_at_a").alias("expected_b_at_a"),
                    pl.col("a_at_b"),
                    pl.col("e_a_at_b").alias("expected_a_at_b"),
                    pl.col("together").fill_null([]),
                ).alias("markets"),
                pl.col("a").sum().alias("buyers_a"),
                pl.col("b").sum().alias("buyers_b"),
                pl.col("market").str.join(", ").alias("where"),
            )
        )
