"""Bidders -> firms: one entity per firm, however its bids spell it, with the reason for
every merge.

A record is a distinct (bidder_id, bidder_name, credit_code) of the bids, a contractor or
bidder named after the award (contracts, items, inspections) that no bid names the same way,
or a firm of the registry. Records are joined by edges, strongest first:

- ``must_link``: the analyst's links file says so;
- ``code``: the same valid unified social credit code;
- ``registry_id``: the bid's bidder_id is a registry firm_id;
- ``id``: the same bidder_id;
- ``exact``: the same name once region, legal form, brackets, width and case are set aside;
- ``fuzzy``: trade names (字号) and the rest of the names nearly equal (rapidfuzz);
- ``transliteration``: a Latin name whose words are the pinyin of a Chinese 字号;
- ``supported``: names less similar, but the two share a phone, email, address or legal
  representative. A shared trace alone never merges two differently named firms: that is
  a ``shared-traces`` finding, not an identity.

Candidate pairs come from blocking on parts of the names (never all pairs); blocks larger
than ``max_block`` are generic and dropped. Edges are applied by a union-find that refuses a
merge when the two clusters: hold different valid credit codes, name different regions,
are different branches, ever bid in the same tender (a firm bids once per tender), are
kept apart by the analyst, or hold names less similar than ``cluster`` (so that A ~ B ~ C
does not chain two different firms A and C). Every record keeps the edge that joined it.
Parts of the edge graph where no merge could be refused are joined by their connectivity
alone, with the result the union-find would give.
"""

from __future__ import annotations

import csv
import gc
import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl
from rapidfuzz import fuzz, process
from rapidfuzz.distance import Levenshtein
from scipy import sparse
from scipy.sparse.csgraph import connected_components

from bidwatch.errors import InputError
from bidwatch.identifiers import credit_code_valid, trace_key
from bidwatch.names import clean, parse, region_key
from bidwatch.schema import TRACE_COLUMNS

if TYPE_CHECKING:
    from bidwatch.config import EntityConfig
    from bidwatch.dataset import Dataset

ENTITY_SCHEMA: dict[str, pl.DataType] = {
    "firm_id": pl.String(),
    "bidder_id": pl.String(),
    "bidder_name": pl.String(),
    "credit_code": pl.String(),
    "source": pl.String(),
    "method": pl.String(),
    "score": pl.Float64(),
    "matched_with": pl.String(),
    "parent_id": pl.String(),
    "bids": pl.UInt32(),
}
IDENTITY = ("bidder_id", "bidder_name", "credit_code")
SUPPORT = ("phone", "email", "address", "legal_representative")
# Edge kinds in the order the union-find applies them.
ORDER = ("must_link", "code", "registry_id", "id", "exact", "transliteration", "fuzzy", "supported")
NAMED = frozenset(("exact", "transliteration", "fuzzy", "supported"))
_PAIR = 1 << 32
# Components with more distinct names than this are clustered edge by edge, unchecked.
_NAMES_CHECKED = 64


def name_key(names: pl.Expr) -> pl.Expr:
    """Exact-match form of a name (see ``bidwatch.names.clean``)."""
    return clean(names)


@dataclass
class Links:
    """The analyst's corrections: pairs of raw ids or names that must or must not be one firm."""

    must: list[tuple[str, str]] = field(default_factory=list)
    cannot: list[tuple[str, str]] = field(default_factory=list)

    @classmethod
    def load(cls, path: str | Path) -> Links:
        path = Path(path)
        if not path.is_file():
            raise InputError(f"{path}: entity links file not found (named by [entities] links).")
        links = cls()
        with path.open(encoding="utf-8-sig", newline="") as fh:
            reader = csv.DictReader(fh)
            needed = {"left", "right", "link"}
            if not reader.fieldnames or not needed <= set(reader.fieldnames):
                raise InputError(
                    f"{path}: needs the columns left, right, link (must or cannot); "
                    f"found {', '.join(reader.fieldnames or []) or 'none'}."
                )
            for row_number, row in enumerate(reader, start=2):
                left, right = (row["left"] or "").strip(), (row["right"] or "").strip()
                link = (row["link"] or "").strip().lower()
                if not left or not right:
                    raise InputError(
                        f"{path}: row {row_number}: left and right must both be given."
                    )
                if link not in ("must", "cannot"):
                    raise InputError(
                        f"{path}: row {row_number}, column link: {row['link']!r} is not "
                        "'must' or 'cannot'."
                    )
                (links.must if link == "must" else links.cannot).append((left, right))
        return links


def resolve(
    data: Dataset, settings: EntityConfig | None = None, links: Links | None = None
) -> Dataset:
    """The dataset with ``bids.firm_id`` and ``entities`` (one row per record)."""
    from bidwatch.config import EntityConfig

    settings = settings or EntityConfig()
    bids = data.bids
    if not any(data.has(f"{table}.{column}") for table, column in _NAMED_BY):
        no_firm = pl.lit(None, dtype=pl.String).alias("firm_id")
        return data.with_tables(
            entities=pl.DataFrame(schema=ENTITY_SCHEMA),
            **{
                table: getattr(data, table).with_columns(no_firm)
                for table in ("bids", *AFTER_AWARD_PARTIES)
            },
        )
    records, incidence = _records(data)
    resolution = _Resolver(records, incidence, settings, links or Links()).run()
    entities = resolution.entities
    lookup = (
        entities.filter(pl.col("source") != "registry")
        .select(*IDENTITY, "firm_id")
        .unique(list(IDENTITY), keep="first", maintain_order=True)
    )
    after = {table: _with_firm(getattr(data, table), lookup) for table in AFTER_AWARD_PARTIES}
    return data.with_tables(
        bids=_attach(bids, lookup, list(IDENTITY)),
        entities=entities,
        notes=(*data.notes, *resolution.notes),
        **after,
    )


# Tables after the award that name a firm, and the columns they name it by.
AFTER_AWARD_PARTIES = {
    "contracts": ("contractor_id", "contractor_name"),
    "items": ("bidder_id", "bidder_name"),
    "inspections": ("contractor_id", "contractor_name"),
}
_NAMED_BY = (
    ("bids", "bidder_id"),
    ("bids", "bidder_name"),
    ("bids", "credit_code"),
    *((table, column) for table, columns in AFTER_AWARD_PARTIES.items() for column in columns),
)


def _identities(frame: pl.DataFrame, table: str) -> pl.DataFrame:
    """A table's (bidder_id, bidder_name, credit_code) per row: contractors are named like
    bidders, without a credit code."""
    id_col, name_col = AFTER_AWARD_PARTIES[table]
    return frame.select(
        pl.col(id_col).alias("bidder_id"),
        pl.col(name_col).alias("bidder_name"),
        pl.lit(None, dtype=pl.String).alias("credit_code"),
    )


