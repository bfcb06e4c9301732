"""Shared by the limit rules (DPL201-DPL205): what a pool call sets, and which default applies.

A knob counts as *set* when a keyword, a positional argument, a URL query parameter or a key of a
driver-options dict (`connect_args={...}`) names it, whatever its value; a value that cannot be
read statically still counts as set. It is *unknown* (never reported) when the call passes
`**options` that cannot be resolved to a dict in the same module, or when the knob could sit in a
URL whose query cannot be read (an environment variable, an f-string) and no value the project's
files give that URL (`.env*`, compose, settings defaults) is known whole. When every known value
lacks it, it is *missing*, and the message says what would still set it (`unless REDIS_URL
carries ?max_connections=`). It is *missing* otherwise: the library default applies, picked for
the version the project pins.
"""

from __future__ import annotations

import fnmatch
import re
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import PurePath
from urllib.parse import parse_qsl, urlsplit

from dbpoollint.analysis.contexts import (
    LONG_LIVED,
    context_of,
    instantiated_at_module_level,
    judges,
    lives_long,
)
from dbpoollint.analysis.model import ClientCallFact, DjangoDatabaseFact, ModuleSummary
from dbpoollint.analysis.values import Value
from dbpoollint.checks.base import FixRequest, Project
from dbpoollint.checks.per_call import per_call_sites
from dbpoollint.checks.url_sources import UrlResolver
from dbpoollint.packs import ClientCall, Knob, KnobValue, PackSet, load_packs
from dbpoollint.urls import has_unknown
from dbpoollint.versions import Pin, PinIndex, in_range

# What `[tool.dbpoollint.fix-values]` holds when the project says nothing (seconds, connections).
FIX_VALUE_DEFAULTS: dict[str, float] = {
    "pool-size": 5,
    "max-overflow": 10,
    "max-connections": 50,
    "pool-timeout": 30,
    "acquire-timeout": 30,
    "connect-timeout": 10,
}
NO_LIMIT = ("unbounded", "forever", "none", "off")


@dataclass(frozen=True)
class CallOptions:
    """Everything a call passes, flattened: keywords (with `**CONSTANT` dicts merged in)."""

    keywords: dict[str, Value]
    positional: tuple[Value, ...]
    unknown: bool  # unresolvable `**options`: any knob may be set
    url_present: bool
    scheme: str | None  # None: no URL, or one that cannot be read
    query: dict[str, str] | None  # lower-cased parameter names; None: cannot be read
    url: Value | None = None  # the URL argument, followed to the project's files when needed


@dataclass(frozen=True)
class KnobState:
    knob: Knob
    state: str  # "set", "unbounded" (set to a no-limit value), "missing", "unknown"
    value: Value | None = None
    # What would still set it: ", unless `REDIS_URL` carries `?max_connections=` where it is
    # deployed" when the URL comes from the environment and none of its known values does.
    note: str = ""


@dataclass
class VersionContext:
    """The pinned versions; `path` (the module's) picks its nearest project's pins."""

    pins: PinIndex = field(default_factory=PinIndex)

    def version_of(self, package: str, path: str | None = None) -> Pin | None:
        return self.pins.pin(package, path)

    def applies(self, knob: Knob, path: str | None = None) -> bool:
        pin = self.version_of(knob.package, path)
        return in_range(pin.version if pin else None, knob.since, knob.until)

    def describe(self, knob: Knob, library: str, path: str | None = None) -> str:
        """`redis-py 7.4.1 default: unbounded`, `... ; assuming redis>=8.0.0; pin found: none`."""
        default = describe_default(knob.default)
        pin = self.version_of(knob.package, path)
        if pin is None or pin.version is None:
            newest = f"{knob.package}>={knob.since}" if knob.since else f"the newest {knob.package}"
            found = pin.describe() if pin is not None else "none"
            return f"{library} default: {default}; assuming {newest}; pin found: {found}"
        version = pin.version
        if version.below:
            return f"{library} default: {default} for {knob.package}{version}; {pin.describe()}"
        return f"{library} {version} default: {default}; {pin.describe()}"


_CONTEXTS: dict[int, tuple[Mapping[str, str], VersionContext]] = {}


