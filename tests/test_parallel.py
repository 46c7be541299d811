"""Detectors running several at a time: shared values built once, results independent of it."""

from __future__ import annotations

import gc
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import polars as pl
import pytest
from polars.testing import assert_frame_equal

import bidwatch
from bidwatch.api import _run_detectors, default_jobs
from bidwatch.dataset import Dataset
from bidwatch.detectors._base import NotComputable, handoff, once, release
from bidwatch.findings import Findings
from bidwatch.parallel import in_order

from .conftest import random_market


@pytest.fixture(scope="module")
def data() -> Dataset:
    tenders, bids = random_market(seed=4, tenders=120)
    return bidwatch.load(bids=bids, tenders=tenders)


def _together(count: int, call: object) -> list[object]:
    """``call()`` on ``count`` threads released at the same moment; what each returned or
    raised."""
    barrier = threading.Barrier(count)
    out: list[object] = [None] * count

    def run(i: int) -> None:
        barrier.wait()
        try:
            out[i] = call()  # type: ignore[operator]
        except Exception as exc:
            out[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return out


class _Value:
    """A built value that can be watched for being dropped."""


def _slow(calls: list[int]) -> Callable[[], _Value]:
    """A build that counts its calls and takes long enough for other threads to ask."""

    def build() -> _Value:
        calls.append(1)
        time.sleep(0.2)
        return _Value()

    return build


def test_once_builds_one_value_for_threads_asking_together(data: Dataset) -> None:
    calls: list[int] = []
    build = _slow(calls)
    got = _together(4, lambda: once(data, ("test", "together"), build))
    assert len(calls) == 1
    assert all(value is got[0] for value in got)
    assert isinstance(got[0], _Value)
    assert once(data, ("test", "together"), build) is got[0]
    assert len(calls) == 1


def test_once_failure_is_met_by_every_caller_and_not_kept(data: Dataset) -> None:
    calls: list[int] = []

    def fail() -> _Value:
        calls.append(1)
        time.sleep(0.1)
        raise NotComputable("no tender has 3+ priced bids")

    got = _together(3, lambda: once(data, ("test", "fails"), fail))
    assert all(isinstance(g, NotComputable) for g in got)
    # Each caller met the error as if it had run alone: none got a value built by nobody.
    assert 1 <= len(calls) <= 3
    value = once(data, ("test", "fails"), _Value)
    assert isinstance(value, _Value)


def test_an_interrupted_build_leaves_nothing_to_wait_for(data: Dataset) -> None:
    def interrupted() -> _Value:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        once(data, ("test", "interrupted"), interrupted)
    with pytest.raises(KeyboardInterrupt):
        handoff(data, ("test", "interrupted"), interrupted)
    # Had a slot been left unfilled, these would wait for ever.
    assert isinstance(once(data, ("test", "interrupted"), _Value), _Value)
    assert isinstance(handoff(data, ("test", "interrupted"), _Value), _Value)
    release(data)


def test_one_job_runs_on_the_calling_thread() -> None:
    here = threading.current_thread()
    assert in_order([threading.current_thread] * 3, 1) == [here] * 3
    assert here not in in_order([threading.current_thread] * 3, 2)


def test_once_keeps_a_value_per_dataset(data: Dataset) -> None:
    other = bidwatch.load(bids=random_market(seed=5, tenders=20)[1])
    first = once(data, ("test", "per dataset"), _Value)
    second = once(other, ("test", "per dataset"), _Value)
    assert first is not second
    assert once(data, ("test", "per dataset"), _Value) is first


def test_handoff_gives_the_value_to_the_second_reader_then_drops_it(data: Dataset) -> None:
    calls: list[int] = []
    build = _slow(calls)
    got = _together(2, lambda: handoff(data, ("test", "pair"), build))
    assert len(calls) == 1
    assert got[0] is got[1]
    watch = weakref.ref(got[0])
    del got
    gc.collect()
    assert watch() is None, "taken by the second reader, the value is held no more"
    handoff(data, ("test", "pair"), build)
    assert len(calls) == 2, "a third reader starts a new pair"
    release(data)


def test_release_drops_what_no_second_reader_took(data: Dataset) -> None:
    watch = weakref.ref(handoff(data, ("test", "alone"), _Value))
    gc.collect()
    assert watch() is not None, "held for the second reader"
    release(data)
    gc.collect()
    assert watch() is None


def test_a_scan_holds_no_handed_value_afterwards() -> None:
    from bidwatch.cli import find_inputs
    from bidwatch.schema import AFTER_AWARD

    given = find_inputs(Path(__file__).resolve().parents[1] / "fixtures" / "demo")
    tables = ("bids", "tenders", "firms", *AFTER_AWARD)
    data = bidwatch.load(**{table: given[table] for table in tables})
    result = bidwatch.scan(data, {"detectors": {"ignore": ["unbalanced-bid"]}})
    assert "below-reference-price" in {r.name for r in result.runs if r.status == "ran"}
    built: list[int] = []
    # A second reader of the bills finds nothing left by the scan, and builds them.
    handoff(result.data, "bills", lambda: built.append(1))
    assert built == [1]
    release(result.data)


@pytest.mark.parametrize("jobs", [2, 3])
def test_scan_results_do_not_depend_on_jobs(data: Dataset, jobs: int) -> None:
    alone = bidwatch.scan(data, jobs=1)
    together = bidwatch.scan(data, jobs=jobs)
    assert together.runs == alone.runs
    assert [r.name for r in together.runs] == [r.name for r in alone.runs]
    assert_frame_equal(together.findings.frame, alone.findings.frame)
    assert list(together.assessed) == list(alone.assessed)
    for name, series in alone.assessed.items():
        assert together.assessed[name].equals(series)
    for kind in ("tender", "firm", "group", "pair", "buyer"):
        assert_frame_equal(together.ranking(kind), alone.ranking(kind))
    assert list(together.stages) == ["entities", "detectors", "risk"]


def test_loading_does_not_depend_on_jobs(tmp_path: Path) -> None:
    tenders, bids = random_market(seed=6, tenders=80)
    bids = bids.with_columns(
        pl.when(pl.int_range(pl.len()) % 17 == 0)
        .then(pl.lit("twelve"))
        .otherwise(pl.col("amount").cast(pl.String))
        .alias("amount")
    )
    tenders.write_csv(tmp_path / "tenders.csv")
    bids.write_csv(tmp_path / "bids.csv")
    inputs = {"bids": tmp_path / "bids.csv", "tenders": tmp_path / "tenders.csv"}
    steps: list[str] = []
    alone = bidwatch.load(**inputs, jobs=1)
    together = bidwatch.load(**inputs, jobs=2, progress=lambda step, *_: steps.append(step))
    assert alone.rejected.height > 0
    for table in ("bids", "tenders", "firms", "rejected"):
        assert_frame_equal(getattr(together, table), getattr(alone, table))
    assert together.sources == alone.sources
    assert together.notes == alone.notes
    assert [s for s in steps if s.startswith("checking")] == ["checking tenders", "checking bids"]


@pytest.mark.parametrize("jobs", [0, -1, 1.5, True, "2"])
def test_loading_rejects_a_bad_number_of_jobs(jobs: object) -> None:
    with pytest.raises(ValueError, match="jobs must be a whole number of 1 or more"):
        bidwatch.load(bids=random_market(seed=1, tenders=5)[1], jobs=jobs)  # type: ignore[arg-type]


@pytest.mark.parametrize("jobs", [0, -1, 1.5, True, "2"])
def test_scan_rejects_a_bad_number_of_jobs(data: Dataset, jobs: object) -> None:
    with pytest.raises(ValueError, match="jobs must be a whole number of 1 or more"):
        bidwatch.scan(data, jobs=jobs)  # type: ignore[arg-type]


def test_default_jobs_is_one_or_two() -> None:
    assert default_jobs() in (1, 2)


@dataclass(frozen=True)
class _Fake:
    """A detector that waits, then fails or finds nothing."""

    name: str
    wait: float
    fails: bool
    started: list[str]
    requires: ClassVar[frozenset[str]] = frozenset()

    def detect(self, data: Dataset) -> Findings:
        self.started.append(self.name)
        time.sleep(self.wait)
        if self.fails:
            raise RuntimeError(f"{self.name} failed")
        return Findings(pl.DataFrame(schema=bidwatch.findings.FINDING_SCHEMA))


def test_the_first_failure_in_catalogue_order_is_raised_and_nothing_more_starts(
    data: Dataset,
) -> None:
    started: list[str] = []
    detectors = [
        _Fake("slow-failure", 0.4, True, started),
        _Fake("quick-failure", 0.0, True, started),
        _Fake("after", 0.0, False, started),
    ]
    with pytest.raises(RuntimeError, match="slow-failure failed"):
        _run_detectors(data, detectors, 2, None)  # type: ignore[arg-type]
    assert "after" not in started


def test_detectors_start_in_catalogue_order_and_come_back_in_it(data: Dataset) -> None:
    started: list[str] = []
    detectors = [_Fake(f"d{i}", 0.05 * (i % 3), False, started) for i in range(7)]
    steps: list[tuple[str, int, int]] = []
    done = _run_detectors(
        data,
        detectors,  # type: ignore[arg-type]
        3,
        lambda step, finished, total: steps.append((step, finished, total)),
    )
    assert [run.name for run, _ in done] == [d.name for d in detectors]
    assert all(run.status == "ran" for run, _ in done)
    assert [s for s, _, _ in steps] == [d.name for d in detectors]
    assert [f for _, f, _ in steps] == sorted(f for _, f, _ in steps)
    assert started == [d.name for d in detectors]
