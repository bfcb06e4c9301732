from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from dbpoollint.analysis.model import ClientCallFact
from dbpoollint.analysis.values import Value
from dbpoollint.checks.base import Finding, FixRequest, Project, Rule
from dbpoollint.checks.url_sources import UrlResolver
from dbpoollint.packs import PackSet, StatementCache


@dataclass(frozen=True)
class CacheSite:
    """How a call reaches a driver that caches statements: directly or through a dict."""

    cache: StatementCache
    container: str  # "" for direct keywords, else `connect_args` / `kwargs`

    @property
    def wanted(self) -> tuple[tuple[str, str], ...]:
        return self.cache.wrapped_keywords if self.container else self.cache.keywords


class PreparedStatementsThroughPooler(Rule):
    """
    ## What it does
    Finds connections that prepare statements through a transaction pooler that does not keep
    them.

    Drivers: asyncpg, psycopg 3, and SQLAlchemy / psycopg_pool on them, with statement
    preparation left on: asyncpg's `statement_cache_size` not 0, psycopg's `prepare_threshold`
    not `None`, SQLAlchemy's `connect_args` (and, for asyncpg, its own
    `prepared_statement_cache_size`) without them.

    The pooler comes from the URL, followed and judged as DPL401 does (a known host, the
    compose service and image it reaches, a committed `pgbouncer.ini`, else the port alone):
    Supavisor transaction mode (6543) does not keep prepared statements; PgBouncer does only
    from 1.21 with `max_prepared_statements > 0` (default 0 before 1.24, 200 from 1.24). A
    `pgbouncer.ini` or compose environment that sets it, or a PgBouncer image tag that names
    the version, settles it; otherwise it is reported with that condition in the message.
    Neon's pooler keeps them, and is not reported. Compose `6432:5432` on `postgres:16` is
    plain PostgreSQL, not reported. The driver of a SQLAlchemy engine is the URL's `+driver`
    (`postgresql+asyncpg://`). A keyword passed as a variable, or `**options`, counts as set.

    ## Why is this bad?
    asyncpg prepares every query as a named statement on the server connection; psycopg 3 does
    after five executions. A transaction pooler gives the next transaction another server
    connection, so the statement is missing there (`prepared statement "__asyncpg_stmt_1__"
    does not exist`) or a name is taken already (`... already exists`). It works in development
    against PostgreSQL directly and fails in production under load.

    ## Example
    ```python
    pool = await asyncpg.create_pool("postgresql://app@db.example.com:6543/app")
    ```

    ## Use instead
    ```python
    pool = await asyncpg.create_pool(
        "postgresql://app@db.example.com:6543/app", statement_cache_size=0
    )
    ```

    ## Fix safety
    Safe: the fix adds `statement_cache_size=0` (asyncpg), `prepare_threshold=None`
    (psycopg 3), or those entries in `connect_args={...}` / psycopg_pool's `kwargs={...}`
    (adding the dict when absent; SQLAlchemy on asyncpg also gets
    `prepared_statement_cache_size: 0`). Queries then run unprepared, with the same results.
    Nothing is added when the options dict is a variable. SQLAlchemy >= 2.0.10 on asyncpg
    still names the statements it prepares; with PgBouncer, its docs also recommend
    `prepared_statement_name_func` returning unique names.

    ## Options
    - A user pack `[[poolers]]` entry for a host with `prepared-statements = "yes"` (PgBouncer
      >= 1.21 configured with `max_prepared_statements > 0`) silences it for that host.

    ## References
    - [asyncpg FAQ: prepared statement errors with PgBouncer](https://magicstack.github.io/asyncpg/current/faq.html#why-am-i-getting-prepared-statement-errors)
    - [psycopg 3: prepared statements and PgBouncer](https://www.psycopg.org/psycopg3/docs/advanced/prepare.html#using-prepared-statements-with-pgbouncer)
    - [PgBouncer: max_prepared_statements](https://www.pgbouncer.org/config.html#max_prepared_statements)
    - [Supabase: disabling prepared statements](https://supabase.com/docs/guides/troubleshooting/disabling-prepared-statements-qL8lEL)
    """

    code = "DPL402"
    name = "prepared-statements-through-pooler"
    severity = "error"
    severity_reason = "Queries fail with `prepared statement ... already exists` under load."
    fix_title = "Turn statement preparation off for this connection"

    def check(self, project: Project) -> Iterator[Finding]:
        resolver = UrlResolver(project)
        for summary in project.reported_summaries():
            if summary.is_test:
                continue
            for fact in summary.client_calls:
                if fact.star_kwargs:
                    continue
                urls = resolver.call_urls(summary, fact)
                for resolved in urls:
                    pooler = resolver.classify(resolved.url, summary.path)
                    if pooler is None or pooler.mode != "transaction":
                        continue
                    if pooler.prepared_statements == "yes":
                        continue
                    site = cache_site(resolver.packs, fact, resolved.url.driver)
                    if site is None:
                        continue
                    missing = _missing(fact, site, resolved.url.params)
                    if not missing:
                        continue
                    settings = ", ".join(f"`{k}={v}`" for k, v in missing)
                    where = f" in `{site.container}`" if site.container else ""
                    keeps = (
                        f"which keeps them only if {pooler.prepared_statements_note}"
                        if pooler.prepared_statements == "depends"
                        else "which does not keep them"
                    )
                    message = (
                        f"{site.cache.driver} prepares statements, but {resolved.described()} "
                        f"goes through {pooler.title}, {keeps}: "
                        f"expect `prepared statement ... does not exist`; set {settings}{where}"
                    )
                    request = FixRequest(
                        "add-driver-options",
                        (
                            ("container", site.container),
                            ("entries", ";".join(f"{k}={v}" for k, v in missing)),
                        ),
                    )
                    yield Finding(summary.path, fact.span, self.code, message, fix_request=request)
                    break


def cache_site(packs: PackSet, fact: ClientCallFact, url_driver: str) -> CacheSite | None:
    for cache in packs.statement_caches:
        if fact.callee in cache.calls:
            return CacheSite(cache, "")
    for options in packs.driver_options:
        if fact.callee not in options.names:
            continue
        for cache in packs.statement_caches:
            if (options.driver and cache.driver == options.driver) or (
                not options.driver and url_driver in cache.url_drivers
            ):
                return CacheSite(cache, options.keyword)
    return None


def _is(value: Value, code: str) -> bool | None:
    """Does the value disable it? None when it cannot be known (a variable)."""
    if value.kind != "literal":
        return None
    return value.code.strip() == code or (code == "0" and value.literal == 0)


def _missing(
    fact: ClientCallFact, site: CacheSite, params: tuple[tuple[str, str], ...]
) -> list[tuple[str, str]]:
    if not site.container:
        found = [(k, c, fact.keyword(k)) for k, c in site.wanted]
    else:
        options = fact.keyword(site.container)
        if options is not None and options.kind != "dict":
            return []  # a variable: cannot be judged
        found = [(k, c, options.item(k) if options else None) for k, c in site.wanted]
    missing = []
    for keyword, code, value in found:
        if value is None:
            if dict(params).get(keyword) == code:
                continue  # `?prepared_statement_cache_size=0` in a SQLAlchemy URL
            missing.append((keyword, code))
        elif _is(value, code) is False:
            missing.append((keyword, code))
    return missing
