"""The core: ``load`` a dataset, ``scan`` it, get a ``ScanResult``. Nothing here prints."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from time import perf_counter
from typing import TYPE_CHECKING, Any, Literal

import polars as pl

from bidwatch import entities, graph
from bidwatch.config import Config
from bidwatch.dataset import Dataset, load
from bidwatch.detectors._base import Detector, NotComputable, release
from bidwatch.findings import FINDING_SCHEMA, Findings
from bidwatch.parallel import checked_jobs, default_jobs, in_order
from bidwatch.risk import Risk, assess

if TYPE_CHECKING:
    import networkx as nx

__all__ = ["DetectorRun", "ScanResult", "default_jobs", "load", "scan"]

# Why a derived column can be missing, in the words of the input.
DERIVED = {
    "bids.firm_id": "bidder identities (a bidder_id or bidder_name column)",
}

Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class DetectorRun:
    """What one detector did in a scan: ran (with counts) or skipped (with the reason).

    ``seconds`` is its wall time (shared with the detector running beside it when a scan runs
    several at a time); it is left out of ``to_dict`` and of equality so that the same input
    gives the same record.
    """

    name: str
    status: Literal["ran", "skipped"]
    reason: str | None = None
    scanned: int = 0
    flagged: int = 0
    notes: tuple[str, ...] = ()
    seconds: float = field(default=0.0, compare=False)

    @property
    def flag_rate(self) -> float | None:
        return self.flagged / self.scanned if self.scanned else None

    def to_dict(self) -> dict[str, Any]:
        rate = self.flag_rate
        return {
            "name": self.name,
            "status": self.status,
            "reason": self.reason,
            "scanned": self.scanned,
            "flagged": self.flagged,
            "flag_rate": None if rate is None else round(rate, 6),
            "notes": list(self.notes),
        }


@dataclass(frozen=True, eq=False)
class ScanResult:
    """Everything a scan found, ranked and explained.

    ``assessed`` maps each detector that ran to the subjects (of its kind) it could judge:
    a subject outside it was not computable for that detector, one inside it without a
    finding was not flagged.

    ``stages`` holds the wall time in seconds of each step of the scan, in order:
    ``entities`` (resolving bidders into firms), ``detectors`` (all of them) and ``risk``.
    Each detector's own time is its run's ``seconds``.
    """

    data: Dataset
    findings: Findings
    runs: tuple[DetectorRun, ...]
    config: Config
    risk: Risk
    assessed: dict[str, pl.Series] = field(default_factory=dict)
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    stages: dict[str, float] = field(default_factory=dict)

    def ranking(
        self,
        kind: Literal["tender", "firm", "group", "pair", "buyer"] = "tender",
        by: Literal["risk", "collusion_risk", "materials_risk"] = "risk",
    ) -> pl.DataFrame:
        """Ranked subjects with risk (0-100), rank and top reasons.

        Tenders and firms carry ``collusion_risk`` and ``materials_risk`` beside ``risk``;
        ``by`` ranks them by one of those instead (``rank`` then counts in that order).
        """
        rankings = {
            "tender": self.risk.tenders,
            "firm": self.risk.firms,
            "group": self.risk.groups,
            "pair": self.risk.pairs,
            "buyer": self.risk.buyers,
        }
        if kind not in rankings:
            raise ValueError(f"no ranking of {kind!r}; rankings are {', '.join(rankings)}")
        ranked = rankings[kind]
        if by == "risk":
            return ranked
        if by not in ranked.columns:
            raise ValueError(f"the {kind} ranking has no {by!r}; rank by risk")
        key = ranked.columns[1]
        return (
            ranked.sort([by, "risk", key], descending=[True, True, False])
            .drop("rank")
            .with_row_index("rank", offset=1)
            .with_columns(pl.col("rank").cast(pl.Int64))
        )

    @property
    def contributions(self) -> pl.DataFrame:
        """Every risk point with its source: the waterfall behind each ranking."""
        return self.risk.contributions

    @property
    def rejected(self) -> pl.DataFrame:
        return self.data.rejected

    @cached_property
    def graph(self) -> nx.Graph[Any]:
        """Co-bid graph of firms; nodes carry name and risk, edges the shared tenders."""
        nodes = self.risk.firms.select("firm_id", "name", "risk", "tenders", "wins")
        return graph.cobid_graph(self.data.bids, nodes)

    def explain(self, subject_id: str) -> pl.DataFrame:
        """The contributions behind one tender's or firm's risk, largest first."""
        return self.contributions.filter(pl.col("subject_id") == subject_id)

    def write(
        self,
        out: str | Path,
        *,
        html: bool = True,
        lang: str = "en",
        xlsx: bool = False,
        graph: bool = False,
        progress: Progress | None = None,
    ) -> list[Path]:
        """Write the scan's tables and scan.json; report.html (in ``lang``, en or zh) unless
        ``html=False``; report.xlsx if ``xlsx``; graph.graphml and graph.gexf if ``graph``."""
        from bidwatch.report import write_all

        return write_all(
            self, Path(out), html=html, lang=lang, xlsx=xlsx, graph=graph, progress=progress
        )

    def to_pandas(self) -> dict[str, Any]:
        """The scan's tables as pandas DataFrames, keyed by name."""
        from bidwatch.report.tables import export_tables

        return {name: frame.to_pandas() for name, frame in export_tables(self).items()}

    def __iter__(self) -> Iterator[Any]:
        return iter(self.findings)


