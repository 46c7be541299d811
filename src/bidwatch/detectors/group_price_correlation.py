"""Members' bids move together beyond what the size of the works explains."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import numpy.typing as npt
import polars as pl

from bidwatch.detectors._base import NotComputable, priced_bids, sig
from bidwatch.detectors._groups import (
    UNSTATED,
    GroupSearch,
    member_firms,
    permutation_p,
    validate_permutations,
)
from bidwatch.detectors._pairs import market_notes
from bidwatch.detectors._stats import bid_count_band
from bidwatch.findings import Findings, SubjectKind, build

if TYPE_CHECKING:
    from bidwatch.dataset import Dataset

Array = npt.NDArray[Any]

# Award rules are compared apart: covers are placed differently under each (beside the
# winner under lowest-price awards, to steer the price score or the benchmark otherwise).
RULE_CLASS = {"lowest_price": 0, UNSTATED: 0, "average_bid": 1, "scoring": 2}
ALL = 3
CELLS = 4
CELL_TEXT = {
    0: "lowest-price tenders",
    1: "average-bid tenders",
    2: "scoring tenders",
    3: "all tenders",
}


@dataclass(frozen=True)
class GroupPriceCorrelation(GroupSearch):
    """The bids of a group's members, once the size of the works is accounted for, rise and
    fall together from tender to tender far more than the bids of random pairs of bidders.

    ## What it flags
    Candidate groups (communities of firms that meet beyond chance, as in
    `suspected-groups`) with at least `min_tenders` joint tenders (two or more members with
    a valid priced bid) in which members' price residuals correlate more than those of
    random bidders of comparable tenders, at permutation p-value at most `max_p`.

    ## Why it is a risk
    Independent bidders price from their own costs: once the size of the works is taken
    out, what is left of one firm's bid says little about another's beyond the costs all
    bidders of a tender share. Cover bids are priced off the designated winner's bid (a
    few percent above it, or at a fixed pattern), so members' bids move together. Porter &
    Zona (1993) found the cartel's bids in Long Island highway tenders unrelated to cost
    where the others' were not; Bajari & Ye (2003) test that bids are independent once
    costs are controlled for.

    ## Method
    Residuals: log(bid) regressed (OLS) on log(size) over every valid priced bid of
    tenders with two or more, size being the estimate where given, else the tender's mean
    bid (then a tender only members bid in carries nothing: their residuals sum to zero).
    Each joint tender of a group contributes every ordered pair of members' residuals; the
    statistic is their Pearson correlation (an intra-class correlation: high when members
    bid high or low together). It is taken over the group's lowest-price (and unstated),
    average-bid and scoring tenders apart and over all of them, because covers are placed
    differently under each rule; each of these that holds `min_tenders` tenders is
    standardised by its own null (z), and the group's statistic is the largest z. Null:
    each joint tender with m member bids is replaced by m bids drawn at random from a
    random comparable tender with at least m bids (same award rule, category and bid-count
    band; coarser when fewer than `min_comparable` tenders qualify, down to the whole
    file), `permutations` times with a seeded numpy generator, vectorised over replicates.
    Random bidders share their tender's cost shock, so only co-movement beyond it counts.
    Every replicate takes its largest z the same way, so that choosing the rule is paid
    for: p = (1 + replicates at least as high) / (1 + `permutations`); score = 1 - p.
    Subject: the group, not its pairs, so that a ring's findings gather in one place.
    Default weight 1.0: prices that move together are supporting evidence (shared
    suppliers and price lists do it too), below the direct evidence of identical-bids and
    shared-traces.

    ## Evidence
    Members; the joint tenders used (those of the award rule with the strongest evidence,
    or all); that rule; the residual correlation, its mean under the null and the p-value;
    member bids and member pairs; the fitted slope and intercept.

    ## Parameters
    - `min_members`: fewest firms in a candidate group.
    - `min_pair_tenders`: fewest tenders two firms must share before their pair is tested.
    - `edge_p`: Poisson p-value below which a pair of firms meets more than chance and
      links a candidate group.
    - `group_fdr`: false discovery rate of candidate groups, against the same search on
      data with bidders shuffled within markets.
    - `min_tenders`: fewest joint tenders with two or more member bids for a group to be
      assessed.
    - `min_comparable`: fewest comparable tenders to draw random bidders from before a
      coarser comparison is used.
    - `max_p`: largest permutation p-value that is flagged.
    - `permutations`: random replacements (seeded, so results repeat).

    ## Known false positives
    Firms that share a supplier, a price list or an estimator's software price alike;
    costs particular to the works that the estimate misses (a remote site) move every bid
    of the tender, which the null covers only on average. Expect about `max_p` of the
    assessed groups to be flagged by chance.

    ## References
    - Porter, R. & Zona, J. D. (1993). Detection of bid rigging in procurement auctions.
      Journal of Political Economy 101(3).
    - Bajari, P. & Ye, L. (2003). Deciding between competition and collusion. Review of
      Economics and Statistics 85(4).
    """

    min_tenders: int = 5
    min_comparable: int = 20
    max_p: float = 0.01
    permutations: int = 199

    name: ClassVar[str] = "group-price-correlation"
    subject: ClassVar[SubjectKind] = "group"
    requires: ClassVar[frozenset[str]] = frozenset({"bids.firm_id", "bids.amount"})
    default_weight: ClassVar[float] = 1.0

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.min_tenders < 3:
            raise ValueError(f"min_tenders must be >= 3, got {self.min_tenders}")
        if self.min_comparable < 1:
            raise ValueError(f"min_comparable must be >= 1, got {self.min_comparable}")
        if not 0 < self.max_p <= 1:
            raise ValueError(f"max_p must be in (0, 1], got {self.max_p}")
        validate_permutations(self.permutations)

    def detect(self, data: Dataset) -> Findings:
        c = self.candidates(data)
        bids, slope, intercept = _residuals(data)
        if bids.height == 0:
            raise NotComputable("no tender has two or more valid priced bids")
        member = (
            bids.join(member_firms(c), on="firm_id")
            .join(c.tenders.select("_t", "tender_id"), on="tender_id")
            .join(c.membership, on="_f")
            .join(c.together.select("_g", "_t"), on=["_g", "_t"])
            .with_columns(pl.len().over("_g", "_t").alias("_m"))
            .filter(pl.col("_m") >= 2)
        )
        units = (
            member.group_by("_g", "_t")
            .agg(
                pl.len().alias("_m"),
                pl.col("tender_id").first(),
                pl.col("_stratum").first(),
            )
            .with_columns(pl.col("_stratum").struct.field("_rule").alias("_rule"))
            .with_columns(
                pl.col("_rule")
                .replace_strict(RULE_CLASS, default=0, return_dtype=pl.Int64)
                .alias("_class")
            )
            .filter(pl.len().over("_g") >= self.min_tenders)
            .sort("_g", "_t")
        )
        if units.height == 0:
            raise NotComputable(
                f"no group of firms that meet beyond chance has {self.min_tenders}+ joint "
                f"tenders with two or more priced member bids ({c.groups.height} candidate "
                "groups)"
            )
        member = member.join(units.select("_g", "_t"), on=["_g", "_t"]).sort("_g", "_t", "e")
        tested = self._test(bids, member, units)
        if tested.height == 0:
            raise NotComputable(
                "no candidate group's member bids could be compared with random bidders "
                "(no spread in the residuals of comparable tenders)"
            )
        used = (
            units.join(tested.select("_g", "_cell"), on="_g")
            .filter((pl.col("_cell") == ALL) | (pl.col("_class") == pl.col("_cell")))
            .sort("_g", "tender_id")
            .group_by("_g", maintain_order=True)
            .agg(pl.col("tender_id").alias("tenders"), pl.col("_m").sum().alias("bids"))
        )
        frame = c.groups.join(tested, on="_g").join(used, on="_g").sort("_g")
        flagged = frame.filter(pl.col("p") <= self.max_p)
        where = pl.col("_cell").replace_strict(CELL_TEXT, return_dtype=pl.String)
        return build(
            flagged,
            detector=self.name,
            kind="group",
            subject_id=pl.col("group_id"),
            score=1 - pl.col("p"),
            value=pl.col("p"),
            threshold=pl.lit(self.max_p),
            message=pl.format(
                "in {} members' size-adjusted bids correlate {} over {} joint tenders "
                "against {} for random bidders of comparable tenders (p {} <= {})",
                where,
                sig(pl.col("correlation"), 2),
                pl.col("tenders").list.len(),
                sig(pl.col("null_correlation"), 2),
                sig(pl.col("p"), 2),
                pl.lit(self.max_p),
            ),
            evidence={
                "members": pl.col("members"),
                "tenders": pl.col("tenders"),
                "award_rules": where,
                "member_bids": pl.col("bids"),
                "member_pairs": pl.col("pairs"),
                "correlation": pl.col("correlation"),
                "correlation_by_chance": pl.col("null_correlation"),
                "p_value": pl.col("p"),
                "model": pl.struct(
                    slope=pl.lit(slope),
                    intercept=pl.lit(intercept),
                    of=pl.lit("log bid on log size"),
                ),
            },
            firms=pl.col("members"),
            assessed=frame.get_column("group_id"),
            notes=market_notes(data),
        )

    def _test(self, bids: pl.DataFrame, member: pl.DataFrame, units: pl.DataFrame) -> pl.DataFrame:
        """_g, _cell (the award-rule class of the strongest evidence, or ALL), correlation
        and null_correlation there, pairs, p."""
        rng = np.random.default_rng(0)
        pool, first, count = _pools(bids, units, self.min_comparable)
        m = units.get_column("_m").to_numpy().astype(np.int64)
        ids = units.get_column("_g").unique(maintain_order=True)
        code = units.get_column("_g").rank("dense").cast(pl.Int64).to_numpy() - 1
        n_groups = int(code.max()) + 1
        n_cells = n_groups * CELLS
        rule_cell = code * CELLS + units.get_column("_class").to_numpy()
        all_cell = code * CELLS + ALL
        unit_of_bid = np.repeat(np.arange(m.size), m)
        chunk = max(1, 2_000_000 // max(unit_of_bid.size, 1))
        # The cells' bincount keys of a full block of replicates, made once: a shorter
        # block uses their first rows.
        rule_keys = _replicate_keys(rule_cell, n_cells, min(chunk, self.permutations))
        all_keys = _replicate_keys(all_cell, n_cells, min(chunk, self.permutations))

        def correlations(s1: Array, s2: Array) -> Array:
            size = s1.size
            out: Array = _cell_correlation(
                s1, s2, m, rule_cell, n_cells, keys=rule_keys[:size]
            ) + _cell_correlation(s1, s2, m, all_cell, n_cells, keys=all_keys[:size])
            return out

        observed = correlations(
            *_unit_sums(member.get_column("e").to_numpy()[None, :], unit_of_bid, m.size)
        )[0]
        null = np.empty((self.permutations, n_cells))
        # Units with more than j member bids, for each place j from 2 on (every unit has 2).
        wider = [np.flatnonzero(m > j) for j in range(2, int(m.max()))]
        pool_n, pool_start, pool_e = pool["n"], pool["start"], pool["e"]
        for lo in range(0, self.permutations, chunk):  # blocks of replicates bound the memory
            reps = min(chunk, self.permutations - lo)
            tender = first + np.floor(rng.random((reps, m.size)) * count).astype(np.int64)
            size = pool_n[tender]
            offset = np.floor(rng.random((reps, m.size)) * size).astype(np.int64)
            base = pool_start[tender]

            def drawn(j: int, offset: Array, size: Array, base: Array) -> Array:
                """The residual at place j of each unit's random run of bids."""
                place = offset + j
                # (offset + j) mod size: pool tenders have at least m bids, so one
                # subtraction wraps it, far cheaper than an integer division per bid.
                place -= size * (place >= size)
                if (place >= size).any():
                    place %= size
                out: Array = pool_e[base + place]
                return out

            # Sums over each unit's bids added place by place: the order, and so every
            # bit, of a per-unit bincount, without a key per bid.
            e0 = drawn(0, offset, size, base)
            e1 = drawn(1, offset, size, base)
            s1 = e0 + e1
            s2 = e0 * e0 + e1 * e1
            for j, cols in enumerate(wider, start=2):
                ej = drawn(j, offset[:, cols], size[:, cols], base[:, cols])
                s1[:, cols] += ej
                s2[:, cols] += ej * ej
            null[lo : lo + reps] = correlations(s1, s2)
        # Cells with enough tenders; each scored by its correlation standardised against
        # its own null, and the group by its strongest cell (the replicates likewise, so
        # that taking the maximum is paid for in the p-value).
        units_in = np.bincount(rule_cell, minlength=n_cells) + np.bincount(
            all_cell, minlength=n_cells
        )
        with np.errstate(divide="ignore", invalid="ignore"):
            mean = null.mean(axis=0)
            sd = null.std(axis=0)
            usable = (units_in >= self.min_tenders) & np.isfinite(observed)
            usable &= np.isfinite(null).all(axis=0) & (sd > 0)
            z_obs = np.where(usable, (observed - mean) / sd, -np.inf)
            z_null = np.where(usable[None, :], (null - mean) / sd, -np.inf)
        best = z_obs.reshape(n_groups, CELLS).argmax(axis=1)
        t_obs = z_obs.reshape(n_groups, CELLS).max(axis=1)
        t_null = z_null.reshape(-1, n_groups, CELLS).max(axis=2)
        ok = np.isfinite(t_obs)
        p = permutation_p(np.where(ok, t_obs, np.nan), np.where(ok[None, :], t_null, 0.0))
        chosen = np.arange(n_groups) * CELLS + best
        pairs = np.bincount(code, weights=m * (m - 1) / 2, minlength=n_groups)
        return (
            pl.DataFrame(
                {
                    "_g": ids,
                    "_cell": best.astype(np.int64),
                    "correlation": observed[chosen],
                    "null_correlation": mean[chosen],
                    "pairs": pairs.astype(np.int64),
                    "p": p,
                    "_ok": ok,
                }
            )
            .filter("_ok")
            .drop("_ok")
        )


