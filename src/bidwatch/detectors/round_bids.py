"""Round-number bids: covers written to round figures instead of priced."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

import numpy as np
import numpy.typing as npt
import polars as pl

from bidwatch.detectors._base import NotComputable, sig
from bidwatch.detectors._pairs import binom_law, sum_tails
from bidwatch.detectors._stats import rounding_unit
from bidwatch.findings import Findings, SubjectKind, build

if TYPE_CHECKING:
    from bidwatch.dataset import Dataset

# Powers of ten, in cents, an amount can be written to (as ``rounding_unit`` counts them).
_UNITS = 13


def _labels(text: pl.Series) -> npt.NDArray[np.int64]:
    """1, 2, ... for the distinct values of ``text``, 0 for null."""
    values = text.unique().drop_nulls()
    if values.len() == 0:
        return np.zeros(text.len(), dtype=np.int64)
    codes = text.cast(pl.Enum(values)).to_physical().cast(pl.Int64) + 1
    return np.asarray(codes.fill_null(0).to_numpy(), dtype=np.int64)


@dataclass(frozen=True)
class RoundBids:
    """A tender's bids are written to round numbers far more often than their bidders write
    them elsewhere.

    ## What it flags
    Tenders with at least `min_round` round bids (an amount of at most `max_significant`
    significant digits: 1,230,000 has three, 1,234,567.89 has nine) when so many round bids
    are unlikely given how often each of its bidders writes round amounts in its other
    tenders (chance below `max_chance`).

    ## Why it is a risk
    A bidder who prices the works from the bill of quantities ends on an odd figure. A
    cover bid (陪标) is only meant to lose (OECD 2009: "cover bidding"), so nothing makes its
    author price it: covers are often written as round figures, or handed out as round
    figures by the ring. Several round bids beside one priced bid in a tender where bidders
    elsewhere price to the yuan are that habit. Coinciding amounts are the stronger trace
    (招标投标法实施条例 art. 40(4), see `identical-bids` and `regular-differences`); this
    detector catches the looser one.

    ## Method
    Every bid with an amount counts, whatever its status (a disqualified cover still shows
    how it was written), except bids equal to the tender's estimate (a fixed-price or
    ceiling bid is not priced at all). An amount in cents is round when the amount divided
    by its rounding unit (the power of ten it is written to, as `identical-bids` measures
    it) has at most `max_significant` digits, so roundness is relative to the size of the
    bid. Rounding is a habit: some firms, and some whole markets, write every bid to the
    ten thousand yuan, and whether such a bid is round depends on its size (7,450,000 has
    three significant digits, 74,500,000 the same unit but for a 100,000-yuan step). So a
    bid written to 10^z is round at a size that needs 10^t with chance min(1, 10^(z - t)),
    and each bid's chance of being round is the mean of that over its firm's winning bids
    in its other tenders, with `prior_bids` pseudo-bids drawn like the whole input's (the
    input's alone for a bid of no known firm, or when no winner is recorded). Winning bids,
    because a firm had to price those: a cover rounds the bids it means to lose, and its
    losing bids would teach the test that habit. A tender with k round bids has
    chance = P(K >= k), K the sum of its bids' independent chances (the exact
    Poisson-binomial tail). A cover written to a round figure by a firm that prices its own
    bids stands out; a firm that always rounds does not. Score = 1 - chance. Tenders with
    at least `min_round` counted bids are assessed.

    ## Evidence
    The round bids, every counted bid of the tender, the number of round bids and the
    number expected from the bidders' habits, the share p of round bids in the input and
    the chance.

    ## Parameters
    - `max_significant`: an amount with at most this many significant digits is round.
    - `min_round`: fewest round bids a tender needs to be flagged (one round bid is no
      pattern).
    - `max_chance`: flag when so many round bids are less likely than this given the
      bidders' habits. Each tender is tested once, so about this share of honest tenders
      is flagged by chance.
    - `prior_bids`: weight of the input's share in a firm's habit, in bids: a firm with few
      other bids is taken to round about as often as everyone.

    ## Known false positives
    Small works priced in units of 10,000 yuan (万元) by custom, tenders where the buyer asks
    for round lump sums, and inputs whose amounts were rounded by the publisher (an award
    notice that gives 123.4万元); firms that seldom win, whose habit is not yet known.
    Rounding imposed by one buyer or one tender (all bidders round there, and nowhere
    else) is not a firm's habit and is flagged; it clusters by buyer: compare with the
    tender's other findings.

    ## References
    - OECD (2009). Guidelines for fighting bid rigging in public procurement.
    - 中华人民共和国招标投标法实施条例 (2011, rev. 2019), art. 40.
    """

    max_significant: int = 3
    min_round: int = 2
    max_chance: float = 0.01
    prior_bids: float = 10.0

    name: ClassVar[str] = "round-bids"
    subject: ClassVar[SubjectKind] = "tender"
    requires: ClassVar[frozenset[str]] = frozenset({"bids.amount"})
    # A habit more than a proof: round amounts have innocent causes, unlike identical ones.
    default_weight: ClassVar[float] = 1.0

    def __post_init__(self) -> None:
        if not 1 <= self.max_significant <= 12:
            raise ValueError(f"max_significant must be in 1..12, got {self.max_significant}")
        if self.min_round < 1:
            raise ValueError(f"min_round must be >= 1, got {self.min_round}")
        if not 0 < self.max_chance <= 1:
            raise ValueError(f"max_chance must be in (0, 1], got {self.max_chance}")
        if self.prior_bids <= 0:
            raise ValueError(f"prior_bids must be > 0, got {self.prior_bids}")

    def _chances(self, bids: pl.DataFrame) -> npt.NDArray[np.float64]:
        """Each bid's chance of being round at its size, from its firm's winning bids in
        other tenders.

        A bid written to 10^z is round at a size that needs 10^t with chance
        min(1, 10^(z - t)): the digits between are as likely zero as anything. The firm's
        winning bids in other tenders, and ``prior_bids`` bids drawn like the input's, give
        the mix of z; a bid of no known firm takes the input's.
        """
        z = bids.get_column("_z").to_numpy()
        t = bids.get_column("_t").to_numpy()
        levels = np.arange(_UNITS)
        reach = np.minimum(1.0, 10.0 ** (levels[:, None] - levels[None, :]))  # [z, t]
        everyone = np.bincount(z, minlength=_UNITS) / z.shape[0] @ reach
        known = bids.get_column("who").is_not_null().to_numpy()
        won = known & bids.get_column("_won").to_numpy()
        # Firms, and (firm, tender) cells, as integer labels (0 for no firm): any labelling
        # gives the same sums, and coding by hash is cheaper than ranking the text.
        firm = _labels(bids.get_column("who"))
        tender = _labels(bids.get_column("tender_id"))
        # (firm, tender) cells as one integer; only cells with a winning bid get a row of
        # counts (a bid of another cell subtracts nothing): a few rows, not one per bid.
        cell_key = firm * (int(tender.max()) + 1) + tender
        won_cells, won_cell = np.unique(cell_key[won], return_inverse=True)
        firms = int(firm.max()) + 1
        by_firm = (
            np.bincount(firm[won] * _UNITS + z[won], minlength=firms * _UNITS)
            .reshape(firms, _UNITS)
            .astype(np.float64)
        )
        by_cell = (
            np.bincount(won_cell.ravel() * _UNITS + z[won], minlength=won_cells.shape[0] * _UNITS)
            .reshape(won_cells.shape[0], _UNITS)
            .astype(np.float64)
        )
        mine = (by_firm @ reach)[firm, t]
        count = by_firm.sum(axis=1)[firm]
        if won_cells.shape[0]:
            at = np.minimum(np.searchsorted(won_cells, cell_key), won_cells.shape[0] - 1)
            has = won_cells[at] == cell_key
            mine = mine - np.where(has, (by_cell @ reach)[at, t], 0.0)
            count = count - np.where(has, by_cell.sum(axis=1)[at], 0.0)
        habit = (mine + self.prior_bids * everyone[t]) / (count + self.prior_bids)
        return np.asarray(np.where(known, habit, everyone[t]), dtype=np.float64)

    def detect(self, data: Dataset) -> Findings:
        firm = pl.col("firm_id") if "firm_id" in data.bids.columns else pl.lit(None, pl.String)
        cents = (pl.col("amount") * 100).round().cast(pl.Int64)
        estimate = (pl.col("estimate") * 100).round().cast(pl.Int64)
        bids = (
            data.bids.lazy()
            .filter(pl.col("amount").is_not_null())
            .select(
                "tender_id",
                "amount",
                firm.alias("who"),
                cents.alias("_cents"),
                pl.col("is_winner").fill_null(False).alias("_won"),
            )
            .collect()
            .join(data.tenders.select("tender_id", "estimate"), on="tender_id", how="left")
            .filter(pl.col("estimate").is_null() | (estimate != pl.col("_cents")))
        )
        if bids.height == 0:
            raise NotComputable("no bid with an amount other than the tender's estimate")
        # z: the power of ten a bid is written to; t: the power it must be written to for
        # its size to be round (1,234,567.89 has 9 digits in cents: round at 10^6 cents).
        zeros = (rounding_unit(pl.col("_cents")).log10().round().cast(pl.Int64)).alias("_z")
        digits = pl.col("_cents").abs().cast(pl.String).str.len_chars().cast(pl.Int64)
        bids = bids.with_columns(
            zeros, (digits - self.max_significant).clip(0, _UNITS - 1).alias("_t")
        ).with_columns((pl.col("_z") >= pl.col("_t")).alias("_round"))
        share = bids.get_column("_round").sum() / bids.height
        rnd = pl.col("_round")
        # Sorted, so that every sum below adds up in one order whatever the input's.
        bids = bids.sort("tender_id", "who", "_cents", nulls_last=True)
        bids = bids.with_columns(pl.Series("_p", self._chances(bids)))
        per_tender = (
            bids.group_by("tender_id")
            .agg(pl.len().alias("n"), rnd.sum().alias("k"), pl.col("_p").sum().alias("expected"))
            .filter(pl.col("n") >= self.min_round)
        )
        assessed = per_tender.get_column("tender_id")
        flagged = per_tender.filter(
            (pl.col("k") >= self.min_round) & (pl.col("k") > pl.col("expected"))
        ).sort("tender_id")
        units = (
            bids.join(flagged.select("tender_id").with_row_index("_s"), on="tender_id")
            .sort("_s", "_p")
            .select(pl.col("_s").cast(pl.Int64), "_p")
        )
        k = flagged.get_column("k").cast(pl.Int64).to_numpy()
        ((_, chance),) = sum_tails(
            units.get_column("_s").to_numpy(),
            np.ones(units.height, dtype=np.int64),
            binom_law(np.ones(units.height, dtype=np.int64), units.get_column("_p").to_numpy()),
            cap=k,
            thresholds=[k],
        )
        flagged = flagged.with_columns(
            pl.Series("chance", chance, dtype=pl.Float64).clip(0.0, 1.0)
        ).filter(pl.col("chance") <= self.max_chance)
        # The bids behind each finding, gathered for the flagged tenders only.
        detail = (
            bids.join(flagged.select("tender_id"), on="tender_id", how="semi")
            .sort("tender_id", "amount", "who", nulls_last=True)
            .group_by("tender_id", maintain_order=True)
            .agg(
                pl.col("amount").filter(rnd).alias("round_bids"),
                pl.col("amount").alias("bids"),
                pl.col("who").filter(rnd).drop_nulls().unique().sort().alias("firms"),
            )
        )
        flagged = flagged.join(detail, on="tender_id")
        return build(
            flagged,
            detector=self.name,
            kind="tender",
            subject_id=pl.col("tender_id"),
            score=1 - pl.col("chance"),
            value=pl.col("chance"),
            threshold=pl.lit(self.max_chance),
            message=pl.format(
                "{} of {} bids written to round numbers (<= {} significant digits), {} "
                "expected from how often these bidders round elsewhere ({}% of bids in the "
                "input): chance {} <= {}",
                pl.col("k"),
                pl.col("n"),
                pl.lit(self.max_significant),
                sig(pl.col("expected"), 2),
                sig(pl.lit(share * 100), 3),
                sig(pl.col("chance"), 2),
                pl.lit(self.max_chance),
            ),
            evidence={
                "round_bids": pl.col("round_bids"),
                "bids": pl.col("bids"),
                "round": pl.col("k"),
                "expected_round": pl.col("expected"),
                "share_round_in_input": pl.lit(share),
                "max_significant": pl.lit(self.max_significant),
                "chance": pl.col("chance"),
            },
            firms=pl.col("firms"),
            assessed=assessed,
        )