def _with_firm(frame: pl.DataFrame, lookup: pl.DataFrame) -> pl.DataFrame:
    table = next(t for t, cols in AFTER_AWARD_PARTIES.items() if set(cols) <= set(frame.columns))
    id_col, name_col = AFTER_AWARD_PARTIES[table]
    # Contractors carry no credit code (see ``_identities``): only identities without one
    # can match, on the id and the name.
    named = lookup.filter(pl.col("credit_code").is_null()).select(
        pl.col("bidder_id").alias(id_col), pl.col("bidder_name").alias(name_col), "firm_id"
    )
    return _attach(frame, named, [id_col, name_col])


def _attach(frame: pl.DataFrame, lookup: pl.DataFrame, on: list[str]) -> pl.DataFrame:
    """``frame`` with the firm_id of each row from ``lookup`` (unique on ``on``). Only the
    key columns go through the join: the other columns stay shared with ``frame`` instead
    of being copied, which at a million tenders would hold the bids twice."""
    firm = (
        frame.select(on)
        .join(lookup, on=on, how="left", nulls_equal=True, maintain_order="left")
        .get_column("firm_id")
        .rechunk()
    )
    return frame.with_columns(firm)


# ------------------------------------------------------------------------------- records


def _support_keys(frame: pl.DataFrame) -> list[pl.Expr]:
    return [
        pl.when(pl.col(col).is_not_null())
        .then(pl.format("{}:{}", pl.lit(col), trace_key(col, pl.col(col))))
        .alias(f"_k_{col}")
        for col in SUPPORT
        if col in frame.columns
    ]


