"""Firms linked across tenders by one hand: the same trace on different firms' bids."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

import numpy as np
import numpy.typing as npt
import polars as pl
from scipy import sparse
from scipy.sparse import csgraph

from bidwatch.detectors._base import NotComputable
from bidwatch.detectors._pairs import bid_codes
from bidwatch.detectors.shared_traces import TRACES, distinct, trace_codes
from bidwatch.findings import FINDING_SCHEMA, Findings, SubjectKind, build, with_group_ids
from bidwatch.schema import TRACE_COLUMNS

if TYPE_CHECKING:
    from bidwatch.dataset import Dataset

# Across tenders an IP address is weaker than inside one: dynamic addresses are handed to
# another line after hours or days. The other strengths are those of shared-traces.
STRENGTH: dict[str, float] = {t: s for t, (s, _, _) in TRACES.items()} | {"ip_address": 0.5}
# Person names are not identifiers: across a whole country many people share one. They
# link firms only within one region.
NAMES = ("legal_representative", "project_manager", "agent", "document_author")
# Tender ids listed per carrier of a value in the evidence.
LISTED = 20


@dataclass(frozen=True)
class TraceNetwork:
    """Different firms carry the same trace of one hand (a machine code, deposit account,
    phone, project manager ...) across tenders: the group behind them.

    ## What it flags
    Groups of two or more firms linked by trace values (machine code, MAC address, IP
    address, document author or hash, deposit account, phone, email, address, project
    manager, agent, legal representative) that each appear on bids of two or more of the
    firms and in at least `min_tenders` different tenders. Firms joined by any chain of
    such values form one group.

    ## Why it is a risk
    The PRC Bidding Law implementing regulations (招标投标法实施条例) art. 40 deem bids
    collusive when their files were made by the same unit or person, their bidding was
    handled by one person, they name the same project manager or their deposits came from
    one account; art. 34 bars bidders under one legal representative from one tender.
    shared-traces finds this inside one tender. Across tenders the same trace on several
    firms shows who prepares whose bids (a ring's organiser, a 代理 shop that bids in
    several names, firms under one owner), even where they never met in one tender: the
    network a ring is made of.

    ## Method
    Trace values of bids of every status are normalised as in shared-traces (Unicode NFKC,
    case, spaces; phone digits; MAC hex digits; punctuation dropped from names and
    addresses); placeholders are ignored, and so is a value that more than `max_firms`
    different firms carry (a default such as "Administrator", a platform's gateway).
    Person names (legal representative, project manager, agent, document author) count as
    the same value only within one region, where regions are given. A value links the
    firms carrying it when two or more firms carry it and it appears in at least
    `min_tenders` different tenders (a value seen in one tender only is left to
    shared-traces). Groups are the connected components of the firms linked by any value.
    Score: each value's firm that carries it in most tenders (ties: the smaller id) is its
    main carrier; t = the number of tenders in which another firm carried it. A value
    scores s x (1 - 2^-t), s the trace's strength (as in shared-traces: 0.99 machine code,
    document hash, deposit account; 0.97 MAC, project manager; 0.95 agent, legal
    representative; 0.9 email; 0.85 phone; 0.8 document author; 0.6 address; but 0.5 for an
    IP address, which is reassigned over time), so that a single use by another firm
    counts half and each further tender halves what remains; the group scores
    1 - prod(1 - best value of each trace type).

    ## Evidence
    The members and each linking value: its trace type, the value as written, the
    provision it falls under, its carriers with the tenders each carried it in (up to 20
    listed per carrier, with their number), and t.

    ## Parameters
    - `max_firms`: a value carried by more different firms than this in the whole input is
      treated as a default, not a trace.
    - `min_tenders`: fewest different tenders a value must appear in to link firms.

    ## Known false positives
    One firm under two ids that entity resolution did not merge (every trace is then
    shared); firms of one group that bid honestly in different tenders (art. 34 still bars
    them from the same one); a bid-preparation shop or an agent that serves several
    clients honestly (its author name, phone or address); an office building or a shared
    broadband line (address, IP address); two people of one name in one region.

    ## References
    - 中华人民共和国招标投标法实施条例 (2011, rev. 2019), arts. 34, 39, 40.
    - OECD (2009). Guidelines for fighting bid rigging in public procurement.
    - Wachs, J. & Kertész, J. (2019). A network approach to cartel detection in public
      auction markets. Scientific Reports 9, 10818.
    """

    max_firms: int = 20
    min_tenders: int = 2

    name: ClassVar[str] = "trace-network"
    subject: ClassVar[SubjectKind] = "group"
    requires: ClassVar[frozenset[str]] = frozenset({"bids.firm_id"})
    # One hand behind several firms, as strong as a shared trace in one tender, but a link
    # between firms is not yet a rigged tender.
    default_weight: ClassVar[float] = 1.5

    def __post_init__(self) -> None:
        if self.max_firms < 2:
            raise ValueError(f"max_firms must be >= 2, got {self.max_firms}")
        if self.min_tenders < 2:
            raise ValueError(f"min_tenders must be >= 2, got {self.min_tenders}")

    def detect(self, data: Dataset) -> Findings:
        present = [t for t in TRACE_COLUMNS if data.has(f"bids.{t}")]
        if not present:
            raise NotComputable("no trace column in the bids (" + ", ".join(TRACE_COLUMNS) + ")")
        # Integer codes for tenders, firms and regions: the group-bys below run over every
        # (bid, trace) pair, where string keys would cost most of the time. Tenders and
        # firms are coded once per dataset; firms count from 1 here.
        codes = bid_codes(data)
        region = pl.col("region") if data.has("tenders.region") else pl.lit(None, pl.String)
        regions = data.tenders.select(
            pl.col("tender_id")
            .cast(pl.Enum(codes.tenders), strict=False)
            .to_physical()
            .cast(pl.UInt32)
            .alias("_t"),
            region.fill_null("").alias("_region"),
        ).unique("_t")
        # Each tender's region code, in the order of the regions' names ("" where none is
        # given, and for a tender missing from the tenders table); the slot after the last
        # tender serves a bid without one.
        region_names = pl.concat([regions.get_column("_region"), pl.Series([""])]).unique().sort()
        region_code = (
            regions.get_column("_region").cast(pl.Enum(region_names)).to_physical().to_numpy()
        )
        region_of = np.full(
            codes.tenders.len() + 1,
            int(region_names.search_sorted("")) + 1,
            dtype=np.uint64,
        )
        listed = regions.get_column("_t")
        region_of[listed.drop_nulls().to_numpy()] = (
            region_code[listed.is_not_null().to_numpy()].astype(np.uint64) + 1
        )
        tender_count = codes.tenders.len()
        firm = codes.frame.get_column("_f")
        resolved = np.flatnonzero(firm.is_not_null().to_numpy())
        firm_of = firm.fill_null(0).to_numpy()[resolved].astype(np.int64) + 1
        tender_of = codes.frame.get_column("_t").fill_null(tender_count).to_numpy()[resolved]
        region_of_bid = region_of[tender_of]
        # Values as coded for both trace detectors (_kk: the (trace, key) rank, so _kk order
        # is (trace, key) order), and the (bid, trace) rows of resolved bids with a key.
        traced = trace_codes(data, present)
        keys = traced.keys
        rows: list[npt.NDArray[np.uint32]] = []
        kks: list[npt.NDArray[np.uint32]] = []
        written_by: list[npt.NDArray[np.uint32]] = []
        for value in traced.values:
            v = value[resolved]
            kk = traced.key_of[v]
            keyed = np.flatnonzero(kk).astype(np.uint32)
            rows.append(keyed)
            kks.append(kk[keyed])
            written_by.append(v[keyed])
        row = np.concatenate(rows)
        kk_long = np.concatenate(kks).astype(np.int64)
        in_names = np.concatenate(
            [np.full(r.shape[0], t in NAMES) for t, r in zip(present, rows, strict=True)]
        )
        del rows, kks
        # Firms carrying each value, whatever the region: only values on two or more firms
        # can link or be defaults, and "Administrator" in every county is still a default.
        width = codes.firms.len() + 2
        firms_of = traced.firms
        several = firms_of[kk_long] >= 2
        named = (
            keys.filter(pl.Series(firms_of[traced.key_of[:-1]] > self.max_firms))
            .group_by("_k")
            .agg(pl.col("trace").first(), pl.col("key").first())
            .sort("_k")
            .head(20)
        )
        notes = tuple(
            f"{trace} {key!r} is carried by {firms_of[kk]} firms: treated as a default, not a trace"
            for kk, trace, key in named.select("_k", "trace", "key").iter_rows()
        )
        kept = np.flatnonzero(several & (firms_of[kk_long] <= self.max_firms))
        row, kk_long = row[kept], kk_long[kept]
        written_long = np.concatenate(written_by)[kept]
        del written_by
        # A value is linked within its region for person names, everywhere for the others.
        scale = region_names.len() + 1  # above every region code
        region_long = np.where(in_names[kept], region_of_bid[row], 0).astype(np.uint64)
        k_long = kk_long.astype(np.uint64) * np.uint64(scale) + region_long
        f_long = firm_of[row]
        t_long = tender_of[row].astype(np.int64)
        # Firms and tenders of each linked value (_k), counted on distinct pairs.
        k_values, k_index = np.unique(k_long, return_inverse=True)
        k_index = k_index.astype(np.int64)
        n_firms = np.bincount(
            distinct(k_index * width + f_long) // width, minlength=k_values.shape[0]
        )
        n_tenders = np.bincount(
            distinct(k_index * (tender_count + 1) + t_long) // (tender_count + 1),
            minlength=k_values.shape[0],
        )
        shared = n_firms[k_index] >= 2
        linking = shared & (n_tenders[k_index] >= self.min_tenders)
        long = pl.DataFrame(
            {
                "_t": pl.Series(t_long, dtype=pl.UInt32),
                "_f": pl.Series(f_long, dtype=pl.UInt32),
                "_kk": pl.Series(kk_long, dtype=pl.UInt64),
                "_k": pl.Series(k_long, dtype=pl.UInt64),
            }
        ).with_columns(
            # A bid without a tender has none to list or count.
            pl.when(pl.col("_t") < tender_count).then(pl.col("_t")).alias("_t")
        )
        # Each linking value as written: its smallest spelling on resolved bids.
        linked_kk = np.unique(kk_long[linking])
        on_resolved = np.zeros(keys.height, dtype=bool)
        on_resolved[written_long[np.isin(kk_long, linked_kk)]] = True
        written = (
            keys.filter(pl.Series(on_resolved))
            .group_by("_k")
            .agg(pl.col("value").min(), pl.col("trace").first(), pl.col("key").first())
            .rename({"_k": "_kk"})
            .with_columns(pl.col("_kk").cast(pl.UInt64))
        )
        firms = pl.DataFrame(
            {
                "_f": pl.int_range(1, codes.firms.len() + 1, dtype=pl.UInt32, eager=True),
                "firm_id": codes.firms,
            }
        )
        candidates = self._groups(long.filter(pl.Series(shared)), firms)
        if not linking.any():
            return Findings(pl.DataFrame(schema=FINDING_SCHEMA), assessed=candidates, notes=notes)
        links = long.filter(pl.Series(linking))
        members = self._members(links, firms)
        tenders = pl.DataFrame(
            {
                "_t": pl.int_range(codes.tenders.len(), dtype=pl.UInt32, eager=True),
                "tender_id": codes.tenders,
            }
        )
        found = self._values(links, members, firms, tenders, written)
        groups = (
            found.sort(
                "group_id",
                "_score",
                "trace",
                "key",
                "_k",
                descending=[False, True, False, False, False],
            )
            .group_by("group_id", maintain_order=True)
            .agg(
                pl.col("members").first(),
                pl.struct(
                    "trace", "value", "clause", "carriers", pl.col("_borrowed").alias("t")
                ).alias("links"),
                pl.format(
                    "{} {} on {} firms' bids in {} tenders ({})",
                    "trace",
                    "value",
                    pl.col("carriers").list.len(),
                    "_tenders",
                    "_art",
                )
                .head(3)
                .str.join("; ")
                .alias("_what"),
                pl.len().alias("_values"),
            )
        )
        best = (
            found.group_by("group_id", "trace")
            .agg(pl.col("_score").max())
            .sort("group_id", "trace")
            .group_by("group_id", maintain_order=True)
            .agg((1 - (1 - pl.col("_score")).product()).alias("_group_score"))
        )
        groups = groups.join(best, on="group_id").sort("group_id")
        assessed = pl.concat([candidates, groups.get_column("group_id")])
        return build(
            groups,
            detector=self.name,
            kind="group",
            subject_id=pl.col("group_id"),
            score=pl.col("_group_score"),
            value=pl.col("_values").cast(pl.Float64),
            threshold=pl.lit(None, dtype=pl.Float64),
            message=pl.format(
                "{} firms linked by {}{}",
                pl.col("members").list.len(),
                "_what",
                pl.when(pl.col("_values") > 3)
                .then(pl.format("; {} more", pl.col("_values") - 3))
                .otherwise(pl.lit("")),
            ),
            evidence={"members": pl.col("members"), "links": pl.col("links")},
            firms=pl.col("members"),
            assessed=assessed,
            notes=notes,
        )

    @staticmethod
    def _members(links: pl.DataFrame, firms: pl.DataFrame) -> pl.DataFrame:
        """_f and group members (sorted firm ids) of the firms the links join."""
        star = links.group_by("_k").agg(pl.col("_f").unique())
        heads = star.select(pl.col("_f").list.min().alias("_a"), pl.col("_f").alias("_b")).explode(
            "_b"
        )
        a = heads.get_column("_a").cast(pl.Int64).to_numpy()
        b = heads.get_column("_b").cast(pl.Int64).to_numpy()
        size = firms.height + 1  # codes are dense ranks 1..height
        adjacency = sparse.coo_matrix((np.ones(a.shape[0]), (a, b)), shape=(size, size))
        _, label = csgraph.connected_components(adjacency, directed=False)
        touched = np.unique(np.concatenate([a, b]))
        frame = pl.DataFrame(
            {"_f": touched.astype(np.uint32), "_c": label[touched].astype(np.int64)}
        ).join(firms, on="_f")
        per_group = (
            frame.group_by("_c").agg(pl.col("firm_id").sort().alias("members")).pipe(with_group_ids)
        )
        return frame.join(per_group, on="_c").select("_f", "members", "group_id")

    def _groups(self, shared: pl.DataFrame, firms: pl.DataFrame) -> pl.Series:
        """Group ids of the components of every value shared by two or more firms."""
        if shared.height == 0:
            return pl.Series("group_id", [], dtype=pl.String)
        return self._members(shared, firms).get_column("group_id").unique()

    @staticmethod
    def _values(
        links: pl.DataFrame,
        members: pl.DataFrame,
        firms: pl.DataFrame,
        tenders: pl.DataFrame,
        written: pl.DataFrame,
    ) -> pl.DataFrame:
        """One row per linking value: its group, carriers with their tenders, t and score."""
        carried = (
            links.join(tenders, on="_t")
            .join(firms, on="_f")
            .group_by("_k", "firm_id")
            .agg(pl.col("tender_id").unique().sort().alias("tenders"))
            .with_columns(pl.col("tenders").list.len().alias("count"))
            .sort(["_k", "count", "firm_id"], descending=[False, True, False])
        )
        main = carried.group_by("_k", maintain_order=True).agg(
            pl.col("firm_id").first().alias("_main")
        )
        borrowed = (
            links.join(firms, on="_f")
            .join(main, on="_k")
            .filter(pl.col("firm_id") != pl.col("_main"))
            .group_by("_k")
            .agg(pl.col("_t").n_unique().alias("_borrowed"))
        )
        seen = (
            (
                links.group_by("_k").agg(
                    pl.col("_kk").first(),
                    pl.col("_t").n_unique().alias("_tenders"),
                    pl.col("_f").first(),
                )
            )
            .join(members.select("_f", "members", "group_id"), on="_f")
            .join(written, on="_kk")
        )
        carriers = carried.group_by("_k", maintain_order=True).agg(
            pl.struct(
                pl.col("firm_id").alias("firm"),
                pl.col("tenders").list.head(LISTED),
                pl.col("count").alias("tender_count"),
            ).alias("carriers")
        )
        strength = pl.col("trace").replace_strict(STRENGTH, return_dtype=pl.Float64)
        article = {t: a for t, (_, a, _) in TRACES.items()}
        clause = {t: f"{a}: {c}" for t, (_, a, c) in TRACES.items()}
        return (
            seen.join(carriers, on="_k")
            .join(borrowed, on="_k")
            .with_columns(
                (strength * (1 - pl.lit(2.0).pow(-pl.col("_borrowed").cast(pl.Float64)))).alias(
                    "_score"
                ),
                pl.col("trace").replace_strict(clause, return_dtype=pl.String).alias("clause"),
                pl.col("trace").replace_strict(article, return_dtype=pl.String).alias("_art"),
            )
        )
