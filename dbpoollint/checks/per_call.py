"""Shared by the per-call rules: which creation sites run once per request, and why."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from dbpoollint.analysis.model import CreationSite, ModuleSummary
from dbpoollint.analysis.propagate import PerCallReason
from dbpoollint.checks.base import Project


@dataclass(frozen=True)
class PerCallSite:
    summary: ModuleSummary
    site: CreationSite
    reason: PerCallReason | None  # None: stored on flask.g, or reached from another module
    # Reached from a handler in another module: the calls from the handler to the site's
    # function, as (path, function key) pairs.
    chain: tuple[tuple[str, str], ...] = ()
    project: Project | None = None

    def where(self) -> str:
        """`Flask view `index`` or `load_posts`, called per request by Flask view `index``."""
        # `def run(sql, conn=None): if conn is None: conn = create_engine(URL)`
        unless = f" (called without `{self.site.default_for}`)" if self.site.default_for else ""
        if self.chain and self.project is not None:
            return _cross_module_where(self.project, self.chain, unless)
        if self.reason is None:
            return "stored on `flask.g`, so once per request context"
        root = self.reason.root
        handler = display_name(self.summary, root.function)
        if self.reason.via is None:
            return f"on every call of {root.label} `{handler}`"
        return (
            f"in `{self.reason.via}`{unless}, which {root.label} `{handler}` calls on every request"
        )


def _cross_module_where(project: Project, chain: tuple[tuple[str, str], ...], unless: str) -> str:
    """`in `sql_exec`, which FastAPI route `list_items` reaches on every request
    (api/routes.py: list_items -> utils/db.py: sql_exec)`."""
    by_path = project.index.by_path
    steps: list[str] = []
    previous = ""
    for path, key in chain:
        name = display_name(by_path[path], key)
        steps.append(name if path == previous else f"{short_path(path)}: {name}")
        previous = path
    root_path, root_key = chain[0]
    use = project.used_per_call[root_path][root_key]
    handler = display_name(by_path[root_path], root_key)
    callee = display_name(by_path[chain[-1][0]], chain[-1][1])
    return (
        f"in `{callee}`{unless}, which {use.root.label} `{handler}` reaches on every "
        f"{unit(use.root.label)} ({' -> '.join(steps)})"
    )


def short_path(path: str) -> str:
    """The last two parts of a path: enough to tell `api/routes.py` from `utils/db.py`."""
    parts = path.replace("\\", "/").split("/")
    return "/".join(parts[-2:])


def unit(label: str) -> str:
    words = set(label.lower().split())
    if words & {"task", "job", "actor"}:
        return "run"
    if words & {"lambda", "function"}:
        return "invocation"
    return "request"


def call_chain(project: Project, path: str, key: str) -> tuple[tuple[str, str], ...]:
    """The calls from the handler to (path, key), following :func:`used_per_call`'s links."""
    chain = [(path, key)]
    while len(chain) <= len(project.used_per_call.get(path, {})) + 64:
        use = project.used_per_call.get(chain[-1][0], {}).get(chain[-1][1])
        if use is None or use.caller is None:
            break
        chain.append(use.caller)
    return tuple(reversed(chain))


def display_name(summary: ModuleSummary, key: str) -> str:
    """`index`, or `AuthorAPI.get` for a method; nested scopes are left out."""
    fact = summary.functions[key]
    if fact.class_key is not None:
        return f"{summary.classes[fact.class_key].name}.{fact.name}"
    return fact.name


def is_factory_site(project: Project, summary: ModuleSummary, site: CreationSite) -> bool:
    """A pool built and returned to the caller on every call: DPL103 reports it, not DPL101.

    Not when a caller closes what it gets: the function then builds a client for one use, and
    caching it would be wrong; DPL101 judges the site as any other.
    """
    if _is_handler(project, summary, site.function):
        return False  # a route returning a client builds it per request: never cache a route
    return (
        site.kind == "pool"
        and site.storage == "local"
        and site.returned
        and (summary.path, site.function) not in project.closed_by_callers
    )


def _is_handler(project: Project, summary: ModuleSummary, function: str) -> bool:
    """A per-call root other than a dependency (whose result the framework hands on)."""
    reason = project.per_call.get(summary.path, {}).get(function)
    return (
        reason is not None and reason.via is None and "dependency" not in reason.root.label.lower()
    )


def per_call_sites(
    project: Project, kind: str, whole_project: bool = False
) -> Iterator[PerCallSite]:
    callers: Callers | None = None  # built on the first client that stands in for a parameter
    for summary in project.summaries if whole_project else project.reported_summaries():
        if summary.is_test:
            continue
        reasons = project.per_call.get(summary.path, {})
        uses = project.used_per_call.get(summary.path, {})
        for site in summary.sites:
            if site.kind != kind or is_factory_site(project, summary, site):
                continue
            if site.storage == "instance-cached" and not _per_request_instance(summary, site):
                continue
            omitting: tuple[str, str] | None = None
            if site.default_for and (site.function in reasons or site.function in uses):
                callers = per_call_callers(project) if callers is None else callers
                passed, omitting = _default_passed(project, summary, site, callers)
                if passed:
                    continue  # every caller that runs per call passes its own client
            if site.storage == "flask-g":
                yield PerCallSite(summary, site, None)
            elif site.function in reasons and (omitting is None or site.function not in uses):
                yield PerCallSite(summary, site, reasons[site.function])
            elif site.function in uses:
                # Reached from a handler in another module, through any chain of calls; for a
                # default built when an argument is left out, through a caller leaving it out.
                if omitting is None or uses[site.function].caller == omitting:
                    chain = call_chain(project, summary.path, site.function)
                else:
                    chain = (*call_chain(project, *omitting), (summary.path, site.function))
                yield PerCallSite(summary, site, None, chain, project)


def _per_request_instance(summary: ModuleSummary, site: CreationSite) -> bool:
    class_key = summary.functions[site.function].class_key
    return class_key is not None and class_key in summary.per_request_classes


Callers = dict[tuple[str, str], dict[tuple[str, str], list[tuple[int, tuple[str, ...]]]]]


def per_call_callers(project: Project) -> Callers:
    """(path, key) of a function -> the functions running per call that name it, each with the
    shapes of its calls of it (none: named but not called, as a callback). One pass over the
    per-call functions; names resolve through the project's index."""
    callers: Callers = {}
    for path, functions in project.used_per_call.items():
        summary = project.index.by_path[path]
        for caller_key in functions:
            caller = summary.functions[caller_key]
            named = {*caller.call_shapes, *caller.external_calls, *caller.references}
            for name in named:
                if name in summary.functions:
                    target: tuple[str, str] | None = (path, name)
                else:
                    found = project.index.function(name)
                    target = None if found is None else (found.summary.path, found.key)
                if target is not None:
                    shapes = callers.setdefault(target, {}).setdefault((path, caller_key), [])
                    shapes.extend(caller.call_shapes.get(name, ()))
    return callers


def _default_passed(
    project: Project, summary: ModuleSummary, site: CreationSite, callers: Callers
) -> tuple[bool, tuple[str, str] | None]:
    """For a client built only when its parameter is left out: does every function that runs
    per call and calls this one pass it? And one that leaves it out, if any, as (path, key).

    Unknown counts as left out: a handler or dependency itself (the framework passes
    nothing), a method, a caller naming the function without calling it (a callback), or
    `*args`.
    """
    key, parameter, position = site.function, site.default_for, site.default_position
    fact = summary.functions[key]
    use = project.used_per_call.get(summary.path, {}).get(key)
    reason = project.per_call.get(summary.path, {}).get(key)
    root = (reason is not None and reason.via is None) or (use is not None and use.caller is None)
    if root or fact.class_key is not None:
        return False, None
    found = callers.get((summary.path, key), {})
    for caller, shapes in sorted(found.items()):
        if not shapes or any(
            count == -1 or (parameter not in keywords and (position < 0 or count <= position))
            for count, keywords in shapes
        ):
            return False, caller
    return bool(found), None
