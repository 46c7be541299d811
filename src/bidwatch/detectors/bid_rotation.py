"""Members of a group take turns winning the tenders where they meet."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import numpy.typing as npt
import polars as pl

from bidwatch.detectors._base import NotComputable, sig
from bidwatch.detectors._groups import (
    GroupSearch,
    member_firms,
    permutation_p,
    validate_permutations,
)
from bidwatch.detectors._pairs import market_notes
from bidwatch.findings import Findings, SubjectKind, build

if TYPE_CHECKING:
    from bidwatch.dataset import Dataset

Array = npt.NDArray[Any]


@dataclass(frozen=True)
class BidRotation(GroupSearch):
    """A group of firms that meet in tenders win most of them, and the wins go round the
    members, more evenly and more often in turn than chance allows.

    ## What it flags
    Candidate groups (communities of firms that meet beyond chance, as in
    `suspected-groups`) in whose joint tenders (two or more members bid, the winner known)
    a member wins at least `min_win_share` of the time and at least `min_wins` times, and
    whose wins are spread over the members more evenly, and change hands between
    consecutive tenders more often, than when each win is given at random to one of the
    members who bid in that tender (permutation p-value at most `max_p`).

    ## Why it is a risk
    Bid rotation (轮流坐庄) is the classic way a ring shares the work: each member's turn
    comes round, the others bid covers. Members that meet in competitive tenders would
    beat one another at random; in a rotation the winner is the one whose turn it is, so
    the wins are even and alternate (OECD 2009; Porter 2005; 招标投标法实施条例 art. 39).

    ## Method
    The group's joint tenders with a recorded winner are ordered by date
    (`tenders.published_at`, else `bid_deadline`; ties by id). Over the ones a member won
    the statistic is evenness + turn-taking. Evenness: the entropy of the members' win
    counts over log(number of members), 1 when every member won as often. Turn-taking: the
    mean of two shares, 1 for a strict rotation: for each win of a member that won before,
    the member wins since its previous one, capped at the number of members and divided by
    it (a member waits for the others' turns); and the share of consecutive wins where the
    next winner is the one that most often follows this winner (the turns go round in a
    fixed order). Without dates turn-taking is left out. Null: each member win is given to
    a member drawn uniformly among the members with a valid bid in that tender,
    `permutations` times (seeded numpy generator, vectorised over replicates), which keeps
    who was there and when; p = (1 + replicates scoring at least as high) / (1 +
    `permutations`); score = 1 - p, flagged when p <= `max_p` and members won at least
    `min_wins` and `min_win_share` of the joint tenders. A group is assessed when it has
    `min_tenders` joint tenders with a winner.
    Default weight 1.5, as identical-bids and bid-pattern: turn-taking among firms that
    meet beyond chance is the pattern of the classic scheme itself, tested against the
    firms' own presence, though less direct than one hand behind the bids (shared-traces,
    2.0).

    ## Evidence
    Members; the tenders members won, in order, and their winners; joint tenders and
    member wins; wins per member; evenness, the share of consecutive wins where the winner
    changed, turn-taking, and the null means; the p-value; the median winning bid /
    estimate in member wins (rotating winners bid high, as no member undercuts the one
    whose turn it is).

    ## Parameters
    - `min_members`: fewest firms in a candidate group.
    - `min_pair_tenders`: fewest tenders two firms must share before their pair is tested.
    - `edge_p`: Poisson p-value below which a pair of firms meets more than chance and
      links a candidate group.
    - `group_fdr`: false discovery rate of candidate groups, against the same search on
      data with bidders shuffled within markets.
    - `min_tenders`: fewest joint tenders with a known winner for a group to be assessed.
    - `min_wins`: fewest joint tenders won by a member.
    - `min_win_share`: lowest share of joint tenders won by a member.
    - `max_p`: largest permutation p-value that is flagged.
    - `permutations`: random reassignments of the wins (seeded, so results repeat).

    ## Known false positives
    Few members that each win their own kind of work (a bridge specialist and a road
    specialist) alternate without colluding; capacity limits make a firm that just won a
    contract bid less keenly for the next. Expect about `max_p` of the assessed groups to
    be flagged by chance.

    ## References
    - OECD (2009). Guidelines for fighting bid rigging in public procurement.
    - Porter, R. (2005). Detecting collusion. Review of Industrial Organization 26.
    - Ishii, R. (2009). Favor exchange in collusion: empirical study of repeated
      procurement auctions in Japan. IJIO 27.
    - 中华人民共和国招标投标法实施条例 (2011), art. 39.
    """

    min_tenders: int = 5
    min_wins: int = 4
    min_win_share: float = 0.5
    max_p: float = 0.01
    permutations: int = 199

    name: ClassVar[str] = "bid-rotation"
    subject: ClassVar[SubjectKind] = "group"
    requires: ClassVar[frozenset[str]] = frozenset({"bids.firm_id", "bids.is_winner"})
    default_weight: ClassVar[float] = 1.5

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.min_tenders < 2:
            raise ValueError(f"min_tenders must be >= 2, got {self.min_tenders}")
        if self.min_wins < 2:
            raise ValueError(f"min_wins must be >= 2, got {self.min_wins}")
        if not 0 <= self.min_win_share <= 1:
            raise ValueError(f"min_win_share must be in [0, 1], got {self.min_win_share}")
        if not 0 < self.max_p <= 1:
            raise ValueError(f"max_p must be in (0, 1], got {self.max_p}")
        validate_permutations(self.permutations)

    def detect(self, data: Dataset) -> Findings:
        if not data.has("bids.is_winner"):
            raise NotComputable("needs winners (bids.is_winner)")
        c = self.candidates(data)
        dated = [col for col in ("published_at", "bid_deadline") if data.has(f"tenders.{col}")]
        time_column = ", else ".join(dated) if dated else None
        when = pl.coalesce(dated) if dated else pl.lit(None, dtype=pl.Datetime("us"))
        codes = c.tenders.select("_t", "tender_id").join(
            data.tenders.select("tender_id", when.alias("_when")), on="tender_id", how="left"
        )
        bids = data.bids.select(
            "tender_id",
            "firm_id",
            pl.col("is_winner").fill_null(False).alias("_won"),
            (pl.col("status").is_null() | (pl.col("status") == "valid")).alias("_valid"),
            "amount",
        )
        decided = (
            (bids.filter(pl.col("_won")).select("tender_id").join(codes, on="tender_id"))
            .select("_t")
            .unique()
        )
        # Members' bids first, then their tenders' codes: most bids are not members'.
        member_bids = (
            bids.join(member_firms(c), on="firm_id")
            .join(codes, on="tender_id")
            .join(c.membership, on="_f")
            .join(c.together.select("_g", "_t"), on=["_g", "_t"])
            .join(decided, on="_t")
        )
        units = (
            member_bids.group_by("_g", "_t")
            .agg(
                pl.col("_f").filter("_won").min().alias("_winner"),
                pl.col("amount").filter("_won").max().alias("_amount"),
            )
            .join(codes, on="_t")
            .sort("_g", "_when", "tender_id", nulls_last=True)
        )
        per_group = (
            units.group_by("_g", maintain_order=True)
            .agg(
                pl.len().cast(pl.Int64).alias("joint"),
                pl.col("_winner").is_not_null().sum().cast(pl.Int64).alias("wins"),
            )
            .filter(pl.col("joint") >= self.min_tenders)
        )
        if per_group.height == 0:
            raise NotComputable(
                f"no group of firms that meet beyond chance has {self.min_tenders}+ joint "
                f"tenders with a winner ({c.groups.height} candidate groups)"
            )
        testable = per_group.filter(
            (pl.col("wins") >= self.min_wins)
            & (pl.col("wins") >= self.min_win_share * pl.col("joint"))
        )
        won = units.filter(pl.col("_winner").is_not_null()).join(
            testable.select("_g"), on="_g", maintain_order="left"
        )
        slots = c.membership.with_columns(
            pl.col("_f").rank("ordinal").over("_g").cast(pl.Int64).sub(1).alias("_slot")
        )
        present = (
            member_bids.filter("_valid")
            .select("_g", "_t", "_f")
            .unique()
            .join(slots, on=["_g", "_f"])
            .join(won.select("_g", "_t"), on=["_g", "_t"])
            .sort("_g", "_t", "_slot")
            .group_by("_g", "_t", maintain_order=True)
            .agg(pl.col("_slot").alias("_present"))
        )
        won = (
            won.join(present, on=["_g", "_t"], how="left", maintain_order="left")
            .join(
                slots.rename({"_f": "_winner", "_slot": "_won_slot"}),
                on=["_g", "_winner"],
                maintain_order="left",
            )
            .with_columns(
                # The winner is among those present even when its bid's status says otherwise.
                pl.when(pl.col("_present").list.contains(pl.col("_won_slot")))
                .then(pl.col("_present"))
                .otherwise(pl.concat_list("_present", "_won_slot").list.unique().list.sort())
                .fill_null(pl.concat_list("_won_slot"))
                .alias("_present")
            )
        )
        tested = self._test(won, c.groups, timed=time_column is not None)
        ordered = won.join(
            c.firms.rename({"_f": "_winner", "firm_id": "_winner_id"}),
            on="_winner",
            maintain_order="left",
        ).join(
            data.tenders.select("tender_id", "estimate"),
            on="tender_id",
            how="left",
            maintain_order="left",
        )
        details = ordered.group_by("_g", maintain_order=True).agg(
            pl.col("_winner_id").alias("sequence"),
            (pl.col("_winner_id") != pl.col("_winner_id").shift(1)).mean().alias("changes"),
            pl.col("tender_id").alias("won_tenders"),
            (pl.col("_amount") / pl.col("estimate")).median().alias("win_ratio"),
        )
        wins_by_member = (
            ordered.group_by("_g", "_winner_id")
            .agg(pl.len().cast(pl.Int64).alias("wins"))
            .sort("_g", "wins", "_winner_id", descending=[False, True, False])
            .group_by("_g", maintain_order=True)
            .agg(pl.struct(pl.col("_winner_id").alias("firm"), "wins").alias("wins_by_member"))
        )
        frame = (
            c.groups.join(per_group, on="_g")
            .join(tested, on="_g")
            .join(details, on="_g")
            .join(wins_by_member, on="_g")
            .filter(pl.col("p") <= self.max_p)
            .sort("_g")
        )
        turn_text = (
            pl.when(pl.col("turn_rate").is_not_null())
            .then(
                pl.format(
                    ", the winner changing in {}% of consecutive wins (turn-taking {} against "
                    "{} by chance)",
                    sig(pl.col("changes") * 100, 2),
                    sig(pl.col("turn_rate"), 2),
                    sig(pl.col("turn_null"), 2),
                )
            )
            .otherwise(pl.lit(" (no dates: turns not judged)"))
        )
        return build(
            frame,
            detector=self.name,
            kind="group",
            subject_id=pl.col("group_id"),
            score=1 - pl.col("p"),
            value=pl.col("p"),
            threshold=pl.lit(self.max_p),
            message=pl.format(
                "members won {} of the {} tenders where they met, {} of {} members winning "
                "(evenness {}){}; permutation p {} <= {}",
                "wins",
                "joint",
                pl.col("wins_by_member").list.len(),
                "size",
                sig(pl.col("evenness"), 2),
                turn_text,
                sig(pl.col("p"), 2),
                pl.lit(self.max_p),
            ),
            evidence={
                "members": pl.col("members"),
                "tenders": pl.col("won_tenders"),
                "joint_tenders": pl.col("joint"),
                "member_wins": pl.col("wins"),
                "wins_by_member": pl.col("wins_by_member"),
                "winners_in_order": pl.col("sequence"),
                "ordered_by": pl.lit(time_column, dtype=pl.String),
                "evenness": pl.col("evenness"),
                "evenness_by_chance": pl.col("evenness_null"),
                "winner_changes": pl.when(pl.col("turn_rate").is_not_null()).then("changes"),
                "turn_taking": pl.col("turn_rate"),
                "turn_taking_by_chance": pl.col("turn_null"),
                "p_value": pl.col("p"),
                "median_winning_bid_to_estimate": pl.col("win_ratio"),
            },
            firms=pl.col("members"),
            assessed=c.groups.join(per_group, on="_g").get_column("group_id"),
            notes=market_notes(data),
        )

    def _test(self, won: pl.DataFrame, groups: pl.DataFrame, *, timed: bool) -> pl.DataFrame:
        """_g, evenness, turn_rate, their null means, p: the permutation test per group."""
        schema = {
            "_g": pl.UInt32,
            "evenness": pl.Float64,
            "turn_rate": pl.Float64,
            "evenness_null": pl.Float64,
            "turn_null": pl.Float64,
            "p": pl.Float64,
        }
        if won.height == 0:
            return pl.DataFrame(schema=schema)
        ids = won.get_column("_g").unique(maintain_order=True)
        code = won.get_column("_g").rank("dense").cast(pl.Int64).to_numpy() - 1
        n_groups = int(code.max()) + 1
        size = (
            groups.join(ids.to_frame(), on="_g", maintain_order="right")
            .get_column("size")
            .to_numpy()
        )
        actual = won.get_column("_won_slot").to_numpy()
        present = won.get_column("_present")
        counts = present.list.len().to_numpy().astype(np.int64)
        flat = present.explode().to_numpy().astype(np.int64)
        offset = np.cumsum(counts) - counts
        rng = np.random.default_rng(0)
        draws = np.empty((self.permutations + 1, code.size), dtype=np.int64)
        draws[0] = actual
        pick = np.floor(rng.random((self.permutations, code.size)) * counts).astype(np.int64)
        draws[1:] = flat[offset + np.minimum(pick, counts - 1)]
        evenness, turns = _statistics(draws, code, n_groups, size, timed=timed)
        stat = evenness + (turns if timed else 0.0)
        p = permutation_p(stat[0], stat[1:])
        return pl.DataFrame(
            {
                "_g": ids,
                "evenness": evenness[0],
                "turn_rate": turns[0] if timed else np.full(n_groups, np.nan),
                "evenness_null": evenness[1:].mean(axis=0),
                "turn_null": turns[1:].mean(axis=0) if timed else np.full(n_groups, np.nan),
                "p": p,
            },
            schema=schema,
        ).with_columns(pl.col("turn_rate", "turn_null").fill_nan(None))


def _statistics(
    slots: Array, group: Array, n_groups: int, size: Array, *, timed: bool
) -> tuple[Array, Array]:
    """Evenness and turn rate per replicate (rows of ``slots``) and group."""
    # Every replicate is worked out on its own: a few at a time, the (replicate, group,
    # slot) tables and per-win temporaries stay small enough for the cache, which is about
    # twice as fast as all replicates at once, and far less memory on large inputs.
    rows = max(1, (1 << 17) // max(slots.shape[1], n_groups * int(size.max()), 1))
    evenness = np.empty((slots.shape[0], n_groups))
    turns = np.empty((slots.shape[0], n_groups))
    for first in range(0, slots.shape[0], rows):
        block = slice(first, first + rows)
        evenness[block], turns[block] = _block_statistics(
            slots[block], group, n_groups, size, timed=timed
        )
    return evenness, turns


def _block_statistics(
    slots: Array, group: Array, n_groups: int, size: Array, *, timed: bool
) -> tuple[Array, Array]:
    """Evenness and turn rate per replicate (rows of ``slots``) and group."""
    replicates = slots.shape[0]
    width = int(size.max())
    keys = (np.arange(replicates)[:, None] * n_groups + group[None, :]) * width + slots
    counts = np.bincount(keys.ravel(), minlength=replicates * n_groups * width).reshape(
        replicates, n_groups, width
    )
    wins = counts.sum(axis=2, keepdims=True)
    share = counts / np.maximum(wins, 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        entropy = -np.where(share > 0, share * np.log(share), 0.0).sum(axis=2)
    evenness = entropy / np.log(size)[None, :]
    turns = np.zeros((replicates, n_groups))
    if timed:
        # Turn-taking: for each member win after that member's first, the number of member
        # wins since its previous one (1: it won twice running), capped at the number of
        # members and divided by it; 1 when every other member had its turn in between.
        who = group[None, :] * width + slots
        # A stable sort of small integers is a radix sort: far faster than on int64.
        if who.size and int(who.max()) < 1 << 16 and int(who.min()) >= 0:
            who = who.astype(np.uint16)
        order = np.argsort(who, axis=1, kind="stable")
        ranked = np.take_along_axis(who, order, axis=1)
        repeat = ranked[:, 1:] == ranked[:, :-1]
        gap = (order[:, 1:] - order[:, :-1]).astype(float)
        owner = group[order[:, 1:]]
        members = size[owner]
        wait = np.minimum(gap, members) / members
        keys2 = np.arange(replicates)[:, None] * n_groups + owner
        total = np.bincount(
            keys2.ravel(), weights=(wait * repeat).ravel(), minlength=replicates * n_groups
        ).reshape(replicates, n_groups)
        repeats = np.bincount(
            keys2.ravel(), weights=repeat.ravel(), minlength=replicates * n_groups
        ).reshape(replicates, n_groups)
        turns = np.where(repeats > 0, total / np.maximum(repeats, 1), 1.0)
        # Order: the share of consecutive member wins where the next winner is the one
        # that most often follows this winner (1 when the turns go round in a fixed order).
        follows = group[1:] == group[:-1]
        # Each group's (from, to) table is size x size cells of one flat array per
        # replicate, so that one large group does not widen every other group's table.
        cells = size * size
        block = np.cumsum(cells) - cells
        per_replicate = int(cells.sum())
        g = group[1:]
        cell = block[g][None, :] + slots[:, :-1] * size[g][None, :] + slots[:, 1:]
        diagonal = slots[:, :-1] == slots[:, 1:]  # winning twice running is no move
        weight = np.where(diagonal, 0.0, np.broadcast_to(follows, cell.shape))
        moves = np.bincount(
            (np.arange(replicates)[:, None] * per_replicate + cell).ravel(),
            weights=weight.ravel(),
            minlength=replicates * per_replicate,
        )
        # The most frequent next winner of each (replicate, group, from): a max over each
        # row of ``size`` cells; rows are contiguous, so reduceat takes them in one pass.
        row_group = np.repeat(np.arange(n_groups), size)
        row_from = np.arange(row_group.size) - np.repeat(np.cumsum(size) - size, size)
        starts = block[row_group] + row_from * size[row_group]
        starts = (np.arange(replicates)[:, None] * per_replicate + starts[None, :]).ravel()
        best = np.maximum.reduceat(moves, starts).reshape(replicates, row_group.size)
        most = np.bincount(
            (np.arange(replicates)[:, None] * n_groups + row_group[None, :]).ravel(),
            weights=best.ravel(),
            minlength=replicates * n_groups,
        ).reshape(replicates, n_groups)
        steps = np.bincount(group[1:], weights=follows, minlength=n_groups)
        order_share = most / np.maximum(steps, 1)[None, :]
        turns = (turns + order_share) / 2
    return evenness, turns
