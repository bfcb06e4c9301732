"""The connection budget: worst-case connections per database server (DPL501, `budget`).

For each long-lived pool (module level, a lazy global, a cached getter), its maximum per
process comes from the pack's `max-connections` expression (`pool_size + max_overflow`,
`max_size | min_size`, ...), each term read from the call or taken from the library default
for the pinned version. It is multiplied by the processes that import it (workers x replicas
of every process whose entry module reaches the pool's module through imports; every process
when the entry is unknown) and summed per server (scheme, host, port, database of the URL, or
the environment variable it is read from). The sum is compared with the server's limit
(`[tool.dbpoollint.budget] max-connections`, else the committed `max_connections`) minus the
reserved connections, or, behind PgBouncer, with its `max_client_conn`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import PurePath

from dbpoollint.analysis.model import ModuleSummary
from dbpoollint.analysis.values import Value
from dbpoollint.checks.base import Project
from dbpoollint.checks.knobs import PoolCall, describe_default, pool_calls, versions
from dbpoollint.checks.url_sources import UrlResolver, url_argument
from dbpoollint.deploy import read_deployment
from dbpoollint.deploy.imports import one_off, reach
from dbpoollint.deploy.model import Deployment, Factor, PoolerConfig, Process, ServerLimit
from dbpoollint.packs import Knob, max_connection_terms

SQL_SCHEMES = ("postgresql", "postgres", "mysql", "mariadb")
# PostgreSQL keeps 3 slots for superusers unless told otherwise.
POSTGRES_RESERVED = Factor(3, "PostgreSQL's superuser_reserved_connections default", "", True)


@dataclass(frozen=True)
class PoolMax:
    value: int | None  # None: unbounded, or not readable
    terms: tuple[str, ...]  # "pool_size 5 (SQLAlchemy default)", "max_overflow 20"
    unbounded: bool = False

    def describe(self) -> str:
        shown = "unbounded" if self.unbounded else "?" if self.value is None else str(self.value)
        return f"{shown} ({' + '.join(self.terms)})" if self.terms else shown


@dataclass(frozen=True)
class Pool:
    summary: ModuleSummary
    call: PoolCall
    name: str  # `engine`, or the constructor when not assigned
    maximum: PoolMax
    server: str  # "postgresql://db:5432/app", "$DATABASE_URL", "unknown"
    scheme: str
    host: str
    port: int | None
    pooler: str = ""  # the pooler the URL points at ("PgBouncer", ...)

    @property
    def where(self) -> str:
        return f"{PurePath(self.summary.path).name}:{self.call.fact.span.line}"


@dataclass(frozen=True)
class Row:
    pool: Pool
    process: Process | None
    count: int | None  # processes running this pool: workers x replicas
    total: int | None

    def count_text(self) -> str:
        if self.process is None:
            return "1 (assumed: no process found that runs it)"
        parts = [f"{self.process.workers.describe()} workers"]
        parts.append(f"{self.process.replicas.describe()} replicas")
        return " x ".join(parts)


@dataclass
class ServerBudget:
    server: str
    rows: list[Row] = field(default_factory=list)
    limit: Factor | None = None
    reserved: Factor | None = None
    compared_with: str = "max_connections"
    pooler: PoolerConfig | None = None

    @property
    def total(self) -> int | None:
        totals = [row.total for row in self.rows]
        return None if any(t is None for t in totals) else sum(t for t in totals if t is not None)

    @property
    def available(self) -> int | None:
        if self.limit is None or self.limit.value is None:
            return None
        reserved = self.reserved.value if self.reserved and self.reserved.value else 0
        return self.limit.value - reserved

    @property
    def headroom(self) -> int | None:
        if self.available is None:
            return None
        if self.total is None:
            return None
        return self.available - self.total

    @property
    def over(self) -> bool:
        if self.available is None:
            return False
        if self.total is None:
            return any(r.pool.maximum.unbounded and r.total is None for r in self.rows)
        return self.total > self.available


@dataclass
class Budget:
    deployment: Deployment
    servers: list[ServerBudget]
    notes: list[str] = field(default_factory=list)


def compute_budget(project: Project) -> Budget:
    deployment = read_deployment(project.files, project.budget, _celery_concurrency(project))
    resolver = UrlResolver(project)
    pools = [_pool(project, resolver, call) for call in _long_lived(project)]
    notes = list(deployment.problems)
    processes = deployment.processes
    if not processes:
        notes.append(
            "no gunicorn, uvicorn, hypercorn, daphne or Celery command found in a Procfile, "
            "Dockerfile, compose file, Kubernetes manifest or gunicorn config: one process each"
        )
    reached = {id(p): reach(project, p) for p in processes}
    servers: dict[str, ServerBudget] = {}
    for pool in pools:
        budget = servers.setdefault(pool.server, ServerBudget(pool.server))
        running = [p for p in processes if _runs(reached[id(p)], pool.summary.module)]
        if not running and processes:
            # Every process's imports are known and none reaches it: a script, a tool.
            notes.append(
                f"not counted: `{pool.name}` at {pool.where}: no process found imports its module"
            )
            continue
        if not running:
            budget.rows.append(Row(pool, None, 1, pool.maximum.value))
            continue
        for process in running:
            count = _count(process)
            total = (
                None if pool.maximum.value is None or count is None else count * pool.maximum.value
            )
            budget.rows.append(Row(pool, process, count, total))
    for budget in servers.values():
        _attach_limit(budget, deployment)
    kept = [s for s in servers.values() if s.rows]
    return Budget(deployment, sorted(kept, key=lambda s: s.server), notes)


def _runs(reached: set[str] | None, module: str) -> bool:
    return reached is None or module in reached


def _count(process: Process) -> int | None:
    if process.workers.value is None or process.replicas.value is None:
        return None
    return process.workers.value * process.replicas.value


# --- which pools count ----------------------------------------------------------------------------


def _long_lived(project: Project) -> Iterable[PoolCall]:
    """Pools built once per process: at module level, in a lazy global or cached getter, or in
    a function that never runs per call (an app factory, a Pyramid `includeme`, a startup
    hook). Pools built per call are DPL101's business and have no bound to add up."""
    for call in pool_calls(project, whole_project=True):
        summary, fact = call.summary, call.fact
        if one_off(summary.path, summary.module):
            continue
        if fact.function is None:
            yield call
            continue
        lazy = fact.target in summary.lifecycle.globals_declared.get(fact.function, set())
        function = summary.functions.get(fact.function)
        per_call = fact.function in project.per_call.get(summary.path, {}) or (
            fact.function in project.used_per_call.get(summary.path, {})
        )
        if lazy or (function is not None and function.barrier) or not per_call:
            yield call


