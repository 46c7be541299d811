"""Subject and Finding: what a detector says, about whom, how strongly, and why.

Detectors build their findings as one polars frame (thousands of findings cost no Python
loop); ``Findings`` wraps that frame and yields ``Finding`` objects for the Python API.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

import polars as pl

SubjectKind = Literal["tender", "firm", "buyer", "pair", "group"]
SUBJECT_KINDS: tuple[SubjectKind, ...] = ("tender", "firm", "buyer", "pair", "group")
ID_SEPARATOR = "|"

FINDING_SCHEMA: dict[str, pl.DataType] = {
    "detector": pl.String(),
    "subject_kind": pl.String(),
    "subject_id": pl.String(),
    "score": pl.Float64(),
    "value": pl.Float64(),
    "threshold": pl.Float64(),
    "message": pl.String(),
    "evidence": pl.String(),
    "firms": pl.List(pl.String()),
}


@dataclass(frozen=True, order=True)
class Subject:
    """Who a finding is about: a tender, a firm, a buyer, a pair of firms, or a group."""

    kind: SubjectKind
    ids: tuple[str, ...]

    @property
    def id(self) -> str:
        return ID_SEPARATOR.join(self.ids)


@dataclass(frozen=True)
class Finding:
    """One detector's statement about one subject.

    ``score`` is in [0, 1], higher is more suspicious, calibrated as the detector's docstring
    states. ``value`` is the statistic observed and ``threshold`` the limit it crossed.
    ``firms`` lists the firms the evidence implicates (for a tender: its bidders).
    """

    detector: str
    subject: Subject
    score: float
    value: float | None
    threshold: float | None
    message: str
    evidence: dict[str, Any] = field(default_factory=dict)
    firms: tuple[str, ...] = ()


SORT_KEYS = ("detector", "subject_kind", "subject_id")


def _in_order(frame: pl.DataFrame, keys: tuple[str, ...]) -> bool:
    """Whether ``frame`` is sorted by ``keys`` as ``frame.sort(*keys)`` would order it (a
    frame with a null key is taken as unsorted, as sorting puts nulls first)."""
    if frame.height < 2:
        return True
    if any(frame.get_column(key).null_count() for key in keys):
        return False
    # Row i is not after row i + 1 when its keys compare lower or equal, the first
    # differing key deciding.
    before: pl.Expr | None = None
    for key in reversed(keys):
        now, nxt = pl.col(key), pl.col(key).shift(-1)
        before = now <= nxt if before is None else (now < nxt) | ((now == nxt) & before)
    assert before is not None
    return bool(frame.select(before.head(frame.height - 1).all()).item())


def _strictly_increasing(series: pl.Series) -> bool:
    """Whether ``series`` is sorted without repeats or nulls, as ``unique().sort()`` leaves it."""
    if series.len() < 2:
        return series.null_count() == 0
    if series.null_count():
        return False
    return bool((series.slice(1) > series.slice(0, series.len() - 1)).all())


class Findings:
    """A detector's findings as a frame, plus the subjects it could assess.

    ``assessed`` holds the id of every subject the detector could judge, flagged or not:
    a subject outside it was not computable, one inside it without a finding was not
    flagged.
    """

    def __init__(
        self,
        frame: pl.DataFrame,
        assessed: pl.Series | None = None,
        notes: tuple[str, ...] = (),
    ) -> None:
        missing = set(FINDING_SCHEMA) - set(frame.columns)
        if missing:
            raise ValueError(f"findings frame lacks columns {sorted(missing)}")
        frame = frame.select([pl.col(name).cast(dtype) for name, dtype in FINDING_SCHEMA.items()])
        # Sorting copies every column, the long evidence text included: most frames come in
        # order already (a scan concatenates its detectors' sorted findings by name).
        if not _in_order(frame, SORT_KEYS):
            frame = frame.sort(*SORT_KEYS)
        # Constant columns written out and columns split unlike the others joined: a scan
        # then concatenates its detectors' frames as aligned chunks, which copies nothing.
        columns = [frame.get_column(name) for name in FINDING_SCHEMA]
        if len({column.n_chunks() for column in columns}) > 1:
            columns = [column.rechunk() for column in columns]
        self.frame = pl.DataFrame(columns)
        self._given = assessed
        self._assessed: pl.Series | None = None
        self.notes = notes

    @property
    def assessed(self) -> pl.Series:
        # Worked out when asked: a scan's concatenated findings never need theirs.
        if self._assessed is None:
            ids = self.frame.get_column("subject_id") if self._given is None else self._given
            ids = ids.cast(pl.String)
            if not _strictly_increasing(ids):
                ids = ids.unique().sort()
            self._assessed = ids.alias("subject_id")
            self._given = None
        return self._assessed

    @property
    def scanned(self) -> int:
        return self.assessed.len()

    @classmethod
    def empty(cls, notes: tuple[str, ...] = ()) -> Findings:
        return cls(pl.DataFrame(schema=FINDING_SCHEMA), pl.Series([], dtype=pl.String), notes)

    def __len__(self) -> int:
        return self.frame.height

    def __iter__(self) -> Iterator[Finding]:
        for row in self.frame.iter_rows(named=True):
            yield to_finding(row)


def to_finding(row: dict[str, Any]) -> Finding:
    return Finding(
        detector=row["detector"],
        subject=Subject(row["subject_kind"], tuple(row["subject_id"].split(ID_SEPARATOR))),
        score=row["score"],
        value=row["value"],
        threshold=row["threshold"],
        message=row["message"],
        evidence=json.loads(row["evidence"]) if row["evidence"] else {},
        firms=tuple(row["firms"] or ()),
    )


def group_id(members: list[str]) -> str:
    """The id of a group of firms, the same for the same members whichever detector finds
    it: G + a hash of the sorted members."""
    joined = "\x1f".join(sorted(members))
    return "G" + hashlib.blake2b(joined.encode(), digest_size=5).hexdigest()


def with_group_ids(frame: pl.DataFrame, members: str = "members") -> pl.DataFrame:
    """Add ``group_id`` for a column of member lists."""
    key = pl.col(members).list.sort().list.join("\x1f")
    keys = frame.select(key.alias("_key")).get_column("_key").unique().to_list()
    ids = {k: group_id(k.split("\x1f")) for k in keys}
    return frame.with_columns(key.replace_strict(ids, return_dtype=pl.String).alias("group_id"))


def build(
    frame: pl.DataFrame,
    *,
    detector: str,
    kind: SubjectKind,
    subject_id: pl.Expr,
    score: pl.Expr,
    message: pl.Expr,
    evidence: dict[str, pl.Expr],
    value: pl.Expr | None = None,
    threshold: pl.Expr | None = None,
    firms: pl.Expr | None = None,
    assessed: pl.Series | None = None,
    notes: tuple[str, ...] = (),
) -> Findings:
    """Assemble findings from a frame with one row per finding, all by polars expressions."""
    out = frame.select(
        pl.lit(detector).alias("detector"),
        pl.lit(kind).alias("subject_kind"),
        subject_id.cast(pl.String).alias("subject_id"),
        score.clip(0.0, 1.0).alias("score"),
        (value if value is not None else pl.lit(None, dtype=pl.Float64)).alias("value"),
        (threshold if threshold is not None else pl.lit(None, dtype=pl.Float64)).alias("threshold"),
        message.alias("message"),
        pl.struct([expr.alias(key) for key, expr in evidence.items()])
        .struct.json_encode()
        .alias("evidence")
        if evidence
        else pl.lit("{}").alias("evidence"),
        (firms if firms is not None else pl.lit([], dtype=pl.List(pl.String))).alias("firms"),
    )
    return Findings(out, assessed, notes)
