"""Resolve: qualified names to the module and in-module key that define them, project-wide.

Every rule that follows a name into another module asks one :class:`ModuleIndex`. It knows each
module by its name and by its aliases (a namespace package's longer names: `app.db` for
`backend/app/db.py` without `__init__.py` files), and it follows what modules re-export:

- `from .cache import cache_client` in `deps/__init__.py`, then `deps.cache_client` elsewhere;
- chains of those, `import pkg.mod as m` bindings, and `__all__`;
- `from .settings import *` (the starred module's names, limited by its `__all__`).

Answers are cached, so resolving every call of a project costs about one dictionary lookup per
distinct name: the join stays linear in the project's size.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import PurePath

from dbpoollint.analysis.model import ModuleSummary

# Re-export chains longer than this are cycles or generated code; give up rather than loop.
MAX_HOPS = 12


@dataclass(frozen=True)
class Resolved:
    summary: ModuleSummary
    key: str  # a function, class or module-level name of `summary`

    @property
    def is_function(self) -> bool:
        return self.key in self.summary.functions

    @property
    def is_class(self) -> bool:
        return self.key in self.summary.classes


def _root_holds(summary: ModuleSummary, name: str, near: str) -> bool:
    """`backend/app/core/config.py` named `app.core.config` has root `backend/`: does it hold
    `near` (`backend/alembic/env.py`)?"""
    parts = PurePath(summary.path).parts
    depth = len(name.split(".")) + (PurePath(summary.path).stem == "__init__")
    root = PurePath(*parts[: len(parts) - depth]) if len(parts) > depth else PurePath()
    return root in PurePath(near).parents


def defines(summary: ModuleSummary, key: str) -> bool:
    """A function, method, class or module-level variable of this module."""
    return key in summary.functions or key in summary.classes or key in summary.constants


class ModuleIndex:
    """Resolve qualified names to (module, in-module key) without scanning every module.

    The module name must match exactly (a module's name or one of its aliases) or, failing
    that, be a dotted suffix of a module's name (`app.db` for `backend.app.db` when the checked
    tree has an extra package level).
    """

    def __init__(
        self,
        summaries: Iterable[ModuleSummary],
        aliases: Mapping[str, Iterable[str]] | None = None,
    ) -> None:
        self.exact: dict[str, list[ModuleSummary]] = {}
        self.suffixes: dict[str, list[ModuleSummary]] = {}
        self.by_path: dict[str, ModuleSummary] = {}
        self._cache: dict[str, Resolved | None] = {}
        aliases = aliases or {}
        for summary in summaries:
            self.by_path[summary.path] = summary
            for name in dict.fromkeys([summary.module, *aliases.get(summary.path, ())]):
                self.exact.setdefault(name, []).append(summary)
            parts = summary.module.split(".")
            for start in range(1, len(parts)):
                self.suffixes.setdefault(".".join(parts[start:]), []).append(summary)

    def module(self, name: str, near: str | None = None) -> ModuleSummary | None:
        """The module `name` names: exactly, else the one module whose name ends with it
        (`app.core.config` for `backend/app/core/config.py`: Alembic run from `backend/`).
        With several (`backend/app` and `worker/app`), the one whose root folder holds `near`,
        the importing module's path."""
        exact = self.exact.get(name, [])
        found = exact or self.suffixes.get(name, [])
        if len(found) > 1 and near is not None:
            nearest = [s for s in found if _root_holds(s, name, near)]
            found = nearest if len(nearest) == 1 else found
        if exact:
            return found[0]
        return found[0] if len(found) == 1 else None

    def resolve(self, qualname: str) -> Resolved | None:
        """The definition `qualname` names, following re-exports; None when outside the project."""
        return self._resolve(qualname, 0)

    def function(self, qualname: str) -> Resolved | None:
        found = self.resolve(qualname)
        return found if found is not None and found.is_function else None

    def _resolve(self, qualname: str, hops: int) -> Resolved | None:
        if qualname in self._cache:
            return self._cache[qualname]
        if hops > MAX_HOPS:
            return None
        self._cache[qualname] = None  # a cycle of re-exports resolves to nothing
        found = self._lookup(qualname, hops)
        self._cache[qualname] = found
        return found

    def _lookup(self, qualname: str, hops: int) -> Resolved | None:
        parts = qualname.split(".")
        splits = [(".".join(parts[:i]), parts[i:]) for i in range(len(parts) - 1, 0, -1)]
        for module, rest in splits:
            exact = self.exact.get(module, ())
            for summary in exact:
                found = self._within(summary, rest, hops)
                if found is not None:
                    return found
            if exact:
                # The longest prefix that names a module is the module, as for Python's own
                # import: `forms.admin.X` is not read again as `admin.X` of the `forms`
                # package, whose star imports would each prefix it once more (12 starred
                # submodules made 12^12 names to try).
                return None
        for module, rest in splits:
            for summary in self.suffixes.get(module, ()):
                found = self._within(summary, rest, hops)
                if found is not None:
                    return found
        return None

    def _within(self, summary: ModuleSummary, rest: list[str], hops: int) -> Resolved | None:
        key = ".".join(rest)
        if defines(summary, key):
            return Resolved(summary, key)
        head = rest[0]
        if head in summary.functions or head in summary.classes or head in summary.constants:
            return None  # `Class.attribute` that is not a method: nothing to follow
        imported = summary.imports.get(head)
        if imported is not None and imported != summary.module:
            return self._resolve(".".join([imported, *rest[1:]]), hops + 1)
        for starred in summary.star_imports:
            source = self.exact.get(starred, ())
            if any(s.exports is not None and head not in s.exports for s in source):
                continue
            found = self._resolve(f"{starred}.{key}", hops + 1)
            if found is not None:
                return found
        return None
