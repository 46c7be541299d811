"""One firm (or very few) wins a buyer's tenders far more often than the competition gives."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

import numpy as np
import polars as pl
from scipy import stats

from bidwatch.detectors._base import NotComputable, sig
from bidwatch.detectors._pairs import bid_codes
from bidwatch.findings import Findings, SubjectKind, build
from bidwatch.schema import buyer

if TYPE_CHECKING:
    from bidwatch.dataset import Dataset

FIXED = 2**40


@dataclass(frozen=True)
class BuyerConcentration:
    """A buyer's tenders are won by one firm, or a few, far more often than the competition
    in them and the firms' record elsewhere would give.

    ## What it flags
    Buyers with at least `min_tenders` tenders whose wins are concentrated: a firm wins
    more of the buyer's tenders than the competition in them and its own record elsewhere
    explain, beyond chance once every firm that bid for the buyer and every buyer assessed
    are taken into account (false discovery rate `max_q`). The finding names the dominant
    winner(s), who inherit it in the firm ranking.

    ## Why it is a risk
    Two schemes leave this trace. Favouritism: a buyer that steers awards to a favoured
    firm (tailored specifications, leaked estimates or rival bids, biased scoring under
    综合评分法) gives it far more wins than its competitors, whose bids are covers or
    futile. Market allocation: a cartel that shares out buyers or territories (each member
    "owns" some buyers, the others bid as covers or stay away) makes each buyer's winner
    the same member, tender after tender, while the member loses where it covers for the
    others (OECD 2009). Collusion between buyer and bidder is barred by 招标投标法 art. 32
    and 招标投标法实施条例 art. 41.

    ## Method
    Tenders with exactly one winning firm among the resolved bidders (bids.firm_id with
    is_winner) are used; a tender's competitors are the distinct firms with a valid bid
    (or the winning one), n_t of them. A tender's buyer is its buyer_id, else its
    buyer_name; buyers with at least `min_tenders` such tenders are assessed.

    If every competitor were equally likely to win, a firm would win tender t with chance
    1/n_t. Firms are not equal, so each tender is taken as a contest of strengths: a firm
    of strength s against n_t - 1 average rivals wins with chance s / (s + n_t - 1)
    (Luce 1959), which is 1/n_t for an average firm and 1 for a sole bidder. A firm's
    strength comes from its record in the contested tenders (2+ firms) of every other
    buyer: N' tenders, W' wins, E' = sum 1/n_t fair wins, a typical field of f = N' / E'
    firms; s solves W' = N' s / (s + f - 1) once a f pseudo-tenders with a wins (an
    average firm's record, a = `prior_wins`) are added: s = (f - 1)(W' + a) / (N' - W' +
    a (f - 1)), and s = 1 with no record elsewhere. An efficient firm that wins everywhere
    is thus expected to win here too, and a cartel member that covers for the others
    elsewhere to win less. At the buyer the firm bid in N tenders, won W, and is expected
    to win E = sum s / (s + n_t - 1). Its chance is p = P(Binomial(N, E/N) >= W), which
    bounds the Poisson-binomial tail of independent tenders from above whenever W >= E + 1
    (Hoeffding 1956). The strength is estimated from other tenders than the ones tested
    and taken as known; the shrinkage keeps it near average where the record elsewhere is
    short.

    The buyer's chance is a weighted Bonferroni bound over the firms that bid for it,
    min over firms of p x B / N (B the buyer's bids in all): each firm's share of the test
    is its share of the bids, as only firms that bid often can dominate. Chances of all
    assessed buyers become Benjamini-Hochberg q-values; a buyer is flagged when q <=
    `max_q`, and its dominant firms are those whose own bound p x B / N passes the same
    Benjamini-Hochberg cut. Score = 1 - q: among buyers scored at least this high, the
    expected share of false discoveries is at most 1 - score.

    ## Evidence
    The buyer's tenders assessed, the firms and bids in them, the Herfindahl index of the
    firms' win shares, the chance and q-value, and per dominant firm: wins, tenders bid in,
    fair wins (sum 1/n), strength elsewhere, expected wins, its chance, the tenders it won,
    and its wins against fair wins at all other buyers.

    ## Parameters
    - `min_tenders`: fewest tenders with one known winning firm a buyer needs to be
      assessed.
    - `max_q`: flag a buyer when its Benjamini-Hochberg q-value is at most this (the false
      discovery rate accepted across buyers).
    - `prior_wins`: fair wins' worth of shrinkage of a firm's strength elsewhere toward
      average (1); larger trusts the record elsewhere less, and a very large value (1e9)
      ignores it, testing against the fair share 1/n alone.

    ## Known false positives
    A firm that is cheaper or better than its rivals (a local asphalt plant, a specialist)
    wins above its fair share at every buyer; its strength elsewhere accounts for that, but
    not for a firm active at one buyer only, or stronger in that buyer's kind of works.
    Buyers of a niche where one firm holds the licence or capacity; framework or follow-on
    contracts awarded to the incumbent; scoring rules that reward past performance with the
    same buyer. Concentration through single-bidder tenders is not flagged here (one bidder
    is expected to win): that is a separate warning sign.

    ## References
    - OECD (2009). Guidelines for fighting bid rigging in public procurement.
    - Fazekas, M. & Kocsis, G. (2020). Uncovering high-level corruption: cross-national
      objective corruption risk indicators using public procurement data. British Journal
      of Political Science 50(1).
    - Luce, R. D. (1959). Individual choice behavior. Wiley.
    - Hoeffding, W. (1956). On the distribution of the number of successes in independent
      trials. Annals of Mathematical Statistics 27(3).
    - Benjamini, Y. & Hochberg, Y. (1995). Controlling the false discovery rate. JRSS B 57(1).
    - 中华人民共和国招标投标法 (1999, rev. 2017), art. 32; 招标投标法实施条例 (2011), art. 41.
    """

    min_tenders: int = 10
    max_q: float = 0.05
    prior_wins: float = 2.0

    name: ClassVar[str] = "buyer-concentration"
    subject: ClassVar[SubjectKind] = "buyer"
    requires: ClassVar[frozenset[str]] = frozenset({"bids.firm_id", "bids.is_winner"})
    # Significant concentration is solid evidence that awards are not competitive, but not
    # of rigging by itself (efficiency, capacity, incumbency): below the one-hand evidence.
    default_weight: ClassVar[float] = 1.0

    def __post_init__(self) -> None:
        if self.min_tenders < 2:
            raise ValueError(f"min_tenders must be >= 2, got {self.min_tenders}")
        if not 0 < self.max_q <= 1:
            raise ValueError(f"max_q must be in (0, 1], got {self.max_q}")
        if not self.prior_wins > 0:
            raise ValueError(f"prior_wins must be > 0, got {self.prior_wins}")

    def detect(self, data: Dataset) -> Findings:
        buyers = data.tenders.select("tender_id", buyer().alias("buyer")).drop_nulls("buyer")
        if buyers.height == 0:
            raise NotComputable(
                "no tender names its buyer; give tenders a buyer_id or buyer_name column"
            )
        won = pl.col("is_winner").fill_null(False)
        # Tenders, firms and buyers as integer codes, their positions among the sorted
        # distinct names (shared per dataset for tenders and firms): every group-by below
        # runs on integers, and sorting by codes sorts by names.
        codes = bid_codes(data)
        tender_names, firm_names = codes.tenders, codes.firms
        buyer_names = buyers.get_column("buyer").unique().sort()
        competing = (
            pl.concat(
                [
                    data.bids.select(
                        (
                            pl.col("firm_id").is_not_null()
                            & (pl.col("status").is_null() | (pl.col("status") == "valid") | won)
                        ).alias("_keep"),
                        won.alias("won"),
                    ),
                    codes.frame,
                ],
                how="horizontal",
            )
            .filter("_keep")
            .group_by("_t", "_f")
            .agg(pl.col("won").any())
        )
        buyers = buyers.select(
            _code("tender_id", tender_names, strict=False).alias("_t"),
            _code("buyer", buyer_names).alias("_y"),
        ).drop_nulls("_t")
        # Tenders with exactly one winning firm, and their number of competing firms.
        contests = (
            competing.group_by("_t")
            .agg(
                pl.len().alias("n"),
                pl.col("won").sum().alias("_winners"),
            )
            .filter(pl.col("_winners") == 1)
            .drop("_winners")
        )
        # Shares 1/n are summed as integers in units of 2^-40, so that sums are exact and
        # the same whatever the order of the input.
        units = competing.join(contests, on="_t").with_columns(
            (pl.lit(FIXED) // pl.col("n")).alias("_share")
        )
        # A firm's record in contested tenders (two or more firms; a sole bidder's win says
        # nothing of its strength).
        contested = pl.col("n") >= 2
        totals = (
            units.filter(contested)
            .group_by("_f")
            .agg(
                pl.len().alias("_bids_all"),
                pl.col("won").sum().cast(pl.Int64).alias("_won_all"),
                pl.col("_share").sum().alias("_fair_all"),
            )
        )
        units = units.join(buyers, on="_t")
        # One unit per firm in a tender and one winner per tender: wins count tenders.
        counts = units.group_by("_y").agg(pl.col("won").sum().alias("tenders"))
        eligible = counts.filter(pl.col("tenders") >= self.min_tenders)
        if eligible.height == 0:
            most = counts.select(pl.col("tenders").max()).item() if counts.height else 0
            raise NotComputable(
                f"no buyer has {self.min_tenders}+ tenders with one known winning firm "
                f"(the most is {most}); lower `min_tenders`"
            )
        units = units.join(eligible, on="_y")
        pairs = (
            units.group_by("_y", "_f")
            .agg(
                pl.len().alias("bid_in"),
                pl.col("won").sum().cast(pl.Int64).alias("wins"),
                pl.col("_share").sum().alias("_fair"),
                pl.col("tenders").first(),
                contested.sum().cast(pl.Int64).alias("_bids_here"),
                (pl.col("won") & contested).sum().cast(pl.Int64).alias("_won_here"),
                pl.col("_share").filter(contested).sum().alias("_fair_here"),
            )
            .join(totals, on="_f", how="left")
            .with_columns(
                (pl.col("_fair") / FIXED).alias("fair"),
                (pl.col("_bids_all").fill_null(0) - pl.col("_bids_here")).alias("elsewhere_bids"),
                (pl.col("_won_all").fill_null(0) - pl.col("_won_here")).alias("elsewhere_wins"),
                ((pl.col("_fair_all").fill_null(0) - pl.col("_fair_here")) / FIXED).alias(
                    "elsewhere_fair"
                ),
            )
        )
        # Strength elsewhere: wins of n - 1 average rivals, shrunk toward average by
        # `prior_wins` fair wins (as many pseudo-tenders, won as an average firm would).
        bids_e, wins_e = pl.col("elsewhere_bids"), pl.col("elsewhere_wins") + self.prior_wins
        field = (bids_e / pl.col("elsewhere_fair")).alias("_field")
        pairs = pairs.with_columns(field).with_columns(
            pl.when((bids_e > 0) & (pl.col("_field") > 1))
            .then(
                (pl.col("_field") - 1)
                * wins_e
                / (bids_e - pl.col("elsewhere_wins") + self.prior_wins * (pl.col("_field") - 1))
            )
            .otherwise(1.0)
            .alias("strength"),
            pl.len().over("_y").alias("k"),
            pl.col("bid_in").sum().over("_y").alias("bids"),
        )
        # Each tender's chance for the firm: its strength against n - 1 average rivals.
        strength = pl.col("strength")
        adjusted = (
            units.join(pairs.select("_y", "_f", "strength"), on=["_y", "_f"])
            .group_by("_y", "_f")
            .agg(
                (strength / (strength + pl.col("n") - 1) * FIXED)
                .round()
                .cast(pl.Int64)
                .sum()
                .alias("_expected")
            )
        )
        pairs = (
            pairs.join(adjusted, on=["_y", "_f"])
            .with_columns((pl.col("_expected") / FIXED).alias("expected"))
            .sort("_y", "_f")
        )
        wins, bid_in = pairs.get_column("wins").to_numpy(), pairs.get_column("bid_in").to_numpy()
        rate = np.clip(pairs.get_column("expected").to_numpy() / bid_in, 0.0, 1.0)
        chance = np.where(wins > 0, stats.binom.sf(wins - 1, bid_in, rate), 1.0)
        pairs = pairs.with_columns(
            pl.Series("chance", chance),
            (pl.Series("chance", chance) * pl.col("bids") / pl.col("bid_in"))
            .clip(upper_bound=1.0)
            .alias("_bound"),
        )
        per_buyer = (
            pairs.group_by("_y")
            .agg(
                pl.col("_bound").min().alias("p"),
                pl.col("k", "bids", "tenders").first(),
                (
                    pl.col("wins").pow(2).sum() / pl.col("tenders").first().cast(pl.Float64).pow(2)
                ).alias("hhi"),
            )
            .sort("_y")
        )
        q = stats.false_discovery_control(per_buyer.get_column("p").to_numpy(), method="bh")
        per_buyer = per_buyer.with_columns(pl.Series("q", q))
        flagged = per_buyer.filter(pl.col("q") <= self.max_q)
        flagged = flagged.with_columns(buyer_names.gather(flagged.get_column("_y")).alias("buyer"))
        cut = flagged.get_column("p").max() if flagged.height else 0.0
        dominant = pairs.join(flagged.select("_y"), on="_y").filter(pl.col("_bound") <= cut)
        dominant = dominant.with_columns(
            firm_names.gather(dominant.get_column("_f")).alias("firm_id")
        )
        won_by = (
            units.filter("won")
            .join(dominant.select("_y", "_f"), on=["_y", "_f"])
            .select("_y", "_f", "_t")
        )
        won_tenders = (
            won_by.with_columns(tender_names.gather(won_by.get_column("_t")).alias("tender_id"))
            .group_by("_y", "_f")
            .agg(pl.col("tender_id").sort().alias("won_tenders"))
        )
        dominant = (
            dominant.join(won_tenders, on=["_y", "_f"], how="left")
            .sort("_y", "chance", "_f")
            .group_by("_y", maintain_order=True)
            .agg(
                pl.col("firm_id").alias("firms"),
                pl.format(
                    "{} won {} of the buyer's {} tenders ({} bid in, {} wins expected)",
                    "firm_id",
                    "wins",
                    "tenders",
                    "bid_in",
                    sig(pl.col("expected"), 3),
                )
                .head(3)
                .str.join("; ")
                .alias("_said"),
                (pl.len().cast(pl.Int64) - 3).alias("_more"),
                pl.struct(
                    pl.col("firm_id").alias("firm"),
                    "wins",
                    "bid_in",
                    "fair",
                    "strength",
                    "expected",
                    "chance",
                    "won_tenders",
                    "elsewhere_bids",
                    "elsewhere_wins",
                    "elsewhere_fair",
                ).alias("dominant"),
            )
            .join(flagged, on="_y")
        )
        return build(
            dominant,
            detector=self.name,
            kind="buyer",
            subject_id=pl.col("buyer"),
            score=1 - pl.col("q"),
            value=pl.col("q"),
            threshold=pl.lit(self.max_q),
            message=pl.format(
                "{}{}; chance {} over the {} firms that bid, q {} <= {}",
                "_said",
                pl.when(pl.col("_more") > 0)
                .then(pl.format(" and {} more", "_more"))
                .otherwise(pl.lit("")),
                sig(pl.col("p"), 2),
                "k",
                sig(pl.col("q"), 2),
                pl.lit(self.max_q),
            ),
            evidence={
                "tenders": pl.col("tenders"),
                "firms_bidding": pl.col("k"),
                "bids": pl.col("bids"),
                "hhi": pl.col("hhi"),
                "chance": pl.col("p"),
                "q": pl.col("q"),
                "dominant": pl.col("dominant"),
            },
            firms=pl.col("firms"),
            assessed=buyer_names.gather(eligible.get_column("_y")),
        )


def _code(column: str, names: pl.Series, *, strict: bool = True) -> pl.Expr:
    """The position of ``column``'s value among ``names`` (sorted, distinct, no null); with
    ``strict`` off, null for a value not among them."""
    return pl.col(column).cast(pl.Enum(names), strict=strict).to_physical().cast(pl.UInt32)
