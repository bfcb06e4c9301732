from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from dbpoollint.analysis.model import ClientCallFact, ForkResetFact, ModuleSummary
from dbpoollint.checks.base import Finding, Project, Rule
from dbpoollint.checks.knobs import call_options, packs, unpooled
from dbpoollint.deploy import read_deployment
from dbpoollint.deploy.imports import one_off, reach, reach_from
from dbpoollint.deploy.model import Deployment

SAFE_START_METHODS = {"spawn", "forkserver"}


@dataclass(frozen=True)
class _ImportTimeClient:
    summary: ModuleSummary
    fact: ClientCallFact
    qualname: str
    name: str
    library: str
    what: str
    sqlalchemy: bool


class ClientBeforeFork(Rule):
    """
    ## What it does
    Finds a pool, client or connection created at import time (at module level) in a module
    that a forking server loads before it forks, with nothing resetting it in the child:

    - gunicorn with `preload_app = True` / `--preload` (in `gunicorn.conf.py`, the command in a
      Procfile, Dockerfile `CMD`, compose `command`, or `GUNICORN_CMD_ARGS`), when the app
      module imports the pool's module;
    - Celery's prefork pool (the default; `--pool threads|gevent|eventlet|solo` does not fork),
      when the worker imports the module (a task module, or one a task module imports);
    - `os.fork()`, `multiprocessing.Process` / `Pool` and `ProcessPoolExecutor` in the module
      or in one that imports it, unless that module asks for the `spawn` or `forkserver` start
      method (`fork` is the default on Linux before Python 3.14).

    It is clean when the child resets the pool: `engine.dispose(close=False)` anywhere, or any
    dispose/close of it in gunicorn's `post_fork` / `post_worker_init`, a Celery
    `worker_process_init` handler, or an `os.register_at_fork(after_in_child=...)` callback;
    when the engine uses `NullPool`; when the client resets itself after a fork (redis-py
    checks its pid); and when the pool is created lazily, after the fork.

    ## Why is this bad?
    A forked child inherits the parent's open sockets. Two processes then read and write the
    same connection: queries get each other's results, the protocol desynchronises
    (`error with status PGRES_TUPLES_OK and no message from the libpq`, `lost synchronization
    with server`), and when one process closes the socket the other's connection dies
    (`server closed the connection unexpectedly`). SQLAlchemy's documentation: the pooled
    connections must not be shared with a forked process.

    ## Example
    ```python
    # app/db.py, served by `gunicorn --preload app.main:app`
    engine = create_engine(DATABASE_URL)
    ```

    ## Use instead
    ```python
    # gunicorn.conf.py
    def post_fork(server, worker):
        from app.db import engine

        engine.dispose(close=False)  # the child starts with an empty pool
    ```

    ## Fix safety
    No fix: where the reset belongs (a gunicorn hook, a Celery signal, the child's entry point)
    depends on the deployment.

    ## Options
    - `select` / `ignore` / `per-file-ignores`.

    ## References
    - [SQLAlchemy: Using Connection Pools with Multiprocessing or os.fork()](https://docs.sqlalchemy.org/en/20/core/pooling.html#using-connection-pools-with-multiprocessing-or-os-fork)
    - [psycopg: connections are not safe to share across fork](https://www.psycopg.org/psycopg3/docs/advanced/pool.html)
    - [libpq: a connection must not be used by a forked child](https://www.postgresql.org/docs/current/libpq-connect.html)
    - [PyMongo: MongoClient is not fork-safe](https://pymongo.readthedocs.io/en/stable/faq.html#is-pymongo-fork-safe)
    - [gunicorn: preload_app, post_fork](https://docs.gunicorn.org/en/stable/settings.html#preload-app)
    - [Celery: worker_process_init](https://docs.celeryq.dev/en/stable/userguide/signals.html#worker-process-init)
    - [Python 3.14: the default start method is no longer fork](https://docs.python.org/3/whatsnew/3.14.html#multiprocessing)
    """

    code = "DPL105"
    name = "client-before-fork"
    severity = "error"
    severity_reason = "Forked workers share one socket: replies cross between processes."

    def check(self, project: Project) -> Iterator[Finding]:
        clients = list(_import_time_clients(project))
        if not clients:
            return
        deployment = read_deployment(project.files, project.budget)
        for client in clients:
            reason = _fork_reason(project, deployment, client)
            if reason is None:
                continue
            source, hint = reason
            fix = (
                f"`{client.name}.dispose(close=False)` in {hint}"
                if client.sqlalchemy
                else f"create it in the child instead (in {hint}), or close and recreate it there"
            )
            message = (
                f"`{client.name}` ({client.library} {client.what}) is created at import time "
                f"and inherited across fork: {source}; reset it in the child: {fix}"
            )
            yield Finding(client.summary.path, client.fact.span, self.code, message)


