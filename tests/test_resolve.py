"""Resolving names across modules stays linear, whatever the project's re-exports look like."""

from __future__ import annotations

from dbpoollint.analysis.model import ModuleSummary
from dbpoollint.analysis.resolve import ModuleIndex, Resolved
from dbpoollint.analysis.values import Value


class CountingIndex(ModuleIndex):
    lookups = 0

    def _lookup(self, qualname: str, hops: int) -> Resolved | None:
        self.lookups += 1
        return super()._lookup(qualname, hops)


def _forms_package(submodules: int) -> list[ModuleSummary]:
    """`forms/__init__.py` doing `from .admin import *` for each of its submodules."""
    names = [f"forms.part{i}" for i in range(submodules)]
    package = ModuleSummary(path="forms/__init__.py", module="forms", is_test=False)
    package.star_imports = list(names)
    parts = [
        ModuleSummary(path=f"{n.replace('.', '/')}.py", module=n, is_test=False) for n in names
    ]
    return [package, *parts]


def test_a_name_no_starred_submodule_defines_is_not_tried_under_every_prefix() -> None:
    # Each starred submodule is a module of its own: `forms.part1.X` is looked up in
    # `forms.part1` alone, never again as `part1.X` of the package (3^12 names to try here).
    index = CountingIndex(_forms_package(3))
    assert index.resolve("forms.RegisterForm") is None
    assert index.lookups < 100


def test_a_name_a_starred_submodule_defines_resolves_there() -> None:
    summaries = _forms_package(3)
    summaries[2].constants["RegisterForm"] = Value("other", "forms.Form()")
    found = ModuleIndex(summaries).resolve("forms.RegisterForm")
    assert found is not None and found.summary.module == "forms.part1"
