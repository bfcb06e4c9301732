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


def close_targets(summary: ModuleSummary, close: CloseCall) -> set[str]:
    """A close's target as qualified names: a local `engine` is `<module>.engine`."""
    return {close.target, f"{summary.module}.{close.target}"}


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
    by_module = {s.module: s for s in project.summaries}
    reached: dict[tuple[str, str], Reached] = {}
    queue: deque[tuple[ModuleSummary, str, HookFact, ModuleSummary, bool]] = deque()
    for summary in project.summaries:
        for hook in summary.lifecycle.hooks:
            if hook.hook != kind:
                continue
            if not hook.qualname:
                queue.append((summary, hook.function, hook, summary, True))
                continue
            target = _resolve_function(by_module, hook.qualname)
            if target is not None:
                queue.append((target[0], target[1], hook, target[0], True))
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
            target = _resolve_function(by_module, external)
            if target is not None:
                queue.append((target[0], target[1], hook, hook_summary, False))
    return reached


def _resolve_function(
    by_module: dict[str, ModuleSummary], qualname: str
) -> tuple[ModuleSummary, str] | None:
    module, _, rest = qualname.rpartition(".")
    while module:
        summary = by_module.get(module)
        if summary is not None and rest in summary.functions:
            return summary, rest
        module, _, head = module.rpartition(".")
        rest = f"{head}.{rest}"
    return None


def closes_in(project: Project) -> Iterator[tuple[ModuleSummary, CloseCall]]:
    for summary in project.summaries:
        for close in summary.lifecycle.closes:
            yield summary, close
