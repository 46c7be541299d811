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


def _bidders(data: Dataset) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The valid bidders of each tender and the tenders with a winner.

    ``bidders``: one row per tender _t and bidder _w (the firm's code, or for a bid without
    a resolved firm, still a rival, its row coded after every firm), with _firm (a resolved
    firm) and is_winner (any of its bids there won). ``tenders``: n bidders and w winners
    of each tender with w > 0. One sort of 64-bit (tender, bidder, won) keys: a bidder's
    bids are one run, whose last key says whether any won."""
    codes = bid_codes(data)
    firms = codes.firms.len()
    row = pl.int_range(pl.len(), dtype=pl.UInt64) + firms
    # A bid of no tender meets no rival: the joins on _t drop it anyway.
    kept = (
        pl.concat(
            [
                data.bids.select(
                    (pl.col("status").is_null() | (pl.col("status") == "valid")).alias("_ok"),
                    pl.col("is_winner").fill_null(False),
                ),
                codes.frame,
            ],
            how="horizontal",
        )
        .filter(pl.col("_ok") & pl.col("_t").is_not_null())
        .select("_t", pl.coalesce(pl.col("_f").cast(pl.UInt64), row).alias("_w"), "is_winner")
    )
    width = np.uint64(firms + kept.height)
    key = kept.get_column("_t").to_numpy().astype(np.uint64) * width
    key += kept.get_column("_w").to_numpy()
    key <<= np.uint64(1)
    key += kept.get_column("is_winner").to_numpy().astype(np.uint64)
    key.sort()
    pair = key >> np.uint64(1)
    last = np.flatnonzero(np.append(pair[1:] != pair[:-1], True)) if key.shape[0] else key
    won = (key[last] & np.uint64(1)).astype(bool)
    tender, bidder = pair[last] // width, pair[last] % width
    bidders = pl.DataFrame(
        {
            "_t": pl.Series(tender, dtype=pl.UInt32),
            "_w": pl.Series(bidder, dtype=pl.UInt64),
            "_firm": pl.Series(bidder < np.uint64(firms), dtype=pl.Boolean),
            "is_winner": pl.Series(won, dtype=pl.Boolean),
        }
    )
    start = np.flatnonzero(np.concatenate([[True], tender[1:] != tender[:-1]]))[: tender.shape[0]]
    count = np.diff(np.append(start, tender.shape[0]))
    wins = np.add.reduceat(won.astype(np.int64), start) if start.shape[0] else count
    tenders = pl.DataFrame(
        {
            "_t": pl.Series(tender[start], dtype=pl.UInt32),
            "n": pl.Series(count, dtype=pl.UInt32),
            "w": pl.Series(wins, dtype=pl.UInt32),
        }
    ).filter(pl.col("w") > 0)
    return bidders, tenders


def _slots(bids: pl.DataFrame) -> pl.DataFrame:
    """Per subject _s and kind of tender (n bidders, w winners) of ``bids``: how many of its
    bids (c), sorted by _s, n, w; one sort of packed 64-bit keys rather than a group-by
    and a sort."""
    schema = {"_s": pl.UInt32, "n": pl.UInt32, "w": pl.UInt32, "c": pl.UInt32}
    if bids.height == 0:
        return pl.DataFrame(schema=schema)
    subject, n, w = (bids.get_column(c).to_numpy().astype(np.uint64) for c in ("_s", "n", "w"))
    n_width, w_width = np.uint64(int(n.max()) + 1), np.uint64(int(w.max()) + 1)
    key = (subject * n_width + n) * w_width + w
    key.sort()
    start = np.flatnonzero(np.concatenate([[True], key[1:] != key[:-1]]))
    count = np.diff(np.append(start, key.shape[0]))
    first = key[start]
    return pl.DataFrame(
        [
            pl.Series(name, values, dtype=schema[name])
            for name, values in zip(
                schema,
                [first // w_width // n_width, first // w_width % n_width, first % w_width, count],
                strict=True,
            )
        ]
    )


def _top_winners(lost: pl.DataFrame) -> pl.DataFrame:
    """Per subject _s of ``lost`` (one row per tender lost, with its winner _win): the winner
    it lost to most (the lowest code among equals), how often (lost_to), and how many
    winners it lost to, sorted by _s.

    One sort of 64-bit (subject, winner) keys: a subject's winners are one run in code
    order, so its first count equal to the run's largest is the winner wanted."""
    schema = {"_s": pl.UInt32, "_win": pl.UInt64, "lost_to": pl.UInt32, "winners": pl.UInt32}
    if lost.height == 0:
        return pl.DataFrame(schema=schema)
    winner = lost.get_column("_win").to_numpy()
    width = np.uint64(int(winner.max()) + 1)
    key = lost.get_column("_s").to_numpy().astype(np.uint64) * width + winner
    key.sort()
    start = np.flatnonzero(np.concatenate([[True], key[1:] != key[:-1]]))
    count = np.diff(np.append(start, key.shape[0]))
    subject, winner = key[start] // width, key[start] % width
    first = np.flatnonzero(np.concatenate([[True], subject[1:] != subject[:-1]]))
    winners = np.diff(np.append(first, subject.shape[0]))
    most = np.repeat(np.maximum.reduceat(count, first), winners)
    tied = np.flatnonzero(count == most)
    pick = tied[np.concatenate([[True], subject[tied][1:] != subject[tied][:-1]])]
    return pl.DataFrame(
        [
            pl.Series(name, values, dtype=schema[name])
            for name, values in zip(
                schema, [subject[pick], winner[pick], count[pick], winners], strict=True
            )
        ]
    )


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
        bidders, tenders = _bidders(data)
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
        slots = _slots(own.join(firms.select("_w", "_s"), on="_w"))
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
        top = _top_winners(lost)
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