def _unit_sums(e: Array, unit: Array, n_units: int) -> tuple[Array, Array]:
    """Per replicate (rows of ``e``) and unit: the sum and the sum of squares of residuals."""
    reps = e.shape[0]
    keys = (np.arange(reps)[:, None] * n_units + unit[None, :]).ravel()
    s1 = np.bincount(keys, weights=e.ravel(), minlength=reps * n_units)
    s2 = np.bincount(keys, weights=(e * e).ravel(), minlength=reps * n_units)
    return s1.reshape(reps, n_units), s2.reshape(reps, n_units)


def _replicate_keys(cell: Array, n_cells: int, reps: int) -> Array:
    """Bincount keys of (replicate, cell) for ``reps`` rows of units, row by row."""
    out: Array = (np.arange(reps)[:, None] * n_cells + cell[None, :]).ravel()
    return out


def _cell_correlation(
    s1: Array, s2: Array, m: Array, cell: Array, n_cells: int, *, keys: Array | None = None
) -> Array:
    """Pearson correlation over every ordered pair of residuals within a unit, pooled over
    the units of each cell (other cells get 0), per replicate. ``keys``: those of
    ``_replicate_keys`` for the rows of ``s1``, when already made."""
    reps = s1.shape[0]
    w = (m - 1).astype(float)
    n = np.bincount(cell, weights=m * w, minlength=n_cells)
    if keys is None:
        keys = _replicate_keys(cell, n_cells, reps)

    def pooled(values: Array) -> Array:
        out: Array = np.bincount(keys, weights=values.ravel(), minlength=reps * n_cells).reshape(
            reps, n_cells
        )
        return out

    sx, sxx, sxy = pooled(w * s1), pooled(w * s2), pooled(s1 * s1 - s2)
    with np.errstate(divide="ignore", invalid="ignore"):
        mx = sx / n
        out: Array = np.where(n > 0, (sxy / n - mx * mx) / (sxx / n - mx * mx), 0.0)
    return out


