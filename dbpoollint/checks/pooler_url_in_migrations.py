from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import PurePath

from dbpoollint.analysis.model import DjangoDbUrlFact, MigrationUrlFact, ModuleSummary, Span
from dbpoollint.checks.base import Finding, Project, Rule
from dbpoollint.checks.url_sources import ResolvedUrl, UrlResolver
from dbpoollint.migration_commands import MigrationCommand
from dbpoollint.project_files import AlembicIni
from dbpoollint.urls import parse


class PoolerUrlInMigrations(Rule):
    """
    ## What it does
    Finds database migrations that connect through a transaction pooler.

    Reported: an alembic `env.py`
    whose URL (`config.set_main_option("sqlalchemy.url", ...)`, `context.configure(url=...)`,
    or an engine it creates) resolves to a pooler URL, or an `alembic.ini` whose
    `sqlalchemy.url` does and that `env.py` does not override; Django `DATABASES` whose host
    or port defaults name one; and code or commands that run migrations with the URL they
    set: alembic's `command.upgrade`, a subprocess running `alembic upgrade` or
    `manage.py migrate` (with `os.environ[...]` set before it or its `env=`), a Procfile
    `release:`, a compose service whose `command:` migrates (its `environment:` and
    `env_file:`), Makefile recipes and shell scripts (their `VAR=value` / `export` lines).
    A runner that also sets `DIRECT_URL` (or `*_UNPOOLED`, `*_NON_POOLING`) to a direct URL
    is taken to use it. The message names the URL's origin chain
    (`env.py:6 <- settings.DATABASE_URL <- .env.production:3`).

    URLs are followed from literals, f-strings, `a or b`, `os.environ`/`os.getenv`,
    django-environ (`env.db()`, `env("X")`), dynaconf (`settings.X` from its settings files
    or `{PREFIX}_X`) and `dj_database_url.config(default=...)`
    (through the env files of the checked paths, `.env*`, `*.env`, `env.*` and any file loaded
    by name with `load_dotenv(...)`, `read_env(...)`, pydantic `env_file`, compose `env_file:`
    or `--env-file`; docker-compose `environment:` and serverless files), module constants,
    local helper functions, and pydantic `BaseSettings` fields (also in `backend/app/...` when
    env.py imports `app...`). What a URL connects to is
    decided by the strongest evidence: a known pooler host or parameter (Neon `-pooler` hosts,
    `*.pooler.supabase.com`, `pgbouncer=true`); else the docker-compose service it reaches
    (service name as host, or a loopback host and a published port), by its image:
    `postgres:*` is direct, a PgBouncer image a pooler in the mode its environment
    (`POOL_MODE`, `PGBOUNCER_POOL_MODE`) or mounted `pgbouncer.ini` sets, Supavisor by its
    port; else a committed `pgbouncer.ini` listening on that port; else the port alone
    (PgBouncer 6432, Supavisor 6543, DigitalOcean 25061, with a PostgreSQL scheme), which is
    weak evidence and the message says so. So compose `6432:5432` on `postgres:16` makes
    `localhost:6432` direct. Only transaction-mode poolers are reported: a session pooler
    (Supabase's 5432 on `pooler.supabase.com`) or RDS Proxy (which pins) is fine for
    migrations.

    ## Why is this bad?
    In transaction mode the pooler hands each transaction to any server connection. Migrations
    rely on one session: alembic's version table update and DDL in one transaction with
    `transaction_per_migration`, `SET` commands, advisory locks, `CREATE INDEX CONCURRENTLY`
    outside a transaction, prepared statements. Through a transaction pooler they fail with
    `prepared statement ... does not exist`, hang on locks held by another client's session, or
    apply half a migration.

    ## Example
    ```ini
    # alembic.ini
    sqlalchemy.url = postgresql://app:***@aws-0-eu-west-1.pooler.supabase.com:6543/postgres
    ```

    ## Use instead
    ```python
    # env.py: migrations use the direct URL, the application keeps the pooler one
    config.set_main_option("sqlalchemy.url", os.environ["DIRECT_URL"])
    ```

    ## Fix safety
    No fix: the direct URL is a separate secret the project has to provide. The message names
    the convention (`DIRECT_URL` / `DATABASE_URL_DIRECT`) and the pooler's direct port.

    ## Options
    - A user pack (`packs = [...]`) with a `[[poolers]]` entry for a host with `mode = "direct"`
      declares it not a pooler; `mode = "transaction"` adds one.

    ## References
    - [Supabase: connecting to Postgres (direct vs pooler)](https://supabase.com/docs/guides/database/connecting-to-postgres)
    - [PgBouncer: feature map per pool mode](https://www.pgbouncer.org/features.html)
    - [Prisma: `directUrl` for migrations](https://www.prisma.io/docs/orm/reference/prisma-schema-reference#fields)
    """

    code = "DPL401"
    name = "pooler-url-in-migrations"
    severity = "error"
    severity_reason = "Migrations need session state that a transaction pooler does not keep."

    def check(self, project: Project) -> Iterator[Finding]:
        resolver = UrlResolver(project)
        overridden_inis: set[str] = set()
        for summary in project.summaries:
            yield from self._runners(resolver, summary)
            if not summary.urls.is_alembic_env:
                continue
            overrides = any(
                f.kind in ("set-main-option", "configure-url") for f in summary.urls.migration_urls
            )
            for fact in summary.urls.migration_urls:
                if fact.value is not None and not fact.kind.startswith("runner"):
                    urls = resolver.resolve(summary, fact.value, None)
                    yield from self._report(
                        resolver, summary.path, fact.span, urls, "alembic env.py"
                    )
            for call in summary.client_calls:
                if call.kind == "pool":
                    urls = resolver.call_urls(summary, call)
                    yield from self._report(
                        resolver, summary.path, call.span, urls, "alembic env.py"
                    )
            ini = _ini_for(summary, resolver.config.alembic)
            if ini is not None and overrides:
                overridden_inis.add(ini.path)
        for summary in project.summaries:
            for entry in summary.urls.django_databases:
                yield from self._report(
                    resolver,
                    summary.path,
                    entry.span,
                    _django_urls(resolver, summary, entry),
                    f"Django `migrate`, `DATABASES['{entry.alias}']`",
                )
        for command in resolver.migration_commands:
            yield from self._command(resolver, command)
        for ini in resolver.config.alembic:
            if ini.url is None or ini.path in overridden_inis:
                continue
            url = ini.url
            span = Span(url.line, url.column, url.line, url.column + len(url.value))
            parsed = parse(url.value)
            if parsed is not None:
                found = [ResolvedUrl(parsed, "")]
                yield from self._report(resolver, ini.path, span, found, "alembic.ini")

    def _runners(self, resolver: UrlResolver, summary: ModuleSummary) -> Iterator[Finding]:
        """Code that runs migrations with the URL it sets: one finding per runner call."""
        by_call: dict[Span, list[MigrationUrlFact]] = {}
        for fact in summary.urls.migration_urls:
            if fact.kind.startswith("runner") and fact.value is not None:
                by_call.setdefault(fact.span, []).append(fact)
        for span, facts in by_call.items():
            resolved = {
                fact: resolver.resolve(summary, fact.value, None)
                for fact in facts
                if fact.value is not None
            }
            if any(
                _direct_by_name(resolver, summary.path, f, urls) for f, urls in resolved.items()
            ):
                continue  # DIRECT_URL set beside the pooler URL: env.py presumably uses it
            for fact, urls in resolved.items():
                what = f"`{fact.variable}`" if fact.variable else "the Config's `sqlalchemy.url`"
                runner = f"{fact.runner}, given {what}"
                found = list(self._report(resolver, summary.path, span, urls, runner))
                if found:
                    yield found[0]
                    break

    def _command(self, resolver: UrlResolver, command: MigrationCommand) -> Iterator[Finding]:
        """A Procfile / Makefile / shell script / compose command that runs migrations."""
        given = []
        for value in command.env:
            parsed = parse(value.value)
            if parsed is not None:
                given.append((value.key, ResolvedUrl(parsed, f"`{value.where()}`", value)))
        for key, resolved in given:
            if re.search(r"DIRECT|UNPOOLED|NON_POOLING", key, re.IGNORECASE):
                pooler = resolver.classify(resolved.url, command.path)
                if pooler is None or pooler.mode != "transaction":
                    return  # migrations presumably take the direct URL given beside
        span = Span(command.line, command.column, command.line, command.column + len(command.text))
        for key, resolved in given:
            runner = f"{command.runner} running `{command.text}`, given `{key}`"
            found = list(self._report(resolver, command.path, span, [resolved], runner))
            if found:
                yield found[0]
                return

    def _report(
        self,
        resolver: UrlResolver,
        path: str,
        span: Span,
        urls: list[ResolvedUrl],
        runner: str,
    ) -> Iterator[Finding]:
        for resolved in urls:
            pooler = resolver.classify(resolved.url, path)
            if pooler is None or pooler.mode != "transaction":
                continue
            direct = (
                f"port {pooler.direct_port}" if pooler.direct_port else "the database's own host"
            )
            shown = f"`{resolved.masked}`"
            if resolved.origin:
                shown += f" ({PurePath(path).name}:{span.line} <- {resolved.origin})"
            message = (
                f"migrations ({runner}) connect through {pooler.title}: "
                f"{shown}; a transaction pooler breaks the single session "
                f"migrations need (locks, SET, DDL transactions): give migrations a direct URL "
                f"(`DIRECT_URL` / `DATABASE_URL_DIRECT`, {direct}) and keep the pooler for "
                f"the application"
            )
            yield Finding(path, span, self.code, message)
            return  # one finding per site, for the first pooler URL


