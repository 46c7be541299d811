"""The detector contract (see DESIGN.md section 4) and what every detector shares."""

from __future__ import annotations

import functools
import threading
import weakref
from collections.abc import Callable, Hashable
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Protocol, TypeVar, cast

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


class _Slot:
    """A value being worked out by one thread, which others wait for."""

    __slots__ = ("done", "failed", "value")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.failed = False
        self.value: Any = None


# Detectors run on several threads (``bidwatch.api.scan(jobs=...)``): one lock guards the
# tables below, and a value is built by the first thread that asks while the others wait,
# so that concurrent detectors never build the same frame twice.
_LOCK = threading.Lock()
_KEPT: weakref.WeakKeyDictionary[Dataset, dict[Hashable, _Slot]] = weakref.WeakKeyDictionary()
_HANDED: weakref.WeakKeyDictionary[Dataset, dict[Hashable, _Slot]] = weakref.WeakKeyDictionary()


def _slot_of(
    tables: weakref.WeakKeyDictionary[Dataset, dict[Hashable, _Slot]],
    data: Dataset,
    key: Hashable,
    build: Callable[[], object],
    *,
    take: bool,
) -> _Slot:
    """The slot of ``key``: another caller's (taken out of the table if ``take``), to wait
    for; or, when there is none, a new one left in the table and filled here by ``build()``,
    whose error is raised. Claiming and building sit in one ``try``, so that a failure or an
    interrupt at any point leaves no slot that nobody will fill."""
    slot = None
    try:
        with _LOCK:
            table = tables.setdefault(data, {})
            found = table.pop(key, None) if take else table.get(key)
            if found is not None:
                return found
            slot = table[key] = _Slot()
        slot.value = build()
    except BaseException:
        if slot is not None:
            # Whoever waits builds again and meets the same error, as if it had run alone.
            with _LOCK:
                if table.get(key) is slot:
                    del table[key]
            slot.failed = True
        raise
    finally:
        if slot is not None:
            slot.done.set()
    return slot


def once(data: Dataset, key: Hashable, build: Callable[[], _T]) -> _T:
    """``build()`` worked out once per ``data`` and ``key`` and kept while the dataset lives:
    what several detectors start from is built once per scan, even when they run at the
    same time."""
    while True:
        slot = _slot_of(_KEPT, data, key, build, take=False)
        slot.done.wait()
        if not slot.failed:
            return cast(_T, slot.value)


def per_dataset(build: Callable[[Dataset], _T]) -> Callable[[Dataset], _T]:
    """``build(data)`` worked out once per dataset (``once``)."""

    @functools.wraps(build)
    def cached(data: Dataset) -> _T:
        return once(data, build, lambda: build(data))

    return cached


def handoff(data: Dataset, key: Hashable, build: Callable[[], _T]) -> _T:
    """``build()`` worked out once for the two detectors that read it, then dropped: the
    first call keeps the value, the second takes it away (waiting for it if the first is
    still building). For large frames two detectors share (the priced bills of
    below-reference-price and unbalanced-bid), which ``once`` would hold for the whole
    scan. ``release`` drops what a second reader never came for."""
    slot = _slot_of(_HANDED, data, key, build, take=True)
    slot.done.wait()
    if slot.failed:
        return build()
    return cast(_T, slot.value)


def release(data: Dataset) -> None:
    """Drop the values ``handoff`` holds for ``data`` (at the end of a scan: a detector
    that would have taken one may be disabled)."""
    with _LOCK:
        _HANDED.pop(data, None)


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
