from __future__ import annotations

from collections.abc import Iterator

from dbpoollint.analysis.contexts import LONG_LIVED, PROCESS_EXIT, context_of, judges
from dbpoollint.analysis.model import CloseCall, ModuleSummary
from dbpoollint.checks.base import Finding, FixRequest, Project, Rule
from dbpoollint.checks.lifecycle_shared import (
    LongLived,
    Reached,
    close_targets,
    long_lived_clients,
    reached_from_hooks,
)


class MissingShutdown(Rule):
    """
    ## What it does
    Finds a long-lived pool or client that nothing closes on shutdown.

    Long-lived: created at module level, or a lazily initialised global. Reported when no
    `dispose` / `close` / `aclose` / `wait_closed` / `closeall` / `disconnect` on it is
    reachable from a shutdown path. Shutdown paths: the code
    after the `yield` of the function passed as `lifespan=` (FastAPI, Starlette),
    `on_event("shutdown")` / `add_event_handler("shutdown", f)`, Starlette `on_shutdown=[...]`,
    aiohttp `on_cleanup` / `on_shutdown` / `cleanup_ctx` (after its `yield`), Quart
    `after_serving`, Celery `worker_process_shutdown` / `worker_shutdown`, gunicorn `worker_exit`
    / `on_exit`, `atexit.register`, signal handlers, functions those call (across modules), and
    module-level code (a script closing what it made). `teardown_appcontext` /
    `teardown_request` run per request and do not count (see DPL303).

    Reported by default: async pools and clients (asyncpg, `create_async_engine`,
    `redis.asyncio`, Motor, ...), whose close must be awaited before the event loop stops, and
    sync pools whose pack says a plain exit is not enough (`psycopg_pool.ConnectionPool`: its
    worker threads are joined at interpreter shutdown). A sync client whose sockets simply
    close with the process (a SQLAlchemy engine in a gunicorn or Celery worker) is reported
    only with `contexts = ["process-exit"]`.

    Only projects that serve (a request/task handler or a lifecycle hook was found in the
    checked paths) are checked, and only code that runs in a long-lived service (see
    *Options*): a one-off script's connections end with its process, and serverless functions
    (AWS Lambda, Cloud Functions, Azure Functions) have no shutdown hook to run a close in.
    Tests are skipped.


    ## Why is this bad?
    When a worker stops (deploy, autoscaling, `--max-requests`), connections that were never
    closed are cut mid-protocol: the server logs `unexpected EOF on client connection`, poolers
    keep server connections busy until their timeouts, and asyncio clients warn about unclosed
    transports or lose in-flight work. Under frequent restarts the orphaned connections count
    against `max_connections`.

    ## Example
    ```python
    engine = create_engine(os.environ["DATABASE_URL"])
    app = Flask(__name__)
    ```

    ## Use instead
    ```python
    engine = create_engine(os.environ["DATABASE_URL"])
    atexit.register(engine.dispose)
    ```
    or, for an async client, close it in the lifespan:
    ```python
    @asynccontextmanager
    async def lifespan(app):
        yield
        await engine.dispose()
    ```

    ## Fix safety
    For a sync client created at module level the fix adds `atexit.register(<name>.<close>)`
    after the assignment (and `import atexit`). Unsafe: the close now runs at interpreter exit,
    which can block it while connections drain. There is no fix for async clients (an atexit
    callback cannot await; the message shows the lifespan shape) or for lazy globals.

    ## Options
    - `contexts`: judges long-lived services only. Add `"process-exit"` to report sync
      clients that a plain process exit closes too; `"one-off"` to judge migrations, CLIs and
      scripts; `"examples"` for sample code.

    ## References
    - [psycopg_pool: threads not stopped at interpreter shutdown](https://github.com/psycopg/psycopg/issues/954)
    - [FastAPI: lifespan events](https://fastapi.tiangolo.com/advanced/events/)
    - [SQLAlchemy: engine disposal](https://docs.sqlalchemy.org/en/20/core/connections.html#engine-disposal)
    - [redis-py: closing connections (`aclose`)](https://redis.readthedocs.io/en/stable/examples/asyncio_examples.html)
    """

    code = "DPL301"
    name = "missing-shutdown"
    contexts = LONG_LIVED
    severity = "warning"
    severity_reason = (
        "Nothing breaks while the service runs; the cost comes at every deploy or restart."
    )
    fix_title = "Close it at interpreter exit with atexit.register"

    def check(self, project: Project) -> Iterator[Finding]:
        serving = any(
            s.lifecycle.hooks or any(not _serverless(r.label) for r in s.roots)
            for s in project.summaries
        )
        if not serving or project.packs is None:
            return
        reached = reached_from_hooks(project, "shutdown")
        closed: set[tuple[str, str]] = set()
        for summary in project.summaries:
            for close in summary.lifecycle.closes:
                if _on_shutdown_path(summary, close, reached):
                    closed.update(close_targets(project, summary, close))
        for client in long_lived_clients(project):
            if client.summary.is_test or client.where in closed:
                continue
            if not judges(
                self.contexts, project.contexts, context_of(client.summary, client.fact.function)
            ):
                continue
            call = project.packs.client_call([client.fact.callee])
            if call is None or not call.close:
                continue
            # `Redis(connection_pool=pool)` borrows the pool: closing the pool is what counts.
            if any(client.fact.keyword(k) is not None for k in call.reuses_pool_keywords):
                continue
            asynchronous = call.asynchronous or call.awaitable
            # A sync client's sockets close with its process; only a client that needs more
            # than that (threads to stop) is worth a default finding.
            if not (asynchronous or call.close_at_exit or PROCESS_EXIT in project.contexts):
                continue
            yield self._finding(client, call.close[0], asynchronous, call.close_at_exit)

    def _finding(
        self, client: LongLived, method: str, asynchronous: bool, why: str = ""
    ) -> Finding:
        name = client.name
        kind = "lazily created global" if client.lazy else "module-level"
        consequence = why or "its connections are cut when the worker stops"
        if asynchronous and not why:
            consequence = "the event loop closes under it and in-flight queries are dropped"
        base = (
            f"the {kind} `{name}` ({client.fact.callee}) is never closed on shutdown: {consequence}"
        )
        request = None
        if asynchronous:
            message = (
                f"{base}; close it after the lifespan's yield: "
                f"`async def lifespan(app): yield; await {name}.{method}()`"
            )
        else:
            message = (
                f"{base}; register `atexit.register({name}.{method})` or close it in a "
                f"shutdown hook"
            )
            if not client.lazy:
                request = FixRequest("atexit-close", (("variable", name), ("method", method)))
        return Finding(
            client.summary.path, client.fact.span, self.code, message, fix_request=request
        )


def _serverless(label: str) -> bool:
    """Lambda / Cloud / Azure Functions have no shutdown hook for the code to run."""
    return any(word in label for word in ("Lambda", "Cloud Function", "Azure Function"))


def _on_shutdown_path(
    summary: ModuleSummary, close: CloseCall, reached: dict[tuple[str, str], Reached]
) -> bool:
    if close.registered:
        return close.hook == "shutdown"
    if close.function is None:
        return True  # module-level code: a script's end
    how = reached.get((summary.path, close.function))
    if how is None:
        return False
    # In a lifespan or cleanup context, only the code after `yield` runs at shutdown.
    return not (how.direct and how.hook.after_yield_only and not close.after_yield)