def _records(data: Dataset) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(records, incidence of record and tender)."""
    bids = data.bids
    # A few hundred regions name a million tenders: each is cleaned once.
    named = data.tenders.get_column("region").unique().drop_nulls()
    keys = named.to_frame().select("region", region_key(clean(pl.col("region"))).alias("_region"))
    regions = (
        data.tenders.select("tender_id", "region")
        .join(keys, on="region", how="left", maintain_order="left")
        .select("tender_id", "_region")
    )
    support = [c for c in SUPPORT if c in TRACE_COLUMNS]
    keyed = bids.select(*IDENTITY, "tender_id", *support).filter(
        pl.any_horizontal(pl.col(list(IDENTITY)).is_not_null())
    )
    # A firm writes the same phone and address on most of its bids: one group-by gathers
    # each identity's distinct trace values, and their keys are built once per identity.
    traces = [
        pl.col(col)
        .list.eval(pl.concat_str(pl.lit(f"{col}:"), trace_key(col, pl.element())))
        .alias(col)
        for col in support
    ]
    from_bids = (
        keyed.join(regions, on="tender_id", how="left")
        .group_by(list(IDENTITY))
        .agg(
            pl.len().cast(pl.UInt32).alias("bids"),
            pl.col("_region").drop_nulls().unique().sort().alias("context"),
            pl.col("tender_id").unique().alias("_tenders"),
            *(pl.col(col).drop_nulls().unique() for col in support),
        )
        .with_columns(traces)
        .select(
            *IDENTITY,
            "bids",
            pl.concat_list(support).list.unique().list.sort().alias("support")
            if support
            else pl.lit([], dtype=pl.List(pl.String)).alias("support"),
            "context",
            "_tenders",
        )
        .with_columns(
            pl.lit("bids").alias("source"), pl.lit(None, dtype=pl.String).alias("registry_id")
        )
        .sort(*IDENTITY, nulls_last=True)
    )
    # The records of the bids come first, so a record's number is its row here: the
    # incidence needs no second join of the bids on their identity.
    incidence = (
        from_bids.select(pl.col("_tenders").alias("tender_id"))
        .with_row_index("rec")
        .select(pl.col("rec").cast(pl.Int64), "tender_id")
        .explode("tender_id")
    )
    from_bids = from_bids.drop("_tenders")
    after = (
        pl.concat(
            [
                _identities(getattr(data, table), table).with_columns(pl.lit(table).alias("source"))
                for table in AFTER_AWARD_PARTIES
            ]
        )
        .filter(pl.any_horizontal(pl.col(list(IDENTITY)).is_not_null()))
        .unique(list(IDENTITY), keep="first", maintain_order=True)
        .join(from_bids.select(IDENTITY), on=list(IDENTITY), how="anti", nulls_equal=True)
        .sort(*IDENTITY, nulls_last=True)
        .select(
            *IDENTITY,
            pl.lit(0, dtype=pl.UInt32).alias("bids"),
            pl.lit([], dtype=pl.List(pl.String)).alias("support"),
            pl.lit([], dtype=pl.List(pl.String)).alias("context"),
            "source",
            pl.lit(None, dtype=pl.String).alias("registry_id"),
        )
    )
    firms = data.firms
    registry = firms.select(
        pl.lit(None, dtype=pl.String).alias("bidder_id"),
        pl.col("name").alias("bidder_name"),
        "credit_code",
        pl.lit(0, dtype=pl.UInt32).alias("bids"),
        *[c for c in SUPPORT if c in firms.columns],
    )
    registry = registry.with_columns(_support_keys(registry))
    registry_support = [c for c in registry.columns if c.startswith("_k_")]
    registry = registry.select(
        *IDENTITY,
        "bids",
        pl.concat_list(registry_support)
        .list.drop_nulls()
        .list.unique()
        .list.sort()
        .alias("support"),
        pl.lit([], dtype=pl.List(pl.String)).alias("context"),
        pl.lit("registry").alias("source"),
        firms.get_column("firm_id").alias("registry_id"),
    ).sort("registry_id")
    records = pl.concat([from_bids, after, registry], how="vertical_relaxed").with_row_index("rec")
    records = records.with_columns(pl.col("rec").cast(pl.Int64))
    return records, incidence


# ------------------------------------------------------------------------------ resolution


@dataclass
class Resolution:
    entities: pl.DataFrame
    notes: tuple[str, ...]


# A record as the union-find sees it: _code, _regions_py, branch, core, trade_py, han.
_Row = tuple[str | None, list[str], str | None, str, str, bool]
_ROW = ("_code", "_regions_py", "branch", "core", "trade_py", "han")


class _Cluster:
    __slots__ = ("branches", "codes", "enemies", "members", "names", "regions")

    def __init__(self, rec: int, row: _Row, enemies: set[int]) -> None:
        code, regions, branch, core, trade_py, han = row
        self.members = [rec]
        self.codes = {code} if code else set()
        self.regions = set(regions)
        self.branches = {branch}
        self.names = {(core, trade_py, han)} if core else set()
        self.enemies = enemies

    def add(self, rec: int, row: _Row, enemies: set[int] | None) -> None:
        """Take in one more record, as a merge with its own cluster would."""
        code, regions, branch, core, trade_py, han = row
        self.members.append(rec)
        if code:
            self.codes.add(code)
        self.regions.update(regions)
        self.branches.add(branch)
        if core:
            self.names.add((core, trade_py, han))
        if enemies:
            # A new set: a record's enemies may be shared with the enemies dict.
            self.enemies = self.enemies | enemies


class _Resolver:
    def __init__(
        self, records: pl.DataFrame, incidence: pl.DataFrame, settings: EntityConfig, links: Links
    ) -> None:
        self.settings = settings
        self.links = links
        self.incidence = incidence
        self.notes: list[str] = []
        self.records = _describe(records)

    def run(self) -> Resolution:
        edges = pl.concat([self._identity_edges(), self._name_edges(), self._link_edges("must")])
        cannot = self._cannot_pairs(edges)
        with _without_gc():
            tree = self._cluster(edges, cannot)
        return Resolution(self._entities(tree), tuple(self.notes))

    # -- edges ------------------------------------------------------------------------

    def _identity_edges(self) -> pl.DataFrame:
        r = self.records
        parts = []
        for method, key in (("code", "_code"), ("id", "bidder_id")):
            group = r.filter(pl.col(key).is_not_null())
            first = group.group_by(key).agg(pl.col("rec").min().alias("a"))
            parts.append(
                group.join(first, on=key)
                .filter(pl.col("rec") != pl.col("a"))
                .select(
                    "a",
                    pl.col("rec").alias("b"),
                    pl.lit(method).alias("method"),
                    pl.lit(100.0).alias("score"),
                )
            )
        registry = r.filter(pl.col("source") == "registry").select(
            pl.col("registry_id").alias("bidder_id"), pl.col("rec").alias("a")
        )
        parts.append(
            r.filter(pl.col("source") != "registry")
            .join(registry, on="bidder_id")
            .select(
                "a",
                pl.col("rec").alias("b"),
                pl.lit("registry_id").alias("method"),
                pl.lit(100.0).alias("score"),
            )
        )
        return pl.concat(parts)

    def _blocks(self) -> pl.DataFrame:
        """Blocks (key, rec, side), the key a block's number: two records are a candidate
        pair when they share a key and, for keys with a side, sit on different sides.

        - c, k: the same core (and branch): spellings that differ in region, form or width;
          within one region (c), and a spelling without a region with every spelling of its
          core (k, bare on one side and regional on the other);
        - w: a word of a Latin trade name (at least three letters), and the first and last
          four letters of words of six or more, so that one typo still shares a block;
        - s: a shared phone, email, address or legal representative: typos in the 字号,
          which only a shared trace can merge;
        - p: the pinyin of a 字号 and one region (or none), Latin on one side and Chinese on
          the other: transliterations.
        """
        r = self.records.filter(pl.col("core") != "")
        none = pl.lit(None, dtype=pl.String)
        core = pl.format("{}|{}", "core", pl.col("branch").fill_null(""))
        has_region = pl.col("_regions_py").list.len() > 0
        # Spellings of one region pair among themselves; a spelling without a region pairs
        # with every spelling of its core, whatever the region.
        regional = (
            r.filter(has_region)
            .select("rec", core.alias("_core"), pl.col("_regions_py").alias("_region"))
            .explode("_region")
            .select("rec", pl.format("c|{}|{}", "_core", "_region").alias("key"))
        )
        bare = r.filter(~has_region).select("rec", pl.format("c|{}|", core).alias("key"))
        across = r.select(
            "rec",
            pl.format("k|{}", core).alias("key"),
            pl.when(has_region).then(pl.lit("regional")).otherwise(pl.lit("bare")).alias("side"),
        )
        words = (
            r.filter(~pl.col("han"))
            .select(
                "rec",
                pl.col("trade").str.split(" ").list.set_difference("_regions_py").alias("key"),
            )
            .explode("key")
            .filter(pl.col("key").str.len_chars() >= 3)
            .select(
                "rec",
                pl.concat_list(
                    pl.format("w|{}", "key"),
                    pl.when(pl.col("key").str.len_chars() >= 6).then(
                        pl.format("w<|{}", pl.col("key").str.slice(0, 4))
                    ),
                    pl.when(pl.col("key").str.len_chars() >= 6).then(
                        pl.format("w>|{}", pl.col("key").str.slice(-4, 4))
                    ),
                )
                .list.drop_nulls()
                .alias("key"),
            )
            .explode("key")
        )
        support = (
            r.select("rec", pl.col("support").alias("key"))
            .explode("key")
            .drop_nulls()
            .select("rec", pl.format("s|{}", "key").alias("key"))
        )
        spoken = (
            r.filter(pl.col("trade_py").str.len_chars() >= 4)
            .select(
                "rec",
                "trade_py",
                pl.when(has_region)
                .then(pl.col("_regions_py"))
                .otherwise(pl.concat_list(pl.lit("")))
                .alias("_region"),
                pl.when("han").then(pl.lit("han")).otherwise(pl.lit("latin")).alias("side"),
            )
            .explode("_region")
            .select("rec", pl.format("p|{}|{}", "_region", "trade_py").alias("key"), "side")
        )
        blocks = pl.concat(
            [b.with_columns(none.alias("side")) for b in (regional, bare, words, support)]
            + [across, spoken]
        ).unique()
        # Keys become integers (a block's number) before the joins: the pairs do not carry
        # the text. One group-by finds the blocks, their sizes and their numbers.
        return (
            blocks.group_by("key")
            .agg("rec", "side")
            .filter(pl.col("rec").list.len() <= self.settings.max_block)
            .select(pl.int_range(pl.len(), dtype=pl.UInt32).alias("key"), "rec", "side")
            .explode("rec", "side")
        )

    def _name_edges(self) -> pl.DataFrame:
        s = self.settings
        blocks = self._blocks()

        def side(name: str | None) -> pl.DataFrame:
            chosen = pl.col("side").is_null() if name is None else pl.col("side") == name
            return blocks.filter(chosen).drop("side")

        same = side(None)
        pairs = (
            pl.concat(
                [
                    same.join(same, on="key", suffix="_b").filter(pl.col("rec") < pl.col("rec_b")),
                    side("latin").join(side("han"), on="key", suffix="_b"),
                    side("bare").join(side("regional"), on="key", suffix="_b"),
                ]
            )
            # A pair as one 64-bit key (records number far fewer than 2^32): unique and
            # sort on one integer column, in the order of (a, b).
            .select(
                (
                    pl.min_horizontal("rec", "rec_b").cast(pl.UInt64) * _PAIR
                    + pl.max_horizontal("rec", "rec_b").cast(pl.UInt64)
                ).alias("_pair")
            )
            .unique()
            .sort("_pair")
            .select(
                (pl.col("_pair") // _PAIR).cast(pl.Int64).alias("a"),
                (pl.col("_pair") % _PAIR).cast(pl.Int64).alias("b"),
            )
        )
        if pairs.height == 0:
            return _no_edges()
        # Records are numbered 0..n-1 in order, so a pair's attributes are gathered by
        # index; the cheap string columns first, the list columns only for pairs left.
        r = self.records

        def take(columns: list[str]) -> list[pl.Series]:
            out = []
            for name in columns:
                column = r.get_column(name)
                out += [
                    column.gather(pairs.get_column("a")),
                    column.gather(pairs.get_column("b")).alias(f"{name}_b"),
                ]
            return out

        pairs = pairs.with_columns(take(["core", "trade", "trade_py", "han"]))

        def compare(name: str, scorer: Any, chosen: pl.DataFrame) -> np.ndarray:
            # Python strings once per record, gathered per pair by numpy: converting the
            # pairs' columns would build a string object for each of the many pairs.
            texts = np.array(r.get_column(name).to_list(), dtype=object)
            return process.cpdist(
                texts[chosen.get_column("a").to_numpy()],
                texts[chosen.get_column("b").to_numpy()],
                scorer=scorer,
                workers=-1,
            )

        # Equal cores are 100 alike: only the others are scored.
        same_core = pairs.get_column("core") == pairs.get_column("core_b")
        scored = compare("core", fuzz.ratio, pairs.filter(~same_core))
        core_sim = np.full(pairs.height, 100, dtype=scored.dtype)
        core_sim[~same_core.to_numpy()] = scored
        pairs = pairs.with_columns(pl.Series("core_sim", core_sim, dtype=pl.Float64))
        pairs = pairs.filter(
            (pl.col("core") == pl.col("core_b"))
            | (pl.col("han") != pl.col("han_b"))
            | (pl.col("core_sim") >= min(s.fuzzy, s.supported))
        )
        pairs = pairs.with_columns(
            pl.Series("_edits", compare("trade", Levenshtein.distance, pairs), dtype=pl.Int64)
        )
        pairs = pairs.with_columns(take(["branch", "_regions_py", "_code", "support"]))
        both_regions = (pl.col("_regions_py").list.len() > 0) & (
            pl.col("_regions_py_b").list.len() > 0
        )
        region_conflict = both_regions & (
            pl.col("_regions_py").list.set_intersection("_regions_py_b").list.len() == 0
        )
        shared = pl.col("support").list.set_intersection("support_b").list.len() > 0
        same_script = pl.col("han") == pl.col("han_b")
        has_trade = (pl.col("trade") != "") & (pl.col("trade_b") != "")
        exact = (pl.col("core") == pl.col("core_b")) & (has_trade | both_regions)
        # One edit per chars_per_edit characters of the shorter 字号 or trade name: a short
        # name changed by one letter (ISHII, ISHIKI; 鑫达, 鑫大) is another firm's name.
        shorter = pl.min_horizontal(
            pl.col("trade").str.len_chars(), pl.col("trade_b").str.len_chars()
        )
        fuzzy = (
            same_script
            & has_trade
            & (pl.col("_edits") <= (shorter - 1) // s.chars_per_edit)
            & (pl.col("core_sim") >= s.fuzzy)
        )
        # Pinyin drops tones and merges near sounds (xucheng, xuchen): only an exact
        # match is a transliteration.
        transliteration = (
            ~same_script
            & (pl.col("trade_py").str.len_chars() >= 4)
            & (pl.col("trade_py") == pl.col("trade_py_b"))
        )
        supported = same_script & shared & (pl.col("core_sim") >= s.supported)
        method = (
            pl.when(exact)
            .then(pl.lit("exact"))
            .when(transliteration)
            .then(pl.lit("transliteration"))
            .when(fuzzy)
            .then(pl.lit("fuzzy"))
            .when(supported)
            .then(pl.lit("supported"))
        )
        blocked = (
            region_conflict
            | (pl.col("branch").fill_null("\x00") != pl.col("branch_b").fill_null("\x00"))
            | (
                pl.col("_code").is_not_null()
                & pl.col("_code_b").is_not_null()
                & (pl.col("_code") != pl.col("_code_b"))
            )
        )
        edges = pairs.with_columns(method.alias("method")).filter(
            pl.col("method").is_not_null() & ~blocked
        )
        edges = edges.with_columns(
            pl.when(pl.col("method").is_in(["exact", "transliteration"]))
            .then(100.0)
            .otherwise(pl.col("core_sim"))
            .alias("score"),
        )
        return self._unambiguous(edges).select("a", "b", "method", "score")

    def _unambiguous(self, edges: pl.DataFrame) -> pl.DataFrame:
        """A name without a region joins a regional firm only when one region fits.

        鑫达路桥建设有限公司 with no region matches 鑫达路桥建设 of every county that has one;
        it joins one of them only if that is the only candidate region, or the only one among
        the regions of the tenders it bid in.
        """
        # Per record once (records are numbered by row): how many regions it names and a
        # code for their set, so that the edges carry integers and gather lists only where
        # one end names no region.
        r = self.records
        count = r.get_column("_regions_py").list.len()
        ends = pl.concat(
            [
                edges.select(pl.col("a").alias("rec"), pl.col("b").alias("other")),
                edges.select(pl.col("b").alias("rec"), pl.col("a").alias("other")),
            ]
        )
        sides = ends.filter(
            (count.gather(ends.get_column("rec")) == 0).to_numpy()
            & (count.gather(ends.get_column("other")) > 0).to_numpy()
        )
        if sides.height == 0:
            return edges
        where = r.select(
            pl.col("_regions_py")
            .list.sort()
            .list.join("/")
            .cast(pl.Categorical)
            .to_physical()
            .alias("_where")
        ).to_series()
        mine, theirs = sides.get_column("rec"), sides.get_column("other")
        context = r.get_column("_context_py").gather(mine)
        sides = sides.with_columns(
            where.gather(theirs),
            (
                r.get_column("_regions_py").gather(theirs).list.set_intersection(context).list.len()
                > 0
            ).alias("_fits"),
        )
        choice = sides.group_by("rec").agg(
            pl.col("_where").n_unique().alias("_regions"),
            pl.col("_where").filter("_fits").n_unique().alias("_fitting"),
        )
        sides = sides.join(choice, on="rec")
        drop = sides.filter(
            (pl.col("_regions") > 1) & ~((pl.col("_fitting") == 1) & pl.col("_fits"))
        ).select("rec", "other")
        ambiguous = drop.get_column("rec").n_unique()
        if ambiguous:
            self.notes.append(
                f"{ambiguous} name(s) without a region match firms of several regions and were "
                "left unmerged (see entities.csv, method self)"
            )
        drop_pairs = pl.concat(
            [
                drop.select(pl.col("rec").alias("a"), pl.col("other").alias("b")),
                drop.select(pl.col("other").alias("a"), pl.col("rec").alias("b")),
            ]
        )
        return edges.join(drop_pairs, on=["a", "b"], how="anti")

    def _find(self, raw: str) -> list[int]:
        r = self.records
        key = raw.strip()
        hits = r.filter(
            (pl.col("bidder_id") == key)
            | (pl.col("registry_id") == key)
            | (pl.col("bidder_name") == key)
        )
        return hits.get_column("rec").to_list()

    def _link_edges(self, kind: str) -> pl.DataFrame:
        pairs = self.links.must if kind == "must" else self.links.cannot
        rows = []
        for left, right in pairs:
            a, b = self._find(left), self._find(right)
            if not a or not b:
                missing = left if not a else right
                self.notes.append(
                    f"entity link {left!r} - {right!r}: {missing!r} is no bidder or firm"
                )
                continue
            rows += [(x, y) for x in a for y in b if x != y]
        frame = pl.DataFrame(rows, schema={"a": pl.Int64, "b": pl.Int64}, orient="row")
        return frame.with_columns(
            pl.lit(f"{kind}_link").alias("method"), pl.lit(100.0).alias("score")
        )

    def _cannot_pairs(self, edges: pl.DataFrame) -> set[tuple[int, int]]:
        """Record pairs that may not be one firm: they bid in one tender, or the analyst says so."""
        named = edges.filter(pl.col("method").is_in(list(NAMED))).select("a", "b")
        inc = self.incidence
        cobid = (
            named.join(inc, left_on="a", right_on="rec")
            .join(inc, left_on=["b", "tender_id"], right_on=["rec", "tender_id"], how="semi")
            .select("a", "b")
            .unique()
        )
        pairs = {(a, b) for a, b in cobid.iter_rows()}
        pairs |= {(a, b) for a, b in self._link_edges("cannot").select("a", "b").iter_rows()}
        return pairs

    # -- clustering ---------------------------------------------------------------------

    def _cluster(self, edges: pl.DataFrame, cannot: set[tuple[int, int]]) -> pl.DataFrame:
        s = self.settings
        rank = {m: i for i, m in enumerate(ORDER)}
        edges = (
            edges.with_columns(
                pl.col("method").replace_strict(rank, return_dtype=pl.Int32).alias("_order")
            )
            .sort(["_order", "score", "a", "b"], descending=[False, True, False, False])
            .unique(["a", "b"], keep="first", maintain_order=True)
        )
        n_records = self.records.height
        a_all = edges.get_column("a").to_numpy()
        b_all = edges.get_column("b").to_numpy()
        spoken_edge = (edges.get_column("method") == "transliteration").to_numpy()
        # Edges never join two components of the edge graph, so each component is clustered
        # on its own. In a component where no two records could ever be refused a merge (see
        # ``_risky_components``), the union-find refuses nothing: its clusters are the
        # connected parts, and the edge that joined a record is the first one touching it
        # (the record is alone until then). Only the other components, and the
        # transliterations, whose ambiguity depends on the clusters, go edge by edge.
        component = _components(a_all, b_all, n_records)
        risky = self._risky_components(component, cannot)[component]
        risky_edge = risky[a_all]
        # In a risky component the identity edges still come first, and only two tests of
        # ``_conflict`` apply to them: a part they join holding no pair kept apart and at
        # most one valid credit code refuses none of them, and is merged up front too.
        early = risky_edge & ~edges.get_column("method").is_in(list(NAMED)).to_numpy()
        part = _components(a_all[early], b_all[early], n_records)
        eager = early & ~self._split_parts(part, cannot)[part[a_all]]
        plain = (~risky_edge & ~spoken_edge) | eager
        parent_np = _components(a_all[plain], b_all[plain], n_records)
        first = np.full(int(parent_np.max(initial=-1)) + 1, n_records, dtype=np.int64)
        np.minimum.at(first, parent_np, np.arange(n_records))
        parent: list[int] = first[parent_np].tolist()
        ends = np.column_stack([b_all[plain], a_all[plain]]).ravel()
        others = np.column_stack([a_all[plain], b_all[plain]]).ravel()
        touched, at = np.unique(ends, return_index=True)
        first_edge = pl.Series(np.flatnonzero(plain)[at // 2])
        how_plain = pl.DataFrame(
            {
                "rec": touched.astype(np.int64),
                "method": edges.get_column("method").gather(first_edge),
                "score": edges.get_column("score").gather(first_edge),
                "_with": others[at].astype(np.int64),
            }
        )
        joined_plain = np.zeros(n_records, dtype=bool)
        joined_plain[touched] = True
        has_joined: list[bool] = joined_plain.tolist()
        joined: dict[int, tuple[str, float, int]] = {}
        # Python objects only for the records of risky components.
        chosen = self.records.filter(pl.Series(risky))
        rows: dict[int, _Row] = dict(
            zip(
                chosen.get_column("rec").to_list(),
                zip(*(chosen.get_column(c).to_list() for c in _ROW), strict=True),
                strict=True,
            )
        )
        enemies: dict[int, set[int]] = {}
        for a, b in cannot:
            enemies.setdefault(a, set()).add(b)
            enemies.setdefault(b, set()).add(a)
        is_risky: list[bool] = risky.tolist()
        # The parts merged up front in risky components start as one cluster each.
        together = risky & (np.bincount(parent_np)[parent_np] > 1)
        members_of: dict[int, list[int]] = {}
        for rec in np.flatnonzero(together).tolist():
            members_of.setdefault(parent[rec], []).append(rec)
        clusters: dict[int, _Cluster] = {}

        def cluster(root: int) -> _Cluster:
            if root not in clusters:
                made = _Cluster(root, rows[root], enemies.get(root, set()))
                for rec in members_of.get(root, ()):
                    if rec != root:
                        made.add(rec, rows[rec], enemies.get(rec))
                clusters[root] = made
            return clusters[root]

        def find(x: int) -> int:
            while parent[x] != x:
                parent[x] = parent[parent[x]]
                x = parent[x]
            return x

        refused: dict[str, int] = {}

        def merge(a: int, b: int, method: str, score: float) -> None:
            ra, rb = find(a), find(b)
            if ra == rb:
                return
            if is_risky[a]:
                ca, cb = cluster(ra), cluster(rb)
                if method != "must_link":
                    reason = _conflict(ca, cb, method, s.cluster)
                    if reason:
                        refused[reason] = refused.get(reason, 0) + 1
                        return
                if len(ca.members) < len(cb.members):
                    ra, rb, ca, cb = rb, ra, cb, ca
                ca.members += cb.members
                ca.codes |= cb.codes
                ca.regions |= cb.regions
                ca.branches |= cb.branches
                ca.names |= cb.names
                if cb.enemies:
                    # A new set: a record's enemies may be shared with the enemies dict.
                    ca.enemies = ca.enemies | cb.enemies
                del clusters[rb]
            parent[rb] = ra
            if not has_joined[b]:
                has_joined[b] = True
                joined[b] = (method, score, a)
            if not has_joined[a]:
                has_joined[a] = True
                joined[a] = (method, score, b)

        applied = edges.filter(pl.Series(risky_edge & ~spoken_edge & ~eager))
        for a, b, method, score in zip(
            *(applied.get_column(c).to_list() for c in ("a", "b", "method", "score")), strict=True
        ):
            merge(a, b, method, score)
        # A Latin name joins a Chinese firm only when its pinyin points at one firm: after
        # the other edges, homophone typos (宏润, 洪润) are one firm, homophone firms two.
        spoken = edges.filter(pl.Series(spoken_edge))
        han: list[bool] = self.records.get_column("han").to_list()
        partners: dict[int, list[tuple[int, float]]] = {}
        for a, b, score in spoken.select("a", "b", "score").iter_rows():
            latin, chinese = (b, a) if han[a] else (a, b)
            partners.setdefault(latin, []).append((chinese, score))
        ambiguous = 0
        for latin, candidates in sorted(partners.items()):
            if len({find(c) for c, _ in candidates}) > 1:
                ambiguous += 1
                continue
            for chinese, score in candidates:
                merge(latin, chinese, "transliteration", score)
        if ambiguous:
            self.notes.append(
                f"{ambiguous} Latin name(s) spell the pinyin of several Chinese firms and were "
                "left unmerged"
            )
        for reason, count in sorted(refused.items()):
            self.notes.append(f"{count} candidate merge(s) refused: {reason}")
        roots = np.array(parent, dtype=np.int64)
        while True:
            up = roots[roots]
            if np.array_equal(up, roots):
                break
            roots = up
        how = pl.DataFrame(
            [(rec, m, score, other) for rec, (m, score, other) in joined.items()],
            schema={"rec": pl.Int64, "method": pl.String, "score": pl.Float64, "_with": pl.Int64},
            orient="row",
        )
        how = pl.concat([how_plain, how])
        return (
            pl.DataFrame({"rec": np.arange(n_records, dtype=np.int64), "_root": roots})
            .join(how, on="rec", how="left")
            .with_columns(pl.col("method").fill_null("self"))
        )

    def _split_parts(self, part: np.ndarray, cannot: set[tuple[int, int]]) -> np.ndarray:
        """Per part, whether it holds a pair that may not be one firm or two valid credit
        codes: the identity edges could be refused there."""
        split = np.zeros(int(part.max(initial=-1)) + 1, dtype=bool)
        if cannot:
            pairs = np.array(sorted(cannot), dtype=np.int64)
            same = part[pairs[:, 0]] == part[pairs[:, 1]]
            split[part[pairs[same, 0]]] = True
        codes = (
            self.records.select("_code")
            .with_columns(pl.Series("_part", part, dtype=pl.Int64))
            .filter(pl.col("_code").is_not_null())
            .group_by("_part")
            .agg(pl.col("_code").n_unique())
            .filter(pl.col("_code") > 1)
        )
        split[codes.get_column("_part").to_numpy()] = True
        return split

    def _risky_components(self, component: np.ndarray, cannot: set[tuple[int, int]]) -> np.ndarray:
        """Per component of the edge graph, whether some merge in it might be refused.

        A component is safe when ``_conflict`` can hold for no two parts of it: no pair that
        may not be one firm, at most one valid credit code, one branch, a region that every
        record naming a region names, and every two of its names close enough (the chaining
        test of ``_conflict`` passes for each pair). Anything else, or more than
        ``_NAMES_CHECKED`` distinct names, is risky and clustered edge by edge.
        """
        n_components = int(component.max(initial=-1)) + 1
        risky = np.zeros(n_components, dtype=bool)
        if n_components == 0:
            return risky
        if cannot:
            pairs = np.array(sorted(cannot), dtype=np.int64)
            same = component[pairs[:, 0]] == component[pairs[:, 1]]
            risky[component[pairs[same, 0]]] = True
        sizes = np.bincount(component, minlength=n_components)
        r = (
            self.records.select("_code", "branch", "_regions_py", "core", "trade_py", "han")
            .with_columns(pl.Series("_comp", component, dtype=pl.Int64))
            .filter(pl.Series(sizes[component] > 1))
        )
        mixed = r.group_by("_comp").agg(
            (
                (pl.col("_code").drop_nulls().n_unique() > 1) | (pl.col("branch").n_unique() > 1)
            ).alias("_mixed")
        )
        regional = r.filter(pl.col("_regions_py").list.len() > 0).select(
            "_comp", pl.col("_regions_py").list.unique().alias("_region")
        )
        regions = (
            regional.explode("_region")
            .group_by("_comp", "_region")
            .len()
            .group_by("_comp")
            .agg(pl.col("len").max().alias("_common"))
            .join(regional.group_by("_comp").len(), on="_comp")
            .filter(pl.col("_common") < pl.col("len"))
        )
        names = r.filter(pl.col("core") != "").select("_comp", "core", "trade_py", "han").unique()
        names = names.with_columns(pl.len().over("_comp").alias("_names")).filter(
            pl.col("_names") > 1
        )
        many = names.filter(pl.col("_names") > _NAMES_CHECKED)
        few = names.filter(pl.col("_names") <= _NAMES_CHECKED).with_row_index("_n")
        pairs_ = few.join(few, on="_comp", suffix="_b").filter(pl.col("_n") < pl.col("_n_b"))
        ratio = process.cpdist(
            pairs_.get_column("core").to_list(),
            pairs_.get_column("core_b").to_list(),
            scorer=fuzz.ratio,
            workers=-1,
        )
        chained = pairs_.with_columns(pl.Series("_ratio", ratio, dtype=pl.Float64)).filter(
            pl.when(pl.col("han") != pl.col("han_b"))
            .then(pl.col("trade_py") != pl.col("trade_py_b"))
            .otherwise(pl.col("_ratio") < self.settings.cluster)
        )
        for frame in (
            mixed.filter("_mixed"),
            regions,
            many,
            chained,
        ):
            risky[frame.get_column("_comp").to_numpy()] = True
        return risky

    # -- output -------------------------------------------------------------------------

    def _entities(self, tree: pl.DataFrame) -> pl.DataFrame:
        r = self.records.join(tree, on="rec")
        shown = pl.coalesce(
            pl.col("bidder_name"),
            pl.format("id {}", pl.col("bidder_id")),
            pl.format("registry {}", pl.col("registry_id")),
        )
        names = r.select(pl.col("rec").alias("_with"), shown.alias("matched_with"))
        per_cluster = r.group_by("_root").agg(
            pl.col("registry_id").drop_nulls().min().alias("_registry"),
            pl.col("bidder_id").drop_nulls().min().alias("_id"),
            pl.when(pl.col("norm") != "")
            .then("norm")
            .sort_by("bids", "norm", descending=[True, False])
            .drop_nulls()
            .first()
            .alias("_norm"),
        )
        # A name's hash only for firms with neither a registry id nor a bidder id.
        unnamed = per_cluster.filter(pl.col("_registry").is_null() & pl.col("_id").is_null())
        hashed = {
            n: "N" + hashlib.blake2b(n.encode(), digest_size=5).hexdigest()
            for n in unnamed.get_column("_norm").drop_nulls().unique().to_list()
        }
        per_cluster = per_cluster.with_columns(
            pl.coalesce(
                "_registry",
                "_id",
                pl.col("_norm").replace_strict(hashed, default=None, return_dtype=pl.String),
            ).alias("firm_id")
        )
        r = r.join(per_cluster.select("_root", "firm_id"), on="_root").join(
            names, on="_with", how="left"
        )
        parents = (
            r.filter(pl.col("parent").is_null() & (pl.col("norm") != ""))
            .group_by("norm")
            .agg(pl.col("firm_id").min().alias("parent_id"))
        )
        r = r.join(parents, left_on="_parent_norm", right_on="norm", how="left")
        return (
            r.select(
                "firm_id",
                "bidder_id",
                "bidder_name",
                "credit_code",
                "source",
                "method",
                "score",
                "matched_with",
                pl.when(pl.col("parent_id") != pl.col("firm_id"))
                .then("parent_id")
                .alias("parent_id"),
                "bids",
            )
            .cast(pl.Schema(ENTITY_SCHEMA))
            .sort("firm_id", "source", "bidder_id", "bidder_name", "credit_code", nulls_last=True)
        )


def _conflict(a: _Cluster, b: _Cluster, method: str, cluster_floor: float) -> str | None:
    if (a.enemies and not a.enemies.isdisjoint(b.members)) or (
        b.enemies and not b.enemies.isdisjoint(a.members)
    ):
        return "the two bid in the same tender, or an analyst link keeps them apart"
    if a.codes and b.codes and a.codes != b.codes:
        return "different valid credit codes"
    if method not in NAMED:
        return None
    if a.regions and b.regions and not a.regions & b.regions:
        return "names of different regions"
    if a.branches != b.branches:
        return "different branches"
    for core_a, py_a, han_a in a.names:
        for core_b, py_b, han_b in b.names:
            if han_a != han_b and py_a != py_b:
                return "names of the merged firm would disagree (chaining)"
            if han_a == han_b and fuzz.ratio(core_a, core_b) < cluster_floor:
                return "names of the merged firm would disagree (chaining)"
    return None


@contextmanager
def _without_gc() -> Iterator[None]:
    """The cyclic garbage collector paused: the union-find makes many small sets and lists,
    none of them garbage, and every collection would walk them all again."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _components(a: np.ndarray, b: np.ndarray, n: int) -> np.ndarray:
    """Connected component of each of n nodes joined by the edges (a, b)."""
    graph = sparse.coo_matrix((np.ones(a.size, dtype=np.int8), (a, b)), shape=(n, n))
    labels: np.ndarray = connected_components(graph, directed=False)[1]
    return labels.astype(np.int64)


