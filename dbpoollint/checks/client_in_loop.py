from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import PurePath

from dbpoollint.analysis.contexts import ONE_OFF, context_of
from dbpoollint.analysis.model import CreationSite, LoopCallFact, ModuleSummary
from dbpoollint.checks.base import Finding, FixRequest, Project, Rule
from dbpoollint.checks.knobs import packs

LOOP_WORDS = {"for": "`for` loop", "while": "`while` loop", "comprehension": "comprehension"}


@dataclass(frozen=True)
class _Builder:
    """A project function that builds a new client on every call."""

    summary: ModuleSummary
    site: CreationSite
    # The constructor's arguments read none of the function's parameters: whatever the caller
    # passes, it connects to the same place.
    fixed_target: bool
    unpooled: bool = False  # `poolclass=NullPool`: no pool, one connection per use


class ClientInLoop(Rule):
    """
    ## What it does
    Finds a pool constructor or connection opener that runs on every iteration of a loop: in a
    `for` or `while` body, a `while` condition, or a comprehension's element, directly or
    through a project function that builds a new client each time it is called.

    Two loops are left alone: a retry loop that stops once the call succeeds (a `break` or
    `return` after a `try`, in a `while` or a `for ... in range(...)` loop), and a loop over
    different databases, where an argument of the call reads the loop variable (`for url in
    urls: create_engine(url)`). Test files are not checked. In one-off code (scripts, tools,
    management commands), a project function called in a loop that closes the connection it
    opens is left alone too: the run pays a handshake per iteration, and nothing piles up.

    ## Why is this bad?
    Every iteration pays a TCP and TLS handshake and server-side authentication, and a new pool
    starts empty each time, so nothing is reused. A backfill over 100 000 rows opens 100 000
    connections; unless each is closed, they stay open until the garbage collector runs and
    the server refuses new clients (`FATAL: sorry, too many clients already`).

    ## Example
    ```python
    for order in orders:
        conn = psycopg2.connect(DSN)
        conn.cursor().execute("UPDATE orders SET ...", (order.id,))
        conn.commit()
        conn.close()
    ```

    ## Use instead
    ```python
    conn = psycopg2.connect(DSN)
    for order in orders:
        conn.cursor().execute("UPDATE orders SET ...", (order.id,))
        conn.commit()
    conn.close()
    ```

    ## Fix safety
    Unsafe. When `client = constructor(...)` is a statement of the loop body and no argument
    reads a name the loop assigns, the fix moves it above the loop, and moves a
    `client.close()` written as a statement of the same body to after the loop. The program
    then shares one client across iterations: an iteration that leaves a transaction open or
    the connection broken affects the next one. When the loop closes the client some other way
    (`with client:`, a `finally`), or the call sits inside an expression, there is no fix.

    ## Options
    - `select` / `ignore` / `per-file-ignores`.

    ## References
    - [psycopg2: connection pools](https://www.psycopg.org/docs/pool.html)
    - [SQLAlchemy: engine configuration ("create_engine() ... once per database URL")](https://docs.sqlalchemy.org/en/20/core/connections.html#basic-usage)
    - [PostgreSQL: max_connections](https://www.postgresql.org/docs/current/runtime-config-connection.html)
    """

    code = "DPL104"
    name = "client-in-loop"
    severity = "error"
    severity_reason = "Each iteration opens new connections until the server refuses them."
    fix_title = "Move the client above the loop"

    def check(self, project: Project) -> Iterator[Finding]:
        builders = _builders(project)
        for summary in project.reported_summaries():
            if summary.is_test:
                continue
            for fact in summary.process.loop_calls:
                if fact.retry:
                    continue
                if fact.client:
                    if not fact.varies:
                        yield self._direct(project, summary, fact)
                    continue
                builder = _builder_for(fact, summary, builders)
                if builder is None or not (builder.fixed_target or not fact.varies):
                    continue
                if context_of(summary, fact.function) == ONE_OFF and _closes_it(builder):
                    # A one-off run pays a handshake per iteration, and nothing piles up.
                    continue
                yield self._indirect(summary, fact, builder)

    def _direct(self, project: Project, summary: ModuleSummary, fact: LoopCallFact) -> Finding:
        callee = fact.callees[0]
        call = packs(project).client_call(fact.callees)
        what = _what(call.what if call else "client", call.kind if call else "pool")
        loop = f"{LOOP_WORDS[fact.loop]} on line {fact.loop_line}"
        message = (
            f"`{_short(callee)}()` {what} on every iteration of the {loop}; "
            "create it once before the loop"
        )
        request = None
        if fact.hoist_target:
            request = FixRequest(
                "hoist-loop",
                (
                    ("loop_line", fact.loop_line),
                    ("call_line", fact.span.line),
                    ("target", fact.hoist_target),
                ),
            )
        return Finding(summary.path, fact.span, self.code, message, fix_request=request)

    def _indirect(self, summary: ModuleSummary, fact: LoopCallFact, builder: _Builder) -> Finding:
        site = builder.site
        where = f"{PurePath(builder.summary.path).name}:{site.span.line}"
        what = _what(site.what, site.kind, builder.unpooled)
        loop = f"{LOOP_WORDS[fact.loop]} on line {fact.loop_line}"
        name = site.function.rsplit(".", 1)[-1]
        message = (
            f"`{name}()` {what} ({_short(site.callee)} at {where}) on every iteration of the "
            f"{loop}; create it once before the loop and pass it in"
        )
        return Finding(summary.path, fact.span, self.code, message)


