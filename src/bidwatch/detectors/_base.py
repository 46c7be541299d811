"""The detector contract (see DESIGN.md section 4) and what every detector shares."""

from __future__ import annotations

import functools
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Protocol, TypeVar

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

_T = TypeVar("_T")


def per_dataset(build: Callable[[Dataset], _T]) -> Callable[[Dataset], _T]:
    """``build(data)`` worked out once per dataset and kept while the dataset lives: what
    several detectors start from is then built once per scan."""
    kept: weakref.WeakKeyDictionary[Dataset, _T] = weakref.WeakKeyDictionary()

    @functools.wraps(build)
    def cached(data: Dataset) -> _T:
        found = kept.get(data)
        if found is None:
            found = build(data)
            kept[data] = found
        return found

    return cached


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


@per_dataset
def priced_bids(data: Dataset) -> pl.DataFrame:
    """Bids that compete on price: an amount, and not disqualified or withdrawn.

    Columns: tender_id, amount, is_winner and, once names are resolved, firm_id. Two dozen
    detectors start from it, and it is kept for the whole scan, so it carries only what the
    detectors read from it."""
    return (
        data.bids.lazy()
        .filter(
            pl.col("amount").is_not_null()
            & (pl.col("status").is_null() | (pl.col("status") == "valid"))
        )
        .select(c for c in PRICED_COLUMNS if c in data.bids.columns)
        .collect()
    )


def sig(expr: pl.Expr, digits: int = 4) -> pl.Expr:
    """A number for a message: rounded to significant digits, as text."""
    return expr.round_sig_figs(digits).cast(pl.String)
