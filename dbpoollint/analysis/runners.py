"""Code that runs migrations, and the database URL it gives them.

A migration runner is alembic's `command.upgrade/downgrade/stamp(config, ...)`, or a subprocess
(`subprocess.run/call/check_call/check_output/Popen`, `os.system`, asyncio's
`create_subprocess_exec/shell`) whose command runs `alembic upgrade|downgrade|stamp`,
`manage.py migrate`, `django-admin migrate` or `flask db upgrade`. What it hands the migrations:
environment variables set before it in the same function or at module level
(`os.environ["DATABASE_URL"] = ...`, `os.environ.setdefault(...)`, `os.environ.update(...)`),
the subprocess's own `env=` (`{**os.environ, "DATABASE_URL": ...}`, `dict(os.environ, ...)`),
and for alembic's API the Config's `set_main_option("sqlalchemy.url", ...)`.
Used by `UrlFactVisitor`; DPL401 judges the URLs.
"""

from __future__ import annotations

from collections.abc import Callable

import libcst as cst

from dbpoollint.analysis.model import NO_SPAN, MigrationUrlFact
from dbpoollint.analysis.value_reader import QualifiedNames, read_value
from dbpoollint.analysis.values import Value
from dbpoollint.analysis.vocabulary import MIGRATION_COMMAND

ALEMBIC_COMMANDS = frozenset(
    f"alembic.command.{name}" for name in ("upgrade", "downgrade", "stamp")
)
SUBPROCESS_CALLS = frozenset(
    {
        "subprocess.run",
        "subprocess.call",
        "subprocess.check_call",
        "subprocess.check_output",
        "subprocess.Popen",
        "os.system",
        "asyncio.create_subprocess_exec",
        "asyncio.create_subprocess_shell",
    }
)
ENVIRON = frozenset({"os.environ"})


class RunnerTracker:
    """Keeps what each scope set (`""` is the module), in visiting order."""

    def __init__(self, qualnames: QualifiedNames, value: Callable[[cst.BaseExpression], Value]):
        self.qualnames = qualnames
        self.value = value
        self.env: dict[str, dict[str, Value]] = {}
        self.config_url: dict[str, Value] = {}

    def _inherited(self, scope: str) -> dict[str, Value]:
        return {**self.env.get("", {}), **self.env.get(scope, {})}

    def assign(self, node: cst.Assign, scope: str) -> None:
        """`os.environ["DATABASE_URL"] = ...`"""
        for target in node.targets:
            subscript = target.target
            if isinstance(subscript, cst.Subscript) and self.qualnames(subscript.value) & ENVIRON:
                key = _subscript_key(subscript)
                if key is not None:
                    self.env.setdefault(scope, {})[key] = self.value(node.value)

    def call(self, node: cst.Call, scope: str) -> list[MigrationUrlFact]:
        func = node.func
        if isinstance(func, cst.Attribute):
            self._environ_method(node, func, scope)
            if func.attr.value == "set_main_option":
                key = _literal(node.args[0].value) if node.args else None
                if key == "sqlalchemy.url" and len(node.args) > 1:
                    self.config_url[scope] = self.value(node.args[1].value)
        names = self.qualnames(func)
        if names & ALEMBIC_COMMANDS:
            runner = f"alembic's `{sorted(names & ALEMBIC_COMMANDS)[0].rpartition('.')[2]}`"
            facts = [
                MigrationUrlFact(NO_SPAN, "runner-env", value, variable, runner)
                for variable, value in self._inherited(scope).items()
            ]
            url = self.config_url.get(scope) or self.config_url.get("")
            if url is not None:
                facts.append(MigrationUrlFact(NO_SPAN, "runner-config", url, "", runner))
            return facts
        if names & SUBPROCESS_CALLS and node.args:
            command = _command_text(node.args[0].value)
            if command is None or not MIGRATION_COMMAND.search(command):
                return []
            settings = self._inherited(scope)
            for arg in node.args:
                if arg.keyword is not None and arg.keyword.value == "env":
                    settings.update(_env_items(read_value(arg.value, self.qualnames)))
            runner = f"a subprocess running `{MIGRATION_COMMAND.search(command).group(0)}`"  # type: ignore[union-attr]
            return [
                MigrationUrlFact(NO_SPAN, "runner-env", value, variable, runner)
                for variable, value in settings.items()
            ]
        return []

    def _environ_method(self, node: cst.Call, func: cst.Attribute, scope: str) -> None:
        """`os.environ.setdefault("X", v)` / `os.environ.update(X=v)` / `.update({"X": v})`."""
        if not self.qualnames(func.value) & ENVIRON:
            return
        target = self.env.setdefault(scope, {})
        method = func.attr.value
        if method == "setdefault" and len(node.args) == 2:
            key = _literal(node.args[0].value)
            if key is not None:
                target.setdefault(key, self.value(node.args[1].value))
        elif method == "update":
            for arg in node.args:
                if arg.keyword is not None:
                    target[arg.keyword.value] = self.value(arg.value)
                else:
                    target.update(_env_items(read_value(arg.value, self.qualnames)))


def _env_items(value: Value) -> dict[str, Value]:
    return dict(value.items) if value.kind == "dict" else {}


def _literal(node: cst.BaseExpression) -> str | None:
    if isinstance(node, cst.SimpleString):
        text = node.evaluated_value
        return text if isinstance(text, str) else None
    return None


def _subscript_key(node: cst.Subscript) -> str | None:
    if len(node.slice) != 1 or not isinstance(node.slice[0].slice, cst.Index):
        return None
    return _literal(node.slice[0].slice.value)


def _command_text(node: cst.BaseExpression) -> str | None:
    """`"alembic upgrade head"` or `["alembic", "upgrade", "head"]` as one string."""
    if isinstance(node, cst.List | cst.Tuple):
        parts = [
            _literal(element.value) or "?"
            for element in node.elements
            if isinstance(element, cst.Element)
        ]
        return " ".join(parts)
    if isinstance(node, cst.SimpleString | cst.ConcatenatedString):
        text = node.evaluated_value
        return text if isinstance(text, str) else None
    if isinstance(node, cst.FormattedString):
        return "".join(p.value for p in node.parts if isinstance(p, cst.FormattedStringText))
    return None