# What a builder's function does with the connection it opens: closes it before it returns.
_CLOSED = frozenset({"with", "finally", "released-unprotected"})


def _closes_it(builder: _Builder) -> bool:
    site = builder.site
    return any(
        acquired.function == site.function and acquired.span == site.span
        for acquired in builder.summary.lifecycle.acquisitions
        if acquired.verdict in _CLOSED
    )


def _what(what: str, kind: str, unpooled: bool = False) -> str:
    if unpooled:
        return f"builds a new {what} and opens a new connection"
    if kind == "opener":
        return f"opens a new {what}"
    return f"builds a new {what} (and its pool)" if what == "engine" else f"builds a new {what}"


def _short(qualname: str) -> str:
    """`sqlalchemy.create_engine` -> `create_engine`, `psycopg2.connect` stays."""
    parts = qualname.split(".")
    return ".".join(parts[-2:]) if parts[-1] in ("connect", "Redis") else parts[-1]


def _builders(project: Project) -> dict[str, _Builder]:
    """Absolute and module-local names of functions that build a client per call."""
    found: dict[str, _Builder] = {}
    for summary in project.summaries:
        if summary.is_test:
            continue
        calls = {(c.span.line, c.span.column): c for c in summary.client_calls}
        for site in summary.sites:
            if site.storage != "local" or "<locals>" in site.function:
                continue
            function = summary.functions.get(site.function)
            if function is not None and function.barrier:
                continue  # `@functools.cache`: built once
            params = function.params if function else ()
            call = calls.get((site.span.line, site.span.column))
            codes = (
                " ".join(v.code for v in (*call.positional, *(v for _, v in call.keywords)))
                if call
                else ""
            )
            fixed = not any(re.search(rf"\b{re.escape(p)}\b", codes) for p in params)
            unpooled = "NullPool" in codes
            builder = _Builder(summary, site, fixed, unpooled)
            found.setdefault(f"{summary.module}.{site.function}", builder)
            found.setdefault(f"{summary.path}::{site.function}", builder)
    return found


def _builder_for(
    fact: LoopCallFact, summary: ModuleSummary, builders: dict[str, _Builder]
) -> _Builder | None:
    for callee in fact.callees:
        builder = builders.get(f"{summary.path}::{callee}") or builders.get(callee)
        if builder is not None and builder.site.function != fact.function:
            return builder
    return None
