"""discover files -> prefilter -> parse once -> summarise -> join -> rules -> noqa -> sort.

`analyse_file` is a pure function of (path, bytes, module name, packs): it is what runs in
worker processes and what a content cache can key on.
"""

from __future__ import annotations

import ast
import functools
import os
import re
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import libcst as cst
from libcst.metadata import MetadataWrapper, PositionProvider

from dbpoollint.analysis.contexts import classify, judges, module_markers
from dbpoollint.analysis.django_settings import DatabasesVisitor
from dbpoollint.analysis.flask_sqlalchemy import FlaskSqlalchemyVisitor
from dbpoollint.analysis.handlers import find_roots
from dbpoollint.analysis.indexer import ModuleIndexer
from dbpoollint.analysis.lifecycle import LifecycleVisitor, function_keys
from dbpoollint.analysis.model import ModuleSummary, Span
from dbpoollint.analysis.multiplex import visit_all
from dbpoollint.analysis.process import ProcessVisitor
from dbpoollint.analysis.propagate import (
    closed_by_callers,
    external_roots_for,
    per_call_functions,
    used_per_call,
)
from dbpoollint.analysis.resolve import ModuleIndex
from dbpoollint.analysis.urlfacts import UrlFactVisitor
from dbpoollint.checks import ALL_RULES, RULES_BY_CODE
from dbpoollint.checks.base import Finding, Project
from dbpoollint.noqa import UNUSED_NOQA, Suppressions, parse_suppressions, unused_directives
from dbpoollint.packs import DJANGO_DATABASES, FLASK_SQLALCHEMY, PackSet, load_packs
from dbpoollint.selection import Selection, drop_contradictions
from dbpoollint.source import SourceError, decode, read


@dataclass
class FileResult:
    path: str
    summary: ModuleSummary | None = None
    findings: list[Finding] = field(default_factory=list)
    suppressions: Suppressions | None = None


@dataclass
class CheckResult:
    findings: list[Finding]
    files_checked: int
    files_parsed: int


FactCollector = (
    ModuleIndexer
    | UrlFactVisitor
    | LifecycleVisitor
    | ProcessVisitor
    | FlaskSqlalchemyVisitor
    | DatabasesVisitor
)


def _error(path: str, code: str, message: str, line: int = 1, column: int = 1) -> Finding:
    return Finding(path, Span(line, column, line, column), code, message)


def analyse_file(
    path: str, data: bytes, module: str, is_test: bool, packs: PackSet, force: bool = False
) -> FileResult:
    """Parse one file (if it can matter) and summarise it."""
    result = FileResult(path)
    if not force and not packs.worth_parsing(data):
        return result
    try:
        source = decode(path, data)
    except SourceError as error:
        result.findings.append(_error(path, "DPL002", f"cannot read file: {error}"))
        return result
    result.suppressions = parse_suppressions(source.text)
    try:
        module_node = cst.parse_module(data)
    except cst.ParserSyntaxError as error:
        result.findings.append(_syntax_error(path, source.text, error))
        return result
    except RecursionError:
        result.findings.append(_error(path, "DPL002", "too deeply nested to parse"))
        return result
    package = module if path.endswith("__init__.py") else module.rpartition(".")[0]
    summary = ModuleSummary(path=path, module=module, is_test=is_test)
    indexer = ModuleIndexer(summary, packs, package)
    url_facts = UrlFactVisitor(summary, packs, package)
    lifecycle = LifecycleVisitor(summary, packs, package, function_keys(module_node))
    process = ProcessVisitor(summary, packs, package)
    collectors: list[FactCollector] = [indexer, url_facts, lifecycle, process]
    if FLASK_SQLALCHEMY.search(data):
        collectors.append(FlaskSqlalchemyVisitor(summary))
    if DJANGO_DATABASES.search(data):
        collectors.append(DatabasesVisitor(summary))
    try:
        wrapper = MetadataWrapper(module_node, unsafe_skip_copy=True)
        # One walk feeds every collector; positions are resolved once, for all of them.
        visit_all(wrapper, collectors)
        pending = [c for c in collectors if not isinstance(c, ModuleIndexer) and c.pending]
        if indexer.site_nodes or indexer.call_nodes or pending:
            positions = wrapper.resolve(PositionProvider)
            for collector in collectors:
                collector.finish(positions)
    except RecursionError:
        result.findings.append(_error(path, "DPL002", "too deeply nested to analyse"))
        return result
    find_roots(summary, packs, indexer.imported_modules, indexer.registrations)
    summary.context_markers = module_markers(data, indexer.imported_modules)
    classify(summary, "", summary.context_markers)
    result.summary = summary
    return result


def _syntax_error(path: str, text: str, error: cst.ParserSyntaxError) -> Finding:
    """Prefer CPython's own message and position; libcst's point past the real mistake."""
    try:
        compile(text, path, "exec", flags=ast.PyCF_ONLY_AST, dont_inherit=True)
    except SyntaxError as python_error:
        line = python_error.lineno or 1
        return _error(
            path, "DPL001", f"SyntaxError: {python_error.msg}", line, python_error.offset or 1
        )
    except (ValueError, RecursionError, MemoryError):
        pass
    message = re.sub(r"^parser error: error at \d+:\d+: ", "", error.message)
    return _error(
        path,
        "DPL001",
        f"libcst cannot parse this file: {message or 'invalid syntax'}",
        error.raw_line,
        error.raw_column + 1,
    )


# --- worker processes ------------------------------------------------------------------------

