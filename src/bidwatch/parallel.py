"""Independent steps (checking each input, running each detector) a few at a time, on
threads of this process, with the results in the order of the steps.

Threads, not processes: the steps read the same tables, which polars and numpy work on
without holding Python's lock, so a second step fills what one leaves of the cores without
copying any table.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import TypeVar, cast

_T = TypeVar("_T")


def default_jobs() -> int:
    """Steps run at a time by default: two, or one on a single core. Polars already spreads
    each step over the cores; a second step fills what one leaves idle (numpy, Python,
    waits), and more would hold more memory for little more speed."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return min(2, cores or 1)


def checked_jobs(jobs: int | None) -> int:
    """``jobs``, or the default for None; anything but a whole number of 1 or more is a
    ValueError."""
    if jobs is None:
        return default_jobs()
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise ValueError(f"jobs must be a whole number of 1 or more, got {jobs!r}")
    return jobs


def in_order(
    steps: Sequence[Callable[[], _T]],
    jobs: int,
    starting: Callable[[int, int], None] | None = None,
) -> list[_T]:
    """Each step run on up to ``jobs`` threads, started in order; their results in order.

    ``starting(i, finished)`` is called on the calling thread just before step ``i`` starts,
    with how many steps have finished. When a step fails, the steps running finish, no
    other starts, and the failure of the first of them in order is raised: the failure a
    run one at a time would have met. An interrupt (Ctrl-C) likewise lets the steps running
    finish first; with ``jobs=1`` the steps run on the calling thread, and it stops them
    where they are.
    """
    total = len(steps)
    if jobs == 1:
        # On the calling thread: an interrupt (Ctrl-C) stops the step where it is, where a
        # step on a pool thread would first run to its end.
        done_here = []
        for i, step in enumerate(steps):
            if starting:
                starting(i, i)
            done_here.append(step())
        return done_here
    done: list[_T | None] = [None] * total
    with ThreadPoolExecutor(jobs, thread_name_prefix="bidwatch") as pool:
        running: dict[Future[_T], int] = {}
        started = finished = 0
        while running or started < total:
            while started < total and len(running) < jobs:
                if starting:
                    starting(started, finished)
                running[pool.submit(steps[started])] = started
                started += 1
            ready, _ = wait(running, return_when=FIRST_COMPLETED)
            if any(f.exception() is not None for f in ready):
                wait(running)
                failed = [f for f in running if f.exception() is not None]
                first = min(failed, key=running.__getitem__)
                raise cast(BaseException, first.exception())
            for future in ready:
                done[running.pop(future)] = future.result()
                finished += 1
    return cast(list[_T], done)
