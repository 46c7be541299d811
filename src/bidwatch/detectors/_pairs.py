"""What the detectors across tenders share: integer codes of bids, tenders and firms (built
once per dataset), co-bid pair counts, markets, exact tails of sums of counts, FDR.

A market is a cell of tenders that compete for the same firms: the tenders of one region
and category where the tenders say so, of one region or one category where only one is
given, and the whole input otherwise.

Counts summed over markets (co-bids, wins, shared buyers) have exact null distributions
that are convolutions of one known law per market (hypergeometric, binomial). ``sum_tails``
convolves them for all subjects at once: subjects are batched by how far their sum must be
followed, and the Python loops run over count values and market slots, never over subjects.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt
import polars as pl
from scipy import special, stats

from bidwatch.detectors._base import per_dataset
from bidwatch.detectors._stats import UNSTATED
from bidwatch.findings import ID_SEPARATOR

if TYPE_CHECKING:
    from bidwatch.dataset import Dataset

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
# (rows, x) -> P(X = x) for each row's count X and each x of the grid (rows x len(x)), and
# (rows, x) -> P(X > x) for one x per row.
Law = tuple[
    Callable[[IntArray, IntArray], FloatArray],
    Callable[[IntArray, IntArray], FloatArray],
]

MARKET_COLUMNS = ("region", "category")
WHOLE_INPUT = "all tenders"
# Cells of the convolution state held at once: bounds memory whatever the number of subjects.
_CELLS_PER_BATCH = 1 << 22
# Significant bits of a lower-only subject's width (see _widths).
_WIDTH_BITS = 3


def market_columns(data: Dataset) -> list[str]:
    """The tender columns that define markets in this input: region and/or category."""
    return [c for c in MARKET_COLUMNS if data.has(f"tenders.{c}")]


def market_notes(data: Dataset) -> tuple[str, ...]:
    """What a reader of a test across firms must know when the input has no markets."""
    if market_columns(data):
        return ()
    return (
        "the tenders give no region or category, so the whole input is one market: firms "
        "that work in the same towns meet, and keep apart from other towns' firms, far "
        "beyond chance across all of it; give tenders a region (and a category) for a "
        "fair comparison",
    )


def tender_markets(data: Dataset) -> pl.DataFrame:
    """tender_id and market (a label such as "阳新县 / road"; "all tenders" when the input has
    neither region nor category; "unstated" stands in for a missing value)."""
    columns = market_columns(data)
    if columns:
        label = pl.concat_str(
            [pl.col(c).fill_null(UNSTATED) for c in columns], separator=" / "
        ).alias("market")
    else:
        label = pl.lit(WHOLE_INPUT).alias("market")
    # A tender listed twice with different cells keeps the first in sorted order.
    return (
        data.tenders.select("tender_id", label)
        .sort("tender_id", "market")
        .unique("tender_id", keep="first", maintain_order=True)
    )


@dataclass(frozen=True)
class Incidence:
    """Who bid where, on integer codes: ``frame`` has one row per distinct tender (_t) and
    resolved firm (_f) with the tender's market (_m, null for a tender missing from the
    tenders table), sorted; ``tenders`` gives each _t its tender_id, market and _m, and
    ``firms`` each _f its firm_id. A code's order is its name's order, so that sorting by
    codes sorts by names, and pairs of firms, markets and tenders are joined and grouped on
    integers rather than strings. ``tender_code`` and ``firm_code`` (when built from the
    dataset's ``bid_codes``) turn bid codes into these: other facts of the bids (who won)
    reach the incidence without a join on names."""

    frame: pl.DataFrame
    tenders: pl.DataFrame
    firms: pl.Series
    tender_code: npt.NDArray[np.uint32] | None = None
    firm_code: npt.NDArray[np.uint32] | None = None


@dataclass(frozen=True)
class BidCodes:
    """Each bid's tender and firm as integer codes, row for row with ``data.bids``: ``frame``
    holds _t, the tender_id's position among ``tenders`` (the bids' distinct tender ids,
    sorted), and _f, the firm_id's among ``firms`` (null where the bid has no resolved
    firm), both UInt32. Codes order as the names do."""

    frame: pl.DataFrame
    tenders: pl.Series
    firms: pl.Series


@per_dataset
def bid_codes(data: Dataset) -> BidCodes:
    """The dataset's bid codes, built once and shared: the detectors that group bids by
    tender and firm do it on these integers instead of hashing the ids' text each time."""
    bids = data.bids
    tenders = bids.get_column("tender_id").drop_nulls().unique().sort()
    if "firm_id" in bids.columns:
        firms = bids.get_column("firm_id").drop_nulls().unique().sort()
        firm = pl.col("firm_id").cast(pl.Enum(firms)).to_physical().cast(pl.UInt32)
    else:
        firms = pl.Series("firm_id", [], dtype=pl.String)
        firm = pl.lit(None, dtype=pl.UInt32)
    # A position in an Enum of the sorted names: one pass over the text, no join, no rank.
    frame = bids.select(
        pl.col("tender_id").cast(pl.Enum(tenders)).to_physical().cast(pl.UInt32).alias("_t"),
        firm.alias("_f"),
    )
    return BidCodes(frame=frame, tenders=tenders, firms=firms)


