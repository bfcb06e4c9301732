"""Parse one module once and summarise it: one walk feeds every fact collector.

The only place the analysis parses: `engine.analyse_file` imports this module when a file is
not in the cache, so a warm run never loads libcst.
"""

from __future__ import annotations

import re

import libcst as cst

from dbpoollint.analysis.contexts import classify, module_markers
from dbpoollint.analysis.django_settings import DatabasesVisitor
from dbpoollint.analysis.flask_sqlalchemy import FlaskSqlalchemyVisitor
from dbpoollint.analysis.handlers import find_roots
from dbpoollint.analysis.indexer import ModuleIndexer
from dbpoollint.analysis.lifecycle import LifecycleVisitor, function_keys
from dbpoollint.analysis.model import ModuleSummary
from dbpoollint.analysis.multiplex import visit_all
from dbpoollint.analysis.positions import StatementPositions
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
        return None, file_finding(path, "DPL002", "cannot analyse: too deeply nested")
    package = module if path.endswith("__init__.py") else module.rpartition(".")[0]
    summary = ModuleSummary(path=path, module=module, is_test=is_test)
    indexer = ModuleIndexer(summary, packs, package)
    url_facts = UrlFactVisitor(summary, packs, package)
    lifecycle = LifecycleVisitor(summary, packs, package, function_keys(module_node))
    process = ProcessVisitor(summary, packs, package)
    planner = HoistPlanner(indexer.site_nodes, packs)
    collectors: list[FactCollector] = [indexer, planner, url_facts, lifecycle, process]
    if FLASK_SQLALCHEMY.search(data):
        collectors.append(FlaskSqlalchemyVisitor(summary))
    if DJANGO_DATABASES.search(data):
        collectors.append(DatabasesVisitor(summary))
    try:
        # One walk feeds every collector; positions are resolved once, for all of them.
        owners = visit_all(module_node, collectors)
        pending = [c for c in collectors if not isinstance(c, ModuleIndexer | HoistPlanner)]
        if indexer.site_nodes or indexer.call_nodes or any(c.pending for c in pending):
            positions = StatementPositions(module_node, owners, verdict.statement_lines)
            indexer.finish(positions)
            for collector in pending:
                collector.finish(positions)
            for node, plans in planner.planned.items():
                start = positions[node].start
                summary.hoist_plans[(start.line, start.column + 1)] = plans
    except RecursionError:
        return None, file_finding(path, "DPL002", "cannot analyse: too deeply nested")
    find_roots(summary, packs, indexer.imported_modules, indexer.registrations)
    summary.context_markers = module_markers(data, indexer.imported_modules)
    classify(summary, "", summary.context_markers)
    return summary, None


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
