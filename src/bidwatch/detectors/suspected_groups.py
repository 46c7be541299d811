"""Groups of firms that bid together far more than chance and price differently together."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

import numpy as np
import polars as pl

from bidwatch.detectors._base import NotComputable, sig
from bidwatch.detectors._groups import (
    Candidates,
    GroupSearch,
    group_cohesion,
    joint_tenders,
    label_permutation,
    member_firms,
    permutation_p,
    relative_prices,
    validate_permutations,
)
from bidwatch.detectors._pairs import market_notes
from bidwatch.findings import Findings, SubjectKind, build

if TYPE_CHECKING:
    from bidwatch.dataset import Dataset


@dataclass(frozen=True)
class SuspectedGroups(GroupSearch):
    """A group of firms bids in the same tenders far more often than firms of their market
    do by chance, keeps much of its bidding within the group, and prices higher when its
    members meet than when they bid apart.

    ## What it flags
    Communities of the co-bid graph built only from pairs of firms that meet more often
    than chance in their markets (region x category), kept when the same search on data
    with bidders shuffled within markets finds groups as strong rarely enough (false
    discovery rate `group_fdr`): groups of at least `min_members` firms with at least
    `min_tenders` joint tenders (tenders where two or more members bid) whose score
    reaches `min_score`. Every such group with enough joint tenders is assessed.

    ## Why it is a risk
    Bid rigging needs the same firms in the same tenders: cover bidders (陪标) who make a
    designated winner's bid look competitive, rings that take turns. The OECD guidelines
    name "the same suppliers bid together" among the signs of collusion, and 招标投标法实施条例
    art. 39 names bidders agreeing among themselves. A group that meets beyond chance and
    prices higher together than apart shows both the structure and the effect of a ring.

    ## Method
    Candidates (shared by every group detector, so that they name a group alike): for
    each pair of firms the number of tenders both bid in is compared with its expectation
    when bidders are independent within a market (the expectation of shuffling bidders
    among the tenders of their market), E = sum over markets of d_i d_j Q / S^2 (d: the
    firm's bids in the market, S: all bids in it, Q: the sum over its tenders of n(n-1)
    for n bidders). A pair that met at least `min_pair_tenders` times with a Poisson tail
    P(X >= obs | E) of at most `edge_p` is an edge, weighted by log(obs / E), the log lift.
    Leiden communities (modularity, resolution 1) of that graph with `min_members` or more
    firms are the groups: on lift-filtered edges they are rings, where raw co-bid counts
    give whole county markets. A group's strength is -log10 of the Poisson tail of its
    members' co-bids given their expectation. The whole search runs again on copies of the
    data with firms shuffled among the bids of each market (one copy from 100,000
    tender-firm rows up, up to ten for small data; seeded); a group's q is the number of
    shuffled groups at least as strong per copy over the number of real groups at least as
    strong, and groups with q <= `group_fdr` are the candidates. This pays for choosing the
    groups: comparing a community with random firms would rank nearly every community at
    the top, since it was chosen for meeting often.
    Each candidate gets three parts in [0, 1]:
    - cohesion: the share of its members' co-bids (summed over member pairs) that the
      market null does not explain, 1 - E / O;
    - exclusivity: the share of its members' bids made in joint tenders that the null does
      not explain, 1 - K0 / K, where K0 sums, over each member's bids, the chance that
      another member bids in the same tender when firms bid independently in their market;
    - pricing: 1 - p, p the one-sided permutation p-value (`permutations` random
      relabellings of the group's tenders as joint or not, keeping their numbers; seeded)
      that members bid higher relative to the estimate in joint tenders than in their other
      tenders, prices being log(bid / estimate) less their mean over tenders of the same
      award rule and category. Left out when fewer than two tenders of either kind have an
      estimate.
    Score = mean of the available parts: chance is settled by the candidate search, and
    the score says how much of the group's bidding together chance in its market does not
    explain and whether it pays. A group with 80% of its co-bids and 60% of its joint
    bidding beyond chance but ordinary prices (p 0.5) scores 0.63, under the default
    limit; the same group pricing higher together (p 0.01) scores 0.8.
    Default weight 1.0: a group is structure, not proof (honest firms cluster too), below
    identical-bids and shared-traces (one hand behind bids); tenders where two or more
    members bid also inherit part of the group's risk.

    ## Evidence
    Members, joint tenders and how many a member won; the group's strength, the groups
    as strong found per shuffled copy and its q; cohesion (co-bids observed and
    expected, lift, member pairs linked by an edge); exclusivity (members' bids, those in
    joint tenders, the number expected); pricing (tenders together and apart, the mean
    difference in log price, its p-value); the three parts.

    ## Parameters
    - `min_members`: fewest firms in a group.
    - `min_tenders`: fewest joint tenders (two or more members bidding) for a group to be
      assessed.
    - `min_pair_tenders`: fewest tenders two firms must share before their pair is tested.
    - `edge_p`: Poisson p-value below which a pair of firms meets more than chance and
      becomes an edge of the graph the groups are found in.
    - `group_fdr`: false discovery rate of the groups, against the same search on data
      with bidders shuffled within markets.
    - `min_score`: lowest score that gets a finding.
    - `permutations`: random relabellings for the pricing p-value (seeded, so results
      repeat).

    ## Known false positives
    Structure the market null does not know: firms based in one town or serving one
    buyer, specialists in a niche within a category, firms active in the same years only;
    joint ventures and firms under one owner (which art. 34 of the regulations also bars
    from bidding against each other); subcontracting networks. Without a region the whole
    file is one market, and local firms then look like groups: give tenders a region.
    Pricing higher together can also come from the kind of work the group does.

    ## References
    - OECD (2009). Guidelines for fighting bid rigging in public procurement.
    - Conley, T. & Decarolis, F. (2016). Detecting bidders groups in collusive auctions.
      AEJ: Microeconomics 8(2).
    - Traag, V., Waltman, L. & van Eck, N. (2019). From Louvain to Leiden: guaranteeing
      well-connected communities. Scientific Reports 9.
    - Benjamini, Y. & Hochberg, Y. (1995). Controlling the false discovery rate. JRSS B 57.
    - 中华人民共和国招标投标法实施条例 (2011), arts. 34, 39.
    """

    min_tenders: int = 5
    min_score: float = 0.65
    permutations: int = 199

    name: ClassVar[str] = "suspected-groups"
    subject: ClassVar[SubjectKind] = "group"
    requires: ClassVar[frozenset[str]] = frozenset({"bids.firm_id"})
    default_weight: ClassVar[float] = 1.0

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.min_tenders < 2:
            raise ValueError(f"min_tenders must be >= 2, got {self.min_tenders}")
        if not 0 < self.min_score <= 1:
            raise ValueError(f"min_score must be in (0, 1], got {self.min_score}")
        validate_permutations(self.permutations)

    def detect(self, data: Dataset) -> Findings:
        c = self.candidates(data)
        joint = joint_tenders(data, c).filter(pl.col("joint") >= self.min_tenders)
        if joint.height == 0:
            raise NotComputable(
                f"no group to assess: {c.groups.height} groups of {self.min_members}+ firms "
                f"meet beyond chance, none in {self.min_tenders}+ joint tenders"
            )
        groups = (
            c.groups.join(joint, on="_g")
            .join(group_cohesion(c), on=["_g", "size"])
            .join(_exclusivity(c), on="_g", how="left")
            .join(self._pricing(data, c), on="_g", how="left")
            .sort("_g")
        )
        cohesion = (1 - pl.col("expected") / pl.col("observed")).clip(0.0, 1.0)
        exclusivity = (1 - pl.col("expected_joint") / pl.col("joint_bids")).clip(0.0, 1.0)
        pricing = 1 - pl.col("price_p")
        groups = groups.with_columns(
            cohesion.alias("cohesion"),
            exclusivity.alias("exclusivity"),
            pricing.alias("pricing"),
        ).with_columns(
            pl.mean_horizontal("cohesion", "exclusivity", "pricing").alias("_score"),
        )
        flagged = groups.filter(pl.col("_score") >= self.min_score)
        pct = (pl.col("price_diff").exp() - 1) * 100
        price_text = (
            pl.when(pl.col("price_p").is_not_null())
            .then(
                pl.format(
                    "; {}{}% price level together (p {})",
                    pl.when(pct >= 0).then(pl.lit("+")).otherwise(pl.lit("")),
                    sig(pct, 2),
                    sig(pl.col("price_p"), 2),
                )
            )
            .otherwise(pl.lit("; no estimates to compare prices"))
        )
        return build(
            flagged,
            detector=self.name,
            kind="group",
            subject_id=pl.col("group_id"),
            score=pl.col("_score"),
            value=pl.col("_score"),
            threshold=pl.lit(self.min_score),
            message=pl.format(
                "{} firms bid together in {} tenders: {} co-bids where {} expected by chance, "
                "{}% of their bids in joint tenders{}; score {} >= {}",
                pl.col("size"),
                pl.col("joint"),
                pl.col("observed"),
                sig(pl.col("expected"), 2),
                sig(pl.col("joint_bids") / pl.col("bids") * 100, 2),
                price_text,
                sig(pl.col("_score"), 3),
                pl.lit(self.min_score),
            ),
            evidence={
                "members": pl.col("members"),
                "tenders": pl.col("tenders"),
                "joint_tenders": pl.col("joint"),
                "wins_in_joint_tenders": pl.col("wins"),
                "chance": pl.struct(
                    strength=pl.col("strength"),
                    groups_as_strong_in_shuffled_data=pl.col("chance_groups"),
                    q=pl.col("q"),
                ),
                "cohesion": pl.struct(
                    co_bids=pl.col("observed"),
                    expected=pl.col("expected"),
                    lift=pl.col("observed") / pl.col("expected"),
                    member_pairs=pl.col("pairs"),
                    pairs_beyond_chance=pl.col("linked"),
                    part=pl.col("cohesion"),
                ),
                "exclusivity": pl.struct(
                    bids=pl.col("bids"),
                    bids_in_joint_tenders=pl.col("joint_bids"),
                    expected_by_chance=pl.col("expected_joint"),
                    part=pl.col("exclusivity"),
                ),
                "pricing": pl.struct(
                    tenders_together=pl.col("price_inside"),
                    tenders_apart=pl.col("price_outside"),
                    log_price_difference=pl.col("price_diff"),
                    p_value=pl.col("price_p"),
                    part=pl.col("pricing"),
                ),
            },
            firms=pl.col("members"),
            assessed=groups.get_column("group_id"),
            notes=market_notes(data),
        )

    def _pricing(self, data: Dataset, c: Candidates) -> pl.DataFrame:
        """_g, price_inside, price_outside, price_diff, price_p."""
        schema = {
            "_g": pl.UInt32,
            "price_inside": pl.Int64,
            "price_outside": pl.Int64,
            "price_diff": pl.Float64,
            "price_p": pl.Float64,
        }
        if not (data.has("tenders.estimate") and data.has("bids.amount")):
            return pl.DataFrame(schema=schema)
        prices = (
            relative_prices(data)
            .join(member_firms(c), on="firm_id")
            .join(c.tenders.select("_t", "tender_id"), on="tender_id")
            .join(c.membership, on="_f")
        )
        units = (
            prices.sort("_g", "_t", "r")
            .group_by("_g", "_t", maintain_order=True)
            .agg(pl.col("r").mean())
            .join(
                c.together.select("_g", "_t", pl.lit(1.0).alias("_in")), on=["_g", "_t"], how="left"
            )
            .with_columns(pl.col("_in").fill_null(0.0))
            .with_columns(
                pl.col("_in").sum().over("_g").alias("_n_in"),
                (1 - pl.col("_in")).sum().over("_g").alias("_n_out"),
            )
            .filter((pl.col("_n_in") >= 2) & (pl.col("_n_out") >= 2))
            .sort("_g", "_t")
        )
        if units.height == 0:
            return pl.DataFrame(schema=schema)
        code = units.get_column("_g").rank("dense").cast(pl.Int64).to_numpy() - 1
        observed, null = label_permutation(
            code,
            units.get_column("r").to_numpy(),
            units.get_column("_in").to_numpy(),
            self.permutations,
            np.random.default_rng(0),
        )
        per_group = units.group_by("_g", maintain_order=True).agg(
            pl.col("_n_in").first().cast(pl.Int64).alias("price_inside"),
            pl.col("_n_out").first().cast(pl.Int64).alias("price_outside"),
        )
        return per_group.with_columns(
            pl.Series("price_diff", observed),
            pl.Series("price_p", permutation_p(observed, null)),
        )


def _exclusivity(c: Candidates) -> pl.DataFrame:
    """_g, bids, joint_bids, expected_joint: members' bids, those in joint tenders, and the
    number expected in joint tenders if members bid independently within their markets."""
    member_bids = c.membership.join(c.incidence, on="_f")
    group_market = member_bids.group_by("_g", "_m").agg(pl.len().cast(pl.Int64).alias("_D"))
    rows = (
        member_bids.join(c.weights.select("_f", "_m", "d"), on=["_f", "_m"])
        .join(group_market, on=["_g", "_m"])
        .join(c.markets.select("_m", "S"), on="_m")
        .join(c.together.select("_g", "_t", pl.lit(1).alias("_in")), on=["_g", "_t"], how="left")
        .with_columns(
            (
                1
                - (
                    -(pl.col("n") - 1).cast(pl.Float64) * (pl.col("_D") - pl.col("d")) / pl.col("S")
                ).exp()
            ).alias("_chance")
        )
        .sort("_g", "_f", "_t")
    )
    return rows.group_by("_g", maintain_order=True).agg(
        pl.len().cast(pl.Int64).alias("bids"),
        pl.col("_in").fill_null(0).sum().cast(pl.Int64).alias("joint_bids"),
        pl.col("_chance").sum().alias("expected_joint"),
    )
