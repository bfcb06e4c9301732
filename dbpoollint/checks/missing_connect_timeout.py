from __future__ import annotations

from collections.abc import Iterator

from dbpoollint.analysis.contexts import LONG_LIVED
from dbpoollint.checks.base import Finding, Project, Rule
from dbpoollint.checks.knobs import fix_number, pool_calls, versions


class MissingConnectTimeout(Rule):
    """
    ## What it does
    Finds a pool or connection opener where opening a connection can hang: libpq's
    `connect_timeout` unset (`psycopg2.connect`, psycopg2 pools, SQLAlchemy on
    `postgresql://` / `postgresql+psycopg2://`, psycopg 3 before 3.1.13), redis-py before 8.0
    without `socket_connect_timeout`, aiomysql and mysql-connector without a connect timeout.

    ## Why is this bad?
    A database behind a dropped route, a full SYN queue or a failed-over address does not
    refuse the connection: it never answers. Without a timeout the worker waits for the
    kernel's TCP timeout (minutes), and during a failover every worker does.

    ## Example
    ```python
    conn = psycopg2.connect("postgresql://app@db/shop")
    ```

    ## Use instead
    ```python
    conn = psycopg2.connect("postgresql://app@db/shop", connect_timeout=10)
    ```

    ## Fix safety
    The fix adds the timeout from `[tool.dbpoollint.fix-values]` (`connect-timeout`, default
    10 s) as a keyword, or inside `connect_args={...}` for SQLAlchemy (creating it if absent).
    It is *unsafe*: a slow network that used to connect eventually now fails.

    ## Options
    - `[tool.dbpoollint.fix-values]`: `connect-timeout`.
    - How this is decided: as for DPL201. A `connect_timeout` in the URL or DSN counts; a URL
      from the environment may carry one, so nothing is reported for it. For SQLAlchemy the
      driver is read from the URL scheme; unknown schemes are not reported. `PGCONNECT_TIMEOUT`
      in the environment is not seen: add a `# noqa: DPL204` if you rely on it.

    ## References
    - [libpq: connect_timeout](https://www.postgresql.org/docs/current/libpq-connect.html#LIBPQ-CONNECT-CONNECT-TIMEOUT)
    - [redis-py 8.0.0 defaults](https://github.com/redis/redis-py/blob/v8.0.0/redis/_defaults.py#L8)
    - [psycopg 3: connect_timeout default](https://github.com/psycopg/psycopg/blob/3.3.4/psycopg/psycopg/conninfo.py#L23)
    """

    code = "DPL204"
    name = "missing-connect-timeout"
    contexts = LONG_LIVED
    severity = "warning"
    severity_reason = "An unreachable server hangs the worker instead of failing fast."
    fix_title = "Add the configured connect timeout"

    def check(self, project: Project) -> Iterator[Finding]:
        context = versions(project)
        for pool in pool_calls(project, ("pool", "opener")):
            for state in pool.states(project, "connect-timeout"):
                knob = state.knob
                if state.state != "missing" or knob.default != "none":
                    continue
                described = context.describe(knob, pool.call.library, pool.summary.path)
                message = (
                    f"`{pool.fact.callee}()` has no {knob.label}: opening a connection can hang "
                    f"until the OS gives up ({described}); set a connect timeout{state.note}"
                )
                request = pool.fix_request(knob, fix_number(project, knob), "unsafe")
                yield Finding(
                    pool.summary.path, pool.fact.span, self.code, message, fix_request=request
                )
                break
