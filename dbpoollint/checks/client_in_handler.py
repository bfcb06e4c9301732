from __future__ import annotations

from collections.abc import Iterator

from dbpoollint.analysis.model import ModuleSummary
from dbpoollint.checks.base import Finding, FixRequest, Param, Project, Rule
from dbpoollint.checks.knobs import line_length
from dbpoollint.checks.per_call import per_call_sites

NOUNS = {
    "engine": "engine with its own connection pool",
    "pool": "connection pool",
    "redis": "Redis client with its own connection pool",
    "redis_pool": "Redis connection pool",
    "mongo": "MongoDB client with its own pool and monitor threads",
    "database": "database pool",
    "tortoise": "set of Tortoise connections",
}


class ClientInHandler(Rule):
    """
    ## What it does
    Finds a pool constructor (`sqlalchemy.create_engine`, `asyncpg.create_pool`, `redis.Redis`,
    `pymongo.MongoClient`, `psycopg_pool.ConnectionPool`, ...) that runs in a per-call context:
    a request handler, a dependency, middleware, a task, a serverless handler, a gRPC method, a
    GraphQL resolver, or any function one of those reaches, in the same module or across
    modules (through imports, package re-exports, methods, and classes whose `__init__` builds
    the client). The message then names the handler and the chain of calls
    (`api/routes.py: list_items -> utils/db.py: sql_exec`).

    Per-call roots include arq jobs (`WorkerSettings.functions`, `cron(...)`), Huey and TaskIQ
    tasks, Django Channels consumers, ASGI middleware classes (`__call__(self, scope, receive,
    send)`, `dispatch`) and pydantic validators (not on settings classes). A client kept on
    `flask.g`, directly or through a local (`pool = ConnectionPool(...); g.pool = pool`), is
    built once per request context; one on `app.state`, `app.extensions` or a module global is
    not.

    A client built only when the caller passes none (`def run(sql, conn=None): if conn is
    None: conn = create_engine(URL)`, `conn = conn or create_engine(URL)`, `create_engine(URL)
    if conn is None else conn`) is per call where a function that runs per call leaves the
    argument out (or passes `None`); when every such caller passes its own, it is not.

    Not per call: module level, `functools.cache`/`lru_cache`d getters, lazily initialised
    globals (`global _engine` / `if _engine is None`), class or function attribute caches,
    startup and lifespan hooks, app factories, `if __name__ == "__main__":`, CLI commands,
    tests and conftest, and `Redis(connection_pool=shared_pool)`, which borrows a pool.

    ## Why is this bad?
    A pool is meant to live as long as the process. Built per request, every request pays the
    connection handshake and leaves a pool behind; under load the connections pile up until the
    server answers `too many clients already` and the service falls over.

    ## Example
    ```python
    @app.get("/items")
    def list_items():
        engine = create_engine(os.environ["DATABASE_URL"])
        with engine.connect() as conn:
            return conn.execute(text("select * from items")).all()
    ```

    ## Use instead
    ```python
    engine = create_engine(os.environ["DATABASE_URL"])

    @app.get("/items")
    def list_items():
        with engine.connect() as conn:
            return conn.execute(text("select * from items")).all()
    ```

    ## Fix safety
    The fix replaces the call with a call to a generated getter after the imports
    (`get_engine()`, `get_redis()`, ... unique in the module; identical constructions share one):

    - *safe* when every argument is a literal, a module-level constant or settings object, or an
      environment read (`os.environ[...]`, `os.getenv(...)`), and the handler does not close it;
    - *unsafe* when an argument is a parameter of a helper (a config object passed down), or
      the handler closes the client: the close is removed, which changes behaviour;
    - *none* when an argument is request data (a handler parameter, `flask.request`, a local):
      per-tenant clients need a keyed cache. Also none inside `with` (it closes the client), for
      an awaitable constructor that is not awaited directly, or a constructor imported locally.

    The sync getter uses double-checked locking with `threading.Lock`: one client even when
    many threads call it first at once (`functools.cache` can build twice under a race). An
    awaited constructor (`asyncpg.create_pool`) gets an `async` getter guarded by an
    `asyncio.Lock`, caching the awaited pool, never a coroutine. An async client built
    synchronously (`redis.asyncio.Redis`, `create_async_engine`, Motor) gets a plain lazy getter:
    nothing can interleave between the check and the assignment in one event loop.

    When the handler closed the client (unsafe), the close moves to the module's shutdown hook
    if it has one: after the `yield` of an `@asynccontextmanager` lifespan (in its `finally`
    when the yield sits in a `try`), or an `@atexit.register` function for sync clients in a
    module that imports `atexit`. Otherwise closing the shared client is DPL301's business.

    ## Options
    - `select` / `ignore` / `per-file-ignores`; user packs (`packs`) add in-house constructors.

    ## References
    - [SQLAlchemy: engine disposal](https://docs.sqlalchemy.org/en/20/core/connections.html#engine-disposal)
    - [redis-py: connection pools](https://redis.readthedocs.io/en/stable/connections.html)
    - [PyMongo FAQ: connection pooling](https://pymongo.readthedocs.io/en/stable/faq.html#how-does-connection-pooling-work-in-pymongo)
    """

    code = "DPL101"
    name = "client-in-handler"
    severity = "error"
    severity_reason = (
        "Under load every request opens a new pool, until the database refuses connections."
    )
    fix_title = "Hoist into a module-level lazy singleton"

    def check(self, project: Project) -> Iterator[Finding]:
        for found in per_call_sites(project, "pool"):
            site = found.site
            noun = NOUNS.get(site.what, "client with its own connection pool")
            if _closed_where_made(found.summary, site.function, site.callee):
                # `with Redis(...) as client:` closes it again: nothing piles up, but every
                # call pays the connection handshake (DPL102's point), sync or async alike.
                message = (
                    f"`{site.callee}()` builds a new {noun} {found.where()} and closes it "
                    f"after: every call pays the connection handshake; create it once at "
                    f"module level and reuse it"
                )
            else:
                message = (
                    f"`{site.callee}()` builds a new {noun} {found.where()}; connections pile "
                    f"up until the server refuses them: create it once at module level and "
                    f"reuse it"
                )
            in_handler = found.reason is not None and found.reason.via is None
            request = None
            if found.reason is not None or found.chain:
                params: tuple[tuple[str, Param], ...] = (
                    ("callee", site.callee),
                    ("in_handler", in_handler),
                    ("line-length", line_length(project, found.summary.path)),
                )
                planned = found.summary.hoist_plans.get((site.span.line, site.span.column))
                if planned is not None:
                    # What the codemod will do, known from the walk: text output needs no codemod.
                    params += (("planned", planned[0 if in_handler else 1] or "none"),)
                request = FixRequest("hoist", params)
            yield Finding(found.summary.path, site.span, self.code, message, fix_request=request)


def _closed_where_made(summary: ModuleSummary, function: str, callee: str) -> bool:
    """The function closes what it built (`with`/`async with`, or `.close()` on the result)."""
    fact = summary.functions.get(function)
    return fact is not None and callee in fact.closes_results_of
