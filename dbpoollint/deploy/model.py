"""What the deployment files say about processes and servers, each number with its origin."""

from __future__ import annotations

from dataclasses import dataclass, field, replace


@dataclass(frozen=True)
class Factor:
    """A count and where it came from: `4 (-w 4, Procfile:1)`. `value` None: unknown."""

    value: int | None
    where: str  # "Procfile:1", "gunicorn default", "[tool.dbpoollint.budget]"
    note: str = ""  # "-w 4", "workers = 4", "$WEB_CONCURRENCY (default 1)"
    assumed: bool = False  # a default or a guess, not a number the project commits

    def describe(self) -> str:
        shown = "?" if self.value is None else str(self.value)
        detail = ", ".join(part for part in (self.note, self.where) if part)
        return f"{shown} ({detail})" if detail else shown


ONE = Factor(1, "", "one process", assumed=True)
ONE_REPLICA = Factor(1, "", "no replica count found", assumed=True)


@dataclass(frozen=True)
class Process:
    """One kind of long-lived process: a gunicorn web server, a Celery worker, ...

    `entry` is the module the server imports (`app.main` for `gunicorn app.main:app`, `proj`
    for `celery -A proj worker`); "" when the command does not say.
    """

    name: str  # "web (Procfile)", "compose service worker", "Deployment api"
    server: str  # gunicorn, uvicorn, hypercorn, daphne, celery, celery-beat
    where: str  # file:line of the command
    command: str
    entry: str = ""
    workers: Factor = ONE
    threads: Factor = ONE
    replicas: Factor = ONE_REPLICA
    # gunicorn `--preload` / `preload_app = True` (where), Celery's pool ("prefork" default).
    preload: str = ""
    celery_pool: str = ""
    config_file: str = ""  # gunicorn `-c FILE`
    environment: tuple[tuple[str, str, str], ...] = ()  # (name, value, where)

    @property
    def forks_after_import(self) -> str:
        """Why this process's workers inherit what the parent imported ("" when they don't)."""
        if self.server == "gunicorn" and self.preload:
            return f"gunicorn preloads the app before forking workers ({self.preload})"
        if self.server == "celery" and self.celery_pool == "prefork":
            return f"Celery's prefork pool forks worker processes ({self.where})"
        return ""

    def env(self, name: str) -> tuple[str, str] | None:
        for key, value, where in self.environment:
            if key == name:
                return value, where
        return None

    def with_(self, **changes: object) -> Process:
        return replace(self, **changes)  # type: ignore[arg-type]


@dataclass(frozen=True)
class ServerLimit:
    """A database server's connection limit, as committed or configured."""

    max_connections: Factor
    reserved: Factor | None = None
    host: str = ""  # compose service name / host; "" applies to every server
    port: int | None = None


@dataclass(frozen=True)
class PoolerConfig:
    """PgBouncer's own limits: clients it accepts, server connections per pool."""

    where: str
    max_client_conn: Factor
    default_pool_size: Factor
    pools: Factor  # [databases] entries (database/user pairs PgBouncer pools separately)
    host: str = ""
    port: int = 6432


@dataclass
class Deployment:
    processes: list[Process] = field(default_factory=list)
    limits: list[ServerLimit] = field(default_factory=list)
    poolers: list[PoolerConfig] = field(default_factory=list)
    # Post-fork hooks of gunicorn config files: hook name -> names disposed or closed there.
    gunicorn_resets: dict[str, set[str]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)  # files that could not be read
