"""Worker processes: each loads the packs once, then runs jobs of one kind in parallel.

The analysis (`engine`) and the fix planner (`fixing`) share the worker set-up; each keeps its own
scheduling, because only the analysis must survive a worker that dies.
"""

from __future__ import annotations

import gc
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import TypeVar

from dbpoollint.packs import PackSet, load_packs

_PACKS: PackSet | None = None
DEFAULT_GC_THRESHOLDS = (700, 10, 10)
Job = TypeVar("Job")
Result = TypeVar("Result")


def init_worker(extra_packs: Sequence[Path]) -> None:
    global _PACKS
    # The main process raised the collector's thresholds for the cached summaries it keeps; a
    # worker collects as Python does (the analysis itself collects once per file).
    gc.set_threshold(*DEFAULT_GC_THRESHOLDS)
    _PACKS = load_packs(extra_packs)


def worker_packs() -> PackSet:
    assert _PACKS is not None, "init_worker did not run in this process"
    return _PACKS


def worker_count(jobs: int | None) -> int:
    return jobs if jobs is not None else min(os.cpu_count() or 1, 8)


def parallel_map(
    function: Callable[[Job], Result],
    items: Sequence[Job],
    extra_packs: Sequence[Path],
    jobs: int | None,
    inline: Callable[[Job], Result],
) -> list[Result]:
    """`function` over `items` in worker processes, in order; `inline` runs one in this process.

    Few items are not worth starting workers for. A pool that breaks (a worker killed from
    outside) costs speed, not results: what is left runs inline.
    """
    workers = worker_count(jobs)
    if workers <= 1 or len(items) < 2 * workers:
        return [inline(item) for item in items]
    try:
        with ProcessPoolExecutor(
            max_workers=workers, initializer=init_worker, initargs=(tuple(extra_packs),)
        ) as executor:
            return list(
                executor.map(function, items, chunksize=max(1, len(items) // (4 * workers)))
            )
    except BrokenProcessPool:
        return [inline(item) for item in items]
