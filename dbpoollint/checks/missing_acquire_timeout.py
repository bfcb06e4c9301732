from __future__ import annotations

from collections.abc import Iterator

from dbpoollint.analysis.contexts import LONG_LIVED
from dbpoollint.checks.base import Finding, Project, Rule
from dbpoollint.checks.knobs import fix_number, pool_calls, versions


class MissingAcquireTimeout(Rule):
    """
    ## What it does
    Finds a pool where waiting for a free connection can block forever: PyMongo/Motor without
    `waitQueueTimeoutMS` (its default is to wait forever), or an explicit no-limit wait
    (`pool_timeout=None` on SQLAlchemy, `timeout=None` on redis' `BlockingConnectionPool`,
    `timeout=0` on peewee's pools).

    ## Why is this bad?
    When the pool is exhausted (a slow query, a leak, a burst), requests queue up behind it
    with no end. Workers hang instead of failing fast, health checks time out, and the outage
    spreads to everything that calls this service.

    ## Example
    ```python
    client = MongoClient("mongodb://db:27017/shop")
    ```

    ## Use instead
    ```python
    client = MongoClient("mongodb://db:27017/shop", waitQueueTimeoutMS=30000)
    ```

    ## Fix safety
    When the keyword is missing, the fix adds the timeout from `[tool.dbpoollint.fix-values]`
    (`acquire-timeout`, default 30 s, written in the library's unit). It is *unsafe*: requests
    that used to wait now fail with a timeout error. Explicit no-limit values are not rewritten.

    ## Options
    - `[tool.dbpoollint.fix-values]`: `acquire-timeout`, `pool-timeout`.
    - How this is decided: as for DPL201. asyncpg and aiomysql take the timeout per
      `acquire()` call, not on the pool; those are not reported here.

    ## References
    - [PyMongo: waitQueueTimeoutMS](https://github.com/mongodb/mongo-python-driver/blob/4.17.0/pymongo/common.py#L116)
    - [redis-py: BlockingConnectionPool](https://redis.readthedocs.io/en/stable/connections.html#connection-pools)
    - [peewee: pool timeout](https://docs.peewee-orm.com/en/latest/peewee/playhouse.html#PooledDatabase)
    """

    code = "DPL203"
    name = "missing-acquire-timeout"
    contexts = LONG_LIVED
    severity = "warning"
    severity_reason = "When the pool runs dry, requests hang instead of failing fast."
    fix_title = "Add the configured acquire timeout"

    def check(self, project: Project) -> Iterator[Finding]:
        context = versions(project)
        for pool in pool_calls(project):
            for state in pool.states(project, "acquire-timeout"):
                knob = state.knob
                if state.state == "unbounded" and state.value is not None:
                    message = (
                        f"`{pool.fact.callee}()` sets {knob.label}={state.value.code}: waiting "
                        f"for a free connection can block forever; set a timeout"
                    )
                    yield Finding(pool.summary.path, pool.fact.span, self.code, message)
                    break
                if state.state == "missing" and knob.default == "forever":
                    described = context.describe(knob, pool.call.library, pool.summary.path)
                    message = (
                        f"`{pool.fact.callee}()` has no {knob.label}: waiting for a free "
                        f"connection can block forever ({described}); set {knob.label}{state.note}"
                    )
                    request = pool.fix_request(knob, fix_number(project, knob), "unsafe")
                    yield Finding(
                        pool.summary.path, pool.fact.span, self.code, message, fix_request=request
                    )
                    break
