"""Shared by DPL301 and DPL303: long-lived clients, hooks, and which closes hooks reach."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass

from dbpoollint.analysis.model import ClientCallFact, CloseCall, HookFact, ModuleSummary
from dbpoollint.checks.base import Project


@dataclass(frozen=True)
class LongLived:
    """A pool/client kept for the life of the process: module level or a lazy global."""

    summary: ModuleSummary
    fact: ClientCallFact
    qualname: str  # `app.db.engine`
    name: str  # `engine`
    lazy: bool

    @property
    def where(self) -> tuple[str, str]:
        """(path, name): how the resolver names it, whatever re-exports it."""
        return (self.summary.path, self.name)


def long_lived_clients(project: Project) -> Iterator[LongLived]:
    for summary in project.summaries:
        for fact in summary.client_calls:
            if fact.kind != "pool" or fact.target is None or "." in fact.target:
                continue
            if fact.function is None:
                lazy = False
            elif fact.target in summary.lifecycle.globals_declared.get(fact.function, set()):
                lazy = True
            else:
                continue
            qualname = f"{summary.module}.{fact.target}" if summary.module else fact.target
            yield LongLived(summary, fact, qualname, fact.target, lazy)


def close_targets(
    project: Project, summary: ModuleSummary, close: CloseCall
) -> set[tuple[str, str]]:
    """What a close closes, as (path, module-level name)."""
    return canonical(project, summary, close.target)


def canonical(project: Project, summary: ModuleSummary, name: str) -> set[tuple[str, str]]:
    """A name as (path, module-level name): a local `engine` is this module's; an imported
    `app.db.engine` (or `deps.engine`, re-exported) is resolved to where it is made."""
    targets: set[tuple[str, str]] = set()
    if "." not in name:
        targets.add((summary.path, name))
        name = summary.imports.get(name, "")
    found = project.index.resolve(name) if name else None
    if found is not None:
        targets.add((found.summary.path, found.key))
    return targets


@dataclass(frozen=True)
class Reached:
    """A function a hook runs (the hook itself, or one it calls)."""

    summary: ModuleSummary
    function: str
    hook: HookFact
    summary_of_hook: ModuleSummary
    direct: bool  # the hook function itself


def reached_from_hooks(project: Project, kind: str) -> dict[tuple[str, str], Reached]:
    """(path, function key) -> how a hook of `kind` reaches it, across modules."""
    reached: dict[tuple[str, str], Reached] = {}
    queue: deque[tuple[ModuleSummary, str, HookFact, ModuleSummary, bool]] = deque()
    for summary in project.summaries:
        for hook in summary.lifecycle.hooks:
            if hook.hook != kind:
                continue
            if not hook.qualname:
                queue.append((summary, hook.function, hook, summary, True))
                continue
            target = project.index.function(hook.qualname)
            if target is not None:
                queue.append((target.summary, target.key, hook, target.summary, True))
    while queue:
        summary, key, hook, hook_summary, direct = queue.popleft()
        if (summary.path, key) in reached:
            continue
        reached[(summary.path, key)] = Reached(summary, key, hook, hook_summary, direct)
        fact = summary.functions.get(key)
        if fact is None:
            continue
        for callee in fact.references:
            queue.append((summary, callee, hook, hook_summary, False))
        for external in fact.external_calls:
            target = project.index.function(external)
            if target is not None:
                queue.append((target.summary, target.key, hook, hook_summary, False))
    return reached


def closes_in(project: Project) -> Iterator[tuple[ModuleSummary, CloseCall]]:
    for summary in project.summaries:
        for close in summary.lifecycle.closes:
            yield summary, close
