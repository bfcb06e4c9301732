"""discover files -> prefilter -> parse once -> summarise -> join -> rules -> noqa -> sort.

`analyse_file` is a pure function of (path, bytes, module name, packs): it is what runs in
worker processes and what a content cache can key on.
"""

from __future__ import annotations

import functools
import gc
import multiprocessing
import re
import signal
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path

from dbpoollint.analysis import slicing
from dbpoollint.analysis.contexts import SERVICE, classify, judges
from dbpoollint.analysis.model import ModuleSummary
from dbpoollint.analysis.propagate import (
    closed_by_callers,
    external_roots_for,
    per_call_functions,
    used_per_call,
)
from dbpoollint.analysis.resolve import ModuleIndex
from dbpoollint.cache import ResultCache
from dbpoollint.checks import ALL_RULES, RULES_BY_CODE
from dbpoollint.checks.base import Finding, Project, file_finding
from dbpoollint.checks.invalid_syntax import syntax_error_finding
from dbpoollint.noqa import UNUSED_NOQA, Suppressions, parse_suppressions, unused_directives
from dbpoollint.packs import PackSet
from dbpoollint.selection import Selection, drop_contradictions
from dbpoollint.source import SourceError, decode, python_verdict, read
from dbpoollint.workers import init_worker, worker_count, worker_packs


@dataclass
class FileResult:
    path: str
    summary: ModuleSummary | None = None
    findings: list[Finding] = field(default_factory=list)
    suppressions: Suppressions | None = None
    # False for a result that says nothing about the file itself (a crashed worker).
    cacheable: bool = True


@dataclass
class CheckResult:
    findings: list[Finding]
    files_checked: int
    files_parsed: int
    cache_hits: int = 0


def analyse_file(
    path: str,
    data: bytes,
    module: str,
    is_test: bool,
    packs: PackSet,
    force: bool = False,
    slice_workers: int = 1,
) -> FileResult:
    """Parse one file (if it can matter) and summarise it; the slices of a very large one in
    `slice_workers` processes."""
    result = FileResult(path)
    if not force and not packs.worth_parsing(data):
        return result
    try:
        source = decode(path, data)
    except SourceError as error:
        result.findings.append(file_finding(path, "DPL002", f"cannot read file: {error}"))
        return result
    result.suppressions = parse_suppressions(source.text)
    if data.count(b"\n") > slicing.SLICE_ABOVE_LINES:
        # A module this large is parsed in slices; CPython's verdict comes with the slicing.
        from dbpoollint.analysis.sliced import summarise_sliced

        sliced = summarise_sliced(path, data, source.text, module, is_test, packs, slice_workers)
        if sliced is not None:
            result.summary, failure = sliced
            if failure is not None:
                result.findings.append(failure)
            return result
    verdict = python_verdict(path, source.text)
    if verdict.fatal:
        # Never hand libcst what crashes its native parser: the whole run would die.
        if verdict.error is not None:
            result.findings.append(syntax_error_finding(path, verdict.error))
        else:
            result.findings.append(
                file_finding(path, "DPL002", f"cannot analyse: {verdict.reason}")
            )
        return result
    # libcst is imported only here: a run whose every file is cached never loads it.
    from dbpoollint.analysis.summarise import summarise

    summary, failure = summarise(path, data, module, is_test, packs, verdict)
    if failure is not None:
        result.findings.append(failure)
    result.summary = summary
    return result


# --- worker processes ------------------------------------------------------------------------

# (path, bytes, module, is_test, force): what a worker needs to analyse one file.
Job = tuple[str, bytes, str, bool, bool]


def _analyse_in_worker(job: Job) -> FileResult:
    """One file in a worker, with the cyclic collector paused and run once at the end.

    A parse tree is garbage as soon as its summary is made, but libcst's scopes hold it in
    reference cycles, so only the collector frees it; run on its thresholds, it rescans the
    tree's million objects many times while they are built. One collection per file frees the
    tree as soon as it is garbage, and scans only this file's objects: the parent froze its own
    before forking.
    """
    path, data, module, is_test, force = job
    if data.count(b"\n") > slicing.SLICE_ABOVE_LINES:
        # Sliced: each slice's tree is garbage before the next is parsed; collect as usual.
        return analyse_file(path, data, module, is_test, worker_packs(), force)
    gc.disable()
    try:
        return analyse_file(path, data, module, is_test, worker_packs(), force)
    finally:
        gc.enable()
        gc.collect()


