"""One hand behind competing bids: traces shared by different bidders in one tender."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

import numpy as np
import polars as pl

from bidwatch.detectors._base import NotComputable
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
        bidder = (
            pl.coalesce(pl.col("firm_id"), pl.format("row {}:{}", pl.col("_src"), pl.col("_row")))
            if resolved
            else pl.format("{}:{}", pl.col("_src"), pl.col("_row"))
        )
        # Integer codes for tenders and bidders: the group-bys below run over every
        # (bid, trace) pair, where string keys cost most of the time.
        bids = data.bids.select("tender_id", bidder.alias("bidder"), *present).with_columns(
            pl.col("tender_id").rank("dense").cast(pl.UInt32).alias("_t"),
            pl.col("bidder").rank("dense").cast(pl.UInt32).alias("_b"),
        )
        # Each distinct value of a trace is normalised once (traces repeat across a firm's
        # bids) and coded: _v numbers the values of each trace in their text's order, _k the
        # comparable keys. The long table of (bid, trace) rows, tens of millions for a
        # national year, then holds codes only.
        keys = pl.concat(
            [
                bids.select(pl.col(trace).alias("value"))
                .drop_nulls()
                .unique()
                .select(
                    pl.lit(trace).alias("trace"),
                    "value",
                    trace_key(trace, pl.col("value")).alias("key"),
                )
                for trace in present
            ]
        ).filter(~pl.col("key").is_in(PLACEHOLDERS))
        keys = (
            keys.sort("trace", "value")
            .with_row_index("_v")
            .with_columns(
                pl.col("_v").cast(pl.UInt32),
                pl.struct("trace", "key").rank("dense").cast(pl.UInt32).alias("_k"),
            )
        )
        # Each bid's trace value to its code by its position among the trace's values (an
        # Enum of them, in _v order), not by a join on the text; values left out above
        # (placeholders) become null and are dropped, as an inner join would drop them.
        key_of = keys.get_column("_k").to_numpy()
        parts = []
        for trace in present:
            block = keys.filter(pl.col("trace") == trace)
            if block.height == 0:
                continue
            offset = int(block.get_column("_v")[0])
            coded = bids.select(
                "_t",
                "_b",
                (
                    pl.col(trace)
                    .cast(pl.Enum(block.get_column("value")), strict=False)
                    .to_physical()
                    .cast(pl.UInt32)
                    + offset
                )
                .cast(pl.UInt32)
                .alias("_v"),
            ).drop_nulls("_v")
            parts.append(
                coded.with_columns(
                    pl.Series("_k", key_of[coded.get_column("_v").to_numpy()], dtype=pl.UInt32)
                )
            )
        long = (
            pl.concat(parts)
            if parts
            else pl.DataFrame(
                schema={"_t": pl.UInt32, "_b": pl.UInt32, "_v": pl.UInt32, "_k": pl.UInt32}
            )
        )
        spread = long.group_by("_k").agg(pl.col("_b").n_unique().alias("_firms"))
        defaults = spread.filter(pl.col("_firms") > self.max_firms)
        named = keys.join(defaults, on="_k").group_by("trace", "key").agg(pl.col("_firms").first())
        notes = tuple(
            f"{trace} {key!r} is carried by {firms} firms: treated as a default, not a trace"
            for trace, key, firms in named.sort("trace", "key").head(20).iter_rows()
        )
        long = long.join(defaults.select("_k"), on="_k", how="anti")
        codes = bids.select("_t", "tender_id").unique("_t")
        assessed = (
            long.group_by("_t")
            .agg(pl.col("_b").n_unique().alias("_n"))
            .filter(pl.col("_n") >= 2)
            .join(codes, on="_t")
            .get_column("tender_id")
        )
        # A key more than once in a tender: duplicated (tender, key), as one 64-bit number,
        # among the keys carried by two firms or more (a key of one firm alone shares
        # nothing, even where the firm bid twice).
        firms_of = np.zeros(keys.height + 1, dtype=np.int64)  # _k counts from 1
        firms_of[spread.get_column("_k").to_numpy()] = spread.get_column("_firms").to_numpy()
        carried = firms_of[long.get_column("_k").to_numpy()]
        pairs = long.filter(pl.Series(carried >= 2)).filter(
            (
                pl.col("_t").cast(pl.UInt64) * pl.lit(2**32, dtype=pl.UInt64)
                + pl.col("_k").cast(pl.UInt64)
            ).is_duplicated()
        )
        who = bids.select("_b", "bidder").unique("_b")
        shared = (
            pairs.join(who, on="_b")
            .group_by("_t", "_k")
            .agg(pl.col("bidder").unique().sort().alias("bidders"), pl.col("_v").min())
            .filter(pl.col("bidders").list.len() >= 2)
            .join(codes, on="_t")
            .join(keys.select("_v", "trace", "value"), on="_v")
            .join(keys.select("_k", "key").unique("_k"), on="_k")
        )
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