def _no_edges() -> pl.DataFrame:
    return pl.DataFrame(
        schema={"a": pl.Int64, "b": pl.Int64, "method": pl.String, "score": pl.Float64}
    )


def pinyin_map(texts: pl.Series) -> dict[str, str]:
    """Pinyin of each distinct text, syllables joined: 路通 -> lutong."""
    from pypinyin import lazy_pinyin

    return {t: "".join(lazy_pinyin(t)) for t in texts.drop_nulls().unique().to_list()}


def _describe(records: pl.DataFrame) -> pl.DataFrame:
    """Records with their names taken apart, regions known to the whole input stripped from
    the front of 字号, pinyin of 字号 and regions, and valid credit codes."""
    names = records.get_column("bidder_name").unique().drop_nulls()
    parsed = parse(names).rename({"name": "bidder_name"})
    out = records.join(parsed, on="bidder_name", how="left").with_columns(
        pl.col("norm").fill_null(""),
        pl.col("han").fill_null(False),
        pl.col("regions").fill_null(pl.lit([], dtype=pl.List(pl.String))),
        pl.col("trade").fill_null(""),
        pl.col("industry").fill_null(""),
        pl.col("core").fill_null(""),
        pl.when(pl.col("parent").is_not_null()).then(clean(pl.col("parent"))).alias("_parent_norm"),
    )
    known = set(out.get_column("regions").explode().drop_nulls().to_list())
    known |= set(out.get_column("context").explode().drop_nulls().to_list())
    known = {k for k in known if len(k) >= 2}
    if known:
        alternation = "|".join(sorted(known, key=len, reverse=True))
        front = pl.col("trade").str.extract(f"^({alternation})", 1)
        movable = (
            pl.col("han")
            & front.is_not_null()
            & (pl.col("trade").str.len_chars() - front.str.len_chars() >= 2)
        )
        out = out.with_columns(
            pl.when(movable)
            .then(pl.concat_list("regions", pl.concat_list(front)))
            .otherwise(pl.col("regions"))
            .alias("regions"),
            pl.when(movable)
            .then(pl.col("trade").str.slice(front.str.len_chars()))
            .otherwise(pl.col("trade"))
            .alias("trade"),
        ).with_columns(
            pl.concat_str("trade", "industry", separator=" ").str.strip_chars().alias("core")
        )
    out = out.with_columns(_latin_suffixes(out))
    han_trades = out.filter(pl.col("han")).get_column("trade")
    spoken = pinyin_map(
        pl.concat(
            [out.get_column("regions").explode(), out.get_column("context").explode(), han_trades]
        )
    )

    def say(expr: pl.Expr) -> pl.Expr:
        return expr.replace_strict(spoken, default=expr, return_dtype=pl.String)

    trade_py = (
        pl.when(pl.col("han"))
        .then(say(pl.col("trade")))
        .otherwise(pl.col("trade").str.replace_all(" ", ""))
    )
    out = out.with_columns(
        pl.col("regions").list.eval(say(pl.element())).alias("_regions_py"),
        pl.col("context").list.eval(say(pl.element())).alias("_context_py"),
        trade_py.fill_null("").alias("trade_py"),
    )
    # An English name spells its region in pinyin (Daye Lutong ...): a word that is the
    # pinyin of a region the input names is a region, not part of the 字号.
    spoken_regions = sorted({spoken.get(k, k) for k in known})
    if spoken_regions:
        words = pl.col("trade").str.split(" ")
        is_region = pl.element().is_in(spoken_regions)
        latin = ~pl.col("han") & (pl.col("trade") != "")
        kept = words.list.eval(pl.element().filter(~is_region))
        out = out.with_columns(
            pl.when(latin & (kept.list.len() > 0))
            .then(pl.concat_list("_regions_py", words.list.eval(pl.element().filter(is_region))))
            .otherwise(pl.col("_regions_py"))
            .alias("_regions_py"),
            pl.when(latin & (kept.list.len() > 0))
            .then(kept.list.join(""))
            .otherwise(pl.col("trade_py"))
            .alias("trade_py"),
        )
    valid = valid_codes(out.get_column("credit_code"))
    out = out.with_columns(
        pl.col("credit_code")
        .replace_strict(valid, default=None, return_dtype=pl.String)
        .alias("_code")
    )
    return out.sort("rec")