def versions(project: Project) -> VersionContext:
    cached = _CONTEXTS.get(id(project))
    if cached is not None and cached[0] is project.files:
        return cached[1]
    context = VersionContext(PinIndex.build(project.files))
    _CONTEXTS.clear()
    _CONTEXTS[id(project)] = (project.files, context)
    return context


_PACKS: list[PackSet] = []


def packs(project: Project) -> PackSet:
    """The project's packs (user packs included), or the built-in ones."""
    if project.packs is not None:
        return project.packs
    if not _PACKS:
        _PACKS.append(load_packs())
    return _PACKS[0]


def describe_default(value: KnobValue) -> str:
    return {
        "forever": "waits forever",
        "none": "no timeout",
        "unbounded": "unbounded",
        "off": "off",
    }.get(str(value), str(value))


def resolve_dict(value: Value | None, summary: ModuleSummary) -> Value | None:
    """A dict literal, or a module constant holding one; None when it cannot be read whole."""
    if value is None:
        return None
    if value.kind == "name" and value.name in summary.constants:
        value = summary.constants[value.name]
    if value.kind == "dict" and "**" not in value.code:
        return value
    return None


def call_options(summary: ModuleSummary, fact: ClientCallFact, call: ClientCall) -> CallOptions:
    keywords = dict(fact.keywords)
    unknown = False
    for star in fact.star_kwargs:
        resolved = resolve_dict(star, summary)
        if resolved is None:
            unknown = True
        else:
            for key, item in resolved.items:
                keywords.setdefault(key, item)
    positional = fact.positional
    if call.options_argument is not None:
        config = (
            positional[call.options_argument]
            if len(positional) > call.options_argument
            else keywords.get("configuration")
        )
        prefix_value = positional[1] if len(positional) > 1 else keywords.get("prefix")
        prefix = call.options_prefix
        if prefix_value is not None:
            prefix = prefix_value.literal if isinstance(prefix_value.literal, str) else ""
            unknown = unknown or prefix_value.kind != "literal"
        resolved = resolve_dict(config, summary)
        if resolved is None:
            unknown = True
        else:
            for key, item in resolved.items:
                if key.startswith(prefix):
                    keywords.setdefault(key[len(prefix) :], item)
        positional = ()
    url = None
    if call.url_position is not None and len(positional) > call.url_position:
        url = positional[call.url_position]
    for name in call.url_keywords:
        url = url or keywords.get(name)
    scheme, query = _read_url(url)
    return CallOptions(keywords, positional, unknown, url is not None, scheme, query, url)


def _read_url(url: Value | None) -> tuple[str | None, dict[str, str] | None]:
    if url is None:
        return None, {}
    text = url.text
    if text is None:
        return None, None
    if "://" not in text:
        if url.kind == "literal" and "=" in text:  # a libpq key=value conninfo
            pairs = dict(re.findall(r"(\w+)\s*=\s*('[^']*'|\S+)", text))
            return "postgresql", {k.lower(): v for k, v in pairs.items()}
        return None, None
    scheme = text.split("://", 1)[0].lower()
    if url.kind == "env" or "{" in text.split("?", 1)[-1]:
        return (scheme if "{" not in scheme else None), None  # production sets the query
    query = urlsplit(text).query
    return scheme, {k.lower(): v for k, v in parse_qsl(query, keep_blank_values=True)}


def unpooled(call: ClientCall, options: CallOptions) -> bool:
    """NullPool, StaticPool, a pool passed in, SQLite: pool limits do not apply."""
    for rule in call.unpooled_when:
        keyword, _, pattern = rule.partition("=")
        value = options.keywords.get(keyword)
        if value is None:
            continue
        if fnmatch.fnmatchcase(value.name or value.code, pattern) or fnmatch.fnmatchcase(
            value.code, pattern
        ):
            return True
        if value.kind == "literal" or (
            value.kind == "name" and "." in value.name and "<locals>" not in value.name
        ):
            continue  # a known value that is not a no-pool one
        return True  # `poolclass=chosen_class`: may be NullPool, so limits may not apply
    if options.scheme is None:
        return False
    dialect = options.scheme.split("+", 1)[0]
    return options.scheme in call.unpooled_schemes or dialect in call.unpooled_schemes


