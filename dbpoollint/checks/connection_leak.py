from __future__ import annotations

import dataclasses
from collections.abc import Iterator

from dbpoollint.analysis.contexts import ONE_OFF, SERVICE, context_of, run_once
from dbpoollint.analysis.model import AcquireFact, ModuleSummary
from dbpoollint.analysis.propagate import ArgumentUses
from dbpoollint.analysis.vocabulary import SESSION_CLASSES
from dbpoollint.checks.base import Finding, FixRequest, Project, Rule
from dbpoollint.checks.holder_leaks import find_holders, holder_leaks
from dbpoollint.checks.lifecycle_shared import canonical, long_lived_clients
from dbpoollint.packs import PackSet

REPORTED = ("unreleased", "released-unprotected", "returned")


class ConnectionLeak(Rule):
    """
    ## What it does
    Finds a connection, pooled connection or session that a function acquires into a local
    variable, or through a request-scoped holder object, and does not release on every path.

    - acquisitions: a pack's connection opener (`psycopg2.connect()`, `asyncpg.connect()`,
      `pymysql.connect()`, ...); `.connect()` / `.raw_connection()` / `.getconn()` /
      `.acquire()` on a long-lived engine or pool of the project (module level or lazy global,
      in any checked module), also on a function returning one (`get_pool().getconn()`); a
      call of a session factory (`SessionLocal()` where `SessionLocal = sessionmaker(...)`,
      `Session(engine)`, `sessionmaker(...)()`); and a call of a helper, in any module, that
      returns one of those (`conn = db.get_conn()` where `def get_conn(): return
      pool.getconn()`), through any chain of such helpers. A session bound to a connection the
      function borrows (`Session(bind=conn)` inside `with engine.begin() as conn:`,
      `Session(bind=op.get_bind())`, `Session = sessionmaker()` then `Session(bind=bind)`)
      and `session.connection()` acquire nothing. In one-off code, the entry points (`main`,
      `upgrade`, `downgrade`, `handle`) and the functions only they call run once per process,
      whose exit closes what they leave open: not judged. Other one-off functions are, but a
      release outside `finally:` is not reported there (the exception that skips it ends the
      process);
    - released: used in `with` / `async with` (or `closing(...)`), or `close()` / `release()` /
      `putconn(...)` on it inside a `finally:` (`get_pool().putconn(conn)` too), or handed
      there to a function of the project, in any module, that releases its argument
      (`def close_conn(c): c.close()`, `def give_back(c): pool.putconn(c)`, or one handing it
      on to such a function). For an async connection or session, a `close()` (or an async
      helper) without `await` only makes a coroutine and releases nothing; an empty
      `finally: pass` releases nothing either.

    What is decided, conservatively (the variable is followed by name within the function):
    reported when nothing releases it; when the release is outside `finally` and a statement
    between the acquisition and the release can raise or return (any call, `await`, `return`,
    `raise`; plain assignments of names and literals cannot); when it is released after a
    `yield` outside `try`/`finally`; and when a FastAPI dependency *returns* a session instead of
    yielding it. A project function it is handed to decides by what it does with its
    argument: one that releases it is the release (outside `finally:` it is reported as an
    inline close would be); one that only uses it (reads it, runs queries on it, logs it)
    leaves it unreleased. Logging and `print` calls take nothing. Not reported when the
    variable escapes (returned from an ordinary function, stored on an attribute, in a
    container or a global, or passed to a call that may keep it: a library's, a method, or a
    project function that stores, returns or hands it on further): ownership moved, and the
    receiver may release it.

    Request-scoped holder classes are followed too. A *holder class* (in any checked module;
    methods of same-module bases count) stores one of the acquisitions above on `self`
    (`self.conn = pool.getconn()`, `self.session = SessionLocal()`,
    `self.conn = await asyncpg.connect(...)`, or a local acquisition then `self.conn = conn`)
    and has a cleanup method (`close`, `aclose`, `release`, `cleanup`, `dispose`, `disconnect`,
    `shutdown`, `teardown`, `terminate`, `finish`, `__exit__`, `__aexit__`) that releases that
    attribute (`self.conn.close()`, `pool.putconn(self.conn)`, `with self.conn:`), directly or
    through `self.<method>()`. Classes defining `__new__`, attributes released by `__del__` or by
    the method that acquires them (callbacks such as `atexit.register(self.close)` included)
    do not count. Reported, on the instantiation line: `x = Holder(...)` in a function that runs
    per call (a handler, dependency or task, or a function they call, in the same module or
    across modules; the class is resolved through imports), when `__init__` acquires or the
    function calls an acquiring method on `x`, and the function never touches a releasing or
    cleanup-like method of `x` (`x.close()`, `x.close` handed to a callback, `x.conn.close()`,
    `pool.putconn(x.conn)`), never uses it in `with`, does not pass, store, return or yield it,
    and no nested function or lambda mentions it. A FastAPI dependency that `return`s the
    instance is reported as for a session. `with Holder() as x:`, instances built at module
    level, `await Holder.create()`-style constructors and cleanups that are called but outside
    `finally` are not reported.

    ## Why is this bad?
    A connection that is not returned on an exception path stays checked out: the pool shrinks
    by one per failure until requests wait for `pool_timeout` and fail with `QueuePool limit of
    size 5 overflow 10 reached`, or, for direct connections, the server runs out of slots
    (`too many clients already`). The leak only shows under errors, so it ships.

    ## Example
    ```python
    def get_user(user_id):
        conn = pool.getconn()
        row = conn.cursor().execute(QUERY, (user_id,)).fetchone()  # raises -> leaked
        pool.putconn(conn)
        return row
    ```

    ## Use instead
    ```python
    def get_user(user_id):
        conn = pool.getconn()
        try:
            return conn.cursor().execute(QUERY, (user_id,)).fetchone()
        finally:
            pool.putconn(conn)
    ```

    ## Fix safety
    Unsafe, and only where the acquisition and its one release are statements of the same
    block: the statements between them move into `try:` and the release into `finally:`. The
    release then also runs when they raise or return early, which is the point, but it changes
    what happens on those paths (a release that raises now hides the original exception).
    A FastAPI dependency that ends with `return session` (and has no return annotation)
    becomes `try: yield session` / `finally: session.close()` (`await` in an `async def`);
    unsafe, because code calling the function directly now gets a generator. No rewrite for a
    connection that is never released, for a release nested in another block, for holder
    classes, or in one-off code (a migration or script is reported, not re-indented).

    ## Options
    - User packs add openers (`[[openers]]` with `close = [...]`); holder classes are found
      from the same acquisitions, so an in-house opener also makes classes storing it on `self`
      holders. There is no option for the cleanup method names.

    ## References
    - [SQLAlchemy: working with engines and connections](https://docs.sqlalchemy.org/en/20/core/connections.html)
    - [FastAPI: dependencies with yield](https://fastapi.tiangolo.com/tutorial/dependencies/dependencies-with-yield/)
    - [psycopg2: connection pools (putconn)](https://www.psycopg.org/docs/pool.html)
    """

    code = "DPL302"
    name = "connection-leak"
    severity = "error"
    severity_reason = "Each leaked connection stays checked out; the pool or the server runs out."
    fix_title = "Move the release into try/finally"

    def check(self, project: Project) -> Iterator[Finding]:
        if project.packs is None:
            return
        what_of = Sources(project, project.packs).what
        uses = ArgumentUses(project.index)
        for summary in project.reported_summaries():
            if summary.is_test:
                continue
            once = run_once(summary)
            for acquired in summary.lifecycle.acquisitions:
                fact, helpers = _through_helpers(summary, acquired, uses)
                if fact.verdict not in REPORTED or fact.function in once:
                    continue  # a script's `main` leaks nothing the exit does not close
                if fact.verdict == "released-unprotected" and (
                    context_of(summary, fact.function) == ONE_OFF
                ):
                    # Released on every normal path; the exception that skips the release
                    # ends a one-off process, whose exit closes the connection.
                    continue
                what = what_of(summary, fact.callee)
                if what is None:
                    continue
                message = self._message(project, summary, fact, what, helpers)
                if message is None:
                    continue
                request = None
                if context_of(summary, fact.function) != SERVICE:
                    pass  # no try/finally re-indenting an old migration or script
                elif fact.verdict == "released-unprotected" and fact.fixable and not helpers:
                    request = FixRequest("release-in-finally")
                elif fact.verdict == "returned":
                    request = FixRequest("yield-session")
                yield Finding(summary.path, fact.span, self.code, message, fix_request=request)
        holders = find_holders(project, what_of)
        for summary, leak in holder_leaks(project, what_of, holders):
            yield Finding(summary.path, leak.fact.span, self.code, leak.message)

    def _message(
        self,
        project: Project,
        summary: ModuleSummary,
        fact: AcquireFact,
        what: str,
        helpers: str = "",
    ) -> str | None:
        name = fact.variable
        if fact.verdict == "returned":
            reason = project.per_call.get(summary.path, {}).get(fact.function)
            if reason is None or reason.via is not None or "dependency" not in reason.root.label:
                return None
            return (
                f"the dependency `{fact.function}` returns `{name}`, {what}: nothing closes it "
                f"after the request; `yield {name}` inside `try:` and close it in `finally:`"
            )
        if fact.verdict == "unreleased":
            return (
                f"`{name}` ({what}) is never released in `{fact.function}`{helpers}: every "
                f"call leaks a connection; use `with` or release it in a `finally:`"
            )
        return (
            f"`{name}` ({what}) is released{helpers} outside `finally:` in `{fact.function}`: an "
            f"exception or early return before the release leaks the connection; use `with` or "
            f"move the release into `finally:`"
        )