# --- a pool's maximum ---------------------------------------------------------------------


def _pool(project: Project, resolver: UrlResolver, call: PoolCall) -> Pool:
    fact = call.fact
    maximum = pool_maximum(project, call)
    urls = resolver.call_urls(call.summary, fact)
    name = fact.target or fact.callee.rsplit(".", 1)[-1]
    parsed = urls[0].url if len(urls) >= 1 else None
    if parsed is not None and parsed.host:
        pooler = resolver.classify(parsed)
        port = f":{parsed.port}" if parsed.port else ""
        server = f"{parsed.scheme}://{parsed.host}{port}/{parsed.database or ''}"
        return Pool(
            call.summary,
            call,
            name,
            maximum,
            server,
            parsed.scheme,
            parsed.host,
            parsed.port,
            pooler.title if pooler else "",
        )
    value = url_argument(fact, call.call)
    if value is not None and value.kind == "env":
        server = f"${value.name}"
    elif value is not None and value.kind == "name":
        server = f"`{value.code}`"
    else:
        server = f"a {call.call.library} server (URL not readable)"
    scheme = parsed.scheme if parsed is not None else ""
    return Pool(call.summary, call, name, maximum, server, scheme, "", None)


def pool_maximum(project: Project, call: PoolCall) -> PoolMax:
    expression = call.call.max_connections
    if not expression:
        return PoolMax(None, ("no maximum known for this constructor",))
    context = versions(project)
    knobs = [k for k in call.call.knobs if context.applies(k)]
    total = 0
    terms: list[str] = []
    for alternatives in max_connection_terms(expression):
        value, text, unbounded = _term(call, knobs, alternatives)
        terms.append(text)
        if unbounded:
            return PoolMax(None, tuple(terms), unbounded=True)
        if value is None:
            return PoolMax(None, tuple(terms))
        total += value
    return PoolMax(total, tuple(terms))