def _value_state(knob: Knob, value: Value) -> KnobState:
    literal = value.literal if value.kind == "literal" else _number(value)
    if value.kind == "literal" and literal is None and knob.unbounded_when_none:
        return KnobState(knob, "unbounded", value)
    if literal is not None and not isinstance(literal, bool):
        for limit in knob.unbounded_when:
            if not isinstance(limit, bool) and _same(literal, limit):
                return KnobState(knob, "unbounded", value)
    return KnobState(knob, "set", value)


def _number(value: Value) -> int | float | None:
    if value.kind == "literal" and isinstance(value.literal, str):
        try:
            return float(value.literal)
        except ValueError:
            return None
    return None


def _same(literal: str | int | float, limit: KnobValue) -> bool:
    try:
        return float(literal) == float(limit)
    except (TypeError, ValueError):
        return literal == limit


@dataclass(frozen=True)
class UrlQueries:
    """The query parameters of every URL the project's files give an environment-read URL
    argument (`.env*`, compose, settings defaults), and how the code names that URL."""

    queries: tuple[dict[str, str], ...]  # lower-cased names, one per known URL
    name: str  # `REDIS_URL`, `settings.REDIS_URL`


def knob_state(
    knob: Knob, options: CallOptions, summary: ModuleSummary, known: UrlQueries | None = None
) -> KnobState:
    for keyword in knob.keywords:
        if keyword in options.keywords:
            return _value_state(knob, options.keywords[keyword])
    if knob.position is not None and len(options.positional) > knob.position:
        return _value_state(knob, options.positional[knob.position])
    if options.query:
        for param in knob.url_params:
            if param.lower() in options.query:
                text = options.query[param.lower()]
                return _value_state(knob, Value("literal", text, text))
    for path in knob.connect_args:
        keyword, _, key = path.partition(".")
        if keyword in options.keywords:
            driver = resolve_dict(options.keywords[keyword], summary)
            if driver is None:
                return KnobState(knob, "unknown")
            if driver.item(key) is not None:
                return _value_state(knob, driver.item(key) or Value("other", ""))
    if options.unknown:
        return KnobState(knob, "unknown")
    if knob.url_params and options.query is None:
        if known is None or not known.queries:
            return KnobState(knob, "unknown")  # nothing says what the URL is
        for query in known.queries:
            for param in knob.url_params:
                if param.lower() in query:
                    text = query[param.lower()]
                    return _value_state(knob, Value("literal", text, text))
        note = f", unless `{known.name}` carries `?{knob.url_params[0]}=` where it is deployed"
        return KnobState(knob, "missing", note=note)
    if not (knob.keywords or knob.position is not None or knob.connect_args or options.url_present):
        return KnobState(knob, "unknown")  # only a URL could set it, and there is none
    return KnobState(knob, "missing")


@dataclass(frozen=True)
class PoolCall:
    """One constructor or opener call, with its pack entry and flattened options."""

    summary: ModuleSummary
    fact: ClientCallFact
    call: ClientCall
    options: CallOptions
    # Options live in a dict argument (Flask-SQLAlchemy's `engine_options`): fixes go there.
    fix_within: str = ""
    # ruff's `line-length` for this file: a fix splits a line it pushes past it.
    line_length: int = 88

    def states(self, project: Project, role: str) -> list[KnobState]:
        """The linted knobs of this role whose version range and URL scheme apply."""
        context = versions(project)
        found = []
        known = None
        for knob in self.call.knobs:
            if knob.role != role or not knob.lint or not context.applies(knob, self.summary.path):
                continue
            if knob.url_schemes and self.options.scheme not in knob.url_schemes:
                continue
            if knob.url_params and self.options.query is None and known is None:
                known = url_queries(project, self)
            found.append(knob_state(knob, self.options, self.summary, known))
        return found

    def fix_request(self, knob: Knob, value_code: str | None, safety: str) -> FixRequest | None:
        if not self.fix_within:
            request = add_argument_request(knob, value_code, safety)
        else:
            keyword = knob.fix_keyword or (knob.keywords[0] if knob.keywords else "")
            if value_code is None or not keyword:
                return None  # e.g. `connect_args` nested inside `engine_options`: left to the user
            params = (("keyword", keyword), ("within", self.fix_within))
            request = FixRequest(
                "add-argument", (*params, ("value", value_code), ("safety", safety))
            )
        if request is None:
            return None
        return FixRequest(request.fixer, (*request.params, ("line-length", self.line_length)))


