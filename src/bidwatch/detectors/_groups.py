"""Candidate groups of firms, shared by the group detectors.

A candidate group is a community of the graph whose edges are pairs of firms that bid in the
same tenders more often than chance within their markets. Raw co-bid counts mostly measure
that two firms work in the same county; the expected count below removes that, so that the
communities are rings rather than whole local markets.

- Market of a tender: its region x category ("unstated" where missing).
- Null: bidders independent within a market. A firm i with d_im bids in market m (S_m bids
  over all its tenders, Q_m = sum of n_t(n_t - 1) over its tenders of n_t bidders) meets
  firm j there E_ij = sum_m d_im d_jm Q_m / S_m^2 times on average: the expectation when
  each tender's bidders are drawn in proportion to how much each firm bids in the market.
- Edge: a pair that co-bid at least ``min_pair_tenders`` times whose Poisson upper tail
  P(X >= observed | E_ij) is at most ``edge_p``. Edge weight: log(observed / expected).
- Communities: Leiden (modularity, resolution 1) through ``bidwatch.graph.communities``;
  those of at least ``min_members`` firms, with their strength: -log10 of the Poisson tail
  of the members' co-bids (summed over member pairs) given their sum of E_ij.
- Chance: the same search runs on copies of the data with firms shuffled among the bids of
  each market (``null_runs``: 1 to 10 copies, seeded). The groups found there are what
  chance and the search make together; a real group's q is the number of shuffled groups
  at least as strong per copy over the number of real groups at least as strong (an
  empirical false discovery rate, made monotone). Groups with q <= ``group_fdr`` are the
  candidates. Testing pairs one by one with a correction for the millions of pairs would
  lose the rings of small, dense markets; judging whole groups against the same search
  on shuffled data keeps them, with the choice of the group paid for.

Everything works on integer codes of the tender-firm incidence (polars joins, numpy counts
and sorts on 64-bit keys); Python loops run only over term places and inside igraph. The
result is cached per dataset and settings, so that the detectors share it (and the group
ids they give are the same).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import polars as pl
from scipy import stats

from bidwatch.detectors._base import NotComputable, once, priced_bids
from bidwatch.detectors._pairs import coded_incidence
from bidwatch.findings import with_group_ids
from bidwatch.graph import communities

if TYPE_CHECKING:
    from bidwatch.dataset import Dataset

UNSTATED = "unstated"
Array = npt.NDArray[Any]


@dataclass(frozen=True)
class Candidates:
    """The co-bid null model and the candidate groups of one dataset.

    Integer codes: ``_t`` tenders, ``_f`` firms, ``_m`` markets, ``_g`` groups (each in the
    sorted order of its id, so that codes do not depend on row order).
    """

    incidence: pl.DataFrame  # _t, _f, _m, n: distinct (tender, firm), bidders in the tender
    tenders: pl.DataFrame  # _t, tender_id, market, _m
    firms: pl.DataFrame  # _f, firm_id
    weights: pl.DataFrame  # _f, _m, d (bids in the market), w (d sqrt(Q_m) / S_m)
    markets: pl.DataFrame  # _m, S, Q
    # _f, _f_b, obs, expected, p, edge: pairs with obs >= min_pair_tenders
    pairs: pl.DataFrame
    edges: int
    null_runs: int  # shuffled copies searched for chance groups
    # _g, group_id, members (sorted firm ids), size, strength (-log10 of the Poisson tail
    # of the members' co-bids), chance_groups (groups as strong per shuffled copy), q
    groups: pl.DataFrame
    membership: pl.DataFrame  # _g, _f
    together: pl.DataFrame  # _g, _t, present: tenders where two or more members bid


def validate_candidate_settings(
    min_pair_tenders: int, edge_p: float, min_members: int, group_fdr: float
) -> None:
    if min_pair_tenders < 2:
        raise ValueError(f"min_pair_tenders must be >= 2, got {min_pair_tenders}")
    if not 0 < edge_p < 1:
        raise ValueError(f"edge_p must be in (0, 1), got {edge_p}")
    if min_members < 3:
        raise ValueError(f"min_members must be >= 3, got {min_members}")
    if not 0 < group_fdr <= 1:
        raise ValueError(f"group_fdr must be in (0, 1], got {group_fdr}")


@dataclass(frozen=True)
class GroupSearch:
    """The candidate search the group detectors share: its settings, checked once, and the
    candidates of a dataset (the same groups, and ids, for every group detector)."""

    min_members: int = 3
    min_pair_tenders: int = 3
    edge_p: float = 0.001
    group_fdr: float = 0.1

    def __post_init__(self) -> None:
        validate_candidate_settings(
            self.min_pair_tenders, self.edge_p, self.min_members, self.group_fdr
        )

    def candidates(self, data: Dataset) -> Candidates:
        return candidates(
            data,
            min_pair_tenders=self.min_pair_tenders,
            edge_p=self.edge_p,
            min_members=self.min_members,
            group_fdr=self.group_fdr,
        )


def validate_permutations(permutations: int) -> None:
    if not 19 <= permutations <= 9999:
        raise ValueError(f"permutations must be in 19..9999, got {permutations}")


def candidates(
    data: Dataset, *, min_pair_tenders: int, edge_p: float, min_members: int, group_fdr: float
) -> Candidates:
    """Candidate groups of ``data`` (cached per dataset and settings)."""
    return once(
        data,
        (candidates, min_pair_tenders, edge_p, min_members, group_fdr),
        lambda: _candidates(data, min_pair_tenders, edge_p, min_members, group_fdr),
    )


def _markets(data: Dataset) -> pl.DataFrame:
    tenders = data.tenders
    region = pl.col("region").fill_null(UNSTATED) if "region" in tenders.columns else pl.lit("")
    category = (
        pl.col("category").fill_null(UNSTATED) if "category" in tenders.columns else pl.lit("")
    )
    return tenders.select("tender_id", pl.format("{}/{}", region, category).alias("market"))


def _candidates(
    data: Dataset, min_pair_tenders: int, edge_p: float, min_members: int, group_fdr: float
) -> Candidates:
    if "firm_id" not in data.bids.columns or not data.has("bids.firm_id"):
        raise NotComputable("needs resolved bidders (a bidder_id or bidder_name column)")
    # The tender and firm codes, and the distinct (tender, firm) pairs sorted by them, are
    # the scan's shared incidence (built once for the detectors across tenders): the same
    # codes as ranking the ids of the resolved bids. Markets are coded here, on this
    # module's own labels.
    shared = coded_incidence(data)
    tenders = (
        shared.tenders.select("_t", "tender_id")
        .join(_markets(data), on="tender_id", how="left", maintain_order="left")
        .with_columns(pl.col("market").fill_null(f"{UNSTATED}/{UNSTATED}"))
        .with_columns(pl.col("market").rank("dense").cast(pl.UInt32).alias("_m"))
    )
    firms = shared.firms.alias("firm_id").to_frame().with_row_index("_f")
    tender = shared.frame.get_column("_t").to_numpy()
    size = np.bincount(tender, minlength=int(tender.max()) + 1 if tender.size else 0)
    incidence = pl.DataFrame(
        {
            "_t": shared.frame.get_column("_t"),
            "_f": shared.frame.get_column("_f"),
            "_m": tenders.get_column("_m").to_numpy()[tender],
            "n": size[tender].astype(np.int64),
        }
    )
    real = _search(incidence, min_pair_tenders, edge_p, min_members)
    # The whole search again on copies of the data with bidders shuffled among the bids of
    # each market: the groups it finds there are what chance and the search make together.
    runs = null_runs(incidence.height)
    rng = np.random.default_rng(0)
    chance = [
        _search(_shuffled(incidence, rng), min_pair_tenders, edge_p, min_members)
        .groups.get_column("strength")
        .to_numpy()
        for _ in range(runs)
    ]
    strength = real.groups.get_column("strength").to_numpy()
    expected, q = group_qvalues(strength, np.concatenate(chance), runs)
    found = real.groups.with_columns(
        pl.Series("chance_groups", expected, dtype=pl.Float64),
        pl.Series("q", q, dtype=pl.Float64),
    ).filter(pl.col("q") <= group_fdr)
    members = found.select("_c", pl.col("_members").alias("_f")).explode("_f")
    groups = with_group_ids(
        found.join(
            members.join(firms, on="_f")
            .sort("_c", "firm_id")
            .group_by("_c", maintain_order=True)
            .agg(pl.col("firm_id").alias("members")),
            on="_c",
        )
    )
    groups = groups.sort("group_id").select(
        pl.int_range(pl.len(), dtype=pl.UInt32).alias("_g"),
        "group_id",
        "members",
        pl.col("size").cast(pl.Int64),
        "strength",
        "chance_groups",
        "q",
        "_c",
    )
    membership = (
        groups.select("_g", "_c").join(members, on="_c").select("_g", "_f").sort("_g", "_f")
    )
    together = (
        membership.join(incidence.select("_t", "_f"), on="_f")
        .group_by("_g", "_t")
        .agg(pl.len().cast(pl.Int64).alias("present"))
        .filter(pl.col("present") >= 2)
        .sort("_g", "_t")
    )
    return Candidates(
        incidence=incidence,
        tenders=tenders.select("_t", "tender_id", "market", "_m"),
        firms=firms.select("_f", "firm_id"),
        weights=real.weights,
        markets=real.markets,
        pairs=real.pairs,
        edges=real.edges,
        null_runs=runs,
        groups=groups.drop("_c"),
        membership=membership,
        together=together,
    )


def null_runs(rows: int) -> int:
    """Shuffled copies searched for chance groups: more for small data, where they are
    cheap and each finds few groups; one from 100,000 tender-firm rows up."""
    return int(min(10, max(1, math.ceil(100_000 / max(rows, 1)))))


def _coded_incidence(tender: Array, firm: Array, market_of: Array) -> pl.DataFrame:
    """_t, _f, _m, n of the distinct (tender, firm) pairs, sorted by _t then _f; market_of
    gives each tender code's market."""
    # One 64-bit key per pair: np.unique drops the repeats and sorts in one pass.
    width = np.uint64(int(firm.max()) + 1 if firm.size else 1)
    key = np.sort(tender.astype(np.uint64) * width + firm.astype(np.uint64))
    key = key[np.r_[True, key[1:] != key[:-1]]] if key.size else key
    t = (key // width).astype(np.uint32)
    size = np.bincount(t, minlength=int(t.max()) + 1 if t.size else 0)
    return pl.DataFrame(
        {
            "_t": t,
            "_f": (key % width).astype(np.uint32),
            "_m": market_of[t].astype(np.uint32),
            "n": size[t].astype(np.int64),
        }
    )


def _shuffled(incidence: pl.DataFrame, rng: np.random.Generator) -> pl.DataFrame:
    """Firms shuffled among the bids of each market (a firm drawn twice into one tender
    keeps one place): every firm keeps its number of bids per market, every tender its
    market and about its number of bidders."""
    # The incidence is sorted by (_t, _f): a stable sort by market orders it by (_m, _t, _f).
    ordered = _stable_order(incidence.get_column("_m").to_numpy())
    market = incidence.get_column("_m").to_numpy()[ordered]
    tender = incidence.get_column("_t").to_numpy()[ordered]
    firm = incidence.get_column("_f").to_numpy()[ordered]
    # np.lexsort((random, market)) in two passes: by the random key, then stably by market
    # (a radix sort on small codes), several times faster. The same order unless two random
    # keys are equal, which np.lexsort would keep in row order: then it is used.
    random = rng.random(market.size)
    by_random = np.argsort(random)
    drawn = random[by_random]
    if (drawn[1:] == drawn[:-1]).any():
        order = np.lexsort((random, market))
    else:
        order = by_random[_stable_order(market[by_random])]
    market_of = np.zeros(int(tender.max()) + 1 if tender.size else 0, dtype=np.uint32)
    market_of[tender] = market
    return _coded_incidence(tender, firm[order], market_of)


def _stable_order(codes: Array) -> Array:
    """np.argsort(codes, kind="stable") of non-negative integer codes, as 16-bit integers
    where they fit (numpy sorts those by radix)."""
    if codes.size and int(codes.max()) < 1 << 16:
        codes = codes.astype(np.uint16)
    out: Array = np.argsort(codes, kind="stable")
    return out


@dataclass(frozen=True)
class _Search:
    markets: pl.DataFrame
    weights: pl.DataFrame
    pairs: pl.DataFrame
    edges: int
    groups: pl.DataFrame  # _c, _members (firm codes), size, observed, expected, strength


def _search(
    incidence: pl.DataFrame, min_pair_tenders: int, edge_p: float, min_members: int
) -> _Search:
    """Pairs against the market null, the graph of pairs beyond ``edge_p``, its communities
    of ``min_members`` or more, and how far each community's co-bids exceed chance."""
    markets = (
        incidence.group_by("_m")
        .agg(pl.len().cast(pl.Int64).alias("S"), (pl.col("n") - 1).sum().alias("Q"))
        .sort("_m")
    )
    # Bids per (firm, market): one 64-bit key per row, counted in key order (firm, market).
    firm = incidence.get_column("_f").to_numpy().astype(np.uint64)
    market = incidence.get_column("_m").to_numpy().astype(np.uint64)
    width = np.uint64(int(market.max()) + 1 if market.size else 1)
    key, d = _runs(firm * width + market)
    weight_market = (key % width).astype(np.int64)
    size = np.zeros(int(width), dtype=np.int64)
    cobids = np.zeros(int(width), dtype=np.int64)
    size[markets.get_column("_m").to_numpy()] = markets.get_column("S").to_numpy()
    cobids[markets.get_column("_m").to_numpy()] = markets.get_column("Q").to_numpy()
    S, Q = size[weight_market], cobids[weight_market]
    weights = pl.DataFrame(
        {
            "_f": (key // width).astype(np.uint32),
            "_m": weight_market.astype(np.uint32),
            "d": d.astype(np.int64),
            "w": d * np.sqrt(Q.astype(np.float64)) / S,
        }
    )
    slim = incidence.select("_t", "_f")
    pairs = _expected(_cobids(incidence, min_pair_tenders), weights)
    obs = pairs.get_column("obs").to_numpy()
    exp = pairs.get_column("expected").to_numpy()
    p = stats.poisson.sf(obs - 1, exp) if obs.size else np.zeros(0)
    pairs = pairs.with_columns(pl.Series("p", p, dtype=pl.Float64)).with_columns(
        (pl.col("p") <= edge_p).alias("edge")
    )
    edges = pairs.filter("edge")
    # Nodes named by their zero-padded codes, so that their sorted order is the codes'.
    graph_edges = edges.select(
        pl.col("_f").cast(pl.String).str.zfill(10).alias("firm_a"),
        pl.col("_f_b").cast(pl.String).str.zfill(10).alias("firm_b"),
        (pl.col("obs") / pl.col("expected")).log().clip(lower_bound=1e-6).alias("lift"),
    ).sort("firm_a", "firm_b")
    found = communities(graph_edges, weight="lift").select(
        pl.col("community").alias("_c"), pl.col("firm_id").cast(pl.UInt32).alias("_f")
    )
    found = found.filter(pl.len().over("_c") >= min_members)
    together = (
        found.join(slim, on="_f")
        .group_by("_c", "_t")
        .agg(pl.len().cast(pl.Int64).alias("present"))
        .filter(pl.col("present") >= 2)
        .group_by("_c")
        .agg((pl.col("present") * (pl.col("present") - 1) // 2).sum().alias("observed"))
    )
    by_market = (
        found.join(weights.select("_f", "_m", "w"), on="_f")
        .sort("_c", "_m", "_f")
        .group_by("_c", "_m", maintain_order=True)
        .agg(pl.col("w").sum().alias("s1"), (pl.col("w") ** 2).sum().alias("s2"))
    )
    chance = by_market.group_by("_c", maintain_order=True).agg(
        ((pl.col("s1") ** 2 - pl.col("s2")) / 2).sum().alias("expected")
    )
    groups = (
        found.sort("_c", "_f")
        .group_by("_c", maintain_order=True)
        .agg(pl.col("_f").alias("_members"), pl.len().cast(pl.Int64).alias("size"))
        .join(together, on="_c", how="left")
        .join(chance, on="_c", how="left")
        .with_columns(pl.col("observed").fill_null(0), pl.col("expected").fill_null(0.0))
        .sort("_c")
    )
    o = groups.get_column("observed").to_numpy()
    e = groups.get_column("expected").to_numpy()
    with np.errstate(divide="ignore"):
        strength = -stats.poisson.logsf(o - 1, np.maximum(e, 1e-12)) / math.log(10)
    groups = groups.with_columns(pl.Series("strength", strength, dtype=pl.Float64))
    return _Search(markets, weights, pairs, edges.height, groups)


def _cobids(incidence: pl.DataFrame, min_pair_tenders: int) -> pl.DataFrame:
    """_f < _f_b, obs (tenders both bid in) of the pairs with obs >= min_pair_tenders,
    sorted; ``incidence`` sorted by _t then _f."""
    tender = incidence.get_column("_t").to_numpy()
    firm = incidence.get_column("_f").to_numpy().astype(np.uint64)
    size = incidence.get_column("n").to_numpy()
    width = np.uint64(int(firm.max()) + 1 if firm.size else 1)
    # Each row pairs with the rows after it in its tender (their firms have larger codes),
    # generated without a join; the pair is one 64-bit key that np.unique counts and sorts.
    first = np.flatnonzero(np.r_[True, tender[1:] != tender[:-1]]) if tender.size else tender
    place = np.arange(tender.size) - np.repeat(first, np.diff(np.r_[first, tender.size]))
    after = size - 1 - place
    a = np.repeat(np.arange(tender.size), after)
    b = a + 1 + (np.arange(a.size) - np.repeat(np.cumsum(after) - after, after))
    key, obs = _runs(firm[a] * width + firm[b])
    keep = obs >= min_pair_tenders
    key = key[keep]
    return pl.DataFrame(
        {
            "_f": (key // width).astype(np.uint32),
            "_f_b": (key % width).astype(np.uint32),
            "obs": obs[keep].astype(np.int64),
        }
    )


def _runs(key: Array) -> tuple[Array, Array]:
    """np.unique(key, return_counts=True), sorting ``key`` itself in place rather than a
    copy: sorted, each distinct key is one run, and its count the run's length."""
    key.sort()
    first = np.flatnonzero(np.r_[True, key[1:] != key[:-1]]) if key.size else key
    count: Array = np.diff(np.r_[first, key.size])
    return key[first], count


def _expected(pairs: pl.DataFrame, weights: pl.DataFrame) -> pl.DataFrame:
    """``pairs`` with expected: the sum over the markets both firms bid in of w w_b, added
    in market order; pairs without a common market are dropped. ``weights`` sorted by _f
    then _m."""
    wf = weights.get_column("_f").to_numpy().astype(np.int64)
    wm = weights.get_column("_m").to_numpy().astype(np.int64)
    w = weights.get_column("w").to_numpy()
    fa = pairs.get_column("_f").to_numpy().astype(np.int64)
    fb = pairs.get_column("_f_b").to_numpy().astype(np.int64)
    firms = int(max(wf.max(initial=0), fa.max(initial=0), fb.max(initial=0))) + 1
    markets = int(wm.max(initial=0)) + 1
    # Every market of the firm of the pair with fewer markets, in market order; the other
    # firm's weight there looked up by the sorted (firm, market) key. Either firm gives
    # the same common markets in the same order and the same products, so the one with
    # fewer markets is taken: fewer look-ups.
    start = np.searchsorted(wf, np.arange(firms + 1))
    count_a = start[fa + 1] - start[fa]
    count_b = start[fb + 1] - start[fb]
    fewer = count_b < count_a
    listed = np.where(fewer, fb, fa)
    other = np.where(fewer, fa, fb)
    count = np.where(fewer, count_b, count_a)
    pair = np.repeat(np.arange(fa.size), count)
    row = np.repeat(start[listed], count) + (
        np.arange(pair.size) - np.repeat(np.cumsum(count) - count, count)
    )
    keys = wf * markets + wm
    wanted = other[pair] * markets + wm[row]
    at = np.minimum(np.searchsorted(keys, wanted), max(keys.size - 1, 0))
    hit = keys[at] == wanted if keys.size else np.zeros(0, dtype=bool)
    pair, row, at = pair[hit], row[hit], at[hit]
    expected = _kahan_sums(pair, w[row] * w[at], fa.size)
    common = np.bincount(pair, minlength=fa.size) > 0
    return pairs.with_columns(pl.Series("expected", expected, dtype=pl.Float64)).filter(
        pl.Series(common)
    )


def _kahan_sums(group: Array, value: Array, groups: int) -> Array:
    """Sum of ``value`` per ``group`` (sorted, coded 0..groups-1), compensated (Kahan) and in
    row order within each group: the sums polars' group-by gives, to the last bit."""
    out = np.zeros(groups)
    if group.size == 0:
        return out
    counts = np.bincount(group, minlength=groups)
    starts = np.cumsum(counts) - counts
    # Groups by their number of terms, most first: the groups with more than k terms are
    # then a prefix, and step k works on slices rather than scattering by group.
    by_count = np.argsort(-counts, kind="stable")
    counts, starts = counts[by_count], starts[by_count]
    longer = np.searchsorted(-counts, -np.arange(int(counts[0])), side="left")
    total = np.zeros(groups)
    carry = np.zeros(groups)
    # One step per term index, vectorised over the groups that have that many terms.
    for k, n in enumerate(longer):
        y = value[starts[:n] + k] - carry[:n]
        t = total[:n] + y
        carry[:n] = (t - total[:n]) - y
        total[:n] = t
    out[by_count] = total
    return out


def group_qvalues(strength: Array, chance: Array, runs: int) -> tuple[Array, Array]:
    """Per group: the number of groups at least as strong found per shuffled copy, and
    the empirical false discovery rate of keeping every group at least as strong (made
    monotone, as Benjamini-Hochberg q-values are)."""
    if strength.size == 0:
        return np.zeros(0), np.zeros(0)
    ranked = np.sort(chance)
    expected = (ranked.size - np.searchsorted(ranked, strength, side="left")) / runs
    order = np.argsort(-strength, kind="stable")
    # Groups at least as strong as each (ties share the largest count).
    sorted_strength = np.sort(strength)
    at_least = strength.size - np.searchsorted(sorted_strength, strength, side="left")
    fdr = np.minimum(expected / at_least, 1.0)
    q_sorted = np.minimum.accumulate(fdr[order][::-1])[::-1]
    q = np.empty(strength.size)
    q[order] = q_sorted
    return expected, q


def group_cohesion(c: Candidates) -> pl.DataFrame:
    """Per group: observed co-bids over member pairs, and expected under the market null.

    _g, observed (sum over member pairs of tenders both bid in), expected, pairs (member
    pairs), linked (member pairs that are edges of the graph).
    """
    observed = c.together.group_by("_g").agg(
        (pl.col("present") * (pl.col("present") - 1) // 2).sum().alias("observed"),
    )
    by_market = (
        c.membership.join(c.weights.select("_f", "_m", "w"), on="_f")
        .sort("_g", "_m", "_f")
        .group_by("_g", "_m", maintain_order=True)
        .agg(pl.col("w").sum().alias("s1"), (pl.col("w") ** 2).sum().alias("s2"))
    )
    expected = by_market.group_by("_g", maintain_order=True).agg(
        ((pl.col("s1") ** 2 - pl.col("s2")) / 2).sum().alias("expected")
    )
    linked = (
        c.pairs.filter("edge")
        .join(c.membership, on="_f")
        .join(c.membership.rename({"_f": "_f_b"}), on=["_f_b", "_g"])
        .group_by("_g")
        .agg(pl.len().cast(pl.Int64).alias("linked"))
    )
    return (
        c.groups.select("_g", "size")
        .join(observed, on="_g", how="left")
        .join(expected, on="_g", how="left")
        .join(linked, on="_g", how="left")
        .with_columns(
            pl.col("observed").fill_null(0),
            pl.col("expected").fill_null(0.0),
            pl.col("linked").fill_null(0),
            (pl.col("size") * (pl.col("size") - 1) // 2).alias("pairs"),
        )
        .sort("_g")
    )


def permutation_p(observed: Array, null: Array) -> Array:
    """One-sided permutation p-values: (1 + replicates at least as large) / (1 + replicates).

    ``observed`` has one value per subject, ``null`` one row per replicate. A replicate
    equal to the observed value up to rounding counts as at least as large. NaN observed
    values give NaN.
    """
    replicates = null.shape[0]
    slack = 1e-9 * (1.0 + np.abs(observed))
    extreme = (null >= (observed - slack)[None, :]).sum(axis=0)
    out: Array = (1.0 + extreme) / (1.0 + replicates)
    return np.where(np.isnan(observed), np.nan, out)


def member_firms(c: Candidates) -> pl.DataFrame:
    """_f, firm_id of the firms in a candidate group: joined first, they keep the members'
    bids and drop the rest before any other join."""
    return c.firms.join(c.membership.select("_f").unique(), on="_f", how="semi")


def joint_tenders(data: Dataset, c: Candidates) -> pl.DataFrame:
    """Per group: the tenders where two or more members bid (ids, sorted) and how many of
    them a member won. _g, joint, tenders, wins."""
    won = (
        data.bids.filter(pl.col("is_winner").fill_null(False))
        .select("tender_id", "firm_id")
        .join(member_firms(c), on="firm_id")
        .join(c.tenders.select("_t", "tender_id"), on="tender_id")
        .select("_t", "_f")
        .unique()
    )
    member_wins = won.join(c.membership, on="_f").select("_g", "_t").unique()
    return (
        c.together.join(c.tenders.select("_t", "tender_id"), on="_t")
        .join(member_wins.with_columns(pl.lit(True).alias("_won")), on=["_g", "_t"], how="left")
        .sort("_g", "tender_id")
        .group_by("_g", maintain_order=True)
        .agg(
            pl.len().cast(pl.Int64).alias("joint"),
            pl.col("tender_id").alias("tenders"),
            pl.col("_won").fill_null(False).sum().cast(pl.Int64).alias("wins"),
        )
    )


def relative_prices(data: Dataset) -> pl.DataFrame:
    """Priced valid bids of tenders with an estimate: tender_id, firm_id, r = log(bid /
    estimate) minus its mean over all such bids of tenders with the same award rule and
    category (the usual price level of comparable work)."""
    # Comparable work as one integer per tender, so that the bids carry no strings but
    # their ids through the sort.
    tenders = data.tenders.select(
        "tender_id",
        "estimate",
        pl.struct(
            pl.col("award_method").fill_null(UNSTATED), pl.col("category").fill_null(UNSTATED)
        )
        .rank("dense")
        .alias("_work"),
    ).filter(pl.col("estimate") > 0)
    bids = (
        priced_bids(data)
        .select("tender_id", "firm_id", "amount")
        .filter(pl.col("amount") > 0)
        .join(tenders, on="tender_id")
        .select(
            "tender_id",
            "firm_id",
            "_work",
            (pl.col("amount") / pl.col("estimate")).log().alias("_lr"),
        )
    )
    # The means add up over the values in ascending order, so that they do not depend on
    # the input order (bids with equal values add the same whatever their order); only
    # the two numeric columns are sorted, and the bids keep their own order.
    lr = bids.get_column("_lr").to_numpy()
    order = np.argsort(lr)
    ranked = pl.DataFrame(
        {"_work": bids.get_column("_work").to_numpy()[order], "_lr": lr[order]}
    ).select(pl.col("_lr") - pl.col("_lr").mean().over("_work"))
    r = np.empty(lr.size)
    r[order] = ranked.to_series().to_numpy()
    return bids.select("tender_id", "firm_id", pl.Series("r", r, dtype=pl.Float64))


def label_permutation(
    group: Array, value: Array, inside: Array, replicates: int, rng: np.random.Generator
) -> tuple[Array, Array]:
    """Mean of ``value`` over the inside units minus the mean over the others, per group:
    observed, and under ``replicates`` random relabellings that keep each group's number of
    inside units. Units sorted by ``group`` (coded 0..G-1, contiguous). Returns (observed
    per group, replicates x groups)."""
    groups = int(group.max()) + 1 if group.size else 0
    n_in = np.bincount(group, weights=inside, minlength=groups)
    n_all = np.bincount(group, minlength=groups).astype(float)
    total = np.bincount(group, weights=value, minlength=groups)
    starts = np.searchsorted(group, group, side="left")
    slot_inside = (np.arange(group.size) - starts) < n_in[group]

    def difference(inside_sum: Array) -> Array:
        out: Array = inside_sum / n_in - (total - inside_sum) / (n_all - n_in)
        return out

    observed = difference(np.bincount(group, weights=value * inside, minlength=groups))
    null = np.empty((replicates, groups))
    chunk = max(1, 2_000_000 // max(group.size, 1))
    # Only the inside slots are summed: the others would add zeros, which change no sum.
    slots = np.flatnonzero(slot_inside)
    keys = (np.arange(min(chunk, replicates))[:, None] * groups + group[slots][None, :]).ravel()
    for first in range(0, replicates, chunk):  # blocks of replicates bound the memory
        size = min(chunk, replicates - first)
        order = np.argsort(group[None, :] + rng.random((size, group.size)), axis=1)
        picked = value[order[:, slots]]
        sums = np.bincount(
            keys[: size * slots.size], weights=picked.ravel(), minlength=size * groups
        )
        null[first : first + size] = difference(sums.reshape(size, groups))
    return observed, null
