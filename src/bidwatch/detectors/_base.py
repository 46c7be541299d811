"""The detector contract (see DESIGN.md section 4) and what every detector shares."""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Protocol

import polars as pl

from bidwatch.findings import Findings, SubjectKind

if TYPE_CHECKING:
    from bidwatch.dataset import Dataset

DOC_HEADINGS = (
    "What it flags",
    "Why it is a risk",
    "Method",
    "Evidence",
    "Parameters",
    "Known false positives",
    "References",
)


Family = Literal["collusion", "materials"]

# Two dozen detectors start from the priced bids: filtered once per dataset.
_PRICED: weakref.WeakKeyDictionary[Dataset, pl.DataFrame] = weakref.WeakKeyDictionary()


def family(detector: type[Detector] | Detector) -> Family:
    """Which risk a detector's findings count towards: collusion (the default) or
    materials, the risk of what is delivered after a cheap win. Each is ranked on its own,
    beside the other."""
    value: Family = getattr(detector, "family", "collusion")
    return value


class NotComputable(Exception):
    """The detector cannot assess this dataset; the message says why and what would help."""


class Detector(Protocol):
    __dataclass_fields__: ClassVar[dict[str, Any]]
    name: ClassVar[str]
    subject: ClassVar[SubjectKind]
    requires: ClassVar[frozenset[str]]
    default_weight: ClassVar[float]

    def detect(self, data: Dataset) -> Findings: ...


PRICED_COLUMNS = ("tender_id", "amount", "is_winner", "firm_id")


def priced_bids(data: Dataset) -> pl.DataFrame:
    """Bids that compete on price: an amount, and not disqualified or withdrawn.

    Columns: tender_id, amount, is_winner and, once names are resolved, firm_id. The frame
    is kept for the whole scan, so it carries only what the detectors read from it."""
    cached = _PRICED.get(data)
    if cached is None:
        cached = (
            data.bids.lazy()
            .filter(
                pl.col("amount").is_not_null()
                & (pl.col("status").is_null() | (pl.col("status") == "valid"))
            )
            .select(c for c in PRICED_COLUMNS if c in data.bids.columns)
            .collect()
        )
        _PRICED[data] = cached
    return cached


def sig(expr: pl.Expr, digits: int = 4) -> pl.Expr:
    """A number for a message: rounded to significant digits, as text."""
    return expr.round_sig_figs(digits).cast(pl.String)