def _through_helpers(
    summary: ModuleSummary, fact: AcquireFact, uses: ArgumentUses
) -> tuple[AcquireFact, str]:
    """A connection handed to project functions (`close_conn(conn)`): released when one of them
    releases its argument, still held when they only use it; and the words naming the
    functions that decide. Unchanged ("escapes") when any of them may keep it, or is not the
    project's."""
    if not fact.helpers:
        return fact, ""
    found = [(callee, uses.use(summary, callee, slot)) for callee, slot in fact.helpers]
    if any(use == "unknown" for _, use in found):
        return fact, ""
    releasing = [callee for callee, use in found if use == "release"]
    verdict, fixable = fact.if_released if releasing else fact.if_kept
    named = ", ".join(
        f"`{name}()`"
        for name in dict.fromkeys(c.rsplit(".", 1)[-1] for c in releasing or [c for c, _ in found])
    )
    if verdict == "released-unprotected":
        detail = f" by {named}"
    elif releasing:  # the release is an async function called without `await`
        detail = f" ({named} without `await` only makes a coroutine)"
    else:
        detail = f" ({named} only {'uses' if ',' not in named else 'use'} it)"
    return dataclasses.replace(fact, verdict=verdict, fixable=fixable), detail


class Sources:
    """Where connections come from, project-wide: pack openers, long-lived engines and pools,
    session factories, functions returning a long-lived pool (`get_pool().getconn()`), and
    helpers that hand their caller a new connection (`conn = db.get_conn()`), through any chain
    of helpers and modules."""

    def __init__(self, project: Project, packs: PackSet) -> None:
        self.project = project
        self.packs = packs
        self.clients = {c.where for c in long_lived_clients(project)}
        self.factories = {
            (s.path, name) for s in project.summaries for name in s.lifecycle.session_factories
        }
        self.pool_getters = self._pool_getters()
        self.helpers: dict[tuple[str, str], str] = {}
        self._find_helpers()

    def what(self, summary: ModuleSummary, callee: str) -> str | None:
        """What was acquired, or None when the callee is not known to hand out a connection."""
        direct = self._direct(summary, callee)
        if direct is not None or not callee.endswith("()") or callee.endswith("()()"):
            return direct
        name = callee.removesuffix("()")
        for where in canonical(self.project, summary, name):
            if where in self.helpers:
                return f"a connection from `{name.rsplit('.', 1)[-1]}()`"
        return None

    def _direct(self, summary: ModuleSummary, callee: str) -> str | None:
        opener = self.packs.client_call([callee])
        if opener is not None and opener.kind == "opener":
            return f"{opener.library} connection from `{callee}()`"
        if callee.endswith("()"):
            factory = callee.removesuffix("()")
            qualified = canonical(self.project, summary, factory)
            if factory in SESSION_CLASSES or callee.endswith("()()") or qualified & self.factories:
                return f"a session from `{callee}`"
            return None
        receiver, _, method = callee.rpartition(".")
        if receiver.endswith("()"):  # `get_pool().getconn()`
            getter = receiver.removesuffix("()")
            if canonical(self.project, summary, getter) & self.pool_getters:
                return f"a connection from `{getter.rsplit('.', 1)[-1]}().{method}()`"
            return None
        if canonical(self.project, summary, receiver) & self.clients:
            return f"a connection from `{receiver.rsplit('.', 1)[-1]}.{method}()`"
        return None

    def _pool_getters(self) -> set[tuple[str, str]]:
        """Functions returning a long-lived pool: a module-level or lazily set global, or the
        pool a cached function builds."""
        getters: set[tuple[str, str]] = set()
        for summary in self.project.summaries:
            functions = summary.functions
            cached_sites = {
                site.function
                for site in summary.sites
                if site.kind == "pool" and site.returned and functions[site.function].barrier
            }
            for key, fact in summary.functions.items():
                if key in cached_sites or any(
                    canonical(self.project, summary, name) & self.clients
                    for name in fact.returned_names
                ):
                    getters.add((summary.path, key))
        return getters

    def _find_helpers(self) -> None:
        """A fixpoint: a helper returning another helper's connection is a helper too."""
        pending = [
            (summary, key, callee)
            for summary in self.project.summaries
            for key, callee in sorted(summary.lifecycle.returned_acquisitions.items())
        ]
        changed = True
        while changed and pending:
            changed = False
            left = []
            for summary, key, callee in pending:
                what = self.what(summary, callee)
                if what is None:
                    left.append((summary, key, callee))
                else:
                    self.helpers[(summary.path, key)] = what
                    changed = True
            pending = left