@per_dataset
def coded_incidence(data: Dataset) -> Incidence:
    """The dataset's coded incidence, built once and shared by the detectors across tenders."""
    codes = bid_codes(data)
    both = codes.frame.drop_nulls()
    tender = both.get_column("_t").to_numpy()
    firm = both.get_column("_f").to_numpy()
    # The incidence numbers only the tenders and firms of resolved bids, in their order.
    used_tenders = np.flatnonzero(np.bincount(tender, minlength=codes.tenders.len()))
    used_firms = np.flatnonzero(np.bincount(firm, minlength=codes.firms.len()))
    tender_code = np.zeros(codes.tenders.len(), dtype=np.uint32)
    tender_code[used_tenders] = np.arange(used_tenders.shape[0], dtype=np.uint32)
    firm_code = np.zeros(codes.firms.len(), dtype=np.uint32)
    firm_code[used_firms] = np.arange(used_firms.shape[0], dtype=np.uint32)
    firms = codes.firms.gather(used_firms)
    tenders = (
        codes.tenders.gather(used_tenders)
        .to_frame("tender_id")
        .join(tender_markets(data), on="tender_id", how="left", maintain_order="left")
        .with_row_index("_t")
    )
    markets = tenders.get_column("market").drop_nulls().unique().sort()
    tenders = tenders.join(
        markets.to_frame().with_row_index("_m"), on="market", how="left", maintain_order="left"
    )
    frame = (
        pl.DataFrame(
            {
                "_t": pl.Series(tender_code[tender], dtype=pl.UInt32),
                "_f": pl.Series(firm_code[firm], dtype=pl.UInt32),
            }
        )
        # Distinct (tender, firm) by sorting one 64-bit key: polars' unique on two columns is
        # several times slower.
        .with_columns((pl.col("_t").cast(pl.UInt64) * firms.len() + pl.col("_f")).alias("_k"))
        .sort("_k")
        .filter((pl.col("_k") != pl.col("_k").shift()).fill_null(True))
        .drop("_k")
    )
    frame = frame.with_columns(
        tenders.get_column("_m").gather(frame.get_column("_t")).alias("_m")
    ).select("_t", "_f", "_m")
    return Incidence(
        frame=frame, tenders=tenders, firms=firms, tender_code=tender_code, firm_code=firm_code
    )


def cobid_counts(found: Incidence, least: int) -> pl.DataFrame:
    """Pairs of firms that bid in at least ``least`` of the same tenders: ``_key``, the pair
    as one 64-bit number (first firm's code x number of firms + second's, first < second),
    sorted, and ``k`` (UInt32), the tenders both bid in.

    The incidence is sorted by tender then firm, so a tender's firms are one run in
    increasing order: its pairs are the rows d apart within the run, for d = 1, 2, ...
    Each step keeps only the rows whose run reaches d further, and no self-join
    materialises the co-bids with their tenders."""
    tender = found.frame.get_column("_t").to_numpy()
    firm = found.frame.get_column("_f").cast(pl.UInt64).to_numpy()
    width = np.uint64(found.firms.len())
    parts = []
    rows = np.arange(max(tender.shape[0] - 1, 0))
    step = 1
    while rows.shape[0]:
        rows = rows[tender[rows + step] == tender[rows]]
        parts.append(firm[rows] * width + firm[rows + step])
        step += 1
        rows = rows[rows + step < tender.shape[0]]
    keys = np.concatenate(parts) if parts else np.zeros(0, dtype=np.uint64)
    del parts  # a co-bid per row: do not hold them twice while sorting
    keys.sort()
    # Sorted, a pair's co-bids are one run of its key, and its count the run's length.
    starts = np.flatnonzero(np.concatenate([[True], keys[1:] != keys[:-1]])[: keys.shape[0]])
    count = np.diff(np.append(starts, keys.shape[0]))
    kept = count >= least
    return pl.DataFrame(
        {
            "_key": pl.Series(keys[starts[kept]], dtype=pl.UInt64),
            "k": pl.Series(count[kept], dtype=pl.UInt32),
        }
    )


