from __future__ import annotations

from collections.abc import Iterator

from dbpoollint.checks.base import Finding, Project, Rule
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
    GraphQL resolver, or a function in the same module that one of those calls.

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
    Detection only in this release; the hoisting fix into a lazy singleton comes next.

    ## Options
    - `select` / `ignore` / `per-file-ignores`; user packs (`packs`) add in-house constructors.

    ## References
    - [SQLAlchemy: engine disposal](https://docs.sqlalchemy.org/en/20/core/connections.html#engine-disposal)
    - [redis-py: connection pools](https://redis.readthedocs.io/en/stable/connections.html)
    - [PyMongo FAQ: connection pooling](https://pymongo.readthedocs.io/en/stable/faq.html#how-does-connection-pooling-work-in-pymongo)
    """

    code = "DPL101"
    name = "client-in-handler"

    def check(self, project: Project) -> Iterator[Finding]:
        for found in per_call_sites(project, "pool"):
            site = found.site
            noun = NOUNS.get(site.what, "client with its own connection pool")
            message = (
                f"`{site.callee}()` builds a new {noun} {found.where()}; connections pile up "
                f"until the server refuses them: create it once at module level and reuse it"
            )
            yield Finding(found.summary.path, site.span, self.code, message)
