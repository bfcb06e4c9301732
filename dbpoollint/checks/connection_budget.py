from __future__ import annotations

from collections.abc import Iterator

from dbpoollint.checks.base import Finding, Project, Rule
from dbpoollint.deploy.budget import Row, ServerBudget, compute_budget, server_side


class ConnectionBudgetExceeded(Rule):
    """
    ## What it does
    Adds up the worst-case connections to each database server and reports every pool of a
    server whose total is over its limit. Per pool: its maximum per process (`pool_size +
    max_overflow`, `max_size`, `maxPoolSize`, `max_connections`, or the library's default for
    the pinned version), times the processes that run it: gunicorn workers (`-w`,
    `gunicorn.conf.py`, `GUNICORN_CMD_ARGS`, `$WEB_CONCURRENCY`), uvicorn/hypercorn
    `--workers`, Celery `--concurrency` / `worker_concurrency` (default: the CPU count), times
    replicas (compose `deploy.replicas` / `scale`, Kubernetes `replicas` or the HPA's
    `maxReplicas`, Helm `replicaCount` / `autoscaling.maxReplicas`). A process runs a pool when
    its entry module (`gunicorn app.main:app`, `celery -A proj`) imports the pool's module,
    directly or not; every process counts when the entry is not known.

    The limit is `[tool.dbpoollint.budget] max-connections`, else what the project commits
    (`postgres -c max_connections=N` in compose or a Kubernetes manifest, `postgresql.conf`),
    minus `reserved-connections` (PostgreSQL keeps 3 for superusers by default). Behind
    PgBouncer (`pgbouncer.ini` or a PgBouncer compose service) the client side is compared with
    its `max_client_conn`, and its `default_pool_size` x databases with the server's limit.
    Without a limit nothing is reported; `dbpoollint budget` prints the table either way.
    Long-lived services only: tests, migrations and scripts are not counted.

    ## Why is this bad?
    Each pool opens connections up to its maximum under load, in every worker of every
    replica. When the sum passes the server's limit, the last processes to connect fail with
    `FATAL: sorry, too many clients already` or `remaining connection slots are reserved`,
    usually during a traffic spike or a rolling deploy, when old and new replicas overlap.

    ## Example
    ```python
    # db.py; gunicorn.conf.py: workers = 4; compose: deploy.replicas: 3, max_connections=100
    engine = create_engine(DATABASE_URL, pool_size=10, max_overflow=20)  # 30 x 4 x 3 = 360
    ```

    ## Use instead
    ```python
    # 8 x 4 x 3 = 96 connections, within 100 - 3 reserved
    engine = create_engine(DATABASE_URL, pool_size=5, max_overflow=3)
    ```

    ## Fix safety
    No fix: the right split between pool size, workers and replicas is a capacity decision.
    The message shows each factor and the file and line it came from.

    ## Options
    - `[tool.dbpoollint.budget]`: `max-connections`, `reserved-connections`, and `replicas` /
      `workers` for the counts the deployment files do not say (the Celery default, a
      Procfile's dyno count).

    ## References
    - [PostgreSQL: max_connections, superuser_reserved_connections](https://www.postgresql.org/docs/current/runtime-config-connection.html)
    - [SQLAlchemy: pool_size and max_overflow](https://docs.sqlalchemy.org/en/20/core/pooling.html#sqlalchemy.pool.QueuePool)
    - [gunicorn: workers (default `$WEB_CONCURRENCY` or 1)](https://docs.gunicorn.org/en/stable/settings.html#workers)
    - [Celery: --concurrency (default: the number of CPUs)](https://docs.celeryq.dev/en/stable/reference/cli.html#celery-worker)
    - [PgBouncer: max_client_conn, default_pool_size](https://www.pgbouncer.org/config.html)
    """

    code = "DPL501"
    name = "connection-budget-exceeded"
    severity = "error"
    severity_reason = "At full scale the server refuses connections."

    def check(self, project: Project) -> Iterator[Finding]:
        budget = compute_budget(project)
        for server in budget.servers:
            if not server.over:
                continue
            pools: dict[int, list[Row]] = {}
            for row in server.rows:
                pools.setdefault(id(row.pool), []).append(row)
            for rows in pools.values():
                yield self._finding(server, rows)
        for pooler, total, limits in server_side(budget):
            limit = limits[0] if limits else None
            if total is None or limit is None or limit.max_connections.value is None:
                continue
            reserved = limit.reserved.value if limit.reserved and limit.reserved.value else 0
            allowed = limit.max_connections.value - reserved
            if total <= allowed:
                continue
            for server in budget.servers:
                if server.pooler is not pooler:
                    continue
                for row in server.rows[:1]:
                    message = (
                        f"PgBouncer opens up to {total} server connections "
                        f"({pooler.default_pool_size.describe()} x {pooler.pools.describe()}), "
                        f"over the {allowed} the server allows "
                        f"({limit.max_connections.describe()})"
                    )
                    yield Finding(
                        row.pool.summary.path, row.pool.call.fact.span, self.code, message
                    )

    def _finding(self, server: ServerBudget, rows: list[Row]) -> Finding:
        pool = rows[0].pool
        total = "unbounded" if server.total is None else str(server.total)
        limit = server.limit.describe() if server.limit else "?"
        reserved = f" - {server.reserved.describe()} reserved" if server.reserved else ""
        parts = []
        for row in rows:
            part = f"{pool.maximum.describe()}"
            if row.process is not None:
                part += f" x {row.process.workers.describe()} {row.process.server} workers"
                part += f" x {row.process.replicas.describe()} replicas"
            parts.append(f"{part} = {row.total if row.total is not None else '?'}")
        mine = f"`{pool.name}`: " + "; ".join(parts)
        others = len({id(r.pool) for r in server.rows}) - 1
        rest = f"; {others} other pool(s) on this server (`dbpoollint budget`)" if others else ""
        available = server.available if server.available is not None else "?"
        message = (
            f"worst case {total} connections to {server.server}, over the {available} allowed "
            f"({server.compared_with} {limit}{reserved}): {mine}{rest}"
        )
        return Finding(pool.summary.path, pool.call.fact.span, self.code, message)