def _term(
    call: PoolCall, typed: list[Knob], alternatives: list[str]
) -> tuple[int | None, str, bool]:
    for name in alternatives:
        knob = next((k for k in typed if name in k.keywords), None)
        value = call.options.keywords.get(name)
        position = knob.position if knob is not None else None
        if value is None and knob is not None and position is not None:
            first = bool(knob.keywords) and knob.keywords[0] == name
            if first and len(call.options.positional) > position:
                value = call.options.positional[position]
        if value is None and call.options.query:
            text = call.options.query.get(name.lower())
            value = Value("literal", text, text) if text is not None else None
        if value is None:
            continue
        number = _number(value)
        if (
            knob is not None
            and number is not None
            and number in [_number(Value("literal", str(u), u)) for u in knob.unbounded_when]
        ):
            return None, f"{name}={value.code} (no limit)", True
        if value.kind == "literal" and value.literal is None and knob and knob.unbounded_when_none:
            return None, f"{name}=None (no limit)", True
        if number is None:
            return None, f"{name}={value.code} (not readable)", False
        return number, f"{name} {number}", False
    if call.options.unknown:
        return None, f"{alternatives[0]} (set by `**options` that cannot be read)", False
    for name in alternatives:
        for knob in typed:
            if (
                name in knob.keywords
                and isinstance(knob.default, int)
                and not isinstance(knob.default, bool)
            ):
                return knob.default, f"{name} {knob.default} (default)", False
            if name in knob.keywords and knob.default == "unbounded":
                return None, f"{name} unset: {describe_default(knob.default)} (default)", True
    return None, f"{alternatives[0]} (no default known)", False


def _number(value: Value) -> int | None:
    literal = value.literal if value.kind in ("literal", "env") else None
    if isinstance(literal, bool):
        return None
    if isinstance(literal, int):
        return literal
    if isinstance(literal, float) and literal.is_integer():
        return int(literal)
    if isinstance(literal, str) and re.fullmatch(r"-?\d+", literal.strip()):
        return int(literal)
    return None


# --- processes and the import graph ------------------------------------------------------------


def _celery_concurrency(project: Project) -> Factor | None:
    for summary in project.summaries:
        for name in ("worker_concurrency", "CELERY_WORKER_CONCURRENCY", "CELERYD_CONCURRENCY"):
            value = summary.constants.get(name)
            number = _number(value) if value is not None else None
            if number is not None:
                return Factor(number, PurePath(summary.path).name, f"{name} = {number}")
    return None


# --- limits --------------------------------------------------------------------------------------


def _attach_limit(budget: ServerBudget, deployment: Deployment) -> None:
    pools = [row.pool for row in budget.rows]
    scheme = pools[0].scheme if pools else ""
    libraries = {p.call.call.library for p in pools}
    sql = scheme.startswith(SQL_SCHEMES) or (
        not scheme and not libraries & {"redis-py", "PyMongo", "Motor"}
    )
    if not sql or not pools:
        return
    host = pools[0].host
    pooler = _pooler_for(pools[0], deployment.poolers)
    if pooler is not None:
        budget.pooler = pooler
        budget.limit = pooler.max_client_conn
        budget.compared_with = "PgBouncer max_client_conn"
        return
    limit = _limit_for(host, deployment.limits)
    if limit is None:
        return
    budget.limit = limit.max_connections
    postgres = scheme.startswith("postgres") or not scheme
    budget.reserved = limit.reserved or (POSTGRES_RESERVED if postgres else None)


def _pooler_for(pool: Pool, poolers: list[PoolerConfig]) -> PoolerConfig | None:
    if not poolers:
        return None
    for pooler in poolers:
        if pooler.host and pool.host == pooler.host:
            return pooler
        if pool.port is not None and pool.port == pooler.port and pool.pooler:
            return pooler
    return None


def _limit_for(host: str, limits: list[ServerLimit]) -> ServerLimit | None:
    for limit in limits:
        if limit.host and limit.host == host:
            return limit
    general = [limit for limit in limits if not limit.host]
    if general:
        return general[0]
    return limits[0] if len(limits) == 1 else None


def server_side(budget: Budget) -> list[tuple[PoolerConfig, int | None, list[ServerLimit]]]:
    """Behind PgBouncer: its `default_pool_size` x pools, against the server's limit."""
    found = []
    for pooler in {id(s.pooler): s.pooler for s in budget.servers if s.pooler}.values():
        assert pooler is not None
        size, pools = pooler.default_pool_size.value, pooler.pools.value
        total = size * pools if size is not None and pools is not None else None
        found.append((pooler, total, budget.deployment.limits))
    return found


def by_pool(budget: Budget) -> Mapping[tuple[str, int], ServerBudget]:
    """(path, line) of each pool -> its server's budget."""
    return {
        (row.pool.summary.path, row.pool.call.fact.span.line): server
        for server in budget.servers
        for row in server.rows
    }