# What str.strip() removes from an ASCII string.
_ASCII_SPACE = " \t\n\r\x0b\x0c\x1c\x1d\x1e\x1f"
_USCC_LETTERS = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_USCC_WEIGHTS = np.array([1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28])


def valid_codes(codes: pl.Series) -> dict[str, str]:
    """The distinct valid credit codes, each with its canonical form (stripped, upper case):
    ``credit_code_valid`` for whole columns.

    A registry holds a code per firm, too many for a Python call each: ASCII codes are
    checked at once (pattern by polars, check character by numpy), others one by one.
    """
    frame = pl.DataFrame({"raw": codes.drop_nulls().unique()}, schema={"raw": pl.String})
    ascii_only = pl.col("raw").str.contains(r"^[\x00-\x7F]*$")
    others = frame.filter(~ascii_only).get_column("raw").to_list()
    valid = {c: c.strip().upper() for c in others if credit_code_valid(c)}
    shaped = (
        frame.filter(ascii_only)
        .with_columns(pl.col("raw").str.strip_chars(_ASCII_SPACE).str.to_uppercase().alias("code"))
        .filter(
            pl.col("code").str.contains(r"^[0-9A-HJ-NP-RTUWXY]{2}[0-9]{6}[0-9A-HJ-NP-RTUWXY]{10}$")
        )
    )
    if shaped.height == 0:
        return valid
    value = np.zeros(128, dtype=np.int64)
    value[[ord(c) for c in _USCC_LETTERS]] = np.arange(len(_USCC_LETTERS))
    chars = np.frombuffer(
        "".join(shaped.get_column("code").to_list()).encode("ascii"), dtype=np.uint8
    ).reshape(-1, 18)
    total = value[chars[:, :17]] @ _USCC_WEIGHTS
    expected = np.frombuffer(_USCC_LETTERS.encode("ascii"), dtype=np.uint8)[(31 - total % 31) % 31]
    right = shaped.filter(pl.Series(expected == chars[:, 17]))
    valid.update(
        zip(right.get_column("raw").to_list(), right.get_column("code").to_list(), strict=True)
    )
    return valid


