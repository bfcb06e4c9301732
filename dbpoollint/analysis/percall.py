"""Join module summaries and decide which functions run once per request, job or invocation.

Roots are the handlers each module declares, plus handlers that other modules register by
qualified name (Django's ``urls.py`` naming ``views.index``). From the roots, per-call context
follows calls within the module, transitively; functions with a caching decorator stop it.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass

from dbpoollint.analysis.handlers import class_ancestry, methods_of
from dbpoollint.analysis.model import HandlerRoot, ModuleSummary


@dataclass(frozen=True)
class PerCallReason:
    """Why a function runs per call: the handler that reaches it and the path from there."""

    root: HandlerRoot
    via: str | None  # the function's own name when it is reached through a call


def resolve_module(
    summaries: Iterable[ModuleSummary], qualname: str
) -> tuple[ModuleSummary, str] | None:
    """Find the module and the in-module key a qualified name points to."""
    best: tuple[ModuleSummary, str] | None = None
    for summary in summaries:
        for candidate in (summary.module, summary.module.rsplit(".", 1)[-1]):
            if qualname.startswith(candidate + "."):
                key = qualname[len(candidate) + 1 :]
                if key in summary.functions or key in summary.classes:
                    if candidate == summary.module:
                        return summary, key
                    best = best or (summary, key)
    return best


def per_call_functions(
    summary: ModuleSummary, extra_roots: Iterable[HandlerRoot] = ()
) -> dict[str, PerCallReason]:
    reasons: dict[str, PerCallReason] = {}
    queue: deque[str] = deque()
    for root in [*summary.roots, *extra_roots]:
        if root.function in summary.functions and root.function not in reasons:
            if summary.functions[root.function].barrier:
                continue
            reasons[root.function] = PerCallReason(root, None)
            queue.append(root.function)
    while queue:
        key = queue.popleft()
        fact = summary.functions[key]
        for callee in sorted(_callees(summary, key)):
            if callee in reasons or summary.functions[callee].barrier:
                continue
            reasons[callee] = PerCallReason(reasons[key].root, summary.functions[callee].name)
            queue.append(callee)
        del fact
    return reasons


def _callees(summary: ModuleSummary, key: str) -> set[str]:
    fact = summary.functions[key]
    callees = set(fact.references)
    if fact.self_references and fact.class_key:
        classes = [fact.class_key, *class_ancestry(summary, fact.class_key)]
        for name in fact.self_references:
            for class_key in classes:
                method = f"{class_key}.{name}"
                if method in summary.functions:
                    callees.add(method)
                    break
    return callees


def external_roots_for(summaries: list[ModuleSummary]) -> dict[str, list[HandlerRoot]]:
    """Handlers registered in one module for functions defined in another, keyed by path."""
    result: dict[str, list[HandlerRoot]] = {}
    for summary in summaries:
        for external in summary.external_roots:
            found = resolve_module(summaries, external.qualname)
            if found is None:
                continue
            target, key = found
            keys = list(methods_of(target, key)) if key in target.classes else [key]
            result.setdefault(target.path, []).extend(HandlerRoot(k, external.label) for k in keys)
    return result
