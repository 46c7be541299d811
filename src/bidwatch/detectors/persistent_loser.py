"""A firm that bids often, almost never wins, and loses mostly to the same winner."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

import numpy as np
import polars as pl

from bidwatch.detectors._base import sig
from bidwatch.detectors._pairs import bid_codes, binom_law, fdr, sum_tails
from bidwatch.findings import Findings, SubjectKind, build

if TYPE_CHECKING:
    from bidwatch.dataset import Dataset


@dataclass(frozen=True)
class PersistentLoser:
    """A firm bids often but wins far less often than its tenders' bidder counts would give
    by chance, and most of the tenders it loses go to one winner.

    ## What it flags
    Firms with at least `min_bids` valid bids in decided tenders whose wins fall short of
    chance at a false discovery rate of `max_q` across all firms assessed, and whose
    losses went to one firm at least `min_winner_share` of the time.

    ## Why it is a risk
    A cover bidder (陪标) bids to make a tender look competitive and is not meant to win: it
    loses, tender after tender, to the firm it covers for, and is paid in subcontracts or in
    turns elsewhere. OECD (2009) lists firms that always bid but never win among the signs
    of bid rigging; bidders that agree on the winner collude under 招标投标法实施条例 art. 39(2).

    ## Method
    Tenders count when they are decided (a valid bid is marked as the winner). In a tender
    with n valid bidders and w winning bids, a bidder's chance of winning if all bidders
    were alike is w / n. A firm's wins W are then a sum of independent Bernoulli trials
    (Poisson-binomial) with expected value E = sum w / n over its valid bids; its p-value is
    the exact lower tail P(W <= observed wins), computed by convolving one binomial per
    distinct (n, w) among its tenders. Firms with at least their expected wins get p = 1.
    The firms tested are those whose losses went mostly to one firm: the winner of most of
    the tenders it lost (ties: the smaller id) won at least `min_winner_share` of them. Who
    beat a firm says nothing, if bidders are alike, about how often it lost, so choosing
    them first leaves their p-values intact, and it keeps the many honest firms that are
    simply weak (and lose to everyone) from diluting the test. Benjamini-Hochberg across
    those firms gives q; a firm is flagged when q <= `max_q`. Withdrawn and disqualified
    bids do not count: they could not win. Score = 1 - q, the confidence that the firm does
    not lose by chance.

    ## Evidence
    The firm's valid bids, wins and expected wins, p and q; the dominant winner, the
    tenders it took from the firm and its share of the firm's losses.

    ## Parameters
    - `min_bids`: fewest valid bids in decided tenders a firm needs to be assessed.
    - `max_q`: the false discovery rate: flag firms whose Benjamini-Hochberg adjusted
      p-value is at most this.
    - `min_winner_share`: least share of the firm's lost tenders that one winner must have
      won.

    ## Known false positives
    A firm that is simply dearer or weaker than its rivals (the null treats all bidders
    alike), above all beside a dominant local firm that wins most tenders of a county;
    firms that bid to stay listed or to learn prices; under scoring rules, firms with weak
    technical offers. The dominant-winner condition narrows the flag to the cover pattern
    but does not prove it: look at the tenders listed and at the pair's other findings.

    ## References
    - OECD (2009). Guidelines for fighting bid rigging in public procurement.
    - Hong, Y. (2013). On computing the distribution function for the Poisson binomial
      distribution. Computational Statistics & Data Analysis 59.
    - Benjamini, Y. & Hochberg, Y. (1995). Controlling the false discovery rate. JRSS B 57.
    - 中华人民共和国招标投标法实施条例 (2011), art. 39.
    """

    min_bids: int = 10
    # The usual 5%: the firms tested are few, and those beaten mostly by one winner are
    # seldom honest (0-4 of 75 on synthetic markets of 20,000 tenders).
    max_q: float = 0.05
    min_winner_share: float = 0.5

    name: ClassVar[str] = "persistent-loser"
    subject: ClassVar[SubjectKind] = "firm"
    requires: ClassVar[frozenset[str]] = frozenset({"bids.firm_id", "bids.is_winner"})
    # A losing record against one winner is the cover's footprint, but weak firms lose too.
    default_weight: ClassVar[float] = 0.75

    def __post_init__(self) -> None:
        if self.min_bids < 1:
            raise ValueError(f"min_bids must be >= 1, got {self.min_bids}")
        if not 0 < self.max_q <= 1:
            raise ValueError(f"max_q must be in (0, 1], got {self.max_q}")
        if not 0 <= self.min_winner_share <= 1:
            raise ValueError(f"min_winner_share must be in [0, 1], got {self.min_winner_share}")

    def detect(self, data: Dataset) -> Findings:
        # Tenders and firms as integer codes shared per dataset (a firm's code orders as its
        # id does): the group-bys run on integers.
        codes = bid_codes(data)
        tender_names, firm_names = codes.tenders, codes.firms
        # A bid without a resolved firm is still a rival: it counts by its row, coded after
        # every firm.
        row = pl.int_range(pl.len(), dtype=pl.UInt64) + firm_names.len()
        bidders = (
            pl.concat(
                [
                    data.bids.select(
                        (pl.col("status").is_null() | (pl.col("status") == "valid")).alias("_ok"),
                        pl.col("firm_id").is_not_null().alias("_firm"),
                        pl.col("is_winner").fill_null(False),
                    ),
                    codes.frame,
                ],
                how="horizontal",
            )
            .filter("_ok")
            .select(
                "_t",
                pl.coalesce(pl.col("_f").cast(pl.UInt64), row).alias("_w"),
                "_firm",
                "is_winner",
            )
            .group_by("_t", "_w")
            .agg(pl.col("_firm").first(), pl.col("is_winner").any())
        )
        tenders = (
            bidders.group_by("_t")
            .agg(pl.len().alias("n"), pl.col("is_winner").sum().alias("w"))
            .filter(pl.col("w") > 0)
        )
        own = bidders.filter("_firm").join(tenders, on="_t")
        firms = (
            own.group_by("_w")
            .agg(pl.len().alias("bids"), pl.col("is_winner").sum().alias("wins"))
            .filter(pl.col("bids") >= self.min_bids)
            .sort("_w")
            .with_row_index("_s")
        )
        if firms.height == 0:
            return Findings.empty()
        firms = firms.with_columns(firm_names.gather(firms.get_column("_w")).alias("firm_id"))
        slots = (
            own.join(firms.select("_w", "_s"), on="_w")
            .group_by("_s", "n", "w")
            .agg(pl.len().alias("c"))
            .sort("_s", "n", "w")
        )
        subject = slots.get_column("_s").cast(pl.Int64).to_numpy()
        trials = slots.get_column("c").cast(pl.Int64).to_numpy()
        chance = np.minimum(
            slots.get_column("w").cast(pl.Float64).to_numpy()
            / slots.get_column("n").cast(pl.Float64).to_numpy(),
            1.0,
        )
        expected = np.bincount(subject, weights=trials * chance, minlength=firms.height)
        wins = firms.get_column("wins").cast(pl.Int64).to_numpy()
        short = wins < expected
        p = np.ones(firms.height)
        # Only firms below their expected wins are convolved; the others keep p = 1, a
        # conservative p-value that costs them nothing.
        index = np.flatnonzero(short)
        rows = np.isin(subject, index)
        remap = np.full(firms.height, -1, dtype=np.int64)
        remap[index] = np.arange(index.shape[0])
        ((low, _),) = sum_tails(
            remap[subject[rows]],
            trials[rows],
            binom_law(trials[rows], chance[rows]),
            cap=wins[index] + 1,
            thresholds=[wins[index] + 1],
            lower_only=True,
        )
        p[index] = low
        assessed = firms.with_columns(pl.Series("expected", expected), pl.Series("p", p))
        losses = own.join(firms.select("_w", "_s"), on="_w").filter(~pl.col("is_winner"))
        winners = bidders.filter(pl.col("is_winner") & pl.col("_firm")).select(
            "_t", pl.col("_w").alias("_win")
        )
        lost = losses.join(winners, on="_t").select("_s", "_win", "_t")
        # Each firm's most frequent winner (the lowest id among equals), counted first; the
        # tenders lost are listed for that winner only.
        top = (
            lost.group_by("_s", "_win")
            .agg(pl.len().alias("lost_to"))
            .sort(["_s", "lost_to", "_win"], descending=[False, True, False])
            .group_by("_s", maintain_order=True)
            .agg(pl.all().first(), pl.col("_win").len().alias("winners"))
        )
        top = top.with_columns(firm_names.gather(top.get_column("_win")).alias("winner"))
        chosen = lost.join(top.select("_s", "_win"), on=["_s", "_win"], how="semi")
        listed = (
            chosen.with_columns(tender_names.gather(chosen.get_column("_t")).alias("tender_id"))
            .group_by("_s", "_win")
            .agg(pl.col("tender_id").sort().alias("lost_tenders"))
        )
        beaten = top.join(listed, on=["_s", "_win"], how="left", maintain_order="left").drop("_win")
        # Who beat a firm says nothing, if bidders are alike, about how often it lost: the
        # firms beaten mostly by one winner are the family the false discovery rate is
        # controlled over.
        family = (
            assessed.join(beaten, on="_s")
            .with_columns((pl.col("bids") - pl.col("wins")).alias("losses"))
            .with_columns((pl.col("lost_to") / pl.col("losses")).alias("share"))
            .filter(pl.col("share") >= self.min_winner_share)
            .sort("_s")
        )
        family = family.with_columns(pl.Series("q", fdr(family.get_column("p").to_numpy())))
        flagged = family.filter(pl.col("q") <= self.max_q)
        return build(
            flagged,
            detector=self.name,
            kind="firm",
            subject_id=pl.col("firm_id"),
            score=1 - pl.col("q"),
            value=pl.col("q"),
            threshold=pl.lit(self.max_q),
            message=pl.format(
                "won {} of {} tenders, {} expected from their bidder counts (q = {} <= {}); "
                "lost {} of {} to {} ({}% >= {}%)",
                "wins",
                "bids",
                sig(pl.col("expected"), 2),
                sig(pl.col("q"), 2),
                pl.lit(self.max_q),
                "lost_to",
                "losses",
                "winner",
                sig(pl.col("share") * 100, 3),
                pl.lit(round(self.min_winner_share * 100, 6)),
            ),
            evidence={
                "bids": pl.col("bids"),
                "wins": pl.col("wins"),
                "expected_wins": pl.col("expected"),
                "p": pl.col("p"),
                "q": pl.col("q"),
                "winner": pl.col("winner"),
                "lost_to_winner": pl.col("lost_to"),
                "losses": pl.col("losses"),
                "winner_share": pl.col("share"),
                "tenders_lost_to_winner": pl.col("lost_tenders"),
                "other_winners": pl.col("winners") - 1,
            },
            firms=pl.concat_list("firm_id", "winner"),
            assessed=assessed.get_column("firm_id"),
        )