@dataclass(frozen=True)
class FileInput:
    path: str
    data: bytes | None
    module: str
    is_test: bool
    read_error: str = ""
    # Other names the module is importable as (a namespace package's `app.db`), for the join.
    aliases: tuple[str, ...] = ()
    # What the path says about the run context (`contexts.path_context`); None: not asked.
    path_context: str | None = None


def check_files(
    inputs: Sequence[FileInput],
    packs: PackSet,
    selection: Selection,
    extra_packs: Sequence[Path] = (),
    jobs: int | None = None,
    force_parse: bool = False,
    project_files: Mapping[str, str] | None = None,
    progress: Callable[[int], None] | None = None,
    fix_values: Mapping[str, float] | None = None,
    context: Sequence[FileInput] = (),
    budget: Mapping[str, int] | None = None,
    contexts: frozenset[str] = frozenset(),
    cache: ResultCache | None = None,
) -> CheckResult:
    """Check files; `progress` is called with the number of files analysed as they finish.

    `context` holds the project's other modules: they are analysed for their facts (who builds a
    client, who closes it, what a package re-exports) and nothing is reported in them.

    With a `cache`, a file whose bytes, path and settings were seen before is neither analysed
    nor prefiltered again: its stored result joins the others.
    """
    results: list[FileResult] = []
    pending: list[Job] = []
    skipped: list[FileInput] = []
    # path -> the cache key of its result: what analyse_file depends on, and the run's mode.
    keys: dict[str, Job] = {}
    # path -> cache key of the files the prefilter skipped: the second pass's memo is keyed on them.
    digests: dict[str, str] = {}
    checked = {item.path for item in inputs}
    extra = [item for item in context if item.path not in checked and item.data is not None]
    for item in [*inputs, *extra]:
        if item.data is None:
            results.append(
                FileResult(item.path, findings=[file_finding(item.path, "DPL002", item.read_error)])
            )
            continue
        forced = force_parse and item.path in checked
        if item.is_test and not forced:
            # Tests and conftest build clients per test on purpose and no rule reports them,
            # so they are not parsed at all.
            skipped.append(item)
            continue
        key = (item.path, item.data, item.module, item.is_test, forced)
        digest = cache.key(key) if cache is not None else ""
        cached = cache.get(key, digest) if cache is not None else None
        if cached is not None and _is_skip(cached):
            skipped.append(item)
            digests[item.path] = digest
        elif cached is not None:
            results.append(cached)
        elif forced or packs.worth_parsing(item.data):
            keys[item.path] = key
            pending.append((item.path, item.data, item.module, item.is_test, True))
        else:
            skipped.append(item)
            digests[item.path] = digest
            if cache is not None:
                cache.put(key, FileResult(item.path))
    if progress is not None:
        progress(len(inputs) - sum(1 for job in pending if job[0] in checked))
    # One pool serves both passes: its workers start once.
    with _Workers(worker_count(jobs), extra_packs) as workers:
        analysed = _run_jobs(pending, packs, workers, _only(progress, checked))
        results.extend(analysed)
        # A module can reach a client only through a function of this project that builds one
        # (`from proj.db import get_db` in a tasks module importing no framework): parse the
        # skipped files that mention such a function by name, so the join can follow the call.
        second = _mentioning_builders(skipped, results, cache, digests)
        fresh: list[Job] = []
        for job in second:
            cached = cache.get(job) if cache is not None else None
            if cached is not None:
                results.append(cached)
            else:
                keys[job[0]] = job
                fresh.append(job)
        analysed_second = _run_jobs(fresh, packs, workers, _only(progress, checked))
    results.extend(analysed_second)
    if cache is not None:
        for result in (*analysed, *analysed_second):
            if result.cacheable:
                cache.put(keys[result.path], result)
    parsed = {job[0] for job in second}
    # DPL009 judges every noqa directive naming our codes, also in files no rule parses.
    stale_noqa = selection.enabled(UNUSED_NOQA)
    results.extend(
        FileResult(
            item.path,
            suppressions=_directives_only(item) if stale_noqa and item.path in checked else None,
        )
        for item in skipped
        if item.path not in parsed
    )
    from_path = {item.path: item.path_context for item in inputs if item.path_context is not None}
    for result in results:
        if result.summary is not None and result.path in from_path:
            classify(result.summary, from_path[result.path], result.summary.context_markers)
    aliases = {item.path: item.aliases for item in [*inputs, *extra] if item.aliases}
    reported = frozenset(checked) if extra else None
    findings = join(
        results,
        selection,
        project_files,
        packs,
        fix_values,
        aliases,
        budget,
        contexts,
        reported,
        {path: context for path, context in from_path.items() if context},
    )
    if extra:
        findings = [f for f in findings if f.path in checked]
    return CheckResult(
        findings,
        files_checked=len(inputs),
        files_parsed=sum(1 for job in [*pending, *fresh] if job[0] in checked),
        cache_hits=cache.hits if cache is not None else 0,
    )


