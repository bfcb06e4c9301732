"""Shared by the per-call rules: which creation sites run once per request, and why."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from dbpoollint.analysis.model import CreationSite, ModuleSummary
from dbpoollint.analysis.percall import PerCallReason
from dbpoollint.checks.base import Project


@dataclass(frozen=True)
class PerCallSite:
    summary: ModuleSummary
    site: CreationSite
    reason: PerCallReason | None  # None: stored on flask.g, per request by construction

    def where(self) -> str:
        """`Flask view `index`` or `load_posts`, called per request by Flask view `index``."""
        if self.reason is None:
            return "stored on `flask.g`, so once per request context"
        root = self.reason.root
        handler = display_name(self.summary, root.function)
        if self.reason.via is None:
            return f"on every call of {root.label} `{handler}`"
        return f"in `{self.reason.via}`, which {root.label} `{handler}` calls on every request"


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
    return (
        site.kind == "pool"
        and site.storage == "local"
        and site.returned
        and (summary.path, site.function) not in project.closed_by_callers
    )


def per_call_sites(project: Project, kind: str) -> Iterator[PerCallSite]:
    for summary in project.summaries:
        if summary.is_test:
            continue
        reasons = project.per_call.get(summary.path, {})
        for site in summary.sites:
            if site.kind != kind or is_factory_site(project, summary, site):
                continue
            if site.storage == "flask-g":
                yield PerCallSite(summary, site, None)
            elif site.function in reasons:
                if site.storage == "instance-cached" and not _per_request_instance(summary, site):
                    continue
                yield PerCallSite(summary, site, reasons[site.function])


def _per_request_instance(summary: ModuleSummary, site: CreationSite) -> bool:
    class_key = summary.functions[site.function].class_key
    return class_key is not None and class_key in summary.per_request_classes