def _config(config: Config | Mapping[str, Any] | str | Path | None) -> Config:
    if config is None:
        return Config()
    if isinstance(config, Config):
        return config
    if isinstance(config, str | Path):
        return Config.load(config)
    return Config.from_dict(dict(config))


def scan(
    data: Dataset,
    config: Config | Mapping[str, Any] | str | Path | None = None,
    *,
    progress: Progress | None = None,
    jobs: int | None = None,
) -> ScanResult:
    """Resolve bidders into firms, run the selected detectors, rank tenders and firms.

    ``config`` is a Config, a dict shaped like bidwatch.toml, or a path to one.
    ``progress(step, done, total)`` is called, on the calling thread, as each detector
    starts, with how many have finished.
    ``jobs`` detectors run at a time, on threads (default ``default_jobs()``). The result
    does not depend on it; ``jobs=1`` holds the least memory.
    """
    jobs = checked_jobs(jobs)
    started = datetime.now(UTC)
    clock = perf_counter()
    cfg = _config(config)
    links = entities.Links.load(cfg.entities.links) if cfg.entities.links else None
    if progress:
        progress("resolving names", 0, 1)
    resolved = entities.resolve(data, cfg.entities, links)
    stages = {"entities": perf_counter() - clock}
    clock = perf_counter()
    detectors = cfg.detectors()
    try:
        done = _run_detectors(resolved, detectors, jobs, progress)
    finally:
        release(resolved)
    stages["detectors"] = perf_counter() - clock
    runs = tuple(run for run, _ in done)
    assessed = {run.name: found.assessed for run, found in done if found is not None}
    frames = [found.frame for _, found in done if found is not None]
    del done
    if progress:
        progress("risk", len(detectors), len(detectors))
    clock = perf_counter()
    # Each detector's findings are sorted and under its own name: in order of name, their
    # concatenation is sorted too, and chunks kept apart are not copied (empty frames are
    # left out: their columns would not stay aligned, which forces a copy).
    frames = sorted((f for f in frames if f.height), key=lambda f: str(f.item(0, "detector")))
    findings = Findings(
        pl.concat(frames, rechunk=False) if frames else pl.DataFrame(schema=FINDING_SCHEMA)
    )
    del frames
    risk = assess(resolved, findings.frame, assessed, cfg)
    stages["risk"] = perf_counter() - clock
    return ScanResult(resolved, findings, runs, cfg, risk, assessed, started, stages)


_Done = tuple[DetectorRun, Findings | None]


def _run_one(detector: Detector, data: Dataset) -> _Done:
    missing = data.missing(detector.requires)
    if missing:
        needs = ", ".join(DERIVED.get(m, m) for m in missing)
        return DetectorRun(detector.name, "skipped", f"needs {needs}, not in the input"), None
    clock = perf_counter()
    try:
        found = detector.detect(data)
    except NotComputable as exc:
        return DetectorRun(detector.name, "skipped", str(exc), seconds=perf_counter() - clock), None
    flagged = found.frame.get_column("subject_id").n_unique()
    run = DetectorRun(
        detector.name,
        "ran",
        None,
        found.scanned,
        flagged,
        found.notes,
        seconds=perf_counter() - clock,
    )
    return run, found


def _run_detectors(
    data: Dataset, detectors: list[Detector], jobs: int, progress: Progress | None
) -> list[_Done]:
    """Each detector's run and findings, in catalogue order whatever order they finish in.
    ``progress`` names each detector as it starts."""

    def starting(i: int, finished: int) -> None:
        if progress:
            progress(detectors[i].name, finished, len(detectors))

    steps = [functools.partial(_run_one, detector, data) for detector in detectors]
    return in_order(steps, jobs, starting)
