"""Shared by the URL rules: follow a value to the connection URLs it can hold, and classify them.

A value resolves to zero or more candidate URLs, each with where it comes from:

- a string literal; an f-string, `+`, `%` or `"...".format()` whose parts are followed one by
  one (unknown parts stay unknown); SQLAlchemy `URL.create(...)`, `make_url(x).set(...)`,
  `url.update_query_dict(...)`, pydantic `PostgresDsn.build(...)`, `str.replace` on a URL;
- `os.environ[...]` / `os.getenv(...)` / django-environ's `env("X")`, `env.str(...)`,
  `env.db()` (when `env` is an `environ.Env`, here or imported): every `.env*`, compose and
  serverless value of that variable in the checked paths; the default written in code only
  when none sets it; `a or b` is `a`, else `b` when nothing sets `a`;
- dynaconf's `settings.X` / `settings.get("x")`: `{PREFIX}_X` where an env file sets it, else
  the settings files' values (`dbpoollint.dynaconf_settings`);
- a module constant (`DATABASE_URL = ...`), a local name or a function of the same module that
  returns one value, a constant imported from another checked module (`app.core.config` is
  also `backend/app/core/config.py`, the one beside the importer when several match);
- a pydantic `BaseSettings` field (`settings.DATABASE_URL`, the instance created at module
  level in any checked module): the env files' values for its variable (prefix, aliases and
  case-insensitivity honoured), else the field's default; a `@property` / `@computed_field`
  of the class is followed through the fields it reads (`self.db_host`).

Anything else is unknown and yields nothing: an unresolved URL is never a pooler.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import PurePath

from dbpoollint.analysis.model import ClientCallFact, ModuleSummary
from dbpoollint.analysis.values import Value
from dbpoollint.checks.base import Project
from dbpoollint.dynaconf_settings import dynaconf_source, env_var, file_values
from dbpoollint.loaded_env_files import loaded_env_files, read_disk
from dbpoollint.migration_commands import MigrationCommand, normalise, read_migration_commands
from dbpoollint.packs import ClientCall, PackSet, Pooler, load_packs
from dbpoollint.pooler_evidence import PoolerEvidence, Verdict
from dbpoollint.project_files import ConfigValue, ProjectConfig, read_project
from dbpoollint.urls import ParsedUrl, mask, parse, rebuild

FALLBACK_URL_KEYWORDS = ("url", "dsn", "conninfo", "name_or_url", "database_url")
MAX_DEPTH = 8
MAX_COMBINATIONS = 16  # a built URL whose parts can each be several things: enough to judge


@dataclass(frozen=True)
class ResolvedUrl:
    url: ParsedUrl
    origin: str  # "" for a literal at the use site, else e.g. "`.env:3`", "the default of ..."
    config: ConfigValue | None = None
    at_call: bool = False  # the literal is written inside the call's arguments

    @property
    def masked(self) -> str:
        return mask(self.url.text)

    def described(self) -> str:
        return f"`{self.masked}`" + (f" (from {self.origin})" if self.origin else "")


class UrlResolver:
    def __init__(self, project: Project) -> None:
        self.project = project
        self.parse_text: Callable[[str], ParsedUrl | None] = parse
        self.packs: PackSet = project.packs or load_packs()
        self.index = project.index
        # The settings classes whose properties are being followed (`self.x` inside them).
        self.self_classes: list[tuple[ModuleSummary, str]] = []
        # Env files the project loads by name -> the folders whose modules they apply to (the
        # common folder of the loader and the file: `backend/.env` loaded by
        # `backend/app/config.py` applies to `backend/`, not to `worker/`).
        self.loaded_env_files: dict[str, set[str]] = {}

    @cached_property
    def config(self) -> ProjectConfig:
        """The project's files, plus the env files something loads by name (read from disk
        when no pattern found them: `load_dotenv("config/supabase")`, compose `env_file:`,
        pydantic `env_file=`, `--env-file` in a Procfile or Dockerfile)."""
        first = read_project(self.project.files)
        files = dict(self.project.files)
        loaded: dict[str, set[str]] = {}
        for path, scope in loaded_env_files(self.project, first):
            if path not in files:
                text = read_disk(path)
                if text is None:
                    continue
                files[path] = text
            loaded.setdefault(path, set()).add(scope)
        self.loaded_env_files = loaded
        if not loaded:
            return first
        return read_project(files, frozenset(loaded))

    @cached_property
    def migration_commands(self) -> list[MigrationCommand]:
        return read_migration_commands(self.project.files, self.config)

    @cached_property
    def evidence(self) -> PoolerEvidence:
        return PoolerEvidence(self.packs, self.config.compose, self.config.pgbouncer)

    def verdict(self, url: ParsedUrl, source_path: str | None = None) -> Verdict:
        return self.evidence.verdict(url, source_path)

    def classify(self, url: ParsedUrl, source_path: str | None = None) -> Pooler | None:
        """The pooler the URL goes through, by the strongest evidence (`pooler_evidence`)."""
        return self.evidence.verdict(url, source_path).pooler

    def resolve(
        self, summary: ModuleSummary, value: Value, function: str | None = None
    ) -> list[ResolvedUrl]:
        return self._resolve(summary, value, function, 0, at_call=True)

    def _resolve(
        self, summary: ModuleSummary, value: Value, function: str | None, depth: int, at_call: bool
    ) -> list[ResolvedUrl]:
        if depth > MAX_DEPTH:
            return []
        if value.kind == "fstring" and value.items:
            parts = [v for _, v in value.items]
            return self._parsed(self._template(summary, parts, function, depth), at_call)
        if value.kind == "url-build":
            parts, quiet = _url_parts(dict(value.items))
            return self._parsed(self._template(summary, parts, function, depth, quiet), at_call)
        if value.kind == "str-replace":
            items = dict(value.items)
            old, new = str(items["old"].literal), str(items["new"].literal)
            texts = self._part_texts(summary, items["receiver"], function, depth)
            return self._parsed([(t.replace(old, new), o) for t, o in texts], at_call)
        if value.kind == "url-set":
            return self._url_set(summary, dict(value.items), function, depth)
        if value.kind in ("literal", "fstring"):
            text = value.literal
            if isinstance(text, int) and not isinstance(text, bool):
                text = str(text)  # a port or a settings default such as 5432
            parsed = self.parse_text(text) if isinstance(text, str) else None
            return [ResolvedUrl(parsed, "", at_call=at_call)] if parsed else []
        if value.kind == "env":
            return self._env(summary, value.name, value.literal, at_call, case_sensitive=True)
        if value.kind == "either":  # `a or b`: b only when nothing sets a
            for _, option in value.items:
                found = self._resolve(summary, option, function, depth + 1, at_call)
                if found:
                    return found
            return []
        if value.kind == "env-accessor":
            return self._environ(summary, value, function, depth, at_call)
        if value.kind == "name":
            return self._name(summary, value, function, depth)
        return []

    # --- builders: f-strings, `+`, `%`, `.format`, URL.create, url.set, str.replace --------

    def _parsed(self, texts: list[tuple[str, str]], at_call: bool) -> list[ResolvedUrl]:
        found = []
        for text, origin in texts:
            parsed = self.parse_text(text)
            if parsed is not None:
                found.append(ResolvedUrl(parsed, origin, at_call=at_call and not origin))
        return found

    def _part_texts(
        self, summary: ModuleSummary, value: Value, function: str | None, depth: int
    ) -> list[tuple[str, str]]:
        """Every text a part of a built URL can be; `{code}` (unknown) when none is known."""
        if value.kind == "literal" and isinstance(value.literal, str | int):
            return [(str(value.literal), "")]
        previous, self.parse_text = self.parse_text, _as_text
        try:
            found = self._resolve(summary, value, function, depth + 1, at_call=False)
        finally:
            self.parse_text = previous
        return [(r.url.text, r.origin) for r in found] or [("{" + value.code + "}", "")]

    def _template(
        self,
        summary: ModuleSummary,
        parts: list[Value],
        function: str | None,
        depth: int,
        quiet: frozenset[int] = frozenset(),
    ) -> list[tuple[str, str]]:
        """Every text the parts can join to, with where the parts came from (not the `quiet`
        ones: a user name or database says nothing about a pooler)."""
        options = [self._part_texts(summary, part, function, depth) for part in parts]
        combined = []
        for combo in itertools.islice(itertools.product(*options), MAX_COMBINATIONS):
            shown = (o for i, (_, o) in enumerate(combo) if o and i not in quiet)
            origin = ", ".join(dict.fromkeys(shown))
            combined.append(("".join(t for t, _ in combo), origin))
        return combined

    def _url_set(
        self, summary: ModuleSummary, items: dict[str, Value], function: str | None, depth: int
    ) -> list[ResolvedUrl]:
        changes = {
            key: self._part_texts(summary, value, function, depth)[0][0]
            for key, value in items.items()
            if key != "receiver"
        }
        found = []
        for resolved in self._resolve(summary, items["receiver"], function, depth + 1, False):
            parsed = self.parse_text(rebuild(resolved.url, changes))
            if parsed is not None:
                found.append(dataclasses.replace(resolved, url=parsed, at_call=False))
        return found

    def _env(
        self,
        summary: ModuleSummary,
        name: str,
        default: object,
        at_call: bool,
        case_sensitive: bool,
    ) -> list[ResolvedUrl]:
        """Only env files in the module's folder or above it apply: in a monorepo, another
        service's `.env` says nothing about this one."""
        found = (
            self.config.values_of(name)
            if case_sensitive
            else self.config.values_of_insensitive(name)
        )
        folders = {str(p) for p in PurePath(summary.path).parents}
        found = [
            v
            for v in found
            if str(PurePath(v.path).parent) in folders
            or self.loaded_env_files.get(v.path, set()) & folders
        ]
        results = []
        for config_value in found:
            parsed = self.parse_text(config_value.value)
            if parsed is not None:
                results.append(ResolvedUrl(parsed, f"`{config_value.where()}`", config_value))
        if not found and isinstance(default, str):
            parsed = self.parse_text(default)
            if parsed is not None:
                origin = f"the default of `{name}`" if not at_call else ""
                results.append(ResolvedUrl(parsed, origin, at_call=at_call))
        return results

    def _environ(
        self, summary: ModuleSummary, value: Value, function: str | None, depth: int, at_call: bool
    ) -> list[ResolvedUrl]:
        """`env("DATABASE_URL")` / `env.db()`, when `env` is a django-environ `Env`."""
        receiver = value.item("receiver")
        defined = self._definition(summary, receiver, function) if receiver else None
        if defined is None or defined[1].kind != "env-source":
            return []
        owner, source = defined
        if source.name == "dynaconf":  # `settings.get("DATABASE_URL", default)`
            found = self._dynaconf(owner, source, [value.name])
        else:
            found = self._env(summary, value.name, None, at_call, case_sensitive=True)
        default = value.item("default")
        if found or default is None:
            return found
        return self._resolve(summary, default, function, depth + 1, at_call)

    def _definition(
        self, summary: ModuleSummary, value: Value, function: str | None, depth: int = 0
    ) -> tuple[ModuleSummary, Value] | None:
        """What a name is bound to, and the module binding it: a local, a module constant,
        or one in another module (through re-exports); None when it cannot be told."""
        if value.kind != "name" or depth > MAX_DEPTH:
            return (summary, value) if value.kind != "name" else None
        name = value.name or value.code
        for key in (f"{function}:{name}" if function else "", f":{name}"):
            if key and key in summary.urls.resolved_names:
                found = summary.urls.resolved_names[key]
                return self._definition(summary, found, None, depth + 1)
        if name in summary.constants:
            return self._definition(summary, summary.constants[name], None, depth + 1)
        resolved = self.index.resolve(name)
        if resolved is not None and resolved.key in resolved.summary.constants:
            found = resolved.summary.constants[resolved.key]
            return self._definition(resolved.summary, found, None, depth + 1)
        return None

    def _dynaconf(
        self, owner: ModuleSummary, source: Value | None, keys: list[str]
    ) -> list[ResolvedUrl]:
        """A dynaconf key: its `{PREFIX}_{KEY}` environment variable where something sets it,
        else what the settings files beside the module creating `settings` give it."""
        config = dynaconf_source(source)
        variable = env_var(config.prefix, keys)
        if variable is not None:
            found = self._env(owner, variable, None, False, case_sensitive=True)
            if found:
                return found
        results = []
        folder = PurePath(owner.path).parent
        for value in file_values(config, keys, folder, self._file_text):
            parsed = self.parse_text(value.value)
            if parsed is not None:
                results.append(ResolvedUrl(parsed, f"`{value.where()}`", value))
        return results

    def _dynaconf_name(
        self, summary: ModuleSummary, name: str, function: str | None
    ) -> list[ResolvedUrl] | None:
        """`settings.DATABASE_URL` / `settings.database.url` on a `Dynaconf(...)`, or on
        dynaconf's legacy global `from dynaconf import settings`; None when it is neither."""
        parts = name.split(".")
        for split in range(len(parts) - 1, 0, -1):
            head, keys = ".".join(parts[:split]), parts[split:]
            if head == LEGACY_DYNACONF:
                return self._dynaconf(summary, None, keys)
            defined = self._definition(summary, Value("name", head, name=head), function)
            if defined is not None and defined[1].kind == "env-source":
                if defined[1].name != "dynaconf":
                    return None
                return self._dynaconf(defined[0], defined[1], keys)
        return None

    def _file_text(self, path: str) -> str | None:
        path = normalise(path)
        return self.project.files.get(path) or read_disk(path)

    def _name(
        self, summary: ModuleSummary, value: Value, function: str | None, depth: int
    ) -> list[ResolvedUrl]:
        return _chain(value.code, self._name_values(summary, value, function, depth))

    def _name_values(
        self, summary: ModuleSummary, value: Value, function: str | None, depth: int
    ) -> list[ResolvedUrl]:
        name = value.name or value.code
        if value.code.startswith("self.") and self.self_classes:
            owner_module, class_key = self.self_classes[-1]
            return self._settings_field(owner_module, class_key, value.code[5:], depth)
        # A local (or module-level) name, or a zero-argument function of this module.
        for key in (f"{function}:{name}" if function else "", f":{name}"):
            if key and key in summary.urls.resolved_names:
                return self._follow(summary, summary.urls.resolved_names[key], None, depth)
        if name in summary.constants:
            return self._follow(summary, summary.constants[name], None, depth)
        # `settings.FIELD` on an instance of a settings class, here or in another module.
        owner, _, attribute = name.rpartition(".")
        if owner:
            module_name, _, instance = owner.rpartition(".")
            target = self.index.module(module_name, summary.path) if module_name else summary
            if target is not None and instance not in target.urls.settings_instances:
                # `from app.core import settings`, re-exported by the package's `__init__`
                found = self.index.resolve(owner)
                if found is not None:
                    target, instance = found.summary, found.key
            if target is not None and instance in target.urls.settings_instances:
                return self._settings_field(
                    target, target.urls.settings_instances[instance], attribute, depth
                )
            # `from app.config import DATABASE_URL`
            module = self.index.module(owner, summary.path)
            if module is not None and attribute in module.constants:
                return self._follow(module, module.constants[attribute], None, depth)
            found = self.index.resolve(name)
            if found is not None and found.key in found.summary.constants:
                return self._follow(found.summary, found.summary.constants[found.key], None, depth)
            from_dynaconf = self._dynaconf_name(summary, name, function)
            if from_dynaconf is not None:
                return from_dynaconf
        return []

    def _follow(
        self, summary: ModuleSummary, value: Value, function: str | None, depth: int
    ) -> list[ResolvedUrl]:
        return self._resolve(summary, value, function, depth + 1, at_call=False)

    def _settings_field(
        self, summary: ModuleSummary, class_key: str, field: str, depth: int
    ) -> list[ResolvedUrl]:
        prop = summary.urls.resolved_names.get(f"():{class_key}.{field}")
        if prop is not None and not any(
            f.class_key == class_key and f.name == field for f in summary.urls.settings_fields
        ):
            # `@property` / `@computed_field` built from the class's own fields (`self.x`).
            self.self_classes.append((summary, class_key))
            try:
                return self._follow(summary, prop, f"{class_key}.{field}", depth)
            finally:
                self.self_classes.pop()
        for fact in summary.urls.settings_fields:
            if fact.class_key != class_key or fact.name != field:
                continue
            results: list[ResolvedUrl] = []
            for env_name in fact.env_names:
                results.extend(
                    self._env(summary, env_name, None, False, case_sensitive=fact.case_sensitive)
                )
            if results:
                return results
            if fact.default is not None:
                return self._follow(summary, fact.default, None, depth)
        return []

    def resolve_texts(self, summary: ModuleSummary, value: Value) -> list[tuple[str, str]]:
        """(text, origin) of every string the value can be: a host, a port, an engine name."""
        if value.kind == "literal" and isinstance(value.literal, int | float):
            return [(str(value.literal), "")]
        self.parse_text = _as_text
        try:
            found = self.resolve(summary, value, None)
        finally:
            self.parse_text = parse
        return [(r.url.text, r.origin) for r in found]

    # --- client calls --------------------------------------------------------------------------

    def call_urls(self, summary: ModuleSummary, fact: ClientCallFact) -> list[ResolvedUrl]:
        call = self.packs.client_call([fact.callee])
        value = url_argument(fact, call)
        if value is None:
            return []
        return self.resolve(summary, value, fact.function)