def pair_id(a: str = "firm_a", b: str = "firm_b") -> pl.Expr:
    """ "A|B" for two firm columns already in order (A < B)."""
    return pl.concat_str([pl.col(a), pl.col(b)], separator=ID_SEPARATOR)


def _log_factorials(largest: int) -> FloatArray:
    """log(i!) for i = 0..largest: the laws' log-gammas are all of integers, and a lookup
    gives the very value scipy's gammaln gives for that integer, at a fraction of the cost."""
    return np.asarray(special.gammaln(np.arange(1, largest + 2, dtype=np.float64)))


def _distinct_rows(*columns: IntArray) -> tuple[IntArray, IntArray]:
    """The first row of each distinct tuple of the non-negative integer ``columns`` and, per
    row, which of them it repeats: one 64-bit key sorted when the columns fit one, else a
    lexicographic sort of the columns."""
    key = np.zeros(columns[0].shape[0], dtype=np.int64)
    room = 1
    for column in columns:
        base = int(column.max(initial=0)) + 1
        room *= base
        if room >= 1 << 63:
            break
        key = key * base + column
    else:
        _, first, back = np.unique(key, return_index=True, return_inverse=True)
        return np.asarray(first, dtype=np.int64), np.asarray(back, dtype=np.int64).reshape(-1)
    order = np.lexsort(columns[::-1])
    stacked = np.stack([c[order] for c in columns])
    new = np.concatenate([[True], (stacked[:, 1:] != stacked[:, :-1]).any(axis=0)])
    group = np.cumsum(new) - 1
    back = np.empty(order.shape[0], dtype=np.int64)
    back[order] = group
    return np.asarray(order[new], dtype=np.int64), back


def hypergeom_law(total: IntArray, good: IntArray, draws: IntArray) -> Law:
    """Per row: marked items among ``draws`` taken without replacement from ``total``, of
    which ``good`` are marked. Probabilities from log-factorials (scipy's hypergeom pmf is
    several times slower on a grid); the lumped tail from scipy."""
    total, good, draws = (np.asarray(v, dtype=np.int64) for v in (total, good, draws))
    lf = _log_factorials(int(total.max()) if total.size else 0)

    def pmf(rows: IntArray, x: IntArray) -> FloatArray:
        n, a, d = (v[rows, None] for v in (total, good, draws))
        rest = n - a - d
        k = x[None, :]
        outside = (k > np.minimum(a, d)) | (k < -rest)
        rows_part = lf[a] + lf[n - a] + lf[d] + lf[n - d] - lf[n]
        # Outside the support a cell's indices are clipped into the table and its value is
        # dropped; inside, each term is the very one of lf[k], lf[a - k], ...: the same sum
        # in the same order, with fewer passes over the cells.
        log: FloatArray = rows_part - lf[x][None, :]
        log -= np.take(lf, a - k, mode="clip")
        log -= np.take(lf, d - k, mode="clip")
        log -= np.take(lf, rest + k, mode="clip")
        np.copyto(log, 0.0, where=outside)
        np.exp(log, out=log)
        np.copyto(log, 0.0, where=outside)
        return log

    def sf(rows: IntArray, x: IntArray) -> FloatArray:
        n, a, d = total[rows], good[rows], draws[rows]
        # Pairs of one market ask scipy the same tail over and over: each distinct (x, N,
        # a, d) is asked once.
        if rows.shape[0] < 2:
            return np.asarray(stats.hypergeom.sf(x, n, a, d))
        first, back = _distinct_rows(x, n, a, d)
        found: FloatArray = np.asarray(stats.hypergeom.sf(x[first], n[first], a[first], d[first]))
        return np.asarray(found[back], dtype=np.float64)

    return pmf, sf