def word_endings(words: pl.Series) -> list[str]:
    """Endings that are words of their own in one-word names: kensetsu in ARAKAKIKENSETSU.

    An ending is a word when many names end with it (at least 1% of them, and 10) and the
    letter before it varies, as it does at a word boundary: no one letter precedes it in
    more than half of those names (k always precedes "ensetsu", so that is not a word).
    Of two nested endings the more frequent one is kept (kensetsu rather than kikensetsu).
    """
    words = words.unique()
    if words.len() < 20:
        return []
    floor = max(10, int(0.01 * words.len()))
    candidates = []
    for n in range(4, 11):
        long = words.filter(words.str.len_chars() >= n + 3)
        ends = pl.DataFrame({"end": long.str.slice(-n, n), "before": long.str.slice(-n - 1, 1)})
        counts = ends.group_by("end").agg(
            pl.len().alias("count"), pl.col("before").value_counts(sort=True).first().alias("top")
        )
        counts = counts.filter(
            (pl.col("count") >= floor)
            & (pl.col("top").struct.field("count") * 2 <= pl.col("count"))
        )
        candidates += list(counts.select("end", "count").iter_rows())
    kept: list[str] = []
    for end, _ in sorted(candidates, key=lambda c: (-c[1], len(c[0]), c[0])):
        if not any(end.endswith(k) for k in kept):
            kept.append(end)
    return kept