LEGACY_DYNACONF = "dynaconf.settings"


def _url_parts(parts: dict[str, Value]) -> tuple[list[Value], frozenset[int]]:
    """`URL.create(drivername=..., host=..., port=...)` as the pieces of its text, and which
    pieces (user name, password, database) are not worth naming in an origin chain."""

    def text(value: str) -> Value:
        return Value("literal", value, value)

    built = [parts.get("drivername") or text("postgresql"), text("://")]
    quiet: set[int] = set()
    if "username" in parts:
        quiet.add(len(built))
        built.append(parts["username"])
        if "password" in parts:
            quiet.add(len(built) + 1)
            built += [text(":"), parts["password"]]
        built.append(text("@"))
    built.append(parts.get("host") or text("localhost"))
    if "port" in parts:
        built += [text(":"), parts["port"]]
    if "database" in parts:
        quiet.add(len(built) + 1)
        built += [text("/"), parts["database"]]
    query = parts.get("query")
    if query is not None and query.kind == "dict" and query.items:
        for index, (key, value) in enumerate(query.items):
            built += [text(("?" if index == 0 else "&") + f"{key}="), value]
    return built, frozenset(quiet)


def _chain(step: str, found: list[ResolvedUrl]) -> list[ResolvedUrl]:
    """`settings.DATABASE_URL` <- `.env.production:3`: the way the URL came, nearest first."""
    return [
        dataclasses.replace(r, origin=f"`{step}`" + (f" <- {r.origin}" if r.origin else ""))
        for r in found
    ]


def url_argument(fact: ClientCallFact, call: ClientCall | None) -> Value | None:
    """The URL argument as the pack declares it (`url-position`, `url-keywords`), else the
    usual spellings: the first positional argument, `url=`, `dsn=`, `conninfo=`."""
    position = getattr(call, "url_position", None) if call is not None else None
    keywords: tuple[str, ...] = getattr(call, "url_keywords", ()) if call is not None else ()
    for keyword in keywords or FALLBACK_URL_KEYWORDS:
        found = fact.keyword(keyword)
        if found is not None:
            return found
    index = position if position is not None else 0
    return fact.positional[index] if index < len(fact.positional) else None


def _as_text(text: str) -> ParsedUrl:
    return ParsedUrl(text, "", "", None, None, None, None, False, None, ())