_WORKER_PACKS: PackSet | None = None


def _init_worker(extra_packs: Sequence[Path]) -> None:
    global _WORKER_PACKS
    _WORKER_PACKS = load_packs(extra_packs)


def _analyse_in_worker(job: tuple[str, bytes, str, bool, bool]) -> FileResult:
    assert _WORKER_PACKS is not None
    path, data, module, is_test, force = job
    return analyse_file(path, data, module, is_test, _WORKER_PACKS, force)


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
) -> CheckResult:
    """Check files; `progress` is called with the number of files analysed as they finish.

    `context` holds the project's other modules: they are analysed for their facts (who builds a
    client, who closes it, what a package re-exports) and nothing is reported in them.
    """
    results: list[FileResult] = []
    pending: list[tuple[str, bytes, str, bool, bool]] = []
    skipped: list[FileInput] = []
    checked = {item.path for item in inputs}
    extra = [item for item in context if item.path not in checked and item.data is not None]
    for item in [*inputs, *extra]:
        if item.data is None:
            results.append(
                FileResult(item.path, findings=[_error(item.path, "DPL002", item.read_error)])
            )
        elif (force_parse and item.path in checked) or (
            not item.is_test and packs.worth_parsing(item.data)
        ):
            # Tests and conftest build clients per test on purpose and no rule reports them,
            # so they are not parsed at all.
            pending.append((item.path, item.data, item.module, item.is_test, True))
        else:
            skipped.append(item)
    if progress is not None:
        progress(len(inputs) - sum(1 for job in pending if job[0] in checked))
    results.extend(_run_jobs(pending, packs, extra_packs, jobs, _only(progress, checked)))
    # A module can reach a client only through a function of this project that builds one
    # (`from proj.db import get_db` in a tasks module importing no framework): parse the
    # skipped files that mention such a function by name, so the join can follow the call.
    second = _mentioning_builders(skipped, results)
    results.extend(_run_jobs(second, packs, extra_packs, jobs, _only(progress, checked)))
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
    findings = join(results, selection, project_files, packs, fix_values, aliases, budget, contexts)
    if extra:
        findings = [f for f in findings if f.path in checked]
    return CheckResult(
        findings,
        files_checked=len(inputs),
        files_parsed=sum(1 for job in [*pending, *second] if job[0] in checked),
    )


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
    skipped: Sequence[FileInput], results: Sequence[FileResult]
) -> list[tuple[str, bytes, str, bool, bool]]:
    """Skipped files the join needs after all: those naming a function that builds a client, and
    package `__init__` modules that re-export (`from .cache import client`)."""
    names = {
        site.function.rsplit(".", 1)[-1]
        for result in results
        if result.summary is not None
        for site in result.summary.sites
    }
    pattern = (
        re.compile(rb"\b(?:" + b"|".join(re.escape(n.encode()) for n in sorted(names)) + rb")\b")
        if names
        else None
    )
    return [
        (item.path, item.data, item.module, item.is_test, True)
        for item in skipped
        if item.data is not None
        and not item.is_test
        and (
            (pattern is not None and pattern.search(item.data))
            or (item.path.endswith("__init__.py") and _REEXPORT.search(item.data))
        )
    ]


_REEXPORT = re.compile(rb"^[ \t]*from[ \t]+\S+[ \t]+import[ \t]", re.MULTILINE)


def _run_jobs(
    pending: list[tuple[str, bytes, str, bool, bool]],
    packs: PackSet,
    extra_packs: Sequence[Path],
    jobs: int | None,
    progress: Callable[[str], None] | None = None,
) -> list[FileResult]:
    workers = jobs if jobs is not None else min(os.cpu_count() or 1, 8)
    tick = progress or (lambda path: None)
    results: list[FileResult] = []
    # Worker start-up costs about as much as parsing a handful of files.
    if workers <= 1 or len(pending) < 8:
        for job in pending:
            results.append(analyse_file(*job[:4], packs, job[4]))
            tick(job[0])
        return results
    with ProcessPoolExecutor(
        max_workers=workers, initializer=_init_worker, initargs=(tuple(extra_packs),)
    ) as executor:
        for result in executor.map(_analyse_in_worker, pending, chunksize=4):
            results.append(result)
            tick(result.path)
    return results


def join(
    results: list[FileResult],
    selection: Selection,
    project_files: Mapping[str, str] | None = None,
    packs: PackSet | None = None,
    fix_values: Mapping[str, float] | None = None,
    aliases: Mapping[str, tuple[str, ...]] | None = None,
    budget: Mapping[str, int] | None = None,
    contexts: frozenset[str] = frozenset(),
) -> list[Finding]:
    """Join the per-file summaries, run the rules, then apply selection and suppressions."""
    project = make_project(results, project_files, packs, fix_values, aliases, budget, contexts)
    findings = [f for r in results for f in r.findings]
    by_path = {s.path: s for s in project.summaries}
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
    results = _run_jobs(pending, packs, extra_packs, jobs)
    results.extend(_run_jobs(_mentioning_builders(skipped, results), packs, extra_packs, jobs))
    aliases = {item.path: item.aliases for item in inputs if item.aliases}
    return make_project(results, project_files, packs, None, aliases, budget)


def read_input(
    path: Path, module: str, is_test: bool, display: str, aliases: tuple[str, ...] = ()
) -> FileInput:
    try:
        return FileInput(display, read(path), module, is_test, aliases=aliases)
    except SourceError as error:
        return FileInput(display, None, module, is_test, f"cannot read file: {error}", aliases)
