"""One hand behind competing bids: traces shared by different bidders in one tender."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

import numpy as np
import numpy.typing as npt
import polars as pl

from bidwatch.detectors._base import NotComputable, handoff
from bidwatch.detectors._pairs import bid_codes
from bidwatch.findings import Findings, SubjectKind, build
from bidwatch.identifiers import PLACEHOLDERS, trace_key
from bidwatch.schema import TRACE_COLUMNS

if TYPE_CHECKING:
    from bidwatch.dataset import Dataset

# How strongly one shared trace shows one hand, and the provision that names it
# (招标投标法实施条例: art. 40 deems these bids collusive; art. 34 bars bidders under one
# legal representative from the same tender).
TRACES: dict[str, tuple[float, str, str]] = {
    "machine_code": (0.99, "art. 40(1)", "bid files made by the same unit or person"),
    "mac_address": (0.97, "art. 40(1)", "bid files made by the same unit or person"),
    "document_hash": (0.99, "art. 40(1)", "bid files made by the same unit or person"),
    "document_author": (0.8, "art. 40(1)", "bid files made by the same unit or person"),
    "deposit_account": (0.99, "art. 40(6)", "deposits paid from the same account"),
    "ip_address": (0.8, "art. 40(2)", "bidding handled by the same unit or person"),
    "agent": (0.95, "art. 40(2)", "bidding handled by the same unit or person"),
    "phone": (0.85, "art. 40(2)", "bidding handled by the same unit or person"),
    "email": (0.9, "art. 40(2)", "bidding handled by the same unit or person"),
    "project_manager": (0.97, "art. 40(3)", "the same project manager in different bids"),
    "legal_representative": (0.95, "art. 34", "bidders under one legal representative"),
    "address": (0.6, "art. 40(2)", "bidding handled from the same place"),
}


@dataclass(frozen=True)
class SharedTraces:
    """Different bidders in one tender share a trace of one hand: the computer that made
    the bid files, the account that paid the deposits, the same manager or agent.

    ## What it flags
    Tenders in which two or more different bidders (resolved firms where bidders are
    known) carry the same machine code, MAC address, document hash or author, deposit
    account, IP address, agent, phone, email, project manager, legal representative or
    address.

    ## Why it is a risk
    These are the situations that the PRC Bidding Law implementing regulations
    (招标投标法实施条例) art. 40 deem collusive without further proof: bid files made by the
    same unit or person, bidding handled by the same person, the same project manager,
    deposits paid from one account; art. 34 bars bidders under one legal representative
    from the same tender. Investigators pull these traces from the e-bidding platform's
    upload logs and bid files.

    ## Method
    Each trace value is normalised (Unicode NFKC, case, spaces; digits only for phones,
    without a leading 86; hex digits only for MAC addresses; punctuation dropped from
    names and addresses) and placeholders (empty, "-", "无", "unknown", ...) are ignored.
    A value that more than `max_firms` different firms carry across the whole input is a
    default (an "Administrator" author, a platform's shared gateway) and is ignored too,
    with a note. Every other value carried by two or more different bidders of a tender
    is a shared trace. Each trace type has a strength s (0.99 for machine code, document
    hash and deposit account; 0.97 for MAC and project manager; 0.95 for agent and legal
    representative; 0.9 email; 0.85 phone; 0.8 IP address and document author; 0.6
    address) and the score is 1 - prod(1 - s) over the trace types shared in the tender.
    Bids of every status count: a disqualified cover bid still shows the hand behind it.
    Tenders where at least two bids carry some trace are assessed.

    ## Evidence
    Each shared trace: its type, the value as written, the bidders carrying it and the
    provision it falls under.

    ## Parameters
    - `max_firms`: a value carried by more different firms than this in the whole input is
      treated as a default, not a trace.

    ## Known false positives
    Bidders in one office building, or a shared internet connection (IP address, address);
    a bid-preparation shop that works independently for several clients is itself the
    collusion art. 40(2) describes, but an honest template vendor's author name is not;
    family firms that are in fact one group (which art. 34 also bars).

    ## References
    - 中华人民共和国招标投标法实施条例 (2011, rev. 2019), arts. 34, 39, 40.
    - OECD (2009). Guidelines for fighting bid rigging in public procurement.
    """

    max_firms: int = 20

    name: ClassVar[str] = "shared-traces"
    subject: ClassVar[SubjectKind] = "tender"
    requires: ClassVar[frozenset[str]] = frozenset()
    default_weight: ClassVar[float] = 2.0

    def __post_init__(self) -> None:
        if self.max_firms < 2:
            raise ValueError(f"max_firms must be >= 2, got {self.max_firms}")

    def detect(self, data: Dataset) -> Findings:
        present = [t for t in TRACE_COLUMNS if data.has(f"bids.{t}")]
        if not present:
            raise NotComputable("no trace column in the bids (" + ", ".join(TRACE_COLUMNS) + ")")
        resolved = "firm_id" in data.bids.columns and data.has("bids.firm_id")
        label = pl.format("row {}:{}" if resolved else "{}:{}", pl.col("_src"), pl.col("_row"))
        height = data.bids.height
        # Integer codes for tenders and bidders (shared per dataset): the work below runs
        # over every (bid, trace) pair, on codes only. A bidder is its resolved firm, else
        # its row, coded after every firm.
        codes = bid_codes(data)
        tender_names, firms = codes.tenders, codes.firms.len()
        tender = codes.frame.get_column("_t").fill_null(tender_names.len()).to_numpy()
        bidder_code = np.where(
            codes.frame.get_column("_f").is_null().to_numpy(),
            firms + np.arange(height),
            codes.frame.get_column("_f").fill_null(0).to_numpy(),
        ).astype(np.int64)
        traced = trace_codes(data, present)
        keys, key_of = traced.keys, traced.key_of[:-1].astype(np.int64)
        # The (bid, trace) rows that carry a key, as arrays: bid and key.
        keyed = [traced.key_of[v] for v in traced.values]
        carried = [np.flatnonzero(k).astype(np.uint32) for k in keyed]
        k_long = np.concatenate([k[i] for k, i in zip(keyed, carried, strict=True)])
        bid_long = np.concatenate(carried)
        # Where each trace's rows start in the long arrays: values are looked up for the few
        # rows that share.
        starts = np.cumsum([0] + [i.shape[0] for i in carried])
        del keyed, carried
        # Firms carrying each key: the resolved firms, and each unresolved bid as a bidder of
        # its own (one bid carries a key once: keys of different traces differ).
        alone = codes.frame.get_column("_f").is_null().to_numpy()[bid_long]
        firms_of = traced.firms + np.bincount(k_long[alone], minlength=traced.firms.shape[0])
        named = (
            keys.drop_nulls("_k")
            .filter(pl.Series(firms_of[key_of[key_of > 0]] > self.max_firms))
            .group_by("trace", "key")
            .agg(pl.col("_k").first())
        )
        notes = tuple(
            f"{trace} {key!r} is carried by {firms_of[k]} firms: treated as a default, not a trace"
            for trace, key, k in named.sort("trace", "key").head(20).iter_rows()
        )
        ordinary = firms_of <= self.max_firms
        kept = ordinary[k_long]
        # Assessed: tenders where two different bidders carry some trace that is no default,
        # that is where some such bidder differs from any one of them.
        carries = np.zeros(height, dtype=bool)
        carries[bid_long[kept]] = True
        carrying = np.flatnonzero(carries & (tender < tender_names.len()))
        in_tender, by = tender[carrying], bidder_code[carrying]
        one = np.full(tender_names.len(), -1, dtype=np.int64)
        one[in_tender] = by
        two = np.zeros(tender_names.len(), dtype=bool)
        two[in_tender[by != one[in_tender]]] = True
        assessed = tender_names.gather(np.flatnonzero(two))
        # A key more than once in a tender: duplicated (tender, key), as one 64-bit number,
        # among the keys carried by two firms or more (a key of one firm alone shares
        # nothing, even where the firm bid twice).
        near = np.flatnonzero((ordinary & (firms_of >= 2))[k_long])
        near = near[tender[bid_long[near]] < tender_names.len()]
        v_near = traced.values[np.searchsorted(starts, near, side="right") - 1, bid_long[near]]
        pairs = pl.DataFrame(
            {
                "_t": tender[bid_long[near]],
                "_b": bidder_code[bid_long[near]],
                "_v": v_near,
                "_k": k_long[near].astype(np.uint32),
            }
        ).filter(
            (
                pl.col("_t").cast(pl.UInt64) * pl.lit(2**32, dtype=pl.UInt64)
                + pl.col("_k").cast(pl.UInt64)
            ).is_duplicated()
        )
        # Bidders' names for the few rows left: a firm's id, else its row's label.
        code = pairs.get_column("_b").to_numpy()
        of_firm, of_row = np.flatnonzero(code < firms), np.flatnonzero(code >= firms)
        names = pl.concat(
            [
                codes.firms.gather(code[of_firm]).alias("bidder"),
                data.bids[code[of_row] - firms].select(label.alias("bidder")).to_series(),
            ]
        )
        pairs = pairs.with_columns(
            names.gather(np.argsort(np.concatenate([of_firm, of_row]))).alias("bidder")
        )
        shared = (
            pairs.group_by("_t", "_k")
            .agg(pl.col("bidder").unique().sort().alias("bidders"), pl.col("_v").min())
            .filter(pl.col("bidders").list.len() >= 2)
        )
        shared = shared.with_columns(
            tender_names.gather(shared.get_column("_t")).alias("tender_id")
        ).join(keys.select("_v", "trace", "value", "key"), on="_v")
        strength = {t: s for t, (s, _, _) in TRACES.items()}
        article = {t: a for t, (_, a, _) in TRACES.items()}
        clause = {t: f"{a}: {c}" for t, (_, a, c) in TRACES.items()}
        shared = shared.with_columns(
            pl.col("trace").replace_strict(strength, return_dtype=pl.Float64).alias("_s"),
            pl.col("trace").replace_strict(clause, return_dtype=pl.String).alias("clause"),
            pl.col("trace").replace_strict(article, return_dtype=pl.String).alias("_art"),
        ).sort("tender_id", "_s", "trace", "key", descending=[False, True, False, False])
        per_type = shared.group_by("tender_id", "trace", maintain_order=True).agg(
            pl.col("_s").first()
        )
        score = per_type.group_by("tender_id").agg(
            (1 - (1 - pl.col("_s")).product()).alias("_score"),
            pl.len().alias("_types"),
        )
        per_tender = (
            shared.group_by("tender_id", maintain_order=True)
            .agg(
                pl.struct("trace", "value", "bidders", "clause").alias("shared"),
                pl.col("bidders").list.explode(keep_nulls=False).unique().sort().alias("firms"),
                pl.format(
                    "{} bidders share {} {} ({})",
                    pl.col("bidders").list.len(),
                    "trace",
                    "value",
                    "_art",
                )
                .head(3)
                .str.join("; ")
                .alias("_what"),
                pl.len().alias("_shared"),
            )
            .join(score, on="tender_id")
        )
        return build(
            per_tender,
            detector=self.name,
            kind="tender",
            subject_id=pl.col("tender_id"),
            score=pl.col("_score"),
            value=pl.col("_types").cast(pl.Float64),
            threshold=pl.lit(None, dtype=pl.Float64),
            message=pl.format(
                "{}{}",
                pl.col("_what"),
                pl.when(pl.col("_shared") > 3)
                .then(pl.format("; {} more", pl.col("_shared") - 3))
                .otherwise(pl.lit("")),
            ),
            evidence={"shared": pl.col("shared")},
            firms=pl.col("firms") if resolved else None,
            assessed=assessed,
            notes=notes,
        )


@dataclass(frozen=True)
class TraceCodes:
    """Bids' trace values as integers, for shared-traces and trace-network.

    ``keys`` has one row per distinct written value of each trace: ``_v`` (its number:
    traces in order, each trace's values in their text's order), trace, value, key (its
    comparable form) and ``_k`` (the (trace, key) rank, from 1 in (trace, key) order;
    null for a placeholder). ``key_of[v]`` is ``_k`` or 0, with a last 0 at ``keys.height``
    for no value. ``values[i, b]`` is the ``_v`` of bid b's value of the i-th present trace,
    or ``keys.height`` where it has none. ``firms[k]`` counts the resolved firms whose bids
    carry key k (either detector adds what it counts besides).
    """

    keys: pl.DataFrame
    key_of: npt.NDArray[np.uint32]
    values: npt.NDArray[np.uint32]
    firms: npt.NDArray[np.int64]


def trace_codes(data: Dataset, present: list[str]) -> TraceCodes:
    """The bids' trace codes, built once for the two trace detectors (``handoff``): each
    distinct value is normalised once and each bid's text is read once per scan."""
    return handoff(data, ("trace_codes", tuple(present)), lambda: _trace_codes(data, present))


def _trace_codes(data: Dataset, present: list[str]) -> TraceCodes:
    bids = data.bids
    # One hashing pass over each trace's text: a Categorical of its own numbers the
    # distinct values; any bid of a number gives its text, the distinct texts are sorted and
    # each bid's number mapped to its value's place.
    values = []
    coded = np.empty((len(present), bids.height), dtype=np.uint32)
    everyone = np.arange(bids.height)
    for i, trace in enumerate(present):
        given = bids.get_column(trace)
        column = given.cast(pl.Categorical(pl.Categories.random())).to_physical()
        number = column.cast(pl.Int64).fill_null(-1).to_numpy()
        slots = int(number.max(initial=-1)) + 2
        number = np.where(number < 0, slots - 1, number)  # the last slot: a missing value
        bid_of = np.full(slots, -1, dtype=np.int64)
        bid_of[number] = everyone
        used = np.flatnonzero(bid_of[:-1] >= 0)
        text = given.gather(bid_of[used])
        order = text.arg_sort().to_numpy()
        place = np.full(slots, order.shape[0], dtype=np.uint32)
        place[used[order]] = np.arange(order.shape[0], dtype=np.uint32)
        coded[i] = place[number]
        in_order = text.gather(order).alias("value")
        values.append(
            pl.DataFrame({"value": in_order}).select(
                pl.lit(trace).alias("trace"),
                "value",
                trace_key(trace, pl.col("value")).alias("key"),
            )
        )
    keys = (
        pl.concat(values)
        .with_row_index("_v")
        .with_columns(
            pl.col("_v").cast(pl.UInt32),
            pl.when(~pl.col("key").is_in(PLACEHOLDERS))
            .then(pl.struct("trace", "key").rank("dense"))
            .cast(pl.UInt32)
            .alias("_k"),
        )
    )
    key_of = np.append(keys.get_column("_k").fill_null(0).to_numpy(), np.uint32(0))
    # Places become numbers among all traces' values, in place.
    offset = 0
    for row, written in zip(coded, values, strict=True):
        missing = row == written.height
        np.add(row, np.uint32(offset), out=row)
        row[missing] = keys.height
        offset += written.height
    key_of = key_of.astype(np.uint32)
    # Distinct (key, firm) pairs of resolved bids, one trace at a time (keys of different
    # traces differ), counted per key. A firm mostly writes one value of a trace: the key of
    # any of its bids stands for it, and only the bids with another key are hashed.
    firm = bid_codes(data).frame.get_column("_f")
    resolved = np.flatnonzero(firm.is_not_null().to_numpy())
    firm_of = firm.fill_null(0).to_numpy()[resolved].astype(np.int64)
    width = firm_of.max(initial=0) + 1
    carrying = []
    for row in coded:
        key = key_of[row[resolved]]
        usual = np.zeros(width, dtype=np.uint32)
        usual[firm_of] = key
        carrying.append(usual[usual > 0].astype(np.int64))
        other = np.flatnonzero((key != usual[firm_of]) & (key > 0))
        pairs = key[other].astype(np.int64) * width + firm_of[other]
        carrying.append(distinct(pairs) // width)
    firms = np.bincount(np.concatenate(carrying), minlength=int(key_of.max(initial=0)) + 1)
    return TraceCodes(keys=keys, key_of=key_of, values=coded, firms=firms)


def distinct(numbers: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """The distinct numbers (pairs coded as one number), by a hash pass."""
    return pl.Series(numbers, dtype=pl.Int64).unique().to_numpy()
