"""One hand behind competing bids: traces shared by different bidders in one tender."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

import numpy as np
import numpy.typing as npt
import polars as pl

from bidwatch.detectors._base import NotComputable
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
        bids = data.bids.select(*present)
        # Integer codes for tenders and bidders (shared per dataset): the work below runs
        # over every (bid, trace) pair, on codes only. A bidder is its resolved firm, else
        # its row, coded after every firm.
        codes = bid_codes(data)
        tender_names, firms = codes.tenders, codes.firms.len()
        tender = codes.frame.get_column("_t").fill_null(tender_names.len()).to_numpy()
        bidder_code = np.where(
            codes.frame.get_column("_f").is_null().to_numpy(),
            firms + np.arange(bids.height),
            codes.frame.get_column("_f").fill_null(0).to_numpy(),
        ).astype(np.int64)
        # Each distinct value of a trace is normalised once (traces repeat across a firm's
        # bids) and coded: _v numbers the values of each trace in their text's order, _k the
        # comparable keys (0: none, for a missing value or a placeholder).
        values = []
        for trace in present:
            distinct = bids.get_column(trace).drop_nulls().unique().sort()
            values.append(
                pl.DataFrame({"value": distinct}).select(
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
        key_of = keys.get_column("_k").fill_null(0).to_numpy().astype(np.int64)
        # The (bid, trace) rows that carry a key, as arrays: tender, bidder, value and key.
        rows, offset = [], 0
        for trace, written in zip(present, values, strict=True):
            position = _positions(bids.get_column(trace), written.get_column("value"))
            v = position + offset
            has = position < written.height
            k = np.where(has, key_of[np.minimum(v, key_of.shape[0] - 1)], 0)
            rows.append((k, v, has & (k > 0)))
            offset += written.height
        keyed = [np.flatnonzero(m) for _, _, m in rows]
        k_long = np.concatenate([k[i] for (k, _, _), i in zip(rows, keyed, strict=True)])
        v_long = np.concatenate([v[i] for (_, v, _), i in zip(rows, keyed, strict=True)])
        bid_long = np.concatenate(keyed)
        # Firms carrying each key: distinct (key, bidder) pairs, counted per key.
        width = firms + bids.height + 1
        carrying = (
            pl.Series(k_long.astype(np.uint64) * width + bidder_code[bid_long].astype(np.uint64))
            .unique()
            .to_numpy()
        )
        firms_of = np.bincount(carrying // width, minlength=keys.height + 1)
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
        kept = firms_of[k_long] <= self.max_firms
        # Assessed: tenders where two different bidders carry some trace that is no default.
        carries = np.zeros(bids.height, dtype=bool)
        carries[bid_long[kept]] = True
        assessed = (
            pl.DataFrame({"_t": tender, "_b": bidder_code})
            .filter(pl.Series(carries) & (pl.col("_t") < tender_names.len()))
            .group_by("_t")
            .agg(pl.col("_b").n_unique().alias("_n"))
            .filter(pl.col("_n") >= 2)
            .get_column("_t")
        )
        assessed = tender_names.gather(assessed)
        # A key more than once in a tender: duplicated (tender, key), as one 64-bit number,
        # among the keys carried by two firms or more (a key of one firm alone shares
        # nothing, even where the firm bid twice).
        near = np.flatnonzero(kept & (firms_of[k_long] >= 2))
        near = near[tender[bid_long[near]] < tender_names.len()]
        pairs = pl.DataFrame(
            {
                "_t": tender[bid_long[near]],
                "_b": bidder_code[bid_long[near]],
                "_v": v_long[near].astype(np.uint32),
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


def _positions(column: pl.Series, names: pl.Series) -> npt.NDArray[np.int64]:
    """Each value's position among ``names`` (sorted, distinct, without null); a null or a
    value not among them gets len(names)."""
    found = column.cast(pl.Enum(names), strict=False).to_physical().cast(pl.Int64)
    return found.fill_null(names.len()).to_numpy()
