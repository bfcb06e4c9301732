"""DPL302's request-scoped holders: a class that acquires a connection into `self` and releases
it in a cleanup method, instantiated per request by code that never calls that cleanup.

A *holder class* (any module of the checked tree, methods of same-module bases included) has a
method storing an acquisition on `self` (`self.conn = pool.getconn()`, judged like a local
acquisition by the rule) and a cleanup method (`close`, `release`, `cleanup`, `__exit__`, ...)
that releases that attribute, directly or through `self.<method>()`. Left out, as releasing
the connection by themselves: attributes the acquiring method itself releases, and classes
whose `__del__` releases it.

An instance counts when `x = Holder(...)` sits in a function that runs per call (a handler,
dependency or task, or what they call, across modules), `__init__` acquires (or the function
calls an acquiring method on `x`), and the function never touches a releasing method or any
cleanup-like method of `x` (`x.close()`, `x.close` handed to a callback), does not use it in
`with`, does not pass, store, return or yield it, and no nested function or lambda mentions it.
A FastAPI dependency returning it is reported too.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from dbpoollint.analysis.handlers import methods_of
from dbpoollint.analysis.model import AcquireFact, ModuleSummary
from dbpoollint.analysis.resolve import ModuleIndex
from dbpoollint.analysis.vocabulary import RELEASE_METHODS, RETURN_TO_POOL
from dbpoollint.checks.base import Project
from dbpoollint.checks.per_call import display_name

# Preferred first when naming the cleanup in a message.
CLEANUP_NAMES = (
    "close",
    "aclose",
    "release",
    "cleanup",
    "dispose",
    "disconnect",
    "shutdown",
    "teardown",
    "terminate",
    "finish",
    "__exit__",
    "__aexit__",
)
# Touching any of these on the instance counts as cleaning it up, whatever the class does.
CLEANUP_LIKE = frozenset(
    {*CLEANUP_NAMES, "close_all", "closeall", "release_all", "cleanup_all", "quit", "__del__"}
)

# `db.conn.close()` / `pool.putconn(db.conn)` / `with db.conn:` release what the holder holds.
RELEASED_THROUGH = CLEANUP_LIKE | RELEASE_METHODS | RETURN_TO_POOL | {"__with__"}

WhatOf = Callable[[ModuleSummary, str], "str | None"]


@dataclass(frozen=True)
class Holder:
    summary: ModuleSummary
    class_key: str
    acquiring: dict[str, str]  # method name -> what it acquires (through `self` calls too)
    releasing: frozenset[str]  # method names that release an acquired attribute
    cleanup: str  # the cleanup method named in messages
    cleanup_is_async: bool
    context_manager: str  # "with" / "async with" when the class has `__exit__`/`__aexit__`


@dataclass(frozen=True)
class HolderLeak:
    fact: AcquireFact
    message: str


def find_holders(project: Project, what_of: WhatOf) -> dict[tuple[str, str], Holder]:
    """Holder classes by (module path, class key)."""
    holders: dict[tuple[str, str], Holder] = {}
    for summary in project.summaries:
        facts = summary.lifecycle
        if not facts.attribute_acquisitions or not facts.attribute_releases:
            continue
        direct: dict[str, list[tuple[str, str]]] = {}  # method key -> [(attribute, what)]
        for acquisition in facts.attribute_acquisitions:
            what = what_of(summary, acquisition.callee)
            if what is not None:
                direct.setdefault(acquisition.function, []).append((acquisition.attribute, what))
        if not direct:
            continue
        for class_key in summary.classes:
            holder = _holder(summary, class_key, direct)
            if holder is not None:
                holders[(summary.path, class_key)] = holder
    return holders


def _holder(
    summary: ModuleSummary, class_key: str, direct: dict[str, list[tuple[str, str]]]
) -> Holder | None:
    methods: dict[str, str] = {}  # name -> key; the class's own first, then same-module bases
    for key in methods_of(summary, class_key):
        methods.setdefault(key.rsplit(".", 1)[-1], key)
    if not any(key in direct for key in methods.values()) or "__new__" in methods:
        return None  # nothing acquired, or `__new__` may hand out a shared instance
    releases = summary.lifecycle.attribute_releases

    def reached(name: str) -> set[str]:
        """The method and every method it calls on `self`, transitively."""
        seen: set[str] = set()
        pending = [name]
        while pending:
            current = pending.pop()
            if current in seen or current not in methods:
                continue
            seen.add(current)
            pending.extend(summary.functions[methods[current]].self_references)
        return seen

    def releases_of(name: str) -> set[str]:
        return {a for m in reached(name) for a in releases.get(methods[m], ())}

    def acquisitions_of(name: str) -> list[tuple[str, str]]:
        return [pair for m in sorted(reached(name)) for pair in direct.get(methods[m], [])]

    valid: dict[str, str] = {}  # attribute -> what
    for name in methods:
        for attribute, what in direct.get(methods[name], []):
            valid.setdefault(attribute, what)
    destructor = releases_of("__del__") if "__del__" in methods else set()
    for name, key in methods.items():
        if key in direct:
            for attribute in releases_of(name):
                valid.pop(attribute, None)  # acquired and released by the same call
    for attribute in destructor:
        valid.pop(attribute, None)
    if not valid:
        return None
    releasing = frozenset(name for name in methods if releases_of(name) & valid.keys())
    cleanups = [name for name in CLEANUP_NAMES if name in releasing]
    if not cleanups:
        return None
    acquiring: dict[str, str] = {}
    for name in methods:
        found = [what for attribute, what in acquisitions_of(name) if attribute in valid]
        if found:
            acquiring[name] = found[0]
    context = ""
    if "__aexit__" in methods:
        context = "async with"
    elif "__exit__" in methods:
        context = "with"
    cleanup = cleanups[0]
    return Holder(
        summary,
        class_key,
        acquiring,
        releasing,
        cleanup,
        summary.functions[methods[cleanup]].is_async,
        context,
    )


def holder_leaks(
    project: Project, what_of: WhatOf, holders: dict[tuple[str, str], Holder]
) -> Iterator[tuple[ModuleSummary, HolderLeak]]:
    if not holders:
        return
    index = project.index
    by_path = {summary.path: summary for summary in project.summaries}
    for summary in project.summaries:
        if summary.is_test:
            continue
        for fact in summary.lifecycle.acquisitions:
            if fact.verdict not in ("unreleased", "returned") or fact.yielded or fact.nested:
                continue
            if not fact.callee.endswith("()") or fact.callee.endswith("()()"):
                continue
            if what_of(summary, fact.callee) is not None:
                continue  # a session: the rule's own business
            holder = _resolve(summary, fact.callee.removesuffix("()"), index, holders)
            if holder is None:
                continue
            if fact.attributes & (holder.releasing | CLEANUP_LIKE) or any(
                attribute.rpartition(".")[2] in RELEASED_THROUGH for attribute in fact.attributes
            ):
                continue  # `db.close()`, `db.conn.close()`, `pool.putconn(db.conn)`
            method = "__init__" if "__init__" in holder.acquiring else None
            if method is None:
                method = next((m for m in sorted(fact.attributes) if m in holder.acquiring), None)
            if method is None:
                continue
            message = _message(project, summary, fact, holder, method, by_path)
            if message is not None:
                yield summary, HolderLeak(fact, message)


def _resolve(
    summary: ModuleSummary,
    name: str,
    index: ModuleIndex,
    holders: dict[tuple[str, str], Holder],
) -> Holder | None:
    if name in summary.classes:
        return holders.get((summary.path, name))
    found = index.resolve(name)
    if found is None or not found.is_class:
        return None
    return holders.get((found.summary.path, found.key))


def _message(
    project: Project,
    summary: ModuleSummary,
    fact: AcquireFact,
    holder: Holder,
    method: str,
    by_path: dict[str, ModuleSummary],
) -> str | None:
    class_name = holder.summary.classes[holder.class_key].name
    what = holder.acquiring[method]
    kept = "keeps a pooled connection checked out until the pool is exhausted"
    if not what.startswith(("a ", "an ")):  # a driver's own connection, not a pool's
        what = f"{'an' if what[:1].lower() in 'aeiou' else 'a'} {what}"
        kept = "leaves a connection open until the server runs out of connection slots"
    acquiring = f"{what} in `__init__`" if method == "__init__" else f"{what} in `{method}()`"
    acquires = f"`{class_name}()` acquires {acquiring}"
    name = fact.variable
    cleanup = holder.cleanup
    awaited = "await " if holder.cleanup_is_async else ""
    reason = project.per_call.get(summary.path, {}).get(fact.function)
    if fact.verdict == "returned":
        if reason is None or reason.via is not None or "dependency" not in reason.root.label:
            return None
        if cleanup in ("__exit__", "__aexit__"):
            release = f"exit it (`{holder.context_manager} {name}:`)"
        else:
            release = f"call `{awaited}{name}.{cleanup}()`"
        return (
            f"the dependency `{fact.function}` returns `{name}`, and {acquires}: nothing "
            f"releases it after the request; `yield {name}` inside `try:` and {release} in "
            f"`finally:`"
        )
    if reason is not None:
        root = reason.root
        handler = display_name(summary, root.function)
        unit = _unit(root.label)
        if reason.via is None:
            where = f"{acquires} on every {unit} of {root.label} `{handler}`"
        else:
            caller = display_name(summary, fact.function)
            where = (
                f"`{class_name}()`, created in `{caller}` (which {root.label} `{handler}` calls "
                f"on every {unit}), acquires {acquiring}"
            )
    else:
        use = project.used_per_call.get(summary.path, {}).get(fact.function)
        if use is None:
            return None
        root = use.root
        handler = display_name(by_path[use.root_path], root.function)
        unit = _unit(root.label)
        caller = display_name(summary, fact.function)
        where = (
            f"`{class_name}()`, created in `{caller}` (which {root.label} `{handler}` reaches "
            f"on every {unit}), acquires {acquiring}"
        )
    if cleanup in ("__exit__", "__aexit__"):
        never = f"it is never used in `{holder.context_manager}`"
        advice = f"use `{holder.context_manager} {class_name}(...) as {name}:`"
    else:
        never = f"nothing calls its `{cleanup}()`"
        advice = f"call `{awaited}{name}.{cleanup}()` in `finally:`"
        if holder.context_manager:
            advice += f", use it in `{holder.context_manager}`"
    if "FastAPI" in root.label and not cleanup.startswith("__"):
        advice += f", or make a dependency `yield` it and call `{cleanup}()` after"
    return f"{where}, and {never}: each {unit} {kept}; {advice}"


def _unit(label: str) -> str:
    words = set(label.lower().split())
    if words & {"task", "job", "actor"}:
        return "run"
    if words & {"lambda", "function"}:
        return "invocation"
    return "request"