def _direct_by_name(
    resolver: UrlResolver, path: str, fact: MigrationUrlFact, urls: list[ResolvedUrl]
) -> bool:
    """A `DIRECT_URL` / `*_UNPOOLED` / `*_NON_POOLING` variable set to a URL that is no
    transaction pooler."""
    if not re.search(r"DIRECT|UNPOOLED|NON_POOLING", fact.variable, re.IGNORECASE):
        return False
    return not urls or any(
        (p := resolver.classify(u.url, path)) is None or p.mode != "transaction" for u in urls
    )


def _django_urls(
    resolver: UrlResolver, summary: ModuleSummary, fact: DjangoDbUrlFact
) -> list[ResolvedUrl]:
    """The entry's URL, or `postgresql://HOST:PORT/` built from the values HOST and PORT take."""
    if fact.url is not None:
        return resolver.resolve(summary, fact.url, None)
    if fact.engine is not None:
        engines = resolver.resolve_texts(summary, fact.engine)
        if engines and not any("postg" in text for text, _ in engines):
            return []
    hosts = resolver.resolve_texts(summary, fact.host) if fact.host is not None else []
    ports = resolver.resolve_texts(summary, fact.port) if fact.port is not None else [("", "")]
    found = []
    for host, host_origin in hosts or [("", "")]:
        for port, port_origin in ports:
            if not host and not port:
                continue
            text = f"postgresql://{host or 'localhost'}" + (f":{port}" if port else "") + "/"
            parsed = parse(text)
            origins = " and ".join(o for o in (host_origin, port_origin) if o)
            if parsed is not None and (host or fact.host is None):
                found.append(ResolvedUrl(parsed, origins))
    return found


def _ini_for(summary: ModuleSummary, inis: list[AlembicIni]) -> AlembicIni | None:
    """The alembic.ini whose `script_location` is env.py's folder; else the nearest above it."""
    folder = PurePath(summary.path).parent
    for ini in inis:
        location = ini.script_location
        if location and PurePath(PurePath(ini.path).parent, location) == folder:
            return ini
    candidates = [i for i in inis if PurePath(i.path).parent in (folder, *folder.parents)]
    return max(candidates, key=lambda i: len(PurePath(i.path).parts), default=None)
