from __future__ import annotations

from collections.abc import Iterator

from dbpoollint.analysis.model import CreationSite, ModuleSummary
from dbpoollint.analysis.propagate import PerCallUse
from dbpoollint.checks.base import Finding, FixRequest, Project, Rule
from dbpoollint.checks.knobs import line_length
from dbpoollint.checks.per_call import display_name, is_factory_site

NOUNS = {
    "engine": "engine",
    "pool": "connection pool",
    "redis": "Redis client",
    "redis_pool": "Redis connection pool",
    "mongo": "MongoDB client",
    "database": "database pool",
    "tortoise": "set of Tortoise connections",
}


class UncachedClientFactory(Rule):
    """
    ## What it does
    Finds a function that builds and returns a new pool or pooling client on every call
    (`def get_db(): return MongoClient(URI)`) while a handler in any module, a FastAPI
    dependency or a task calls it per request.

    Factories look like `def get_db(): return MongoClient(URI)`, `r = redis.Redis(...); return r`
    or `async def get_pool(): return await asyncpg.create_pool(DSN)`. They count as used per
    call when a request handler in any module of the checked tree calls them
    (`from .db import get_db`, `import app.db as db; db.get_db()`), when they are a FastAPI
    dependency (`Depends(get_db)`), a task, or a helper one of those calls. The finding sits on
    the constructor call inside the factory and names one handler that uses it.

    Returning a database or attribute of the new client (`return MongoClient(URI)["shop"]`)
    counts as returning it, and so does returning it inside a tuple, list or dict
    (`return engine, sessionmaker(engine)`), or on an object: stored on one and the object
    returned (`r = Repo(); r.client = redis.Redis(...); return r`, or a method's
    `self.client = Redis(); return self`). A lazily set global object (`if _repo is None:
    _repo = Repo(); _repo.client = Redis()`) or attribute (`if self.client is None:`) is a
    cache, not a factory. A factory whose callers keep its result in a
    guarded cache (`if key not in _clients: _clients[key] = make_client(key)`, a class-level
    dict, with or without a lock) is not used per call through those callers, also when the
    cache holds it inside a tuple, list or dict (`_clients[key] = (make_client(key), now)`) or
    through a local (`client = make_client(key)`, then `_clients[key] = (pid, client)`), and
    when the guard tests an entry read from the cache (`entry = _clients.get(key)`). A route,
    view or task that returns a client is not a factory: caching a handler is never the fix, so
    that construction stays DPL101's. A factory only called at module level, in startup or lifespan
    hooks, in scripts, CLI commands or tests is fine, and so is one decorated with
    `functools.cache`/`lru_cache` or one that returns a lazily initialised global.

    A single connection returned per request (`def get_db_connection(): return
    psycopg2.connect(DSN)`) stays DPL102's business. A factory whose callers close what they
    get (`engine = make_engine(); ...; engine.dispose()`, `with get_client() as client:`)
    builds a client for one use on purpose: caching it would hand out a closed client, so that
    site stays with DPL101. Returning something built on the client
    (`create_engine(url).connect()`) is not a factory either, and stays DPL101's.

    ## Why is this bad?
    The name promises a handle to *the* database, but each call builds a whole new pool: every
    request pays the connection handshake, and the old pool is never closed, so sockets (and,
    for MongoDB, monitor threads) pile up until the server answers `too many clients already`.
    The mistake hides well: the handler looks like it reuses a shared client.

    ## Example
    ```python
    # app/db.py
    def get_redis() -> redis.Redis:
        return redis.Redis.from_url(settings.redis_url)

    # app/routers/items.py
    @router.post("/{item_id}/views")
    def record_view(item_id: int):
        return {"views": get_redis().incr(f"item:{item_id}:views")}
    ```

    ## Use instead
    ```python
    # app/db.py
    @functools.cache
    def get_redis() -> redis.Redis:
        return redis.Redis.from_url(settings.redis_url)
    ```

    An `async def` factory cannot use `functools.cache` (it would cache a coroutine, which can
    be awaited once): keep the pool in a module-level variable set on first use, or build it in
    the app's lifespan.

    ## Fix safety
    Safe, for a module-level factory without parameters or decorators: a sync factory gets
    `@functools.cache` (two threads calling it first at the same instant may each build one;
    one is dropped, which is harmless for a process-wide client); an `async def` factory is
    renamed `_build_<name>` and a new `<name>` awaits it once under an `asyncio.Lock`, keeping
    the awaited client, never a coroutine. Factories whose callers close the result are not
    reported at all. Factories with parameters get no fix: the arguments may be per request, and
    a per-tenant client needs a keyed cache. Nor does a factory handing the client out on an
    object: the object may carry per-call state, and sharing it is the author's decision.

    ## Options
    - `select` / `ignore` / `per-file-ignores`; user packs (`packs`) add in-house constructors.

    ## References
    - [functools.cache](https://docs.python.org/3/library/functools.html#functools.cache)
    - [FastAPI: dependencies](https://fastapi.tiangolo.com/tutorial/dependencies/)
    - [redis-py: connection pools](https://redis.readthedocs.io/en/stable/connections.html)
    - [PyMongo FAQ: connection pooling](https://pymongo.readthedocs.io/en/stable/faq.html#how-does-connection-pooling-work-in-pymongo)
    """

    code = "DPL103"
    name = "uncached-client-factory"
    severity = "error"
    severity_reason = "Every caller builds a new pool, until the database refuses connections."
    fix_title = "Cache the factory"

    def check(self, project: Project) -> Iterator[Finding]:
        by_path = {summary.path: summary for summary in project.summaries}
        for summary in project.summaries:
            if summary.is_test:
                continue
            uses = project.used_per_call.get(summary.path, {})
            for site in summary.sites:
                use = uses.get(site.function)
                if use is None or not is_factory_site(project, summary, site):
                    continue
                message = _message(summary, site, use, by_path)
                length = line_length(project, summary.path)
                # No fix for a client on an object: it may carry per-call state, and sharing
                # it is the author's choice.
                request = (
                    None
                    if site.on_object
                    else FixRequest("cache-factory", (("line-length", length),))
                )
                yield Finding(summary.path, site.span, self.code, message, fix_request=request)