def pool_calls(
    project: Project, kinds: tuple[str, ...] = ("pool",), whole_project: bool = False
) -> Iterator[PoolCall]:
    """Every constructor call with knobs, outside tests and one-off code, that really pools:
    in the reported modules, or in all of them (`whole_project`, for the connection budget)."""
    pack_set = packs(project)
    instantiated = instantiated_at_module_level(project.summaries)
    # What DPL101 reports is a pool until it is hoisted: its knobs still speak when DPL101 is
    # not selected (the selection drops them on the same call when it is).
    per_request = {
        (found.summary.path, found.site.span)
        for found in per_call_sites(project, "pool", whole_project)
    }
    for summary in project.summaries if whole_project else project.reported_summaries():
        if summary.is_test:
            continue
        for fact in summary.client_calls:
            if fact.kind not in kinds:
                continue
            if fact.fallback:
                continue  # the retry without pool options for a dialect that rejects them
            if (
                fact.kind == "pool"
                and not lives_long(summary, fact, instantiated)
                and (summary.path, fact.span) not in per_request
            ):
                continue  # built and dropped within one call: not a long-lived pool
            # A pool built inside a CLI command lives as long as the command: limits and
            # timeouts are about long-lived pools.
            if not judges(LONG_LIVED, project.contexts, context_of(summary, fact.function)):
                continue
            call = pack_set.client_call([fact.callee])
            if call is None or not call.knobs:
                continue
            if any(k for k, _ in fact.keywords if k in call.reuses_pool_keywords):
                continue
            options = call_options(summary, fact, call)
            if unpooled(call, options):
                continue
            yield PoolCall(
                summary, fact, call, options, line_length=line_length(project, summary.path)
            )
    yield from _flask_sqlalchemy_calls(project, pack_set)


_RESOLVERS: dict[int, tuple[Mapping[str, str], UrlResolver]] = {}


def url_queries(project: Project, pool: PoolCall) -> UrlQueries | None:
    """`redis.from_url(os.environ["REDIS_URL"])`: the query strings of the values the project's
    env files, compose and settings give that URL; None when none is known, or when one of them
    cannot be read whole (a `${VAR}` or `{...}` in its query)."""
    url = pool.options.url
    if url is None or url.kind == "literal":
        return None
    cached = _RESOLVERS.get(id(project))
    if cached is None or cached[0] is not project.files:
        _RESOLVERS.clear()
        cached = (project.files, UrlResolver(project))
        _RESOLVERS[id(project)] = cached
    resolved = cached[1].resolve(pool.summary, url, pool.fact.function)
    if not resolved or any(has_unknown(r.url.text.partition("?")[2]) for r in resolved):
        return None
    queries = tuple({k.lower(): v for k, v in r.url.params} for r in resolved)
    return UrlQueries(queries, url.name if url.kind == "env" else url.code)


FLASK_SQLALCHEMY_ENGINE = "sqlalchemy.create_engine"


def _flask_sqlalchemy_calls(project: Project, pack_set: PackSet) -> Iterator[PoolCall]:
    """`SQLAlchemy(app)`: the engine options are `engine_options` plus every readable
    `SQLALCHEMY_ENGINE_OPTIONS` in the project; one unreadable mention and nothing is said."""
    call = pack_set.client_call([FLASK_SQLALCHEMY_ENGINE])
    facts = [(s, f) for s in project.summaries if not s.is_test for f in s.flask_sqlalchemy]
    if call is None or not any(f.kind == "extension" for _, f in facts):
        return
    keywords: dict[str, Value] = {}
    for summary, fact in facts:
        if fact.kind != "options":
            continue
        resolved = resolve_dict(fact.value, summary)
        if resolved is None:
            return
        keywords.update(resolved.items)
    uris = {f.value.text if f.value is not None else None for _, f in facts if f.kind == "uri"}
    uri = next(iter(uris)) if len(uris) == 1 else None
    for summary, fact in facts:
        if fact.kind != "extension":
            continue
        options_here = dict(keywords)
        if fact.value is not None:
            resolved = resolve_dict(fact.value, summary)
            if resolved is None:
                continue
            options_here.update(resolved.items)
        url = Value("literal", repr(uri), uri) if uri is not None else Value("other", "")
        scheme, query = _read_url(url)
        if scheme is None or scheme.startswith("mysql"):
            # Flask-SQLAlchemy sets pool_recycle=7200 for MySQL; an unknown URI may be MySQL.
            options_here.setdefault("pool_recycle", Value("literal", "7200", 7200))
        options = CallOptions(options_here, (), False, True, scheme, query)
        if unpooled(call, options):
            continue
        synthetic = ClientCallFact(
            fact.span, "flask_sqlalchemy.SQLAlchemy", "pool", None, (), (), (), None
        )
        yield PoolCall(
            summary,
            synthetic,
            call,
            options,
            fix_within="engine_options",
            line_length=line_length(project, summary.path),
        )


