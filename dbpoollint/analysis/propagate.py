"""Join module summaries and decide which functions run once per request, job or invocation.

Roots are the handlers each module declares, plus handlers that other modules register by
qualified name (Django's ``urls.py`` naming ``views.index``). From the roots, per-call context
follows calls within the module, transitively; functions with a caching decorator stop it.

:func:`used_per_call` then follows calls across modules too (``from .db import get_db`` in a
view), for the rules about functions that other modules call per request.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from dbpoollint.analysis.handlers import class_ancestry, methods_of
from dbpoollint.analysis.model import HandlerRoot, ModuleSummary
from dbpoollint.analysis.resolve import ModuleIndex, Resolved
from dbpoollint.analysis.vocabulary import CONSTRUCTORS


@dataclass(frozen=True)
class PerCallReason:
    """Why a function runs per call: the handler that reaches it and the path from there."""

    root: HandlerRoot
    via: str | None  # the function's own name when it is reached through a call


@dataclass(frozen=True)
class PerCallUse:
    """A function that runs per call, found across modules: the handler that reaches it."""

    root: HandlerRoot
    root_path: str  # the module the handler is defined in
    caller: tuple[str, str] | None  # (path, key) of the function calling this one; None: a root


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
    callees = set(fact.references) - fact.cached_calls
    if fact.self_references and fact.class_key:
        classes = [fact.class_key, *class_ancestry(summary, fact.class_key)]
        for name in fact.self_references:
            for class_key in classes:
                method = f"{class_key}.{name}"
                if method in summary.functions:
                    callees.add(method)
                    break
    return callees


def external_roots_for(
    summaries: list[ModuleSummary], index: ModuleIndex | None = None
) -> dict[str, list[HandlerRoot]]:
    """Handlers registered in one module for functions defined in another, keyed by path."""
    index = index or ModuleIndex(summaries)
    result: dict[str, list[HandlerRoot]] = {}
    for summary in summaries:
        for external in summary.external_roots:
            found = index.resolve(external.qualname)
            if found is None:
                continue
            target, key = found.summary, found.key
            keys = list(methods_of(target, key)) if key in target.classes else [key]
            result.setdefault(target.path, []).extend(
                HandlerRoot(k, external.label, registered_in=summary.path) for k in keys
            )
    return result


def closed_by_callers(
    summaries: list[ModuleSummary], index: ModuleIndex | None = None
) -> set[tuple[str, str]]:
    """(path, key) of functions whose result a caller closes (`engine.dispose()`, `with`).

    Such a function hands out a client its caller owns for one use: caching it would hand the
    next caller a closed client.
    """
    index = index or ModuleIndex(summaries)
    result: set[tuple[str, str]] = set()
    for summary in summaries:
        if summary.is_test:
            continue
        for fact in summary.functions.values():
            for name in fact.closes_results_of:
                if name in summary.functions:
                    result.add((summary.path, name))
                    continue
                found = index.function(name)
                if found is not None:
                    result.add((found.summary.path, found.key))
    return result


def used_per_call(
    summaries: list[ModuleSummary],
    per_call: Mapping[str, Mapping[str, PerCallReason]],
    index: ModuleIndex | None = None,
) -> dict[str, dict[str, PerCallUse]]:
    """Every function that runs per call, following calls into other modules, keyed by path.

    Starts from the roots each module's own analysis found (test modules excluded), then walks
    calls breadth first: calls within a module as :func:`per_call_functions` does, and calls to
    imported functions resolved by qualified name. Caching decorators stop it, as there.
    """
    index = index or ModuleIndex(summaries)
    by_path = {summary.path: summary for summary in summaries}
    result: dict[str, dict[str, PerCallUse]] = {}
    queue: deque[tuple[str, str]] = deque()

    def mark(summary: ModuleSummary, key: str, use: PerCallUse) -> None:
        if summary.is_test or summary.functions[key].barrier:
            return
        uses = result.setdefault(summary.path, {})
        if key not in uses:
            uses[key] = use
            queue.append((summary.path, key))

    for summary in sorted(summaries, key=lambda s: s.path):
        for key, reason in per_call.get(summary.path, {}).items():
            if reason.via is None:
                mark(summary, key, PerCallUse(reason.root, summary.path, None))
    while queue:
        path, key = queue.popleft()
        summary = by_path[path]
        use = result[path][key]
        reached = PerCallUse(use.root, use.root_path, (path, key))
        for callee in sorted(_callees(summary, key)):
            mark(summary, callee, reached)
        fact = summary.functions[key]
        for qualname in sorted(fact.external_calls - fact.cached_calls):
            found = index.resolve(qualname)
            if found is not None:
                for callee in called_functions(found):
                    mark(found.summary, callee, reached)
    return result


def called_functions(found: Resolved) -> list[str]:
    """The functions a call of `found` runs: the function, or a class's constructors."""
    if found.is_function:
        return [found.key]
    if not found.is_class:
        return []
    methods: dict[str, str] = {}
    for key in methods_of(found.summary, found.key):  # the class's own come first
        methods.setdefault(key.rsplit(".", 1)[-1], key)
    return [methods[name] for name in CONSTRUCTORS if name in methods]


class ArgumentUses:
    """Does a call hand its argument to a function that releases it (`close_conn(conn)` with
    `def close_conn(c): c.close()`, in any module), one that only uses it (logs it, runs a
    query on it), or one that may keep it? A fixpoint over the functions' parameter facts,
    following functions that hand the argument on to others; remembered per parameter."""

    def __init__(self, index: ModuleIndex) -> None:
        self.index = index
        self._known: dict[tuple[str, str, str], str] = {}

    def use(self, summary: ModuleSummary, callee: str, slot: str) -> str:
        """ "release", "keep", or "unknown" (not a project function, or it may keep it)."""
        return self._use(summary, callee, slot, frozenset())

    def _use(
        self,
        summary: ModuleSummary,
        callee: str,
        slot: str,
        seen: frozenset[tuple[str, str, str]],
    ) -> str:
        if callee in summary.functions:
            target, key = summary, callee
        else:
            found = self.index.function(callee)
            if found is None:
                return "unknown"
            target, key = found.summary, found.key
        fact = target.functions[key]
        if fact.class_key is not None:
            return "unknown"  # a method: `self` shifts the positions
        if slot.isdigit():
            position = int(slot)
            if position >= len(fact.params):
                return "unknown"
            param = fact.params[position]
        else:
            param = slot
        where = (target.path, key, param)
        if where in self._known:
            return self._known[where]
        if where in seen:
            return "unknown"
        use = target.lifecycle.param_uses.get(key, {}).get(param)
        verdict = "unknown"
        if use is not None and use.use in ("release", "keep"):
            verdict = use.use
        elif use is not None and use.use == "handed":
            found_uses = {self._use(target, c, s, seen | {where}) for c, s in use.helpers}
            if "unknown" not in found_uses:
                verdict = "release" if "release" in found_uses else "keep"
        self._known[where] = verdict
        return verdict
