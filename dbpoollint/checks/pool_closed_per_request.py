from __future__ import annotations

from collections.abc import Iterator
from pathlib import PurePath

from dbpoollint.analysis.contexts import LONG_LIVED
from dbpoollint.checks.base import Finding, Project, Rule
from dbpoollint.checks.lifecycle_shared import (
    close_targets,
    long_lived_clients,
    reached_from_hooks,
)


class PoolClosedPerRequest(Rule):
    """
    ## What it does
    Finds a long-lived pool or engine disposed or closed in a per-request hook.

    Long-lived: created at module level, or a lazily initialised global. Per-request hooks:
    Flask/Quart `teardown_appcontext`,
    `teardown_request`, `after_request` (and blueprints' `teardown_app_request` /
    `after_app_request`), Django's `request_finished` signal, or a function one of them calls,
    in any checked module. Closing per-request things there (a session, `g.db`) is right and is
    not reported: only closes of a module-level client are.

    ## Why is this bad?
    These hooks run after *every* request. `engine.dispose()` there throws the whole pool away,
    so the next request opens new connections (a handshake per request, as if there were no
    pool), and requests running concurrently lose theirs. `pool.closeall()` or
    `client.close()` leave a closed object that the next request fails on (`connection pool is
    closed`).

    ## Example
    ```python
    engine = create_engine(DATABASE_URL)

    @app.teardown_appcontext
    def shutdown_session(exception=None):
        db_session.remove()
        engine.dispose()
    ```

    ## Use instead
    ```python
    @app.teardown_appcontext
    def shutdown_session(exception=None):
        db_session.remove()  # per-request cleanup only; dispose the engine at shutdown
    ```

    ## Fix safety
    No fix: removing the close changes when connections are released, and the right place for
    it (a shutdown hook) is the project's choice (see DPL301).

    ## Options
    - None.

    ## References
    - [Flask: SQLAlchemy in Flask (teardown removes the session)](https://flask.palletsprojects.com/en/stable/patterns/sqlalchemy/)
    - [SQLAlchemy: engine disposal](https://docs.sqlalchemy.org/en/20/core/connections.html#engine-disposal)
    """

    code = "DPL303"
    name = "pool-closed-per-request"
    contexts = LONG_LIVED
    severity = "error"
    severity_reason = (
        "Every request tears the pool down: a handshake per request, failures for concurrent ones."
    )

    def check(self, project: Project) -> Iterator[Finding]:
        clients = {c.where: c for c in long_lived_clients(project)}
        if not clients:
            return
        reached = reached_from_hooks(project, "per-request")
        for summary in project.summaries:
            for close in summary.lifecycle.closes:
                if close.registered:
                    if close.hook != "per-request":
                        continue
                    label = "a per-request hook"
                elif close.function is not None and (summary.path, close.function) in reached:
                    how = reached[(summary.path, close.function)]
                    label = f"{how.hook.label} hook `{how.hook.function}`"
                    if not how.direct:
                        label = f"`{close.function}`, which the {label} calls"
                else:
                    continue
                client = next(
                    (clients[t] for t in close_targets(project, summary, close) if t in clients),
                    None,
                )
                if client is None:
                    continue
                created = f"{PurePath(client.summary.path).name}:{client.fact.span.line}"
                message = (
                    f"`{client.name}.{close.method}()` runs in {label} after every request: the "
                    f"long-lived {client.fact.callee.rsplit('.', 1)[-1]}() from {created} is "
                    f"torn down per request, so the next one reconnects or fails; close it once "
                    f"at shutdown"
                )
                yield Finding(summary.path, close.span, self.code, message)
