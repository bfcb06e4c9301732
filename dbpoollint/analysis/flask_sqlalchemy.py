"""Flask-SQLAlchemy's engine settings, read into :class:`FlaskSqlalchemyFact` entries.

`SQLALCHEMY_ENGINE_OPTIONS` is understood as a module or class attribute (config classes), an
`app.config["SQLALCHEMY_ENGINE_OPTIONS"] = {...}` assignment and a keyword of
`app.config.update(...)`; any other mention (`setdefault`, a function argument, a loop) is
recorded as unreadable, and the limit rules then say nothing about the project's extension.
"""

from __future__ import annotations

from collections.abc import Mapping

import libcst as cst
from libcst.metadata import CodeRange

from dbpoollint.analysis.model import FlaskSqlalchemyFact, ModuleSummary, Span
from dbpoollint.analysis.scopes import ScopesProvider
from dbpoollint.analysis.value_reader import read_value
from dbpoollint.analysis.values import Value

EXTENSION = ("flask_sqlalchemy.SQLAlchemy", "flask_sqlalchemy.extension.SQLAlchemy")
OPTIONS = "SQLALCHEMY_ENGINE_OPTIONS"
URI = "SQLALCHEMY_DATABASE_URI"
LEGACY_KEYS = ("SQLALCHEMY_MAX_OVERFLOW",)
OVERRIDES = ("apply_pool_defaults", "apply_driver_hacks", "_apply_driver_defaults")


class FlaskSqlalchemyVisitor(cst.CSTVisitor):
    METADATA_DEPENDENCIES = (ScopesProvider,)

    def __init__(self, summary: ModuleSummary) -> None:
        super().__init__()
        self.summary = summary
        self.pending: list[tuple[cst.CSTNode, str, Value | None]] = []
        self.understood: set[cst.CSTNode] = set()

    def _qualnames(self, node: cst.CSTNode) -> frozenset[str]:
        scope = self.get_metadata(ScopesProvider, node, None)
        if scope is None:
            return frozenset()
        return frozenset(name.name for name in scope.get_qualified_names_for(node))

    def _setting(self, target: cst.BaseExpression) -> str | None:
        if isinstance(target, cst.Name) and target.value in (OPTIONS, URI):
            return target.value
        if (
            isinstance(target, cst.Subscript)
            and len(target.slice) == 1
            and isinstance(target.slice[0].slice, cst.Index)
            and isinstance(target.slice[0].slice.value, cst.SimpleString)
        ):
            key = target.slice[0].slice.value.evaluated_value
            if key in (OPTIONS, URI):
                self.understood.add(target.slice[0].slice.value)
                return str(key)
        return None

    def _record(self, node: cst.CSTNode, setting: str, value: cst.BaseExpression) -> None:
        kind = "options" if setting == OPTIONS else "uri"
        self.pending.append((node, kind, read_value(value, self._qualnames)))

    def visit_Assign(self, node: cst.Assign) -> None:
        for target in node.targets:
            setting = self._setting(target.target)
            if setting is not None:
                self.understood.add(target.target)
                self._record(node, setting, node.value)

    def visit_AnnAssign(self, node: cst.AnnAssign) -> None:
        setting = self._setting(node.target)
        if setting is not None and node.value is not None:
            self.understood.add(node.target)
            self._record(node, setting, node.value)

    def visit_Call(self, node: cst.Call) -> None:
        if self._qualnames(node.func) & frozenset(EXTENSION):
            options = next(
                (a.value for a in node.args if a.keyword and a.keyword.value == "engine_options"),
                None,
            )
            value = read_value(options, self._qualnames) if options is not None else None
            self.pending.append((node, "extension", value))
            return
        if isinstance(node.func, cst.Attribute) and node.func.attr.value == "update":
            for arg in node.args:
                if arg.keyword is not None and arg.keyword.value in (OPTIONS, URI):
                    self.understood.add(arg.keyword)
                    self._record(node, arg.keyword.value, arg.value)

    def _unreadable(self, node: cst.CSTNode, name: object) -> None:
        """Other mentions of the options, Flask-SQLAlchemy 2's `SQLALCHEMY_POOL_*` keys, and
        subclasses overriding the pool defaults: the options cannot be known."""
        if node in self.understood or not isinstance(name, str):
            return
        if name == OPTIONS or name in LEGACY_KEYS or name.startswith("SQLALCHEMY_POOL_"):
            self.pending.append((node, "options", Value("other", name)))

    def visit_Name(self, node: cst.Name) -> None:
        self._unreadable(node, node.value)

    def visit_SimpleString(self, node: cst.SimpleString) -> None:
        self._unreadable(node, node.evaluated_value)

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        if node.name.value in OVERRIDES:
            self.pending.append((node.name, "options", Value("other", node.name.value)))

    def finish(self, positions: Mapping[cst.CSTNode, CodeRange]) -> None:
        for node, kind, value in self.pending:
            position = positions[node]
            span = Span(
                position.start.line,
                position.start.column + 1,
                position.end.line,
                position.end.column + 1,
            )
            self.summary.flask_sqlalchemy.append(FlaskSqlalchemyFact(kind, span, value))
