"""Static values of call arguments: literals, environment reads, dicts, names.

This module holds the values and the names they are read by; `value_reader` reads them from
syntax trees. The split keeps libcst out of a warm run, whose summaries come from the cache.

Rules about limits, timeouts and URLs need to know what a keyword argument *is* without running
the code: `pool_size=5`, `os.environ["DATABASE_URL"]`, `os.getenv("DB_URL", "postgres://...")`,
`**ENGINE_OPTIONS` defined in the same module, or an f-string with literal parts.
"""

from __future__ import annotations

from dataclasses import dataclass

ENV_GETTERS = (
    "os.getenv",
    "os.environ.get",
    "os.getenvb",
    "decouple.config",  # python-decouple: `config("DATABASE_URL", default=...)`
)
ENV_MAPPINGS = ("os.environ",)
# django-environ: `env = environ.Env()`, then `env("DATABASE_URL")`, `env.str(...)`, `env.db()`.
ENVIRON_ENV = frozenset({"environ.Env", "environ.environ.Env"})
ENVIRON_ACCESSORS = frozenset(
    {"str", "url", "db", "db_url", "cache", "cache_url", "get_value", "get"}
)
# dynaconf: `settings = Dynaconf(settings_files=[...], envvar_prefix=...)`.
DYNACONF_SETTINGS = frozenset(
    {"dynaconf.Dynaconf", "dynaconf.LazySettings", "dynaconf.base.LazySettings"}
)
# `env.db()` / `env.db_url()` read DATABASE_URL unless told otherwise (django-environ's
# DEFAULT_DATABASE_ENV).
ENVIRON_DEFAULT_VARS = {"db": "DATABASE_URL", "db_url": "DATABASE_URL"}
URL_CREATE = frozenset(
    {
        "sqlalchemy.URL.create",
        "sqlalchemy.engine.URL.create",
        "sqlalchemy.engine.url.URL.create",
    }
)
MAKE_URL = frozenset(
    {"sqlalchemy.make_url", "sqlalchemy.engine.make_url", "sqlalchemy.engine.url.make_url"}
)
PYDANTIC_URL_TYPES = frozenset(
    {
        f"{module}.{name}"
        for module in (
            "pydantic",
            "pydantic.networks",
            "pydantic_core",
            "pydantic_core._pydantic_core",
        )
        for name in ("PostgresDsn", "MultiHostUrl", "AnyUrl", "Url", "MySQLDsn", "RedisDsn")
    }
)
URL_PARTS = ("drivername", "username", "password", "host", "port", "database", "query")


@dataclass(frozen=True)
class Value:
    """What an expression is, as far as static reading can tell.

    kind: "literal" (str/int/float/bool/None in `literal`), "env" (`name` is the variable,
    `literal` its default if any), "name" (`name` is a qualified name), "dict" (`items`),
    "fstring" (`literal` is the text with `{...}` for the unknown parts; `items` its parts in
    order, keyed "0", "1", ..., for f-strings, `+`, `%` and `.format`), "url-build"
    (`URL.create(...)` / pydantic `PostgresDsn.build(...)`: `items` are drivername, username,
    password, host, port, database, query), "str-replace" (`x.replace(old, new)`: items
    receiver, old, new), "url-set" (`url.set(...)` / `url.update_query_dict(...)`: items
    receiver plus the parts set; query parameters as "query:NAME"), "either" (`a or b`: items
    "0", "1", the first one that is set wins), "env-source" (`environ.Env(...)`: `name` the
    class, "environ.Env" or "dynaconf"), "env-accessor" (`env("X")` / `env.db()` /
    `settings.get("X")` on something that may be an `environ.Env` or a `Dynaconf`: `name` the
    variable, items "receiver" and "default"; the URL resolver checks the receiver), "other".
    """

    kind: str
    code: str
    literal: str | int | float | bool | None = None
    name: str = ""
    items: tuple[tuple[str, Value], ...] = ()

    def item(self, key: str) -> Value | None:
        return next((v for k, v in self.items if k == key), None)

    @property
    def text(self) -> str | None:
        """The string this value holds, if a literal or an environment default says so."""
        if self.kind in ("literal", "env", "fstring") and isinstance(self.literal, str):
            return self.literal
        return None
