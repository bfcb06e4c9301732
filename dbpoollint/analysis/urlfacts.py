"""The URL facts of a module: URL literals, settings classes, alembic `env.py` URL sources.

Runs on the tree the indexer already parsed (same `MetadataWrapper`, so scopes are computed
once). Positions are resolved afterwards, and only when a fact needs one.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

import libcst as cst
from libcst.helpers import get_full_name_for_node
from libcst.metadata import CodeRange

from dbpoollint.analysis.model import (
    NO_SPAN,
    DjangoDbUrlFact,
    MigrationUrlFact,
    ModuleSummary,
    SettingsField,
    UrlLiteralFact,
    span_of,
)
from dbpoollint.analysis.runners import RunnerTracker
from dbpoollint.analysis.scoped import ScopedVisitor
from dbpoollint.analysis.value_reader import read_value
from dbpoollint.analysis.values import ENVIRON_ENV, Value
from dbpoollint.packs import PackSet

SETTINGS_BASES = frozenset(
    {
        "pydantic_settings.BaseSettings",
        "pydantic_settings.main.BaseSettings",
        "pydantic.BaseSettings",
        "pydantic.v1.BaseSettings",
        "pydantic.env_settings.BaseSettings",
    }
)
ALEMBIC_CONTEXT = frozenset({"alembic.context"})
DOTENV_LOADERS = frozenset(
    {
        "dotenv.load_dotenv",
        "dotenv.main.load_dotenv",
        "dotenv.dotenv_values",
        "dotenv.main.dotenv_values",
    }
)
INI_READERS = frozenset(
    {
        "sqlalchemy.engine_from_config",
        "sqlalchemy.engine.engine_from_config",
        "sqlalchemy.ext.asyncio.async_engine_from_config",
    }
)


class UrlFactVisitor(ScopedVisitor):
    def __init__(self, summary: ModuleSummary, packs: PackSet, package: str) -> None:
        super().__init__(package)
        self.summary = summary
        self.facts = summary.urls
        self.schemes = tuple(f"{s}://" for s in packs.url_schemes) + tuple(
            f"{s}+" for s in packs.url_schemes
        )
        self.pending: list[tuple[cst.CSTNode, object]] = []
        self.functions: list[str] = []
        self.scopes: list[tuple[str, str]] = []
        self.classes: list[str] = []
        self.settings_classes: set[str] = set()
        self.settings_factories: dict[str, str] = {}
        self.docstrings: set[int] = set()
        self.runners = RunnerTracker(self.qualnames, self.value)

    # --- helpers -------------------------------------------------------------------------------

    def _scope_key(self) -> str:
        if self.scopes and self.scopes[-1][0] == "function":
            return self.scopes[-1][1]
        return ""

    def value(self, node: cst.BaseExpression) -> Value:
        """`read_value`, plus local names and zero-argument local functions of this module."""
        if isinstance(node, cst.Await):
            node = node.expression
        if (  # `str(settings.DATABASE_URL)`
            isinstance(node, cst.Call)
            and isinstance(node.func, cst.Name)
            and node.func.value == "str"
            and len(node.args) == 1
        ):
            node = node.args[0].value
        if isinstance(node, cst.Name):
            for scope in (self._scope_key(), ""):
                found = self.facts.resolved_names.get(f"{scope}:{node.value}")
                if found is not None:
                    return found
        if isinstance(node, cst.Call) and not node.args and isinstance(node.func, cst.Name):
            found = self.facts.resolved_names.get(f"():{node.func.value}")
            if found is not None:
                return found
        if (
            isinstance(node, cst.Call)
            and isinstance(node.func, cst.Attribute)
            and node.func.attr.value == "get_main_option"
        ):
            return Value("other", "get_main_option", name="alembic.ini")
        return read_value(node, self.qualnames)

    def finish(self, positions: Mapping[cst.CSTNode, CodeRange]) -> None:
        for node, fact in self.pending:
            span = span_of(positions[node])
            if isinstance(fact, UrlLiteralFact):
                self.facts.literals.append(dataclasses.replace(fact, span=span))
            elif isinstance(fact, MigrationUrlFact):
                self.facts.migration_urls.append(dataclasses.replace(fact, span=span))
            elif isinstance(fact, DjangoDbUrlFact):
                self.facts.django_databases.append(dataclasses.replace(fact, span=span))

    # --- scopes --------------------------------------------------------------------------------

    def visit_Module(self, node: cst.Module) -> None:
        self.facts.is_alembic_env = False
        for statement in node.body:
            if _is_docstring(statement):
                self.docstrings.add(id(statement))

    def _child_key(self, name: str) -> str:
        if not self.scopes:
            return name
        kind, key = self.scopes[-1]
        return f"{key}.{name}" if kind == "class" else f"{key}.<locals>.{name}"

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        key = self._child_key(node.name.value)
        self.functions.append(key)
        self.scopes.append(("function", key))
        body = node.body.body if isinstance(node.body, cst.IndentedBlock) else ()
        if body and _is_docstring(body[0]):
            self.docstrings.add(id(body[0]))

    def leave_FunctionDef(self, original_node: cst.FunctionDef) -> None:
        self.functions.pop()
        self.scopes.pop()

    def visit_ClassDef(self, node: cst.ClassDef) -> None:
        self.classes.append(node.name.value)
        self.scopes.append(("class", self._child_key(node.name.value)))
        bases = {q for arg in node.bases for q in self.qualnames(arg.value)}
        local_bases = {get_full_name_for_node(arg.value) for arg in node.bases}
        if bases & SETTINGS_BASES or local_bases & self.settings_classes:
            self.settings_classes.add(node.name.value)
            self._settings_fields(node)
        body = node.body.body if isinstance(node.body, cst.IndentedBlock) else ()
        if body and _is_docstring(body[0]):
            self.docstrings.add(id(body[0]))

    def leave_ClassDef(self, original_node: cst.ClassDef) -> None:
        self.classes.pop()
        self.scopes.pop()

    def visit_SimpleStatementLine(self, node: cst.SimpleStatementLine) -> bool:
        return id(node) not in self.docstrings

    # --- literals (DPL601) ---------------------------------------------------------------------

    def _literal(self, node: cst.BaseExpression, text: str | None) -> None:
        if text and any(scheme in text.lower() for scheme in self.schemes):
            function = self.functions[-1] if self.functions else None
            self.pending.append((node, UrlLiteralFact(NO_SPAN, text, function)))

    def visit_SimpleString(self, node: cst.SimpleString) -> None:
        value = node.evaluated_value
        self._literal(node, value if isinstance(value, str) else None)

    def visit_ConcatenatedString(self, node: cst.ConcatenatedString) -> bool:
        value = node.evaluated_value
        self._literal(node, value if isinstance(value, str) else None)
        return False

    def visit_FormattedString(self, node: cst.FormattedString) -> bool:
        self._literal(node, read_value(node, self.qualnames).literal)  # type: ignore[arg-type]
        return False

    # --- names and returns --------------------------------------------------------------------

    def _django_databases(self, node: cst.Assign) -> None:
        """`DATABASES = {"default": {"HOST": ..., "PORT": ...}}` or `dj_database_url` entries."""
        if not isinstance(node.value, cst.Dict):
            return
        for element in node.value.elements:
            if not isinstance(element, cst.DictElement):
                continue
            alias = read_value(element.key, self.qualnames).literal
            entry = element.value
            if not isinstance(alias, str):
                continue
            if isinstance(entry, cst.Dict):
                keys = {}
                for item in entry.elements:
                    if isinstance(item, cst.DictElement):
                        key = read_value(item.key, self.qualnames).literal
                        if isinstance(key, str):
                            keys[key] = item.value
                if "HOST" not in keys and "PORT" not in keys:
                    continue
                anchor = keys.get("HOST") or keys["PORT"]
                fact = DjangoDbUrlFact(
                    NO_SPAN,
                    alias,
                    self.value(keys["ENGINE"]) if "ENGINE" in keys else None,
                    self.value(keys["HOST"]) if "HOST" in keys else None,
                    self.value(keys["PORT"]) if "PORT" in keys else None,
                )
                self.pending.append((anchor, fact))
            elif isinstance(entry, cst.Call):
                names = self.qualnames(entry.func)
                url: Value | None = None
                if "dj_database_url.parse" in names and entry.args:
                    url = self.value(entry.args[0].value)
                elif "dj_database_url.config" in names:
                    default = next(
                        (a.value for a in entry.args if a.keyword and a.keyword.value == "default"),
                        None,
                    )
                    variable = next(
                        (a.value for a in entry.args if a.keyword and a.keyword.value == "env"),
                        None,
                    )
                    name = read_value(variable, self.qualnames).literal if variable else None
                    name = name if isinstance(name, str) and name else "DATABASE_URL"
                    read = Value("env", "dj_database_url", None, name)
                    # `default=os.environ.get("OTHER_URL")`, a constant, a literal
                    url = read
                    if default is not None:
                        fallback = self.value(default)
                        url = Value("either", read.code, items=(("0", read), ("1", fallback)))
                elif self.value(entry).kind == "env-accessor":  # django-environ `env.db()`
                    url = self.value(entry)
                if url is not None:
                    self.pending.append((entry, DjangoDbUrlFact(NO_SPAN, alias, None, url=url)))

    def visit_Assign(self, node: cst.Assign) -> None:
        if (
            not self.scopes
            and len(node.targets) == 1
            and isinstance(node.targets[0].target, cst.Name)
            and node.targets[0].target.value == "DATABASES"
        ):
            self._django_databases(node)
        self.runners.assign(node, self._scope_key())
        if self.facts.is_alembic_env:
            self._config_dict_url(node)
        value = self.value(node.value)
        for target in node.targets:
            if isinstance(target.target, cst.Name):
                self._bind(target.target.value, node.value, value)

    def _config_dict_url(self, node: cst.Assign) -> None:
        """`section = config.get_section(...); section["sqlalchemy.url"] = url` before
        `engine_from_config(section)`: the URL alembic.ini had is replaced."""
        for target in node.targets:
            subscript = target.target
            if not isinstance(subscript, cst.Subscript) or len(subscript.slice) != 1:
                continue
            index = subscript.slice[0].slice
            if isinstance(index, cst.Index):
                key = read_value(index.value, self.qualnames).literal
                if key == "sqlalchemy.url":
                    fact = MigrationUrlFact(NO_SPAN, "set-main-option", self.value(node.value))
                    self.pending.append((node, fact))

    def visit_AnnAssign(self, node: cst.AnnAssign) -> None:
        if node.value is not None and isinstance(node.target, cst.Name):
            self._bind(node.target.value, node.value, self.value(node.value))

    def _bind(self, name: str, node: cst.BaseExpression, value: Value) -> None:
        if self.scopes and self.scopes[-1][0] == "class":
            return
        self.facts.resolved_names[f"{self._scope_key()}:{name}"] = value
        if not self.scopes and isinstance(node, cst.Call):
            created = get_full_name_for_node(node.func) or ""
            cls = created if created in self.settings_classes else None
            cls = cls or self.settings_factories.get(created)
            if cls is not None:
                self.facts.settings_instances[name] = cls

    def visit_Return(self, node: cst.Return) -> None:
        if not self.functions or node.value is None:
            return
        name = self.functions[-1]
        value = node.value
        if isinstance(value, cst.Call):
            created = get_full_name_for_node(value.func) or ""
            if created in self.settings_classes:
                self.settings_factories[name] = created
        self.facts.resolved_names[f"():{name}"] = self.value(value)

    # --- settings classes ---------------------------------------------------------------------

    def _settings_fields(self, node: cst.ClassDef) -> None:
        if not isinstance(node.body, cst.IndentedBlock):
            return
        prefix, case_sensitive, env_files = _settings_config(node.body.body)
        self.facts.env_files.extend(env_files)
        for statement in node.body.body:
            if not isinstance(statement, cst.SimpleStatementLine):
                continue
            for small in statement.body:
                if not isinstance(small, cst.AnnAssign) or not isinstance(small.target, cst.Name):
                    continue
                name = small.target.value
                default, aliases = self._field_default(small.value)
                env_names = aliases or (f"{prefix}{name}",)
                self.facts.settings_fields.append(
                    SettingsField(node.name.value, name, env_names, case_sensitive, default)
                )

    def _field_default(
        self, node: cst.BaseExpression | None
    ) -> tuple[Value | None, tuple[str, ...]]:
        if node is None:
            return None, ()
        if isinstance(node, cst.Call) and get_full_name_for_node(node.func) in (
            "Field",
            "pydantic.Field",
        ):
            default: Value | None = None
            aliases: list[str] = []
            for arg in node.args:
                keyword = arg.keyword.value if arg.keyword else None
                if (keyword is None and default is None) or keyword == "default":
                    default = self.value(arg.value)
                elif keyword in ("alias", "validation_alias", "env"):
                    alias = read_value(arg.value, self.qualnames).literal
                    if isinstance(alias, str):
                        aliases.append(alias)
            return default, tuple(aliases)
        return self.value(node), ()

    # --- alembic env.py -----------------------------------------------------------------------

    def visit_ImportFrom(self, node: cst.ImportFrom) -> None:
        module = get_full_name_for_node(node.module) if node.module else ""
        if module == "alembic" and not isinstance(node.names, cst.ImportStar):
            if any(get_full_name_for_node(a.name) == "context" for a in node.names):
                self.facts.is_alembic_env = True
        elif module == "alembic.context":
            self.facts.is_alembic_env = True

    def visit_Import(self, node: cst.Import) -> None:
        if any(get_full_name_for_node(a.name) == "alembic.context" for a in node.names):
            self.facts.is_alembic_env = True

    def visit_Call(self, node: cst.Call) -> None:
        for fact in self.runners.call(node, self._scope_key()):
            self.pending.append((node, fact))
        if self.qualnames(node.func) & DOTENV_LOADERS:
            for arg in node.args:
                if arg.keyword is None or arg.keyword.value == "dotenv_path":
                    name = read_value(arg.value, self.qualnames).literal
                    if isinstance(name, str):
                        self.facts.env_files.append(name)
                    break
        if self._reads_environ_env_file(node):
            for arg in node.args:
                if arg.keyword is None or arg.keyword.value in ("env_file", "path"):
                    name = read_value(arg.value, self.qualnames).literal
                    if isinstance(name, str):
                        self.facts.env_files.append(name)
                    break
        if not self.facts.is_alembic_env:
            return
        func = node.func
        method = func.attr.value if isinstance(func, cst.Attribute) else ""
        positional = [a for a in node.args if a.keyword is None]
        first = positional[0].value if positional else None
        key = read_value(first, self.qualnames).literal if first is not None else None
        if method == "set_main_option" and key == "sqlalchemy.url" and len(positional) > 1:
            value = self.value(positional[1].value)
            self.pending.append((node, MigrationUrlFact(NO_SPAN, "set-main-option", value)))
        elif method == "get_main_option" and key == "sqlalchemy.url":
            self.pending.append((node, MigrationUrlFact(NO_SPAN, "reads-ini")))
        elif method == "configure" and self.qualnames(func) & {"alembic.context.configure"}:
            for arg in node.args:
                if arg.keyword is not None and arg.keyword.value == "url":
                    value = self.value(arg.value)
                    if value.name != "alembic.ini":
                        fact = MigrationUrlFact(NO_SPAN, "configure-url", value)
                        self.pending.append((node, fact))
        elif self.qualnames(func) & INI_READERS:
            self.pending.append((node, MigrationUrlFact(NO_SPAN, "reads-ini")))

    def _reads_environ_env_file(self, node: cst.Call) -> bool:
        """`environ.Env.read_env(".env.prod")`, or `env.read_env(...)` on an `environ.Env()`."""
        func = node.func
        if not isinstance(func, cst.Attribute) or func.attr.value != "read_env":
            return False
        if self.qualnames(func.value) & ENVIRON_ENV:
            return True
        return self.value(func.value).kind == "env-source"


def _is_docstring(statement: cst.CSTNode) -> bool:
    return (
        isinstance(statement, cst.SimpleStatementLine)
        and len(statement.body) == 1
        and isinstance(statement.body[0], cst.Expr)
        and isinstance(statement.body[0].value, cst.SimpleString | cst.ConcatenatedString)
    )


def _settings_config(
    body: Sequence[cst.BaseStatement],
) -> tuple[str, bool, list[str]]:
    """`model_config = SettingsConfigDict(env_prefix=..., env_file=...)` or `class Config:`."""
    prefix, case_sensitive = "", False
    env_files: list[str] = []

    def read(name: str, value: cst.BaseExpression) -> None:
        nonlocal prefix, case_sensitive
        if name == "env_prefix" and isinstance(value, cst.SimpleString):
            text = value.evaluated_value
            prefix = text if isinstance(text, str) else prefix
        elif name == "case_sensitive" and isinstance(value, cst.Name):
            case_sensitive = value.value == "True"
        elif name == "env_file":  # a name or a tuple/list of names
            items = value.elements if isinstance(value, cst.Tuple | cst.List) else ()
            for node in (value, *(e.value for e in items)):
                if isinstance(node, cst.SimpleString) and isinstance(node.evaluated_value, str):
                    env_files.append(node.evaluated_value)

    for statement in body:
        if isinstance(statement, cst.SimpleStatementLine):
            for small in statement.body:
                if isinstance(small, cst.Assign | cst.AnnAssign) and isinstance(
                    small.value, cst.Call
                ):
                    for arg in small.value.args:
                        if arg.keyword is not None:
                            read(arg.keyword.value, arg.value)
        elif (
            isinstance(statement, cst.ClassDef)
            and statement.name.value == "Config"
            and isinstance(statement.body, cst.IndentedBlock)
        ):
            for inner in statement.body.body:
                if isinstance(inner, cst.SimpleStatementLine):
                    for small in inner.body:
                        if isinstance(small, cst.Assign) and isinstance(
                            small.targets[0].target, cst.Name
                        ):
                            read(small.targets[0].target.value, small.value)
    return prefix, case_sensitive, env_files
