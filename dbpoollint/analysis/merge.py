"""Fold the summary of one slice (`slicing`) into the summary of the whole module.

A slice's summary also holds facts about its prelude, the copies of statements that belong to
other slices: the slice owning a statement reports it. What a fact belongs to: its line (facts
with a position), or the top-level name it is keyed by (functions, classes, constants, ...),
which the owning slice binds, or the statement that added it (lists of facts without either).
Facts that are plain sets of names merge as a union.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TypeVar

from dbpoollint.analysis.model import ModuleSummary, Span
from dbpoollint.analysis.slicing import Slice

Fact = TypeVar("Fact")
Value = TypeVar("Value")
# For lists of facts without a position: the indices of the entries the slice's own statements
# added ("hooks", "env_files", "star_imports"), as `sliced._Ledger` watched them.
Owned = dict[str, list[int]]


def merge_slice(into: ModuleSummary, part: ModuleSummary, piece: Slice, owned: Owned) -> None:
    def own_line(line: int) -> bool:
        return piece.own_first <= line <= piece.own_last

    def positioned(facts: Iterable[Fact]) -> list[Fact]:
        return [f for f in facts if own_line(_span(f).line)]

    def by_name(target: dict[str, Value], source: dict[str, Value], top: str = ".") -> None:
        for key, value in source.items():
            if _top_name(key, top) in piece.own_names:
                target[key] = value

    by_name(into.functions, part.functions)
    by_name(into.classes, part.classes)
    into.sites += positioned(part.sites)
    into.client_calls += positioned(part.client_calls)
    by_name(into.constants, part.constants)
    into.databases += positioned(part.databases)
    into.flask_sqlalchemy += positioned(part.flask_sqlalchemy)
    into.hoist_plans.update(
        (place, plans) for place, plans in part.hoist_plans.items() if own_line(place[0])
    )
    by_name(into.imports, part.imports)
    into.star_imports += [part.star_imports[i] for i in owned["star_imports"]]
    if "__all__" in piece.own_names:
        into.exports = part.exports

    urls, their_urls = into.urls, part.urls
    urls.literals += positioned(their_urls.literals)
    urls.settings_fields += [
        f for f in their_urls.settings_fields if _top_name(f.class_key) in piece.own_names
    ]
    by_name(urls.settings_instances, their_urls.settings_instances)
    urls.is_alembic_env = urls.is_alembic_env or their_urls.is_alembic_env
    urls.migration_urls += positioned(their_urls.migration_urls)
    for key, value in their_urls.resolved_names.items():
        scope, _, name = key.partition(":")
        if _top_name(scope if scope not in ("", "()") else name) in piece.own_names:
            urls.resolved_names[key] = value
    urls.django_databases += positioned(their_urls.django_databases)
    urls.env_files += [their_urls.env_files[i] for i in owned["env_files"]]

    life, their_life = into.lifecycle, part.lifecycle
    life.closes += positioned(their_life.closes)
    life.hooks += [their_life.hooks[i] for i in owned["hooks"]]
    life.acquisitions += positioned(their_life.acquisitions)
    by_name(life.globals_declared, their_life.globals_declared)
    life.module_level_calls |= their_life.module_level_calls
    life.session_factories |= {n for n in their_life.session_factories if n in piece.own_names}
    life.attribute_acquisitions += positioned(their_life.attribute_acquisitions)
    by_name(life.attribute_releases, their_life.attribute_releases)
    by_name(life.returned_acquisitions, their_life.returned_acquisitions)
    by_name(life.param_uses, their_life.param_uses)

    process, theirs = into.process, part.process
    process.loop_calls += positioned(theirs.loop_calls)
    process.forks += positioned(theirs.forks)
    process.resets += positioned(theirs.resets)
    by_name(process.function_resets, theirs.function_resets)
    process.disposed_keeping_connections |= theirs.disposed_keeping_connections
    process.start_methods |= theirs.start_methods
    process.imports |= theirs.imports


def _span(fact: object) -> Span:
    span = getattr(fact, "span")  # noqa: B009 - every positioned fact has one
    assert isinstance(span, Span)
    return span


def _top_name(key: str, separator: str = ".") -> str:
    """`C.m` / `f.<locals>.g` -> the top-level name that binds it."""
    return key.partition(separator)[0]
