from __future__ import annotations

from collections.abc import Iterator

from dbpoollint.analysis.contexts import LONG_LIVED
from dbpoollint.checks.base import Finding, Project, Rule
from dbpoollint.checks.knobs import fix_number, pool_calls, versions


class UnboundedPool(Rule):
    """
    ## What it does
    Finds a pool with no upper bound on its connections: explicitly (`max_overflow=-1`,
    `pool_size=0` on SQLAlchemy 2.0, `maxPoolSize=0`, `max_size=None`) or by the library's
    default for the version the project pins (redis-py before 8.0 creates up to `2**31`
    connections; `psycopg_pool.NullConnectionPool` has no limit).

    ## Why is this bad?
    Under load every waiting request opens one more connection, until the database refuses
    them all (`too many clients already`, `max number of clients reached`) and every service
    sharing it goes down, not just the one that leaked.

    ## Example
    ```python
    cache = redis.Redis(host="cache")  # redis-py < 8.0
    ```

    ## Use instead
    ```python
    cache = redis.Redis(host="cache", max_connections=50)
    ```

    ## Fix safety
    The fix adds the bound from `[tool.dbpoollint.fix-values]` (`max-connections`, default 50;
    `max-overflow`, default 10) when the keyword is missing. It is *unsafe*: under load requests
    now fail or wait where they used to open a connection. An explicit no-limit value
    (`max_overflow=-1`) is not rewritten.

    ## Options
    - `[tool.dbpoollint.fix-values]`: `max-connections`, `max-overflow`.
    - How this is decided: versions come from `uv.lock`, `poetry.lock`, `Pipfile.lock`,
      `requirements*.txt` (with `-r` includes) and `pyproject.toml` (PEP 621 and Poetry); with
      no pin the newest version is assumed, and the message says so. A value that cannot be
      read statically counts as set; `**options` that do not resolve to a dict in the same
      module, or a URL from the environment whose query could carry the setting, mean "may be
      set" and nothing is reported, unless every value the project's files give that URL
      (`.env*`, compose, settings defaults) lacks it: then the default is reported, and the
      message says the URL may still carry it where it is deployed. `NullPool`, `StaticPool`,
      a `pool=` passed in, and SQLite URLs are not pools. Test files are skipped.

    ## References
    - [redis-py 8.0.0: default max_connections 100](https://github.com/redis/redis-py/blob/v8.0.0/redis/connection.py#L2880)
    - [SQLAlchemy: QueuePool](https://docs.sqlalchemy.org/en/20/core/pooling.html#sqlalchemy.pool.QueuePool)
    - [PyMongo: maxPoolSize](https://pymongo.readthedocs.io/en/stable/api/pymongo/mongo_client.html)
    """

    code = "DPL201"
    name = "unbounded-pool"
    contexts = LONG_LIVED
    severity = "error"
    severity_reason = (
        "Under load the pool grows until the server refuses connections, for everyone."
    )
    fix_title = "Add the configured bound"

    def check(self, project: Project) -> Iterator[Finding]:
        context = versions(project)
        for pool in pool_calls(project):
            states = [*pool.states(project, "bound"), *pool.states(project, "size")]
            for state in states:
                knob = state.knob
                if state.state == "unbounded" and state.value is not None:
                    message = (
                        f"`{pool.fact.callee}()` sets {knob.label}={state.value.code}, which "
                        f"means no limit: under load the pool grows without bound; set a number"
                    )
                    yield Finding(pool.summary.path, pool.fact.span, self.code, message)
                    break
                if state.state == "missing" and knob.default == "unbounded":
                    described = context.describe(knob, pool.call.library, pool.summary.path)
                    message = (
                        f"`{pool.fact.callee}()` has no {knob.label}: under load the pool grows "
                        f"without bound ({described}); set {knob.label}{state.note}"
                    )
                    request = pool.fix_request(knob, fix_number(project, knob), "unsafe")
                    yield Finding(
                        pool.summary.path, pool.fact.span, self.code, message, fix_request=request
                    )
                    break
