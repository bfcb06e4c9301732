"""Read a Django settings module's `DATABASES` into :class:`DjangoDatabaseFact` entries.

Understood at module level (also inside top-level `if`/`try`): `DATABASES = {"default": {...}}`,
`DATABASES = {"default": dj_database_url.config(conn_max_age=600)}`,
`DATABASES["default"] = dj_database_url.parse(url, conn_health_checks=True)` and
`DATABASES["default"]["CONN_MAX_AGE"] = 60` (also `["OPTIONS"]["pool"]`). Anything else
(`env.db()`, `**BASE`, a helper) makes the entry unknown, and no rule reports on it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

import libcst as cst
from libcst.metadata import CodeRange

from dbpoollint.analysis.model import DjangoDatabaseFact, ModuleSummary, Span
from dbpoollint.analysis.scopes import ScopesProvider
from dbpoollint.analysis.value_reader import QualifiedNames, read_value
from dbpoollint.analysis.values import Value

DJ_DATABASE_URL = ("dj_database_url.config", "dj_database_url.parse")


@dataclass
class _Entry:
    node: cst.CSTNode
    via: str
    keys: dict[str, Value] = field(default_factory=dict)
    options: dict[str, Value] = field(default_factory=dict)
    unknown: bool = False


def _statements(
    body: Iterator[cst.CSTNode] | list[cst.CSTNode],
) -> Iterator[cst.BaseSmallStatement]:
    for statement in body:
        if isinstance(statement, cst.SimpleStatementLine):
            yield from statement.body
        elif isinstance(statement, cst.If | cst.Try | cst.With):
            if isinstance(statement.body, cst.IndentedBlock):
                yield from _statements(list(statement.body.body))
            orelse = getattr(statement, "orelse", None)
            while orelse is not None:
                if isinstance(orelse.body, cst.IndentedBlock):
                    yield from _statements(list(orelse.body.body))
                orelse = getattr(orelse, "orelse", None)
            for handler in getattr(statement, "handlers", ()):
                if isinstance(handler.body, cst.IndentedBlock):
                    yield from _statements(list(handler.body.body))


def _string(node: cst.BaseExpression) -> str | None:
    if isinstance(node, cst.SimpleString):
        value = node.evaluated_value
        return value if isinstance(value, str) else None
    return None


def _subscripts(target: cst.BaseExpression) -> tuple[str, list[str]] | None:
    """`DATABASES["default"]["OPTIONS"]` -> ("DATABASES", ["default", "OPTIONS"])."""
    keys: list[str] = []
    while isinstance(target, cst.Subscript):
        if len(target.slice) != 1 or not isinstance(target.slice[0].slice, cst.Index):
            return None
        key = _string(target.slice[0].slice.value)
        if key is None:
            return None
        keys.insert(0, key)
        target = target.value
    if isinstance(target, cst.Name):
        return target.value, keys
    return None


class _Reader:
    def __init__(self, qualnames: QualifiedNames) -> None:
        self.qualnames = qualnames
        self.entries: dict[str, _Entry] = {}

    def entry(self, alias: str, node: cst.BaseExpression) -> None:
        if isinstance(node, cst.Dict):
            entry = _Entry(node, "dict")
            for element in node.elements:
                if not isinstance(element, cst.DictElement):
                    entry.unknown = True
                    continue
                key = _string(element.key)
                if key is None:
                    continue
                entry.keys[key] = read_value(element.value, self.qualnames)
                if key == "OPTIONS":
                    if isinstance(element.value, cst.Dict):
                        options = read_value(element.value, self.qualnames)
                        entry.options = dict(options.items)
                        if any(not isinstance(e, cst.DictElement) for e in element.value.elements):
                            entry.unknown = True
                    else:
                        entry.unknown = True
            self.entries[alias] = entry
        elif isinstance(node, cst.Call) and self.qualnames(node.func) & frozenset(DJ_DATABASE_URL):
            entry = _Entry(node, "dj_database_url")
            names = {"conn_max_age": "CONN_MAX_AGE", "conn_health_checks": "CONN_HEALTH_CHECKS"}
            for arg in node.args:
                if arg.star:
                    entry.unknown = True
                elif arg.keyword is not None and arg.keyword.value in names:
                    entry.keys[names[arg.keyword.value]] = read_value(arg.value, self.qualnames)
                elif arg.keyword is not None and arg.keyword.value == "engine":
                    entry.keys["ENGINE"] = read_value(arg.value, self.qualnames)
            self.entries[alias] = entry
        else:
            self.entries[alias] = _Entry(node, "other", unknown=True)

    def assign(self, target: cst.BaseExpression, value: cst.BaseExpression) -> None:
        found = _subscripts(target)
        if found is None or found[0] != "DATABASES":
            return
        _, keys = found
        if not keys:
            if isinstance(value, cst.Dict):
                self.entries.clear()
                for element in value.elements:
                    if isinstance(element, cst.DictElement):
                        alias = _string(element.key)
                        if alias is not None:
                            self.entry(alias, element.value)
            return
        alias = keys[0]
        if len(keys) == 1:
            self.entry(alias, value)
            return
        entry = self.entries.get(alias)
        if entry is None:
            return
        read = read_value(value, self.qualnames)
        if len(keys) == 2:
            if keys[1] == "OPTIONS":
                entry.options = dict(read.items) if read.kind == "dict" else {}
                entry.unknown = entry.unknown or read.kind != "dict"
            else:
                entry.keys[keys[1]] = read
        elif len(keys) == 3 and keys[1] == "OPTIONS":
            entry.options[keys[2]] = read


class DatabasesVisitor(cst.CSTVisitor):
    """Runs once on the module node (scopes are needed to know `dj_database_url.config`)."""

    METADATA_DEPENDENCIES = (ScopesProvider,)

    def __init__(self, summary: ModuleSummary) -> None:
        super().__init__()
        self.summary = summary
        self.pending: dict[str, _Entry] = {}

    def _qualnames(self, node: cst.CSTNode) -> frozenset[str]:
        scope = self.get_metadata(ScopesProvider, node, None)
        if scope is None:
            return frozenset()
        return frozenset(name.name for name in scope.get_qualified_names_for(node))

    def visit_Module(self, node: cst.Module) -> bool:
        reader = _Reader(self._qualnames)
        for small in _statements(list(node.body)):
            if isinstance(small, cst.Assign):
                for target in small.targets:
                    reader.assign(target.target, small.value)
            elif isinstance(small, cst.AnnAssign) and small.value is not None:
                reader.assign(small.target, small.value)
        self.pending = reader.entries
        return False

    def finish(self, positions: Mapping[cst.CSTNode, CodeRange]) -> None:
        for alias, entry in self.pending.items():
            position = positions.get(entry.node)
            if position is None:
                continue
            span = Span(
                position.start.line,
                position.start.column + 1,
                position.end.line,
                position.end.column + 1,
            )
            engine = entry.keys.get("ENGINE")
            self.summary.databases.append(
                DjangoDatabaseFact(
                    alias=alias,
                    span=span,
                    via=entry.via,
                    engine=engine.text if engine is not None else None,
                    conn_max_age=entry.keys.get("CONN_MAX_AGE"),
                    conn_health_checks=entry.keys.get("CONN_HEALTH_CHECKS"),
                    options_pool=entry.options.get("pool"),
                    unknown=entry.unknown or entry.via == "other",
                )
            )
