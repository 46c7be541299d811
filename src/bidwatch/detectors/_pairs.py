"""What the detectors across tenders share: markets, exact tails of sums of counts, FDR.

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
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt
import polars as pl
from scipy import special, stats

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


def pair_id(a: str = "firm_a", b: str = "firm_b") -> pl.Expr:
    """ "A|B" for two firm columns already in order (A < B)."""
    return pl.concat_str([pl.col(a), pl.col(b)], separator=ID_SEPARATOR)


def hypergeom_law(total: IntArray, good: IntArray, draws: IntArray) -> Law:
    """Per row: marked items among ``draws`` taken without replacement from ``total``, of
    which ``good`` are marked. Probabilities from log-gamma (scipy's hypergeom pmf is
    several times slower on a grid); the lumped tail from scipy."""

    def pmf(rows: IntArray, x: IntArray) -> FloatArray:
        n, a, d = (v[rows, None].astype(np.float64) for v in (total, good, draws))
        k = x[None, :].astype(np.float64)
        inside = (k <= np.minimum(a, d)) & (k >= d - (n - a))
        k = np.where(inside, k, 0.0)
        gl = special.gammaln
        rows_part = gl(a + 1) + gl(n - a + 1) + gl(d + 1) + gl(n - d + 1) - gl(n + 1)
        log = rows_part - gl(k + 1) - gl(np.maximum(a - k, 0) + 1) - gl(np.maximum(d - k, 0) + 1)
        log -= gl(np.maximum(n - a - d + k, 0) + 1)
        return np.where(inside, np.exp(log), 0.0)

    def sf(rows: IntArray, x: IntArray) -> FloatArray:
        return np.asarray(stats.hypergeom.sf(x, total[rows], good[rows], draws[rows]))

    return pmf, sf


def binom_law(trials: IntArray, chance: FloatArray) -> Law:
    """Per row: successes in ``trials`` independent trials of probability ``chance``."""

    def pmf(rows: IntArray, x: IntArray) -> FloatArray:
        n = trials[rows, None].astype(np.float64)
        p = chance[rows, None]
        k = np.minimum(x[None, :].astype(np.float64), n)
        gl = special.gammaln
        log = gl(n + 1) - gl(k + 1) - gl(n - k + 1)
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
) -> list[tuple[FloatArray, FloatArray]]:
    """Exact tails of S_s, the sum of independent counts, one per row of subject s.

    ``subject`` (rows sorted by it, then by a fixed key, so that sums add up in one order)
    gives each row's subject 0..len(cap)-1; ``support`` the largest value of the row's count;
    ``law`` its distribution. The sum is followed exactly up to ``cap[s]`` and lumped above,
    so that for each threshold array t (0 <= t <= cap) the result holds (P(S < t), P(S >= t))
    per subject, each a sum of non-negative terms: no tail is taken as 1 minus the other,
    and tiny p-values keep their digits.
    """
    subjects = cap.shape[0]
    if subjects == 0:
        return [(np.zeros(0), np.zeros(0)) for _ in thresholds]
    starts = np.searchsorted(subject, np.arange(subjects))
    position = np.arange(subject.shape[0]) - starts[subject]
    # Follow each subject to the first 2^j - 1 at or above its cap: few distinct widths.
    width = (1 << np.ceil(np.log2(cap + 1)).astype(np.int64)) - 1
    below = [np.zeros(subjects) for _ in thresholds]
    above = [np.zeros(subjects) for _ in thresholds]
    for top in np.unique(width):
        members = np.flatnonzero(width == top)
        per_batch = max(1, _CELLS_PER_BATCH // int(top + 1))
        for first in range(0, members.shape[0], per_batch):
            batch = members[first : first + per_batch]
            state = _convolve(
                batch, subject=subject, position=position, support=support, law=law, top=int(top)
            )
            tail = np.cumsum(state[:, ::-1], axis=1)[:, ::-1]  # tail[:, x] = P(S >= x)
            head = np.concatenate([np.zeros((batch.shape[0], 1)), np.cumsum(state, axis=1)], 1)
            local = np.arange(batch.shape[0])
            for i, t in enumerate(thresholds):
                tb = t[batch]
                above[i][batch] = tail[local, tb]
                below[i][batch] = head[local, tb]
    return list(zip(below, above, strict=True))


def _convolve(
    batch: IntArray,
    *,
    subject: IntArray,
    position: IntArray,
    support: IntArray,
    law: Law,
    top: int,
) -> FloatArray:
    """Distribution of min(S, top) for the subjects of ``batch``: rows (batch, top + 1)."""
    pmf, sf = law
    local = np.full(int(subject.max()) + 1 if subject.size else 0, -1, dtype=np.int64)
    local[batch] = np.arange(batch.shape[0])
    rows = np.flatnonzero(local[subject] >= 0)
    state = np.zeros((batch.shape[0], top + 1))
    state[:, 0] = 1.0
    for slot in range(int(position[rows].max()) + 1 if rows.size else 0):
        here = rows[position[rows] == slot]
        who = local[subject[here]]
        # The law is needed up to the slot's largest count, lumped at ``top`` if it gets there.
        reach = min(top, int(support[here].max()))
        chance = pmf(here, np.arange(reach + 1, dtype=np.int64))
        if reach == top:
            chance[:, top] = sf(here, np.full(here.shape[0], top - 1, dtype=np.int64))
        now = state[who]
        tail = np.cumsum(now[:, ::-1], axis=1)[:, ::-1]
        new = np.zeros_like(now)
        for y in range(reach + 1):
            p = chance[:, y]
            if y < top:
                new[:, y:top] += now[:, : top - y] * p[:, None]
            new[:, top] += tail[:, top - y] * p
        state[who] = new
    return state


def fdr(p: FloatArray) -> FloatArray:
    """Benjamini-Hochberg adjusted p-values (q-values); ties get the same q, so the result
    does not depend on the order of the tests."""
    if p.shape[0] == 0:
        return p
    return np.asarray(stats.false_discovery_control(np.clip(p, 0.0, 1.0), method="bh"))