def _latin_suffixes(frame: pl.DataFrame) -> list[pl.Expr]:
    """Split word endings off one-word Latin names: HEISEIKAIHATSU -> heisei + kaihatsu.

    Romanised names are often written as one word; their endings (kensetsu, kogyo, gumi,
    construction) say what the firm does. Such an ending (see ``word_endings``) is weak
    evidence, as industry words are, and goes to the industry part.
    """
    single = frame.filter(
        ~pl.col("han") & (pl.col("trade") != "") & ~pl.col("trade").str.contains(" ")
    )
    common = word_endings(single.get_column("trade"))
    if not common:
        return []
    alternation = "|".join(sorted(common, key=len, reverse=True))
    trade = pl.col("trade")
    cut = trade.str.extract(f"^(.{{3,}}?)((?:{alternation})+)$", 1)
    ending = trade.str.extract(f"^(.{{3,}}?)((?:{alternation})+)$", 2)
    usable = ~pl.col("han") & ~trade.str.contains(" ") & cut.is_not_null()
    return [
        pl.when(usable).then(cut).otherwise(trade).alias("trade"),
        pl.when(usable)
        .then(pl.concat_str(ending, "industry", separator=" ").str.strip_chars())
        .otherwise(pl.col("industry"))
        .alias("industry"),
    ]