def _residuals(data: Dataset) -> tuple[pl.DataFrame, float, float]:
    """Valid priced bids of tenders with two or more: tender_id, firm_id, e (residual of
    log bid on log size), _stratum (award rule, category, bid-count band); the slope and
    intercept of the fit."""
    bids = (
        priced_bids(data)
        .filter(pl.col("amount") > 0)
        .select("tender_id", "firm_id", "amount")
        .with_columns(pl.len().over("tender_id").alias("_n"))
        .filter(pl.col("_n") >= 2)
    )
    tenders = data.tenders.select(
        "tender_id",
        "estimate",
        pl.col("award_method").fill_null(UNSTATED).alias("_rule"),
        pl.col("category").fill_null(UNSTATED).alias("_category"),
    )
    bids = (
        bids.join(tenders, on="tender_id", how="left")
        .with_columns(pl.col("tender_id").rank("dense").cast(pl.Int64).alias("_tc"))
        # Sorted, so that every sum below adds up in one order whatever the input order.
        .sort("_tc", "amount")
        .with_columns(
            pl.when(pl.col("estimate") > 0)
            .then(pl.col("estimate"))
            .otherwise(pl.col("amount").mean().over("_tc"))
            .log()
            .alias("_x"),
            pl.col("amount").log().alias("_y"),
        )
    )
    if bids.height == 0:
        return bids.select("tender_id", "firm_id", pl.lit(0.0).alias("e"), "_tc"), 0.0, 0.0
    moments = bids.select(
        pl.col("_x").mean().alias("mx"),
        pl.col("_y").mean().alias("my"),
    ).row(0)
    mx, my = moments
    cov, var = bids.select(
        ((pl.col("_x") - mx) * (pl.col("_y") - my)).sum().alias("cov"),
        ((pl.col("_x") - mx) ** 2).sum().alias("var"),
    ).row(0)
    slope = cov / var if var > 0 else 1.0
    intercept = my - slope * mx
    out = bids.select(
        "tender_id",
        "firm_id",
        (pl.col("_y") - intercept - slope * pl.col("_x")).alias("e"),
        pl.struct("_rule", "_category", bid_count_band(pl.col("_n")).alias("_bids")).alias(
            "_stratum"
        ),
        "_n",
        "_tc",
    )
    return out, float(slope), float(intercept)


