from __future__ import annotations

from collections.abc import Iterator

from dbpoollint.analysis.contexts import LONG_LIVED
from dbpoollint.checks.base import Finding, FixRequest, Project, Rule
from dbpoollint.checks.knobs import (
    django_knob,
    literal_code,
    persistent_databases,
    pool_calls,
    versions,
)


class MissingStaleCheck(Rule):
    """
    ## What it does
    Finds a long-lived pool that hands out connections without checking them first: a
    SQLAlchemy engine without `pool_pre_ping` (or `pool_recycle`), also Flask-SQLAlchemy's
    `SQLAlchemy(app)` with neither in `engine_options` nor `SQLALCHEMY_ENGINE_OPTIONS`; an
    aiomysql pool without `pool_recycle`, a peewee pool without `stale_timeout`, and Django
    `DATABASES` entries with persistent connections (`CONN_MAX_AGE` non-zero or `None`) and no
    `CONN_HEALTH_CHECKS` (Django 4.1+), including `dj_database_url.config(conn_max_age=...)`.

    ## Why is this bad?
    Servers, proxies, NAT gateways and failovers close idle connections without telling the
    client. The next request to borrow one fails with `server closed the connection
    unexpectedly` / `MySQL server has gone away`, typically right after a quiet night or a
    database restart.

    ## Example
    ```python
    engine = create_engine(DATABASE_URL)
    ```

    ## Use instead
    ```python
    engine = create_engine(DATABASE_URL, pool_pre_ping=True)
    ```

    ## Fix safety
    The fix adds `pool_pre_ping=True` (SQLAlchemy), `pool_recycle=3600` (aiomysql),
    `stale_timeout=300` (peewee), `"CONN_HEALTH_CHECKS": True` to a Django `DATABASES` dict, or
    `conn_health_checks=True` to `dj_database_url.config(...)`/`parse(...)`. It is *safe*: the
    pool checks or retires connections before use; queries behave the same.

    ## Options
    - How this is decided: as for DPL201. PyMongo (server monitoring), psycopg_pool
      (`max_lifetime`/`max_idle`), asyncpg (`max_inactive_connection_lifetime`) and redis-py
      (retries on connection errors) retire or replace dead connections by default and are not
      reported. Django settings are read from any module assigning `DATABASES` at module level;
      `env.db()` and other helpers are not read. Django pinned below 4.1 has no
      `CONN_HEALTH_CHECKS` and is not reported.
    - Flask-SQLAlchemy: `SQLALCHEMY_ENGINE_OPTIONS` is read from module and config-class
      attributes, `app.config[...] = {...}` and `app.config.update(...)` anywhere in the checked
      files; any other mention, the legacy `SQLALCHEMY_POOL_*` keys, or an `apply_pool_defaults`
      override means "unknown" and nothing is reported. With a MySQL or unknown URI,
      Flask-SQLAlchemy's own `pool_recycle=7200` counts as the check. The fix goes into
      `engine_options={...}`.

    ## References
    - [SQLAlchemy: disconnect handling, pessimistic](https://docs.sqlalchemy.org/en/20/core/pooling.html#disconnect-handling-pessimistic)
    - [Django: CONN_HEALTH_CHECKS](https://docs.djangoproject.com/en/stable/ref/settings/#conn-health-checks)
    - [peewee: stale_timeout](https://docs.peewee-orm.com/en/latest/peewee/playhouse.html#PooledDatabase)
    """

    code = "DPL205"
    name = "missing-stale-check"
    contexts = LONG_LIVED
    severity = "warning"
    severity_reason = "Requests fail after the server or network drops idle connections."
    fix_title = "Turn on the library's stale-connection check"

    def check(self, project: Project) -> Iterator[Finding]:
        context = versions(project)
        for pool in pool_calls(project):
            for state in pool.states(project, "stale-check"):
                knob = state.knob
                if state.state != "missing" or knob.default != "off" or knob.fix_value is None:
                    continue
                keyword = knob.fix_keyword or knob.keywords[0]
                written = f"{keyword}={literal_code(knob.fix_value)}"
                described = context.describe(knob, pool.call.library, pool.summary.path)
                message = (
                    f"`{pool.fact.callee}()` has no {knob.label}: connections the server or "
                    f"network dropped are handed out as if alive ({described}); set {written}"
                    f"{state.note}"
                )
                request = pool.fix_request(knob, literal_code(knob.fix_value), "safe")
                yield Finding(
                    pool.summary.path, pool.fact.span, self.code, message, fix_request=request
                )
                break
        yield from self._django(project)

    def _django(self, project: Project) -> Iterator[Finding]:
        knob = django_knob(project, "stale-check")
        if knob is None or not versions(project).applies(knob):
            return
        described = versions(project).describe(knob, "Django")
        for summary, database in persistent_databases(project):
            if database.conn_health_checks is not None:
                continue
            assert database.conn_max_age is not None
            if database.via == "dict":
                written = '"CONN_HEALTH_CHECKS": True'
                request = FixRequest(
                    "add-argument",
                    (("keyword", "CONN_HEALTH_CHECKS"), ("value", "True"), ("safety", "safe")),
                )
            else:
                written = "conn_health_checks=True"
                request = FixRequest(
                    "add-argument",
                    (("keyword", "conn_health_checks"), ("value", "True"), ("safety", "safe")),
                )
            message = (
                f"DATABASES[{database.alias!r}] keeps connections open "
                f"(CONN_MAX_AGE={database.conn_max_age.code}) without CONN_HEALTH_CHECKS: a "
                f"connection the server dropped fails the next request ({described}); "
                f"add {written}"
            )
            yield Finding(summary.path, database.span, self.code, message, fix_request=request)