def firm_table(data: Dataset) -> pl.DataFrame:
    """One row per entity that bid: firm_id, name, bidder_ids, bidder_names, parent_id,
    tenders, wins."""
    if data.entities is None or "firm_id" not in data.bids.columns:
        raise ValueError("resolve() the dataset first")
    bids = data.bids.filter(pl.col("firm_id").is_not_null())
    activity = bids.group_by("firm_id").agg(
        pl.col("tender_id").n_unique().alias("tenders"),
        pl.col("tender_id").filter(pl.col("is_winner").fill_null(False)).n_unique().alias("wins"),
    )
    from_bids = data.entities.filter(pl.col("source") == "bids")
    names = from_bids.group_by("firm_id").agg(
        pl.col("bidder_id").drop_nulls().unique().sort().str.join(";").alias("bidder_ids"),
        pl.col("bidder_name").drop_nulls().unique().sort().str.join(";").alias("bidder_names"),
        pl.col("bidder_name")
        .sort_by("bids", "bidder_name", descending=[True, False])
        .drop_nulls()
        .first()
        .alias("_common"),
        pl.col("parent_id").drop_nulls().min().alias("parent_id"),
    )
    registry = data.firms.select("firm_id", pl.col("name").alias("_registered"))
    return (
        names.join(registry, on="firm_id", how="left")
        .join(activity, on="firm_id", how="inner")
        .select(
            "firm_id",
            pl.coalesce("_registered", "_common", "bidder_ids").alias("name"),
            "bidder_ids",
            "bidder_names",
            "parent_id",
            pl.col("tenders").fill_null(0),
            pl.col("wins").fill_null(0),
        )
        .sort("firm_id")
    )