def _import_time_clients(project: Project) -> Iterator[_ImportTimeClient]:
    pack_set = packs(project)
    for summary in project.summaries:
        if summary.is_test or one_off(summary.path, summary.module):
            continue
        for fact in summary.client_calls:
            if fact.function is not None or not fact.target or "." in fact.target:
                continue
            call = pack_set.client_call([fact.callee])
            if call is None or call.fork_safe:
                continue
            if any(k for k, _ in fact.keywords if k in call.reuses_pool_keywords):
                continue
            if fact.kind == "pool" and unpooled(call, call_options(summary, fact, call)):
                continue
            qualname = f"{summary.module}.{fact.target}" if summary.module else fact.target
            yield _ImportTimeClient(
                summary,
                fact,
                qualname,
                fact.target,
                call.library,
                call.what,
                call.library == "SQLAlchemy",
            )


def _fork_reason(
    project: Project, deployment: Deployment, client: _ImportTimeClient
) -> tuple[str, str] | None:
    """(what forks, where the reset belongs), or None when nothing forks it unreset."""
    if _reset_anywhere(project, client):
        return None
    celery_found = False
    for process in deployment.processes:
        celery_found = celery_found or process.server == "celery"
        why = process.forks_after_import
        reached = reach(project, process)
        if not why or (reached is not None and client.summary.module not in reached):
            continue
        if process.server == "gunicorn":
            if _matches(deployment.gunicorn_resets.get("post_fork", set()), client) or _matches(
                deployment.gunicorn_resets.get("post_worker_init", set()), client
            ):
                continue
            return why, "gunicorn's `post_fork(server, worker)` hook"
        if not _celery_reset(project, client):
            return why, "a `@worker_process_init.connect` handler"
    if not celery_found and not _celery_reset(project, client):
        tasks = _celery_task_modules(project)
        if tasks and _imported_by(project, client, tasks):
            return (
                "Celery's prefork pool (the default) forks worker processes after importing "
                "the task modules",
                "a `@worker_process_init.connect` handler",
            )
    for summary in project.summaries:
        forks = summary.process.forks
        if not forks or summary.process.start_methods & SAFE_START_METHODS:
            continue
        if summary is not client.summary and not _imports(summary, client):
            continue
        fork = forks[0]
        default = (
            ""
            if fork.what == "os.fork()"
            else " (fork is the default start method on Linux before Python 3.14)"
        )
        return (
            f"{fork.what} at {summary.path.rsplit('/', 1)[-1]}:{fork.span.line}{default}",
            "the child before it uses it, or `os.register_at_fork(after_in_child=...)`",
        )
    return None


def _matches(targets: set[str], client: _ImportTimeClient, where: str | None = None) -> bool:
    """A reset of this client: its qualified name, or its plain name inside its own module
    (`where` is the module the reset is written in; None: names are absolute)."""
    local = where == client.summary.module
    return any(t == client.qualname or (local and t == client.name) for t in targets)


def _reset_anywhere(project: Project, client: _ImportTimeClient) -> bool:
    """`x.dispose(close=False)` anywhere, or a reset in a register_at_fork callback."""
    for summary in project.summaries:
        facts = summary.process
        if _matches(facts.disposed_keeping_connections, client, summary.module):
            return True
        for reset in facts.resets:
            if reset.hook.startswith("os.register_at_fork") and _reset_targets(
                summary, reset, client
            ):
                return True
    return False


def _celery_reset(project: Project, client: _ImportTimeClient) -> bool:
    return any(
        _reset_targets(summary, reset, client)
        for summary in project.summaries
        for reset in summary.process.resets
        if reset.hook == "worker_process_init"
    )


def _reset_targets(summary: ModuleSummary, reset: ForkResetFact, client: _ImportTimeClient) -> bool:
    targets = set(reset.targets)
    if reset.function:
        targets |= summary.process.function_resets.get(reset.function, set())
    return _matches(targets, client, summary.module)


def _celery_task_modules(project: Project) -> list[ModuleSummary]:
    return [
        s
        for s in project.summaries
        if not s.is_test and any("celery" in r.label.lower() for r in s.roots)
    ]


def _imports(summary: ModuleSummary, client: _ImportTimeClient) -> bool:
    module = client.summary.module
    return any(
        name == module or name == client.qualname or name.startswith(module + ".")
        for name in summary.process.imports
    )


def _imported_by(
    project: Project, client: _ImportTimeClient, importers: list[ModuleSummary]
) -> bool:
    reached = reach_from(project, [s.module for s in importers])
    return client.summary.module in reached
