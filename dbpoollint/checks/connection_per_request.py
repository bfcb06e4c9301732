from __future__ import annotations

from collections.abc import Iterator

from dbpoollint.checks.base import Finding, Project, Rule
from dbpoollint.checks.per_call import per_call_sites


class ConnectionPerRequest(Rule):
    """
    ## What it does
    Finds a single-connection opener (`psycopg2.connect`, `asyncpg.connect`, `pymysql.connect`,
    `MySQLdb.connect`, `mysql.connector.connect`, `psycopg.connect`, `aiomysql.connect`, peewee
    databases, ...) that runs in a per-call context with no pool behind it. The per-call
    contexts and the exceptions are those of DPL101.

    ## Why is this bad?
    Each request pays a TCP and TLS handshake plus server-side authentication and a new backend
    process (PostgreSQL forks one per connection). Under a traffic spike the number of open
    connections follows the number of concurrent requests, past `max_connections`.

    ## Example
    ```python
    @app.route("/users/<int:user_id>")
    def show_user(user_id):
        conn = psycopg2.connect(DSN)
        ...
    ```

    ## Use instead
    ```python
    pool = psycopg2.pool.ThreadedConnectionPool(1, 10, DSN)

    @app.route("/users/<int:user_id>")
    def show_user(user_id):
        conn = pool.getconn()
        try:
            ...
        finally:
            pool.putconn(conn)
    ```

    ## Fix safety
    No fix: moving from a connection to a pool changes how the code acquires and releases
    connections. The message names the pool to use.

    ## Options
    - `select` / `ignore` / `per-file-ignores`.

    ## References
    - [psycopg2: connection pools](https://www.psycopg.org/docs/pool.html)
    - [asyncpg: connection pools](https://magicstack.github.io/asyncpg/current/usage.html#connection-pools)
    - [PostgreSQL: max_connections](https://www.postgresql.org/docs/current/runtime-config-connection.html)
    """

    code = "DPL102"
    name = "connection-per-request"
    severity = "warning"
    severity_reason = (
        "It works, but each request pays the handshake and holds its own server connection."
    )

    def check(self, project: Project) -> Iterator[Finding]:
        for found in per_call_sites(project, "opener"):
            site = found.site
            hint = site.pool_hint or "a pool created once at module level"
            message = (
                f"`{site.callee}()` opens a new connection {found.where()}; under load open "
                f"connections follow concurrent requests past the server's limit: use {hint}"
            )
            yield Finding(found.summary.path, site.span, self.code, message)