def binom_law(trials: IntArray, chance: FloatArray) -> Law:
    """Per row: successes in ``trials`` independent trials of probability ``chance``."""
    trials = np.asarray(trials, dtype=np.int64)
    lf = _log_factorials(int(trials.max()) if trials.size else 0)

    def pmf(rows: IntArray, x: IntArray) -> FloatArray:
        n = trials[rows, None]
        p = chance[rows, None]
        k = np.minimum(x[None, :].astype(np.int64), n)
        log = lf[n] - lf[k] - lf[n - k]
        log += special.xlogy(k, p) + special.xlog1py(n - k, -p)
        return np.where(x[None, :] <= n, np.exp(log), 0.0)

    def sf(rows: IntArray, x: IntArray) -> FloatArray:
        return np.asarray(stats.binom.sf(x, trials[rows], chance[rows]))

    return pmf, sf


def sum_tails(
    subject: IntArray,
    support: IntArray,
    law: Law,
    cap: IntArray,
    thresholds: list[IntArray],
    *,
    lower_only: bool = False,
    upper_only: bool = False,
) -> list[tuple[FloatArray, FloatArray]]:
    """Exact tails of S_s, the sum of independent counts, one per row of subject s.

    ``subject`` (rows sorted by it, then by a fixed key, so that sums add up in one order)
    gives each row's subject 0..len(cap)-1; ``support`` the largest value of the row's count;
    ``law`` its distribution. The sum is followed exactly up to ``cap[s]`` and lumped above,
    so that for each threshold array t (0 <= t <= cap) the result holds (P(S < t), P(S >= t))
    per subject, each a sum of non-negative terms: no tail is taken as 1 minus the other,
    and tiny p-values keep their digits. With ``lower_only`` only P(S < t) is wanted: the
    mass above the cap is never lumped (it cannot reach the lower tails), and P(S >= t)
    comes back as NaN; with ``upper_only`` P(S < t) comes back as NaN, never summed.
    """
    if lower_only and upper_only:
        raise ValueError("sum_tails: lower_only and upper_only exclude each other")
    subjects = cap.shape[0]
    if subjects == 0:
        return [(np.zeros(0), np.zeros(0)) for _ in thresholds]
    starts = np.searchsorted(subject, np.arange(subjects))
    count = np.bincount(subject, minlength=subjects)
    width = _widths(cap, lower_only=lower_only)
    lumped = np.zeros(0)
    if not lower_only:
        # P(X >= top) of every row that reaches its subject's top, asked of the law once for
        # all batches and slots: the rows of one market repeat the same questions.
        row_top = width[subject]
        reaching = np.flatnonzero(support >= row_top)
        lumped = np.zeros(subject.shape[0])
        lumped[reaching] = law[1](reaching, row_top[reaching] - 1)
    below = [np.zeros(subjects) for _ in thresholds]
    above = [np.zeros(subjects) for _ in thresholds]
    for top in np.unique(width):
        members = np.flatnonzero(width == top)
        per_batch = max(1, _CELLS_PER_BATCH // int(top + 1))
        for first in range(0, members.shape[0], per_batch):
            batch = members[first : first + per_batch]
            state = _convolve(
                starts[batch],
                count[batch],
                support=support,
                pmf=law[0],
                top=int(top),
                lumped=None if lower_only else lumped,
            )
            local = np.arange(batch.shape[0])
            if lower_only:
                for i in range(len(thresholds)):
                    above[i][batch] = np.nan
            else:
                tail = np.cumsum(state[::-1], axis=0)[::-1]  # tail[x] = P(S >= x)
                for i, t in enumerate(thresholds):
                    above[i][batch] = tail[t[batch], local]
            if upper_only:
                for i in range(len(thresholds)):
                    below[i][batch] = np.nan
            else:
                head = np.concatenate([np.zeros((1, batch.shape[0])), np.cumsum(state, axis=0)])
                for i, t in enumerate(thresholds):
                    below[i][batch] = head[t[batch], local]
    return list(zip(below, above, strict=True))


def _widths(cap: IntArray, *, lower_only: bool) -> IntArray:
    """How far each subject's sum is followed (the cell ``top`` of its convolution): subjects
    of one width are convolved together, so that few distinct widths mean few batches.

    With upper tails, the first 2^j - 1 at or above the cap, for the lumped cell collects
    P(S >= top) and must stay where it always was. With lower tails only, a cell below top
    takes the very same terms in the same order whatever top is (nothing flows down), so
    the cap is rounded up only to its first ``_WIDTH_BITS`` significant bits: the work per
    subject grows with top squared, and a power of two can nearly double top."""
    if not lower_only:
        return np.asarray((1 << np.ceil(np.log2(cap + 1)).astype(np.int64)) - 1, dtype=np.int64)
    cap = np.asarray(cap, dtype=np.int64)
    coarse = np.maximum(np.ceil(np.log2(np.maximum(cap, 1))).astype(np.int64) - _WIDTH_BITS, 0)
    return np.asarray(-((-cap) >> coarse) << coarse, dtype=np.int64)


def _convolve(
    start: IntArray,
    count: IntArray,
    *,
    support: IntArray,
    pmf: Callable[[IntArray, IntArray], FloatArray],
    top: int,
    lumped: FloatArray | None,
) -> FloatArray:
    """Distribution of min(S, top) for subjects whose rows are ``start`` to ``start + count``:
    column j holds subject j's probabilities of 0..top (an array (top + 1, subjects)).

    Subjects are taken by decreasing number of rows, so that those with a row in slot s are
    the first ones and each step updates a leading block of columns in place; a column is
    a subject's state, so that every operation runs along all subjects at once. Each
    subject's terms are added in the same order whatever the batch: results do not depend
    on which subjects are convolved together. ``lumped`` holds each row's P(X >= top) (0
    where its count cannot reach top); without it the last cell is left at 0: the cells
    below it are the same either way, for nothing flows down from the lumped one.
    """
    order = np.argsort(-count, kind="stable")
    first = start[order]
    # Subjects with more than s rows, for each slot s.
    slots = np.arange(int(count.max(initial=0)))
    alive = count.shape[0] - np.searchsorted(np.sort(count), slots, side="right")
    state = np.zeros((top + 1, count.shape[0]))
    state[0] = 1.0
    filled = 0  # the highest cell that may be non-zero
    new = np.empty_like(state)
    for slot, m in enumerate(alive.tolist()):
        here = first[:m] + slot
        # The law is needed up to the slot's largest count, lumped at ``top`` if it gets there.
        reach = min(top, int(support[here].max()))
        chance = pmf(here, np.arange(reach + 1, dtype=np.int64))
        if lumped is not None and reach == top:
            chance[:, top] = lumped[here]
        chance = np.ascontiguousarray(chance.T)
        now = state[:, :m]
        tail = np.cumsum(now[::-1], axis=0)[::-1] if lumped is not None else now
        out = new[:, :m]
        out.fill(0.0)
        # The products go to scratch space of their own, then are added: the very operations
        # of ``out[y:top] += now[: top - y] * p`` without a new array per step.
        # Cells above ``filled`` are exactly 0 in every column: their products would add
        # +0.0 to non-negative sums, which changes no bit, so they are left out.
        scratch = np.empty((max(top, 1), m))
        cell = scratch[0]
        for y in range(reach + 1):
            p = chance[y]
            if y < top:
                size = min(top - y, filled + 1)
                out[y : y + size] += np.multiply(now[:size], p, out=scratch[:size])
            if lumped is not None and top - y <= filled:
                out[top] += np.multiply(tail[top - y], p, out=cell)
        state[:, :m] = out
        filled = min(top, filled + reach)
    result = np.empty_like(state)
    result[:, order] = state
    return result


def fdr(p: FloatArray) -> FloatArray:
    """Benjamini-Hochberg adjusted p-values (q-values); ties get the same q, so the result
    does not depend on the order of the tests."""
    if p.shape[0] == 0:
        return p
    return np.asarray(stats.false_discovery_control(np.clip(p, 0.0, 1.0), method="bh"))
