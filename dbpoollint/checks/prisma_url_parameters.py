from __future__ import annotations

from collections.abc import Iterator

from dbpoollint.checks.base import Finding, FixRequest, Project, Rule
from dbpoollint.checks.url_sources import UrlResolver

# Query parameters that only Prisma's engine reads; libpq and asyncpg reject or misread them.
PRISMA_PARAMS = (
    "pgbouncer",
    "connection_limit",
    "pool_timeout",
    "socket_timeout",
    "statement_cache_size",
    "schema",
)
REPORTED_PARAMS = ("pgbouncer", "connection_limit", "pool_timeout")
POSTGRES_SCHEMES = ("postgres", "postgresql")


class PrismaUrlParameters(Rule):
    """
    ## What it does
    Finds Prisma-only query parameters in a PostgreSQL URL that a Python driver uses.

    The parameters: `pgbouncer=true`, `connection_limit`, `pool_timeout`; the drivers:
    SQLAlchemy, psycopg2, psycopg 3, asyncpg, psycopg_pool, ... The URL is followed from the
    call's URL argument as in DPL401 (literals, environment reads through `.env*` and compose
    files, settings fields).

    ## Why is this bad?
    Projects that share a `DATABASE_URL` between a Prisma (Node) service and Python code copy
    Prisma's parameters along. libpq rejects unknown URL parameters (`invalid URI query
    parameter: "pgbouncer"`), so psycopg2/psycopg and SQLAlchemy on them fail to connect;
    asyncpg sends them to the server as settings (`unrecognized configuration parameter
    "pgbouncer"`). The intent (a transaction pooler; a pool limit) needs the Python driver's own
    settings: DPL402's `statement_cache_size=0`, and the pool's size and timeout arguments.

    ## Example
    ```python
    engine = create_engine("postgresql://app@db:6432/app?pgbouncer=true&connection_limit=5")
    ```

    ## Use instead
    ```python
    engine = create_engine("postgresql://app@db:6432/app", pool_size=5)
    ```

    ## Fix safety
    Unsafe: the fix removes the parameters from a URL literal written in the call (or in the
    default of an `os.getenv` there). The program connects afterwards, but the pool size or
    timeout the parameter meant is not carried over. Nothing is edited when the URL comes from an
    environment file or another module: edit the URL there.

    ## Options
    - None.

    ## References
    - [Prisma: connection URL arguments](https://www.prisma.io/docs/orm/overview/databases/postgresql#arguments)
    - [libpq: connection URIs](https://www.postgresql.org/docs/current/libpq-connect.html#LIBPQ-CONNSTRING-URIS)
    """

    code = "DPL403"
    name = "prisma-url-parameters"
    severity = "error"
    severity_reason = "libpq rejects the URL: the connection fails."
    fix_title = "Remove the Prisma-only parameters from the URL"

    def check(self, project: Project) -> Iterator[Finding]:
        resolver = UrlResolver(project)
        for summary in project.reported_summaries():
            for fact in summary.client_calls:
                for resolved in resolver.call_urls(summary, fact):
                    if resolved.url.scheme not in POSTGRES_SCHEMES:
                        continue
                    found = [k for k, _ in resolved.url.params if k in REPORTED_PARAMS]
                    if not found:
                        continue
                    names = ", ".join(f"`{k}`" for k in dict.fromkeys(found))
                    message = (
                        f"Prisma-only URL parameter(s) {names} in {resolved.described()}: "
                        f"`{fact.callee}` hands them to libpq/asyncpg, which reject them: remove "
                        f"them and use the driver's own settings (DPL402, pool arguments)"
                    )
                    request = None
                    if resolved.at_call:
                        request = FixRequest(
                            "strip-url-params", (("params", ",".join(PRISMA_PARAMS[:3])),)
                        )
                    yield Finding(summary.path, fact.span, self.code, message, fix_request=request)
                    break