def _is_skip(result: FileResult) -> bool:
    """The stored verdict of the prefilter: nothing in this file can matter."""
    return result.summary is None and not result.findings and result.suppressions is None


def _only(
    progress: Callable[[int], None] | None, checked: set[str]
) -> Callable[[str], None] | None:
    """Progress counts the files the user asked for, not the project modules read for facts."""
    if progress is None:
        return None
    return lambda path: progress(1) if path in checked else None


def _directives_only(item: FileInput) -> Suppressions | None:
    if item.data is None or b"DPL" not in item.data:
        return None
    try:
        return parse_suppressions(decode(item.path, item.data).text)
    except SourceError:
        return None


def _mentioning_builders(
    skipped: Sequence[FileInput],
    results: Sequence[FileResult],
    cache: ResultCache | None = None,
    digests: Mapping[str, str] | None = None,
) -> list[Job]:
    """Skipped files the join needs after all: those naming a function that builds a client, and
    package `__init__` modules that re-export from a parsed module (`from .cache import client`
    when `cache` was parsed), or from such an `__init__`, through any chain.

    With a cache, the answer is remembered under the parsed modules, the builders' names and the
    skipped files' keys: an unchanged tree does not scan its skipped files again.
    """
    summaries = [result.summary for result in results if result.summary is not None]
    names = {site.function.rsplit(".", 1)[-1].encode() for s in summaries for site in s.sites}
    modules = {s.module for s in summaries}
    candidates = [item for item in skipped if item.data is not None and not item.is_test]
    memo = None
    if cache is not None and digests is not None:
        words = sorted([*(n.decode() for n in names), *("\0" + m for m in modules)])
        memo = cache.memo_key("second-pass", [*words, *(digests[i.path] for i in candidates)])
        stored = cache.get_memo(memo)
        if isinstance(stored, frozenset):
            return [_job(item) for item in candidates if item.path in stored]
    chosen: list[FileInput] = []
    packages: list[tuple[FileInput, set[bytes]]] = []
    for item in candidates:
        data = item.data or b""
        # A set of the file's identifiers: several times faster than one regex alternating
        # over every builder's name. Read only when there is something to look for.
        identifiers: set[bytes] | None = None
        if names:
            identifiers = set(_IDENTIFIER.findall(data))
            if not names.isdisjoint(identifiers):
                chosen.append(item)
                continue
        if item.path.endswith("__init__.py") and _REEXPORT.search(data):
            packages.append((item, identifiers or set(_IDENTIFIER.findall(data))))
    # A package's `__init__` matters when it names one of its own modules that the join knows
    # (`from .cache import client` in deps/ when deps.cache was parsed); once chosen, so does
    # the package above it that names it.
    known = set(modules)
    while True:
        reached = [item for item, ids in packages if _names_a_submodule(item.module, ids, known)]
        if not reached:
            break
        chosen.extend(reached)
        known.update(item.module for item in reached)
        packages = [(item, ids) for item, ids in packages if item not in reached]
    if cache is not None and memo is not None:
        cache.put_memo(memo, frozenset(item.path for item in chosen))
    return [_job(item) for item in chosen]


def _names_a_submodule(package: str, identifiers: set[bytes], known: set[str]) -> bool:
    prefix = package + "."
    return any(
        module.startswith(prefix) and module[len(prefix) :].split(".", 1)[0].encode() in identifiers
        for module in known
    )


def _job(item: FileInput) -> Job:
    return (item.path, item.data or b"", item.module, item.is_test, True)


_IDENTIFIER = re.compile(rb"[A-Za-z_][A-Za-z0-9_]*")
_REEXPORT = re.compile(rb"^[ \t]*from[ \t]+\S+[ \t]+import[ \t]", re.MULTILINE)
# Files per task: big enough to amortise the pickling, small enough that a worker that dies
# takes few files with it (those are then rerun one per process).
CHUNK = 4


class _Workers:
    """The analysis' worker processes: started when a pass first needs them, kept for the second
    pass, and started anew after one of them dies."""

    def __init__(self, count: int, extra_packs: Sequence[Path]) -> None:
        self.count = count
        self.extra_packs = tuple(extra_packs)
        self._executor: ProcessPoolExecutor | None = None

    def __enter__(self) -> _Workers:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def executor(self) -> ProcessPoolExecutor:
        if self._executor is None:
            if multiprocessing.get_start_method() == "fork":
                # Forked workers inherit what this process has imported: libcst and the
                # analysis are imported once here rather than once in every worker, and
                # frozen, so no worker's collector scans them again.
                import dbpoollint.analysis.summarise  # noqa: F401

                gc.freeze()
            self._executor = ProcessPoolExecutor(
                max_workers=self.count, initializer=init_worker, initargs=(self.extra_packs,)
            )
        return self._executor

    def broken(self) -> None:
        """A worker died: the next pass starts a fresh pool."""
        self.close()

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown()
            self._executor = None