def _message(
    summary: ModuleSummary,
    site: CreationSite,
    use: PerCallUse,
    by_path: dict[str, ModuleSummary],
) -> str:
    factory = display_name(summary, site.function)
    noun = NOUNS.get(site.what, "client")
    root = use.root
    unit = _unit(root.label)
    if use.caller is None:
        registered = ""
        if root.registered_in and root.registered_in != summary.path:
            registered = f" (registered in {_relative(root.registered_in, summary.path)})"
        usage = f"runs {unit} as {_article(root.label)} {root.label}{registered}"
    else:
        handler = display_name(by_path[use.root_path], root.function)
        where = (
            "" if use.root_path == summary.path else f" ({_relative(use.root_path, summary.path)})"
        )
        usage = f"{root.label} `{handler}`{where} calls it {unit}"
        caller_path, caller_key = use.caller
        if (caller_path, caller_key) != (use.root_path, root.function):
            usage += f" through `{display_name(by_path[caller_path], caller_key)}`"
    fact = summary.functions[site.function]
    held = ""
    if site.on_object:
        held = ", kept on the object it returns," if fact.class_key is None else ""
        held = held or ", kept on the `self` it returns,"
        advice = "build the client once (module level or a cached getter) and hand it to the object"
    elif fact.is_async:
        advice = "keep one in a lazily initialised module-level variable (not functools.cache)"
    else:
        advice = "decorate the factory with @functools.cache"
    return (
        f"`{factory}()` builds a new {noun} with `{site.callee}()` on every call{held} and "
        f"{usage}; cache it: {advice}"
    )


def _unit(label: str) -> str:
    words = set(label.lower().split())
    if words & {"task", "job", "actor"}:
        return "per run"
    if words & {"lambda", "function"}:
        return "per invocation"
    return "per request"


def _article(label: str) -> str:
    return "an" if label[:1].lower() in "aeio" else "a"


def _relative(path: str, start: str) -> str:
    """`routers/items.py` for `app/routers/items.py` seen from `app/db.py`."""
    parts = path.replace("\\", "/").split("/")
    others = start.replace("\\", "/").split("/")
    common = 0
    while common < min(len(parts), len(others)) - 1 and parts[common] == others[common]:
        common += 1
    return "/".join(parts[common:])
