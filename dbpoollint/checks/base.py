"""What every rule is and what it reports."""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import ClassVar

from dbpoollint.analysis.contexts import ONE_OFF, SERVICE
from dbpoollint.analysis.model import ModuleSummary, Span
from dbpoollint.analysis.propagate import PerCallReason, PerCallUse
from dbpoollint.analysis.resolve import ModuleIndex
from dbpoollint.packs import PackSet

DOC_SECTIONS = (
    "What it does",
    "Why is this bad?",
    "Example",
    "Use instead",
    "Fix safety",
    "Options",
    "References",
)


@dataclass(frozen=True)
class Edit:
    content: str
    start: tuple[int, int]
    end: tuple[int, int]


@dataclass(frozen=True)
class Fix:
    applicability: str  # "safe" | "unsafe"
    message: str
    edits: tuple[Edit, ...]


Param = str | int | float | bool | None


@dataclass(frozen=True)
class FixRequest:
    """A fix described without the source: the fixer named here reads the file and edits it."""

    fixer: str  # a key of dbpoollint.fixers.FIXERS: "hoist", ...
    params: tuple[tuple[str, Param], ...] = ()

    def param(self, key: str) -> Param:
        return next((value for name, value in self.params if name == key), None)


@dataclass(frozen=True)
class Finding:
    path: str
    span: Span
    code: str
    message: str
    fix: Fix | None = None
    # What a fix would do, for fixable findings; `dbpoollint.fixing` reads the file and applies it.
    fix_request: FixRequest | None = field(default=None, compare=False)

    @property
    def sort_key(self) -> tuple[str, int, int, str]:
        return (self.path, self.span.line, self.span.column, self.code)


def file_finding(path: str, code: str, message: str, line: int = 1, column: int = 1) -> Finding:
    """A finding about the file itself, made while reading or parsing it (DPL001, DPL002)."""
    return Finding(path, Span(line, column, line, column), code, message)


@dataclass
class Project:
    """Everything the rules see: the summaries of every checked module, joined."""

    summaries: list[ModuleSummary]
    # Non-Python project files (pyproject.toml, requirements*.txt, .env, alembic.ini, compose
    # files, Procfile, ...) under the checked paths: path -> text.
    files: dict[str, str] = field(default_factory=dict)
    per_call: dict[str, dict[str, PerCallReason]] = field(default_factory=dict)
    # Per call across modules too (a view calling `db.get_db()`), keyed by path then function.
    used_per_call: dict[str, dict[str, PerCallUse]] = field(default_factory=dict)
    # (path, key) of functions whose callers close the client they return: not cacheable.
    closed_by_callers: set[tuple[str, str]] = field(default_factory=set)
    # `[tool.dbpoollint.fix-values]`: the numbers DPL201/203/204 fixes write.
    fix_values: dict[str, float] = field(default_factory=dict)
    # The loaded packs (pooler pack included), for rules that classify URLs.
    packs: PackSet | None = None
    # `[tool.dbpoollint.budget]`: the connection limit and process counts DPL501 assumes.
    budget: dict[str, int] = field(default_factory=dict)
    # `contexts` from the configuration: run contexts the user widened the rules to.
    contexts: frozenset[str] = frozenset()
    # The one resolver of qualified names every rule uses (re-exports and aliases followed).
    index: ModuleIndex = field(default=None)  # type: ignore[assignment]
    # The paths whose findings the run prints (None: all). The other summaries are read for
    # their facts only.
    reported: frozenset[str] | None = None

    def __post_init__(self) -> None:
        if self.index is None:
            self.index = ModuleIndex(self.summaries)

    def reported_summaries(self) -> list[ModuleSummary]:
        """The summaries of the reported paths, for a rule whose findings sit in the module it
        reads: pre-commit checks a few files of a large project, and judging every other module
        only to drop its findings would cost as much as checking the whole tree."""
        if self.reported is None:
            return self.summaries
        return [s for s in self.summaries if s.path in self.reported]


class Rule:
    """A rule's class docstring is its documentation, in ruff's section order."""

    code: ClassVar[str]
    name: ClassVar[str]
    fix_title: ClassVar[str | None] = None
    enabled_by_default: ClassVar[bool] = True
    # The run contexts whose code the rule judges (dbpoollint.analysis.contexts). Per-call
    # mistakes are mistakes in a script too; long-lived-pool rules narrow this to services.
    contexts: ClassVar[frozenset[str]] = frozenset({SERVICE, ONE_OFF})

    # "error": breaks under load or on the first request; "warning": costs at restarts, in
    # incidents or in review. `severity_reason` says why, in the rule's docs.
    severity: ClassVar[str] = "warning"
    severity_reason: ClassVar[str] = ""

    def check(self, project: Project) -> Iterator[Finding]:
        raise NotImplementedError

    @classmethod
    def docs(cls) -> str:
        """The docstring, with the severity and the run contexts judged stated under Options
        (from the class attributes the engine uses, so the docs cannot drift)."""
        text = inspect.cleandoc(cls.__doc__ or "")
        head, marker, tail = text.partition("## Options\n")
        if not marker:
            return text
        reason = f" {cls.severity_reason}" if cls.severity_reason else ""
        lines = f"- Severity: {cls.severity}.{reason}\n- Run contexts: {cls.contexts_judged()}\n"
        tail = tail.removeprefix("- None.\n")
        return f"{head}{marker}{lines}{tail}"

    @classmethod
    def contexts_judged(cls) -> str:
        if ONE_OFF in cls.contexts:
            return (
                "services and one-off code (migrations, management commands, CLIs, scripts); "
                'examples and docs only with `contexts = ["examples"]`.'
            )
        return (
            "long-lived services only (web apps, workers, consumers); migrations, management "
            'commands, CLIs and scripts with `contexts = ["one-off"]`, examples with '
            '`contexts = ["examples"]`.'
        )

    @classmethod
    def summary(cls) -> str:
        return cls.docs().split("## What it does", 1)[-1].strip().split("\n\n", 1)[0]