def _run_jobs(
    pending: list[Job],
    packs: PackSet,
    workers: _Workers,
    progress: Callable[[str], None] | None = None,
) -> list[FileResult]:
    tick = progress or (lambda path: None)
    results: list[FileResult] = []
    # Worker start-up costs about as much as parsing a handful of files. Run here, a very
    # large file may still use the workers for its slices.
    if workers.count <= 1 or len(pending) < 8:
        for job in pending:
            results.append(analyse_file(*job[:4], packs, job[4], workers.count))
            tick(job[0])
        return results
    chunks = deque(
        [(start, pending[start : start + CHUNK]) for start in range(0, len(pending), CHUNK)]
    )
    by_index: dict[int, FileResult] = {}
    while chunks:
        lost = _run_pool(chunks, workers.executor(), workers.count, by_index, tick)
        if lost is None:
            break
        workers.broken()
        for start, chunk in lost:
            # The pool broke while these were in flight: one of them may kill any process
            # it runs in, so each gets a process of its own.
            for offset, job in enumerate(chunk):
                by_index[start + offset] = _analyse_alone(job, workers.extra_packs)
                tick(job[0])
    return [by_index[index] for index in sorted(by_index)]


def _run_pool(
    chunks: deque[tuple[int, list[Job]]],
    executor: ProcessPoolExecutor,
    count: int,
    by_index: dict[int, FileResult],
    tick: Callable[[str], None],
) -> list[tuple[int, list[Job]]] | None:
    """Run chunks until none is left (None) or a worker dies: then the chunks the death lost."""
    in_flight: dict[Future[list[FileResult]], tuple[int, list[Job]]] = {}
    while chunks or in_flight:
        # Few tasks queued at a time, so a dead worker loses only these.
        while chunks and len(in_flight) < 2 * count:
            start, chunk = chunks.popleft()
            try:
                future = executor.submit(_analyse_chunk, chunk)
            except BrokenProcessPool:  # it broke since the last wait: keep this chunk for later
                chunks.appendleft((start, chunk))
                return list(in_flight.values())
            in_flight[future] = (start, chunk)
        done, _ = wait(in_flight, return_when=FIRST_COMPLETED)
        for future in done:
            try:
                chunk_results = future.result()
            except BrokenProcessPool:
                return list(in_flight.values())
            start, chunk = in_flight.pop(future)
            for offset, result in enumerate(chunk_results):
                by_index[start + offset] = result
                tick(result.path)
    return None


def _analyse_chunk(chunk: list[Job]) -> list[FileResult]:
    return [_analyse_in_worker(job) for job in chunk]


def _analyse_alone(job: Job, extra_packs: Sequence[Path]) -> FileResult:
    """Analyse one file in a process of its own; a death there is that file's finding."""
    context = multiprocessing.get_context()
    receiver, sender = context.Pipe(duplex=False)
    process = context.Process(target=_alone_in_process, args=(sender, job, tuple(extra_packs)))
    process.start()
    sender.close()
    try:
        result: FileResult = receiver.recv()
    except EOFError:
        process.join()
        code = process.exitcode or 0
        cause = signal.Signals(-code).name if code < 0 else f"exit status {code}"
        return FileResult(
            job[0],
            cacheable=False,
            findings=[
                file_finding(
                    job[0],
                    "DPL002",
                    f"cannot analyse: the process analysing this file died ({cause}); "
                    "please report it",
                )
            ],
        )
    finally:
        receiver.close()
    process.join()
    return result


def _alone_in_process(sender: Connection, job: Job, extra_packs: tuple[Path, ...]) -> None:
    init_worker(extra_packs)
    sender.send(_analyse_in_worker(job))
    sender.close()


