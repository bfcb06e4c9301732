"""Parse one module once and summarise it: one walk feeds every fact collector.

The only place the analysis parses: `engine.analyse_file` imports this module when a file is
not in the cache, so a warm run never loads libcst.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass

import libcst as cst

from dbpoollint.analysis import code_text
from dbpoollint.analysis.contexts import classify, module_markers
from dbpoollint.analysis.django_settings import DatabasesVisitor
from dbpoollint.analysis.flask_sqlalchemy import FlaskSqlalchemyVisitor
from dbpoollint.analysis.handlers import find_roots
from dbpoollint.analysis.indexer import ModuleIndexer
from dbpoollint.analysis.lifecycle import LifecycleVisitor, function_keys
from dbpoollint.analysis.model import ModuleSummary
from dbpoollint.analysis.multiplex import visit_all
from dbpoollint.analysis.positions import StatementPositions, nested_starts
from dbpoollint.analysis.process import ProcessVisitor
from dbpoollint.analysis.urlfacts import UrlFactVisitor
from dbpoollint.checks.base import Finding, file_finding
from dbpoollint.checks.invalid_syntax import syntax_error_finding
from dbpoollint.codemods.hoist import HoistPlanner
from dbpoollint.packs import DJANGO_DATABASES, FLASK_SQLALCHEMY, PackSet
from dbpoollint.source import PythonVerdict

FactCollector = (
    ModuleIndexer
    | HoistPlanner
    | UrlFactVisitor
    | LifecycleVisitor
    | ProcessVisitor
    | FlaskSqlalchemyVisitor
    | DatabasesVisitor
)


def summarise(
    path: str, data: bytes, module: str, is_test: bool, packs: PackSet, verdict: PythonVerdict
) -> tuple[ModuleSummary | None, Finding | None]:
    """The module's summary, or the finding that says why it has none."""
    try:
        module_node = cst.parse_module(data)
    except cst.ParserSyntaxError as error:
        return None, _parse_failure(path, verdict, error)
    except RecursionError:
        return None, _too_deep(path)
    summary = ModuleSummary(path=path, module=module, is_test=is_test)
    walked = collect(
        summary,
        module_node,
        packs,
        Wanted.of(data),
        function_keys(module_node),
        statement_lines=verdict.statement_lines,
        nested_lines=verdict.nested_lines,
    )
    if walked is None:
        return None, _too_deep(path)
    finish_module(summary, packs, data, walked.imported_modules, walked.registrations)
    return summary, None


@dataclass(frozen=True)
class Wanted:
    """Which optional collectors a module needs: decided on the whole file's bytes."""

    flask_sqlalchemy: bool
    django_databases: bool

    @classmethod
    def of(cls, data: bytes) -> Wanted:
        return cls(bool(FLASK_SQLALCHEMY.search(data)), bool(DJANGO_DATABASES.search(data)))


def collect(
    summary: ModuleSummary,
    module_node: cst.Module,
    packs: PackSet,
    wanted: Wanted,
    keys: Collection[str],
    original_line: Callable[[int], int] | None = None,
    watchers: Callable[[ModuleIndexer], Sequence[cst.CSTVisitor]] | None = None,
    statement_lines: Sequence[int] | None = None,
    nested_lines: Sequence[int] = (),
) -> ModuleIndexer | None:
    """One walk of `module_node` into `summary`; the indexer (for `finish_module`), or None when
    the tree is too deep to walk. `keys` are the module's function keys (`function_keys`);
    `original_line` maps the lines of a slice to the file's; `statement_lines` and
    `nested_lines` are CPython's lines of the top-level statements and of those inside them
    (`source.nested_lines`), all three for `StatementPositions`; `watchers` (given the
    indexer) walk first, before any collector sees a node."""
    module = summary.module
    package = module if summary.path.endswith("__init__.py") else module.rpartition(".")[0]
    indexer = ModuleIndexer(summary, packs, package)
    url_facts = UrlFactVisitor(summary, packs, package)
    lifecycle = LifecycleVisitor(summary, packs, package, keys)
    process = ProcessVisitor(summary, packs, package)
    planner = HoistPlanner(indexer.site_nodes, packs)
    collectors: list[FactCollector] = [indexer, planner, url_facts, lifecycle, process]
    if wanted.flask_sqlalchemy:
        collectors.append(FlaskSqlalchemyVisitor(summary))
    if wanted.django_databases:
        collectors.append(DatabasesVisitor(summary))
    try:
        # One walk feeds every collector; positions are resolved once, for all of them.
        first = watchers(indexer) if watchers is not None else ()
        nested = nested_starts(module_node, nested_lines) if nested_lines else {}
        owners = visit_all(module_node, [*first, *collectors], nested.keys())
        pending = [c for c in collectors if not isinstance(c, ModuleIndexer | HoistPlanner)]
        if indexer.site_nodes or indexer.call_nodes or any(c.pending for c in pending):
            positions = StatementPositions(
                module_node, owners, statement_lines, original_line, nested
            )
            indexer.finish(positions)
            for collector in pending:
                collector.finish(positions)
            for node, plans in planner.planned.items():
                start = positions[node].start
                summary.hoist_plans[(start.line, start.column + 1)] = plans
    except RecursionError:
        return None
    finally:
        code_text.forget()
    return indexer


def finish_module(
    summary: ModuleSummary,
    packs: PackSet,
    data: bytes,
    imported_modules: set[str],
    registrations: list[tuple[frozenset[str], str, bool]],
) -> None:
    """What is decided on the module as a whole, once every statement is in `summary`."""
    find_roots(summary, packs, imported_modules, registrations)
    summary.context_markers = module_markers(data, imported_modules)
    classify(summary, "", summary.context_markers)


def _too_deep(path: str) -> Finding:
    return file_finding(path, "DPL002", "cannot analyse: too deeply nested")


def _parse_failure(path: str, verdict: PythonVerdict, error: cst.ParserSyntaxError) -> Finding:
    """libcst refused the file. CPython's message and position are better than libcst's; when
    CPython compiles the file it is valid Python that libcst cannot take: not a syntax error."""
    if verdict.error is not None:
        return syntax_error_finding(path, verdict.error)
    first_line = error.message.strip().splitlines()[0] if error.message.strip() else ""
    message = re.sub(r"^parser error: error at \d+:\d+: ", "", first_line)
    if verdict.ok:
        return file_finding(
            path,
            "DPL002",
            f"cannot analyse: valid Python that libcst cannot parse ({message or 'parser error'})",
            error.raw_line,
            error.raw_column + 1,
        )
    return file_finding(
        path,
        "DPL001",
        f"libcst cannot parse this file: {message or 'invalid syntax'}",
        error.raw_line,
        error.raw_column + 1,
    )