def _pools(
    bids: pl.DataFrame, units: pl.DataFrame, min_comparable: int
) -> tuple[dict[str, Array], Array, Array]:
    """Tenders to draw random bidders from, and for each unit the first pool tender and how
    many follow that are comparable and have as many bids as the unit has member bids.

    Pool tenders are laid out by comparison level (award rule + category + bid-count band,
    rule + band, rule, all), then stratum, then number of bids; their residuals in a fixed
    random order within each tender."""
    rng = np.random.default_rng(1)
    tc = bids.get_column("_tc").to_numpy().astype(np.int64)
    e = bids.get_column("e").to_numpy()
    # Residuals of each tender once, in a fixed random order (drawn over the residuals
    # sorted within their tender), then gathered by pool entry.
    ranked = _order_within(tc, e)
    tc, e = tc[ranked], e[ranked]
    shuffled = _order_within(tc, rng.random(e.size))
    e = e[shuffled]
    n_of = np.bincount(tc)
    start_of = np.cumsum(n_of) - n_of
    # One row per tender (its stratum from any of its bids: they share it), as integer
    # codes; strata are numbered per level, and only their grouping matters (the draws
    # read tenders through the layout, wherever a stratum's block lies).
    firsts = np.flatnonzero(np.r_[True, tc[1:] != tc[:-1]]) if tc.size else tc
    strata = bids.get_column("_stratum").struct.unnest()
    per_tender = strata.gather(ranked[shuffled][firsts]).with_columns(pl.Series("_tc", tc[firsts]))
    fields = ("_rule", "_category", "_bids")
    coded = [
        per_tender.get_column(f).unique().sort().to_frame().with_row_index(f"{f}_code")
        for f in fields
    ]

    def codes(frame: pl.DataFrame) -> list[Array]:
        """Stratum per level of each row of ``frame`` (-1 for a value no pool tender has)."""
        values = []
        for field, table in zip(fields, coded, strict=True):
            values.append(
                frame.select(field)
                .join(table, on=field, how="left", maintain_order="left")
                .get_column(f"{field}_code")
                .fill_null(-1)
                .to_numpy()
                .astype(np.int64)
            )
        rule, category, band = values
        n_rules, n_categories, n_bands = (table.height for table in coded)
        known = (rule >= 0) & (category >= 0) & (band >= 0)
        offsets = np.cumsum([0, n_rules * n_categories * n_bands, n_rules * n_bands, n_rules])
        levels = [
            offsets[0] + (rule * n_categories + category) * n_bands + band,
            offsets[1] + rule * n_bands + band,
            offsets[2] + rule,
            np.full(rule.size, offsets[3], dtype=np.int64),
        ]
        return [np.where(known, level, -1) for level in levels]

    tender_tc = per_tender.get_column("_tc").to_numpy().astype(np.int64)
    tender_n = n_of[tender_tc]
    s_all = np.concatenate(codes(per_tender))
    n_all = np.tile(tender_n, 4)
    tc_all = np.tile(tender_tc, 4)
    # Sorted by (stratum, bids, tender) as one 64-bit key: every key differs.
    tc_width = int(tc_all.max(initial=0)) + 1
    laid = np.argsort((s_all * (int(n_all.max(initial=0)) + 1) + n_all) * tc_width + tc_all)
    skey, n, laid_tc = s_all[laid], n_all[laid], tc_all[laid]
    combined = skey * (1 << 20) + n
    unit_levels = codes(units.select(pl.col("_stratum")).unnest("_stratum"))
    first = np.zeros(units.height, dtype=np.int64)
    count = np.zeros(units.height, dtype=np.int64)
    chosen = np.zeros(units.height, dtype=bool)
    m = units.get_column("_m").to_numpy().astype(np.int64)
    for level, s in enumerate(unit_levels):  # four comparison levels, each over all units
        lo = np.searchsorted(combined, s * (1 << 20) + m)
        hi = np.searchsorted(combined, (s + 1) * (1 << 20))
        ok = ~chosen & (hi - lo >= min(min_comparable, 1 << 30))
        if level == 3:
            ok = ~chosen & (hi > lo)
        ok &= s >= 0
        first[ok], count[ok] = lo[ok], hi[ok] - lo[ok]
        chosen |= ok
    pool = {"e": e, "start": start_of[laid_tc], "n": n.astype(np.int64)}
    count = np.maximum(count, 1)
    return pool, first, count


def _order_within(group: Array, value: Array) -> Array:
    """Indices that sort by ``group``, then ``value`` (NaN last); the identity when already
    so sorted. Rows equal in both may come in any order."""
    if not np.isnan(value).any():
        same = group[1:] == group[:-1]
        if (group[1:] >= group[:-1]).all() and not (same & (value[1:] < value[:-1])).any():
            return np.arange(group.size)
    # A quick sort by value, then a stable one by group: far cheaper than np.lexsort.
    by_value = np.argsort(value)
    out: Array = by_value[np.argsort(group[by_value], kind="stable")]
    return out