def line_length(project: Project, path: str) -> int:
    """ruff's `line-length` from the nearest pyproject.toml above `path` (88, ruff's default)."""
    folder = PurePath(path).parent
    candidates = {
        PurePath(name).parent: text
        for name, text in project.files.items()
        if PurePath(name).name == "pyproject.toml"
    }
    for directory in (folder, *folder.parents):
        text = candidates.get(directory)
        if text is None:
            continue
        try:
            table = tomllib.loads(text).get("tool", {}).get("ruff", {})
        except tomllib.TOMLDecodeError:
            return 88
        value = table.get("line-length") if isinstance(table, dict) else None
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
        if table:
            return 88
    return 88


def fix_number(project: Project, knob: Knob) -> str | None:
    """The value a DPL201/203/204 fix writes, from `[tool.dbpoollint.fix-values]`."""
    if not knob.fix_setting:
        return None
    number = project.fix_values.get(knob.fix_setting, FIX_VALUE_DEFAULTS[knob.fix_setting])
    number *= knob.scale
    return str(int(number)) if float(number).is_integer() else str(number)


def literal_code(value: KnobValue) -> str:
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, str):
        return repr(value)
    return str(value)


def add_argument_request(knob: Knob, value_code: str | None, safety: str) -> FixRequest | None:
    """A request for the `add-argument` fixer: a keyword, or a key inside `connect_args`."""
    if value_code is None:
        return None
    if knob.fix_keyword or knob.keywords:
        keyword = knob.fix_keyword or knob.keywords[0]
        params: tuple[tuple[str, str | None], ...] = (("keyword", keyword), ("within", None))
    elif knob.connect_args:
        within, _, key = knob.connect_args[0].partition(".")
        params = (("keyword", key), ("within", within))
    else:
        return None
    return FixRequest("add-argument", (*params, ("value", value_code), ("safety", safety)))


def is_number(value: KnobValue) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


# --- Django `DATABASES` ------------------------------------------------------------------------

DJANGO_DATABASES = "django.conf.settings.DATABASES"


def django_knob(project: Project, role: str) -> Knob | None:
    call = packs(project).client_call([DJANGO_DATABASES])
    return next((k for k in call.knobs if k.role == role), None) if call else None


def persistent(value: Value | None) -> bool:
    """`CONN_MAX_AGE` keeps connections open: a non-zero number or None (unlimited).

    Unreadable values are not guessed at, except an environment read with a non-zero default.
    """
    if value is None:
        return False
    if value.kind == "literal":
        return value.literal is None or (
            isinstance(value.literal, int | float)
            and not isinstance(value.literal, bool)
            and value.literal != 0
        )
    if value.kind == "env" and value.literal is not None:
        try:
            return float(str(value.literal)) != 0
        except ValueError:
            return False
    return False


def is_sqlite(engine: str | None) -> bool:
    return engine is not None and "sqlite" in engine


def persistent_databases(project: Project) -> Iterator[tuple[ModuleSummary, DjangoDatabaseFact]]:
    """Django `DATABASES` entries, outside tests, that keep connections open across requests."""
    for summary in project.summaries:
        if summary.is_test:
            continue
        for database in summary.databases:
            if (
                not database.unknown
                and not is_sqlite(database.engine)
                and persistent(database.conn_max_age)
            ):
                yield summary, database