def join(
    results: list[FileResult],
    selection: Selection,
    project_files: Mapping[str, str] | None = None,
    packs: PackSet | None = None,
    fix_values: Mapping[str, float] | None = None,
    aliases: Mapping[str, tuple[str, ...]] | None = None,
    budget: Mapping[str, int] | None = None,
    contexts: frozenset[str] = frozenset(),
    reported: frozenset[str] | None = None,
    path_contexts: Mapping[str, str] | None = None,
) -> list[Finding]:
    """Join the per-file summaries, run the rules, then apply selection and suppressions."""
    project = make_project(results, project_files, packs, fix_values, aliases, budget, contexts)
    project.reported = reported
    by_path = {s.path: s for s in project.summaries}
    # A file no summary describes (it did not parse, or could not be read) is judged by the
    # context its path tells (`bin/`, `examples/`), or as a service's.
    by_path_alone = path_contexts or {}
    findings = [
        f
        for r in results
        for f in r.findings
        if r.summary is not None
        or f.code not in RULES_BY_CODE
        or judges(RULES_BY_CODE[f.code].contexts, contexts, by_path_alone.get(f.path, SERVICE))
    ]
    for rule_class in ALL_RULES:
        if selection.enabled(rule_class.code):
            findings.extend(
                f
                for f in rule_class().check(project)
                if f.path not in by_path
                or judges(rule_class.contexts, contexts, by_path[f.path].run_context)
            )
    findings = [f for f in drop_contradictions(findings) if selection.enabled(f.code, f.path)]
    suppressions = {r.path: r.suppressions for r in results if r.suppressions is not None}
    if not selection.respect_noqa:
        suppressions = {}
    if selection.enabled(UNUSED_NOQA) and selection.respect_noqa:
        findings += _unused_noqa(findings, suppressions, selection)
    kept = [
        f
        for f in findings
        if not (f.path in suppressions and suppressions[f.path].suppresses(f.code, f.span.line))
    ]
    return sorted(set(kept), key=lambda f: f.sort_key)


def _unused_noqa(
    findings: Sequence[Finding], suppressions: Mapping[str, Suppressions], selection: Selection
) -> list[Finding]:
    by_path: dict[str, list[Finding]] = {}
    for finding in findings:
        by_path.setdefault(finding.path, []).append(finding)
    unused: list[Finding] = []
    for path, found in suppressions.items():
        unused += unused_directives(
            path,
            found,
            by_path.get(path, []),
            RULES_BY_CODE,
            functools.partial(selection.enabled, path=path),
        )
    return [f for f in unused if selection.enabled(f.code, f.path)]


def make_project(
    results: list[FileResult],
    project_files: Mapping[str, str] | None = None,
    packs: PackSet | None = None,
    fix_values: Mapping[str, float] | None = None,
    aliases: Mapping[str, tuple[str, ...]] | None = None,
    budget: Mapping[str, int] | None = None,
    contexts: frozenset[str] = frozenset(),
) -> Project:
    """The joined project the rules read: summaries plus the cross-module facts."""
    summaries = [r.summary for r in results if r.summary is not None]
    index = ModuleIndex(summaries, aliases)
    project = Project(
        summaries,
        files=dict(project_files or {}),
        packs=packs,
        fix_values=dict(fix_values or {}),
        index=index,
        budget=dict(budget or {}),
        contexts=contexts,
    )
    external = external_roots_for(summaries, index)
    for summary in summaries:
        project.per_call[summary.path] = per_call_functions(summary, external.get(summary.path, []))
    project.used_per_call = used_per_call(summaries, project.per_call, index)
    project.closed_by_callers = closed_by_callers(summaries, index)
    return project


def analyse_project(
    inputs: Sequence[FileInput],
    packs: PackSet,
    extra_packs: Sequence[Path] = (),
    jobs: int | None = None,
    project_files: Mapping[str, str] | None = None,
    budget: Mapping[str, int] | None = None,
    contexts: frozenset[str] = frozenset(),
) -> Project:
    """Summarise and join without running the rules (`dbpoollint budget`)."""
    pending: list[tuple[str, bytes, str, bool, bool]] = []
    skipped: list[FileInput] = []
    for item in inputs:
        if item.data is not None and not item.is_test and packs.worth_parsing(item.data):
            pending.append((item.path, item.data, item.module, item.is_test, True))
        else:
            skipped.append(item)
    with _Workers(worker_count(jobs), extra_packs) as workers:
        results = _run_jobs(pending, packs, workers)
        results.extend(_run_jobs(_mentioning_builders(skipped, results), packs, workers))
    aliases = {item.path: item.aliases for item in inputs if item.aliases}
    return make_project(results, project_files, packs, None, aliases, budget)


def read_input(
    path: Path, module: str, is_test: bool, display: str, aliases: tuple[str, ...] = ()
) -> FileInput:
    try:
        return FileInput(display, read(path), module, is_test, aliases=aliases)
    except SourceError as error:
        return FileInput(display, None, module, is_test, f"cannot read file: {error}", aliases)
