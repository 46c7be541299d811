"""A group's cover bids move the benchmark of average-bid and scoring awards."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import numpy.typing as npt
import polars as pl
from scipy import stats

from bidwatch.detectors._base import NotComputable, priced_bids, sig
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
RULES = ("average_bid", "scoring")
# Upper ends of the bid-count bands of ``bid_count_band`` (2, 3-4, 5-7, 8-11, 12+).
BANDS = np.array([2, 4, 7, 11])


@dataclass(frozen=True)
class BenchmarkInfluence(GroupSearch):
    """Under average-bid and scoring awards, a group's cover bids move the benchmark, and
    who sits closest to it, more than the same number of other bids do.

    ## What it flags
    Candidate groups (communities of firms that meet beyond chance, as in
    `suspected-groups`) with at least `min_tenders` average-bid or scoring tenders where two
    or more members made valid priced bids, whose cover bids (the members' bids other than
    the winning one) shift the benchmark, and change which remaining bid is closest to it,
    more than removing as many random bids from comparable tenders, at permutation p-value
    at most `max_p`.

    ## Why it is a risk
    Where the award goes to the bid closest to a benchmark computed from the bids (基准价法:
    the mean of valid bids, often times a factor) or where the lowest or mean bid sets
    every price score (综合评分法), bids that cannot win still decide who does. Conley &
    Decarolis (2016) found groups of firms in Italian average-bid auctions placing
    coordinated bids to steer the trimmed mean towards a member's bid; rings in scoring
    tenders place covers well above the designated winner so that its price scores best.

    ## Method
    Tenders whose award rule (`tenders.award_method`) is average_bid or scoring. In a
    group's tender with n valid priced bids of mean B, removing the members' bids other
    than the winner's (r covers) leaves the mean B'; the shift is |B - B'| / B. For
    average-bid tenders the winner part asks whether the bid closest to B among the bids
    left differs from the one closest to B'. Null: for each such tender, `permutations`
    times (seeded numpy generator, vectorised over replicates), a random comparable tender
    (same award rule and number of bids; coarser when fewer than `min_comparable` qualify)
    loses r random bids other than its winner and gives the same two measures. Each
    observed measure is ranked among its own replicates (mid-ranks, as a percentile); the
    group's statistic is the mean percentile over its tenders and measures, and every
    replicate's is formed the same way; p = (1 + replicates at least as high) / (1 +
    `permutations`); score = 1 - p. The comparison uses other tenders, not the non-member
    bids of the same tender, because rings often fill a tender alone and leave no other
    bids to remove.
    Subject: the group, since the evidence is the pattern over its tenders (one tender's
    outlying bids prove little); each tender where two or more members bid inherits part
    of the group's risk, which brings investigators to the tenders.
    Default weight 1.0: pivotal cover bids are strong evidence where the rule makes them
    pay, but honest outliers move a mean too, and average-bid and scoring tenders are
    already graded by their price screens.

    ## Evidence
    Members; the tenders; the mean benchmark shift and the mean shift of random removals;
    the number of average-bid tenders where the closest bid changes, and the number
    expected; the p-value.

    ## Parameters
    - `min_members`: fewest firms in a candidate group.
    - `min_pair_tenders`: fewest tenders two firms must share before their pair is tested.
    - `edge_p`: Poisson p-value below which a pair of firms meets more than chance and
      links a candidate group.
    - `group_fdr`: false discovery rate of candidate groups, against the same search on
      data with bidders shuffled within markets.
    - `min_tenders`: fewest average-bid or scoring tenders with two or more member bids
      for a group to be assessed.
    - `min_comparable`: fewest comparable tenders to draw from before a coarser comparison
      is used.
    - `max_p`: largest permutation p-value that is flagged.
    - `permutations`: random removals per tender (seeded, so results repeat).

    ## Known false positives
    Members whose honest prices are far from the others' (a firm with a different
    technology, a bidder who misread the works) move the mean as covers do; rules that
    trim extreme bids before averaging weaken the effect this measures on the untrimmed
    mean. Expect about `max_p` of the assessed groups to be flagged by chance.

    ## References
    - Conley, T. & Decarolis, F. (2016). Detecting bidders groups in collusive auctions.
      AEJ: Microeconomics 8(2).
    - Decarolis, F. (2018). Comparing public procurement auctions. International Economic
      Review 59(2).
    - 评标委员会和评标方法暂行规定 (2001, rev. 2013), arts. 29-31 (经评审的最低投标价法,
      综合评估法).
    """

    min_tenders: int = 3
    min_comparable: int = 20
    max_p: float = 0.01
    permutations: int = 199

    name: ClassVar[str] = "benchmark-influence"
    subject: ClassVar[SubjectKind] = "group"
    requires: ClassVar[frozenset[str]] = frozenset(
        {"bids.firm_id", "bids.amount", "tenders.award_method"}
    )
    default_weight: ClassVar[float] = 1.0

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.min_tenders < 1:
            raise ValueError(f"min_tenders must be >= 1, got {self.min_tenders}")
        if self.min_comparable < 1:
            raise ValueError(f"min_comparable must be >= 1, got {self.min_comparable}")
        if not 0 < self.max_p <= 1:
            raise ValueError(f"max_p must be in (0, 1], got {self.max_p}")
        validate_permutations(self.permutations)

    def detect(self, data: Dataset) -> Findings:
        ruled = data.tenders.filter(pl.col("award_method").is_in(RULES)).select(
            "tender_id", pl.col("award_method").alias("_rule")
        )
        if ruled.height == 0:
            raise NotComputable("no tender is awarded by average_bid or scoring")
        c = self.candidates(data)
        bids = _bids(data, ruled)
        if bids.height == 0:
            raise NotComputable("no average-bid or scoring tender has two or more valid bids")
        member = (
            bids.join(member_firms(c), on="firm_id")
            .join(c.tenders.select("_t", "tender_id"), on="tender_id")
            .join(c.membership, on="_f")
            .with_columns(pl.len().over("_g", "tender_id").alias("_m"))
            .filter(pl.col("_m") >= 2)
        )
        units = (
            member.group_by("_g", "tender_id")
            .agg(
                (~pl.col("_keep")).sum().cast(pl.Int64).alias("r"),
            )
            .join(_tenders(bids), on="tender_id")
            .filter((pl.col("r") >= 1) & (pl.col("n") - pl.col("r") >= 1))
            .with_columns(pl.len().over("_g").alias("_units"))
            .filter(pl.col("_units") >= self.min_tenders)
            .sort("_g", "tender_id")
        )
        if units.height == 0:
            raise NotComputable(
                f"no group of firms that meet beyond chance bids with two or more members in "
                f"{self.min_tenders}+ average-bid or scoring tenders ({c.groups.height} "
                "candidate groups)"
            )
        tested = self._test(bids, member, units)
        frame = (
            c.groups.join(tested, on="_g")
            .join(
                units.group_by("_g", maintain_order=True).agg(
                    pl.col("tender_id").alias("tenders"),
                    (pl.col("_rule") == "average_bid").sum().cast(pl.Int64).alias("average"),
                ),
                on="_g",
            )
            .sort("_g")
        )
        flagged = frame.filter(pl.col("p") <= self.max_p)
        return build(
            flagged,
            detector=self.name,
            kind="group",
            subject_id=pl.col("group_id"),
            score=1 - pl.col("p"),
            value=pl.col("p"),
            threshold=pl.lit(self.max_p),
            message=pl.format(
                "removing members' cover bids moves the benchmark by {}% on average over {} "
                "average-bid and scoring tenders, against {}% for as many random bids{}; "
                "p {} <= {}",
                sig(pl.col("shift") * 100, 2),
                pl.col("tenders").list.len(),
                sig(pl.col("shift_null") * 100, 2),
                pl.when(pl.col("average") > 0)
                .then(
                    pl.format(
                        "; the closest bid changes in {} of {} average-bid tenders ({} expected)",
                        "changed",
                        "average",
                        sig(pl.col("changed_null"), 2),
                    )
                )
                .otherwise(pl.lit("")),
                sig(pl.col("p"), 2),
                pl.lit(self.max_p),
            ),
            evidence={
                "members": pl.col("members"),
                "tenders": pl.col("tenders"),
                "mean_benchmark_shift": pl.col("shift"),
                "mean_shift_of_random_bids": pl.col("shift_null"),
                "average_bid_tenders": pl.col("average"),
                "closest_bid_changes": pl.col("changed"),
                "closest_bid_changes_by_chance": pl.col("changed_null"),
                "p_value": pl.col("p"),
            },
            firms=pl.col("members"),
            assessed=frame.get_column("group_id"),
            notes=market_notes(data),
        )

    def _test(self, bids: pl.DataFrame, member: pl.DataFrame, units: pl.DataFrame) -> pl.DataFrame:
        """_g, shift, shift_null, changed, changed_null, p."""
        pool = _Pool.build(bids)
        first, count, entry = pool.comparable(units, self.min_comparable)
        rng = np.random.default_rng(0)
        r = units.get_column("r").to_numpy().astype(np.int64)
        average = (units.get_column("_rule") == "average_bid").to_numpy()
        # Observed: the unit's own tender with the members' covers removed.
        own = pool.index_of(units.get_column("tender_id"))
        covers = (
            member.filter(~pl.col("_keep"))
            .join(units.select("_g", "tender_id").with_row_index("_u"), on=["_g", "tender_id"])
            .select("_u", "_pos")
        )
        shift_obs, changed_obs = pool.measures(
            own[None, :],
            r,
            average,
            removed=(covers["_u"].to_numpy(), covers["_pos"].to_numpy()),
        )
        units_n = r.size
        shift_null = np.empty((self.permutations, units_n))
        changed_null = np.empty((self.permutations, units_n))
        chunk = max(1, 1_000_000 // max(int(pool.n[own].sum()), 1))
        for lo in range(0, self.permutations, chunk):  # blocks of replicates bound the memory
            reps = min(chunk, self.permutations - lo)
            drawn = entry[first + np.floor(rng.random((reps, units_n)) * count).astype(np.int64)]
            offset = rng.random((reps, units_n))
            s, ch = pool.measures(drawn, r, average, offset=offset)
            shift_null[lo : lo + reps], changed_null[lo : lo + reps] = s, ch
        # Each unit's measures as percentiles among its own replicates (mid-ranks).
        shift_pct = _percentiles(np.vstack([shift_obs, shift_null]))
        # Closest-bid changes count in average-bid tenders only (weight 0 elsewhere).
        change_pct = np.zeros((self.permutations + 1, units_n))
        if average.any():
            change_pct[:, average] = _percentiles(
                np.vstack([changed_obs[:, average], changed_null[:, average]])
            )
        weight_change = average.astype(float)
        code = units.get_column("_g").rank("dense").cast(pl.Int64).to_numpy() - 1
        n_groups = int(code.max()) + 1
        reps_all = self.permutations + 1
        keys = (np.arange(reps_all)[:, None] * n_groups + code[None, :]).ravel()
        items = np.bincount(code, weights=1.0 + weight_change, minlength=n_groups)
        total = np.bincount(
            keys,
            weights=(shift_pct + change_pct * weight_change).ravel(),
            minlength=reps_all * n_groups,
        ).reshape(reps_all, n_groups)
        stat = total / items
        p = permutation_p(stat[0], stat[1:])

        def mean_of(values: Array, weights: Array | None = None) -> Array:
            w = np.ones(units_n) if weights is None else weights
            out: Array = np.bincount(code, weights=values * w, minlength=n_groups)
            return out

        n_units = np.bincount(code, minlength=n_groups)
        return pl.DataFrame(
            {
                "_g": units.get_column("_g").unique(maintain_order=True),
                "shift": mean_of(shift_obs[0]) / n_units,
                "shift_null": mean_of(shift_null.mean(axis=0)) / n_units,
                "changed": mean_of(changed_obs[0], weight_change).astype(np.int64),
                "changed_null": mean_of(changed_null.mean(axis=0), weight_change),
                "p": p,
            }
        )


def _percentiles(values: Array) -> Array:
    """Mid-rank percentile of each value within its column."""
    ranks = stats.rankdata(values, method="average", axis=0)
    out: Array = (ranks - 0.5) / values.shape[0]
    return out


def _bids(data: Dataset, ruled: pl.DataFrame) -> pl.DataFrame:
    """Valid priced bids of average-bid and scoring tenders with two or more: tender_id,
    firm_id, amount, _keep (the winning bid, which is never removed), _pos (the bid's place
    in its tender: removable bids first, in a fixed random order, then the winner)."""
    bids = (
        priced_bids(data)
        .filter(pl.col("amount") > 0)
        .select("tender_id", "firm_id", "amount", pl.col("is_winner").fill_null(False))
        .join(ruled, on="tender_id")
        .filter(pl.len().over("tender_id") >= 2)
        .with_columns(
            pl.col("tender_id").rank("dense").cast(pl.Int64).alias("_tc"),
        )
    )
    # The firms' dense ranks, from their sorted distinct ids: ranking every bid's long id
    # string costs several times more. A bid without a firm gets none, as rank gives.
    firms = (
        bids.select(pl.col("firm_id").drop_nulls().unique().sort())
        .with_row_index("_fc", offset=1)
        .with_columns(pl.col("_fc").cast(pl.Int64))
    )
    bids = bids.join(firms, on="firm_id", how="left", maintain_order="left").sort(
        "_tc", "amount", "_fc", "is_winner", nulls_last=True
    )
    # One kept bid per tender: the winning one (the lowest if several are marked).
    keep = pl.col("is_winner") & (pl.col("is_winner").cum_sum().over("_tc") == 1)
    rng = np.random.default_rng(1)
    bids = bids.with_columns(keep.alias("_keep"), pl.Series("_k", rng.random(bids.height)))
    return (
        bids.sort("_tc", "_keep", "_k")
        .with_columns(pl.int_range(pl.len()).over("_tc").alias("_pos"))
        .drop("_k", "_fc")
    )


def _tenders(bids: pl.DataFrame) -> pl.DataFrame:
    return bids.group_by("tender_id").agg(
        pl.len().cast(pl.Int64).alias("n"), pl.col("_rule").first()
    )


@dataclass(frozen=True)
class _Pool:
    """Every average-bid and scoring tender's bids, laid out tender by tender (removable
    bids first, then the winner), with its comparison keys."""

    tender_id: pl.Series
    amount: Array
    start: Array
    n: Array
    removable: Array
    keys: pl.DataFrame  # per tender: _rule
    # Per tender the sum of its bids (added in layout order) and their mean; per bid its
    # distance to that mean. They do not depend on which bids a replicate removes.
    total: Array
    before: Array
    gap: Array

    @classmethod
    def build(cls, bids: pl.DataFrame) -> _Pool:
        tc = bids.get_column("_tc").to_numpy()
        pos = bids.get_column("_pos").to_numpy()
        # _bids lays them out so already: no sort then.
        laid_out = bool(((tc[1:] > tc[:-1]) | ((tc[1:] == tc[:-1]) & (pos[1:] > pos[:-1]))).all())
        ordered = bids if laid_out else bids.sort("_tc", "_pos")
        per = ordered.group_by("_tc", maintain_order=True).agg(
            pl.col("tender_id").first(),
            pl.len().cast(pl.Int64).alias("n"),
            (~pl.col("_keep")).sum().cast(pl.Int64).alias("removable"),
            pl.col("_rule").first(),
        )
        n = per.get_column("n").to_numpy()
        amount = ordered.get_column("amount").to_numpy()
        owner = np.repeat(np.arange(n.size), n)
        total = np.bincount(owner, weights=amount, minlength=n.size)
        before = total / n
        return cls(
            tender_id=per.get_column("tender_id"),
            amount=amount,
            start=np.cumsum(n) - n,
            n=n,
            removable=per.get_column("removable").to_numpy(),
            keys=per.select("_rule"),
            total=total,
            before=before,
            gap=np.abs(amount - before[owner]),
        )

    def index_of(self, tender_id: pl.Series) -> Array:
        lookup = self.tender_id.to_frame().with_row_index("_i")
        out: Array = (
            tender_id.to_frame("tender_id")
            .join(lookup, on="tender_id", how="left", maintain_order="left")
            .get_column("_i")
            .to_numpy()
            .astype(np.int64)
        )
        return out

    def comparable(self, units: pl.DataFrame, min_comparable: int) -> tuple[Array, Array, Array]:
        """For each unit the first entry of its comparable tenders and how many follow that
        can lose r bids and keep one (same rule and number of bids, else same rule and
        bid-count band, else same rule, else any), and the tender of every entry."""
        capacity = np.minimum(self.removable, self.n - 1)
        tenders = self.n.size
        # Strata as integers (only the grouping matters: the draws read tenders through
        # ``entry``, whatever the place of a stratum): level 0 rule x number of bids,
        # level 1 rule x bid-count band, level 2 rule, level 3 everything.
        unit_n = units.get_column("n").to_numpy().astype(np.int64)
        widest = int(max(self.n.max(initial=0), unit_n.max(initial=0))) + 1
        bands = len(BANDS) + 1
        offsets = np.cumsum([0, 2 * widest, 2 * bands, 2])

        def strata(rule: Array, n: Array) -> list[Array]:
            band = np.searchsorted(BANDS, n, side="left")
            return [
                offsets[0] + rule * widest + n,
                offsets[1] + rule * bands + band,
                offsets[2] + rule,
                np.full(n.size, offsets[3], dtype=np.int64),
            ]

        rule = (self.keys.get_column("_rule") == RULES[1]).to_numpy().astype(np.int64)
        s_all = np.concatenate(strata(rule, self.n))
        cap_all = np.tile(capacity, 4)
        i_all = np.tile(np.arange(tenders, dtype=np.int64), 4)
        # Sorted by (stratum, capacity, tender) as one 64-bit key: every key differs.
        laid = np.argsort((s_all * (int(cap_all.max(initial=0)) + 1) + cap_all) * tenders + i_all)
        combined = s_all[laid] * (1 << 20) + cap_all[laid]
        unit_rule = (units.get_column("_rule") == RULES[1]).to_numpy().astype(np.int64)
        r = units.get_column("r").to_numpy().astype(np.int64)
        first = np.zeros(units.height, dtype=np.int64)
        count = np.zeros(units.height, dtype=np.int64)
        chosen = np.zeros(units.height, dtype=bool)
        for level, s in enumerate(strata(unit_rule, unit_n)):  # each vectorised over units
            lo = np.searchsorted(combined, s * (1 << 20) + r)
            hi = np.searchsorted(combined, (s + 1) * (1 << 20))
            enough = (hi - lo >= min_comparable) if level < 3 else (hi > lo)
            ok = ~chosen & enough
            first[ok], count[ok] = lo[ok], hi[ok] - lo[ok]
            chosen |= ok
        entry: Array = i_all[laid]
        return first, np.maximum(count, 1), entry

    def measures(
        self,
        tender: Array,
        r: Array,
        judged: Array,
        *,
        offset: Array | None = None,
        removed: tuple[Array, Array] | None = None,
    ) -> tuple[Array, Array]:
        """Benchmark shift and whether the closest remaining bid changes, per replicate
        (rows) and unit (columns) of ``tender`` indices: with ``removed`` (unit, place) the
        listed bids go; otherwise r removable bids from a random ``offset``, cyclically.
        Whether the closest bid changes is worked out for the ``judged`` units only (False
        for the others)."""
        reps, units = tender.shape
        seg = self.n[tender]
        base = self.start[tender]
        width = int(seg.max()) if seg.size else 0
        # The removed amounts add up in the tenders' bid order, as a per-bid bincount adds
        # them (every bit alike), but a step at a time over all replicates: the k-th bid
        # (given removals) or the i-th removed bid (random removals), with no array per bid.
        lost = np.zeros((reps, units))
        if removed is not None:
            marks = np.zeros((units, width), dtype=bool)
            marks[removed[0], removed[1]] = True
            kept = seg - marks.sum(axis=1)[None, :]
            for k in range(width):
                lost += self.amount[base + np.minimum(k, seg - 1)] * marks[None, :, k]
        else:
            assert offset is not None
            rem = self.removable[tender]
            start_pos = np.floor(offset * rem).astype(np.int64)
            rr = np.broadcast_to(r, (reps, units))
            # The window takes min(r, removable) bids from start_pos on, cyclically within
            # the removable ones: in bid order, the `wrap` bids from 0, then those from
            # start_pos.
            take = np.minimum(rr, rem)
            kept = seg - take
            wrap = np.maximum(start_pos + take - rem, 0)
            for i in range(int(r.max(initial=0))):
                # Every unit removes at least one bid: the first step takes them all.
                cols = slice(None) if i == 0 else np.flatnonzero(r > i)
                t_i, w_i = take[:, cols], wrap[:, cols]
                place = np.where(i < w_i, i, start_pos[:, cols] + (i - w_i))
                valid = i < t_i
                place = np.where(valid, place, 0)
                lost[:, cols] += self.amount[base[:, cols] + place] * valid
        total = self.total[tender]
        before = self.before[tender]
        after = (total - lost) / np.maximum(kept, 1)
        shift: Array = np.abs(before - after) / before
        # The closest bid only for the judged units (average-bid tenders): the others'
        # changes are never used, and this part is most of the work. Bid by bid, over the
        # judged units ordered by their largest tender, so that step k covers a prefix.
        changed = np.zeros((reps, units))
        judged_units = np.flatnonzero(judged)
        if judged_units.size:
            widest = seg[:, judged_units].max(axis=0)
            by_width = np.argsort(-widest, kind="stable")
            cols = judged_units[by_width]
            widest = widest[by_width]
            seg_j, base_j, after_j = seg[:, cols], base[:, cols], after[:, cols]
            if removed is None:
                rem_j, start_j, rr_j = rem[:, cols], start_pos[:, cols], rr[:, cols]
            m1 = np.full(seg_j.shape, np.inf)
            m2 = np.full(seg_j.shape, np.inf)
            distances = []
            for k in range(int(widest[0])):
                c = int(np.count_nonzero(widest > k))
                size = seg_j[:, :c]
                if removed is not None:
                    gone = np.broadcast_to(marks[cols[:c], k], size.shape)
                else:
                    # (k - start) mod rem without the division: where k < rem, k - start
                    # lies in (-rem, rem); elsewhere the bid is not removable anyway.
                    step = k - start_j[:, :c]
                    step += rem_j[:, :c] * (step < 0)
                    gone = (k < rem_j[:, :c]) & (step < rr_j[:, :c])
                inside = k < size
                left = inside & ~gone
                at = base_j[:, :c] + np.minimum(k, size - 1)
                d1 = np.where(left, self.gap[at], np.inf)
                d2 = np.where(left, np.abs(self.amount[at] - after_j[:, :c]), np.inf)
                np.minimum(m1[:, :c], d1, out=m1[:, :c])
                np.minimum(m2[:, :c], d2, out=m2[:, :c])
                distances.append((inside, d1, d2))
            both = np.zeros(seg_j.shape, dtype=bool)
            for inside, d1, d2 in distances:
                c = d1.shape[1]
                both[:, :c] |= inside & (d1 == m1[:, :c]) & (d2 == m2[:, :c])
            changed[:, cols] = ~both
        return shift, changed
