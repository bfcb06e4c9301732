"""Load and validate rule packs: the TOML files that hold dbpoollint's knowledge.

A *client pack* says which calls create a pool or pooling client (``pools``) and which open a
single connection (``openers``). A *framework pack* says which function shapes run once per
request, job or invocation (``handlers``). Checks ask the packs what a call *is*; they never
spell library names themselves.
"""

from __future__ import annotations

import codecs
import difflib
import fnmatch
import re
import sys
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dbpoollint.pack_dir import builtin_pack_dir
from dbpoollint.versions import parse_version

HANDLER_SHAPES = (
    "decorator",
    "instance-decorator",
    "base-class",
    "registration",
    "signature",
    "method-name",
    # A list in a class body naming the functions a worker runs: arq's
    # `class WorkerSettings: functions = [send_email]`.
    "class-attribute",
)
RECEIVER_POLICIES = ("never", "path-argument", "always")
KNOB_ROLES = ("size", "bound", "acquire-timeout", "connect-timeout", "stale-check", "recycle")


class PackError(Exception):
    """A pack file is malformed; the message names the file, the key and the line."""


KnobValue = str | int | float | bool


@dataclass(frozen=True)
class Knob:
    """One pool setting of one library for one version range: where it is set, its default.

    `default` is the documented value, or "unbounded" / "forever" / "off" / "none" when the
    default is no limit, an endless wait, no check, or no timeout. `unbounded_when` lists the
    explicit values that mean the same (`max_overflow=-1`).
    """

    role: str
    label: str  # how the table and messages name it
    keywords: tuple[str, ...]
    default: KnobValue
    package: str  # PyPI name the version range is about
    source: str
    since: str = ""
    until: str = ""
    url_params: tuple[str, ...] = ()
    connect_args: tuple[str, ...] = ()
    position: int | None = None
    unbounded_when: tuple[KnobValue, ...] = ()
    unbounded_when_none: bool = False
    url_schemes: tuple[str, ...] = ()  # only for these URL schemes (the driver decides)
    fix_keyword: str = ""  # what a fix writes (defaults to the first keyword)
    fix_value: KnobValue | None = None  # DPL205: the literal the fix writes
    fix_setting: str = ""  # DPL201/203/204: the [tool.dbpoollint.fix-values] key
    scale: float = 1  # fix-values are seconds; `1000` for knobs in milliseconds
    lint: bool = True  # false: documented in the table, never reported
    note: str = ""


@dataclass(frozen=True)
class ClientCall:
    """A call that creates a pool/client (``kind == "pool"``) or opens one connection."""

    kind: str
    names: tuple[str, ...]
    library: str
    what: str
    asynchronous: bool = False
    awaitable: bool = False
    close: tuple[str, ...] = ()
    reuses_pool_keywords: tuple[str, ...] = ()
    pool_keywords: tuple[str, ...] = ()
    pool_hint: str = ""
    source: str = ""
    knobs: tuple[Knob, ...] = ()
    # Where the URL/DSN is: positional index and keyword names.
    url_position: int | None = None
    url_keywords: tuple[str, ...] = ()
    # `engine_from_config(configuration, prefix="sqlalchemy.")`: options come from a dict.
    options_argument: int | None = None
    options_prefix: str = ""
    # `keyword=pattern` pairs (fnmatch on the value's code or name) and URL schemes that mean
    # no real pool (`poolclass=*NullPool`, `sqlite`): limits do not apply.
    unpooled_when: tuple[str, ...] = ()
    unpooled_schemes: tuple[str, ...] = ()
    # The most connections one instance opens, as knob keywords: `pool_size + max_overflow`
    # (summed), `max_size | min_size` (the first one set, else the first default). DPL501.
    max_connections: str = ""
    # The client notices a fork and resets itself in the child (redis-py checks its pid): the
    # source that says so. DPL105 leaves such clients alone.
    fork_safe: str = ""
    # URL schemes (the dialect before any `+driver`) known to reach a database server with a
    # pool: a pool keyword added to a call whose URL is one of these is safe. Empty: every URL
    # this library takes is a server's.
    server_schemes: tuple[str, ...] = ()
    # Why a process must close it even when it just exits (background threads to stop, a
    # server-side goodbye): DPL301 reports it for sync clients too. Empty: exit closes it.
    close_at_exit: str = ""

    def server_scheme(self, scheme: str | None) -> bool:
        """Is `scheme` known to be a server dialect (not SQLite, DuckDB, a sheet, unknown)?"""
        if not self.server_schemes:
            return True
        if scheme is None:
            return False
        return scheme.split("+", 1)[0] in self.server_schemes


@dataclass(frozen=True)
class Pooler:
    """A connection pooler recognisable from a URL (a `[[poolers]]` table of a pooler pack).

    A URL matches when its scheme is one of `schemes` and every criterion given matches: a host
    pattern, a port, a query parameter (`pgbouncer=true`). A port alone is weak evidence, so
    `schemes` is required.
    """

    name: str
    title: str
    schemes: tuple[str, ...]
    hosts: tuple[str, ...] = ()
    ports: tuple[int, ...] = ()
    params: tuple[str, ...] = ()
    # "transaction" (server connections change between transactions), "session", "direct"
    # (not a pooler: a user pack can declare a host so), or "pinning" (RDS Proxy).
    mode: str = "transaction"
    # "yes", "no", or "depends" (a version or a setting decides; the note says which).
    prepared_statements: str = "no"
    prepared_statements_note: str = ""
    direct_port: int | None = None
    source: str = ""
    pack: str = ""
    # Container images (compose `image:` patterns): such an entry classifies the compose
    # service a URL reaches, never a URL by itself; `ports` are then the container's ports.
    images: tuple[str, ...] = ()
    # Environment keys of such a service that set the pool mode / `max_prepared_statements`.
    mode_env: tuple[str, ...] = ()
    prepared_statements_env: tuple[str, ...] = ()


@dataclass(frozen=True)
class StatementCache:
    """A driver that prepares statements by default, and the keywords that turn it off."""

    driver: str
    calls: tuple[str, ...]
    # keyword -> Python code of the value that disables it, on a direct call (`asyncpg.connect`)
    keywords: tuple[tuple[str, str], ...]
    # SQLAlchemy URL driver names (`postgresql+asyncpg://`) that select this driver.
    url_drivers: tuple[str, ...] = ()
    # keyword -> code, inside the dict an engine or pool passes on (`connect_args`, `kwargs`).
    wrapped_keywords: tuple[tuple[str, str], ...] = ()
    source: str = ""


@dataclass(frozen=True)
class DriverOptions:
    """A pool or engine that passes a dict of options on to the driver (`connect_args`)."""

    names: tuple[str, ...]
    keyword: str
    # The driver it wraps, or "" when the URL's `+driver` decides (SQLAlchemy).
    driver: str = ""


@dataclass(frozen=True)
class HandlerShape:
    """One way a framework marks a function as running per request/job/invocation."""

    shape: str
    label: str
    framework: str
    names: tuple[str, ...] = ()
    classes: tuple[str, ...] = ()
    methods: tuple[str, ...] = ()
    exclude_methods: tuple[str, ...] = ()
    functions: tuple[str, ...] = ()
    argument: int | None = None
    keyword: str = ""
    params: tuple[str, ...] = ()
    module_names: tuple[str, ...] = ()
    requires_import: tuple[str, ...] = ()
    unresolved_receiver: str = "never"
    # base-class shapes: the framework builds a new instance per request (Django, Tornado...).
    instance_per_request: bool = False
    # decorator shapes: methods of classes derived from these are not roots (a pydantic
    # validator on `BaseSettings` runs once, when the settings are read).
    exclude_classes: tuple[str, ...] = ()

    def matches_method(self, name: str) -> bool:
        if any(fnmatch.fnmatchcase(name, pattern) for pattern in self.exclude_methods):
            return False
        return any(fnmatch.fnmatchcase(name, pattern) for pattern in self.methods)


@dataclass(frozen=True)
class Pack:
    name: str
    title: str
    kind: str
    path: Path
    modules: tuple[str, ...]
    calls: tuple[ClientCall, ...] = ()
    handlers: tuple[HandlerShape, ...] = ()
    cross_module_triggers: tuple[str, ...] = ()
    poolers: tuple[Pooler, ...] = ()
    statement_caches: tuple[StatementCache, ...] = ()
    driver_options: tuple[DriverOptions, ...] = ()
    # URL schemes the URL rules know (`postgresql`, `redis`, ...): source mentioning one is parsed.
    url_schemes: tuple[str, ...] = ()


def max_connection_terms(expression: str) -> list[list[str]]:
    """`pool_size + max_overflow` -> [["pool_size"], ["max_overflow"]]; `a | b` -> [["a", "b"]]:
    terms are summed, alternatives inside a term are tried in order."""
    return [
        [name.strip() for name in term.split("|") if name.strip()]
        for term in expression.split("+")
        if term.strip()
    ]


def _max_connections(reader: _Reader) -> str:
    expression = reader.string("max-connections", "")
    known = {k for knob in reader.table.get("knobs", []) for k in knob.get("keywords", [])}
    for term in max_connection_terms(expression):
        for name in term:
            if not re.fullmatch(r"\w+", name) or name not in known:
                raise reader.fail(
                    "max-connections",
                    f"`{name}` is not a keyword of this call's knobs (write `a + b` or `a | b`)",
                )
    return expression


def _matches(patterns: Iterable[str], qualname: str) -> bool:
    return any(
        fnmatch.fnmatchcase(qualname, pattern) if "*" in pattern else qualname == pattern
        for pattern in patterns
    )


@dataclass
class PackSet:
    """Every loaded pack, indexed for the questions checks ask."""

    packs: list[Pack]
    _calls_by_name: dict[str, ClientCall] = field(default_factory=dict)
    # The prefilter: top-level module names whose import makes a file worth parsing, plus the
    # words (user packs' in-house wrappers) and URL schemes that do without an import.
    _client_modules: frozenset[bytes] = frozenset()
    _client_words: re.Pattern[bytes] | None = None
    _cross_modules: frozenset[bytes] = frozenset()
    _framework_modules: frozenset[bytes] = frozenset()
    _pooler_modules: frozenset[bytes] = frozenset()
    _url_schemes: re.Pattern[bytes] | None = None

    def __post_init__(self) -> None:
        for pack in self.packs:
            for call in pack.calls:
                for name in call.names:
                    self._calls_by_name.setdefault(name, call)
        self._client_modules = _tops(m for p in self.packs if p.kind == "client" for m in p.modules)
        words = sorted(
            {n.rsplit(".", 1)[-1] for p in self.packs if p.kind == "client" for n in _local(p)}
        )
        if words:
            self._client_words = re.compile(
                (r"\b(?:" + "|".join(re.escape(w) for w in words) + r")\b").encode()
            )
        self._cross_modules = _tops(m for p in self.packs for m in p.cross_module_triggers)
        self._framework_modules = _tops(
            m for p in self.packs if p.kind == "framework" for m in p.modules
        )
        self._pooler_modules = _tops(m for p in self.packs if p.kind == "pooler" for m in p.modules)
        schemes = sorted({s for p in self.packs for s in p.url_schemes})
        if schemes:
            joined = "|".join(re.escape(s) for s in schemes)
            self._url_schemes = re.compile(rf"\b(?:{joined})(?:\+\w+)?://".encode())

    def client_call(self, qualnames: Iterable[str]) -> ClientCall | None:
        for qualname in qualnames:
            call = self._calls_by_name.get(qualname)
            if call is not None:
                return call
        return None

    @property
    def handler_shapes(self) -> list[HandlerShape]:
        return [shape for pack in self.packs for shape in pack.handlers]

    def shapes(self, kind: str) -> list[HandlerShape]:
        return [shape for shape in self.handler_shapes if shape.shape == kind]

    def mentions_client(self, source: bytes) -> bool:
        """Cheap prefilter: does this file import any module a client pack knows?"""
        return not self._client_modules.isdisjoint(imported_tops(source)) or (
            self._client_words is not None and self._client_words.search(source) is not None
        )

    def mentions_cross_module(self, source: bytes) -> bool:
        return not self._cross_modules.isdisjoint(imported_tops(source))

    def mentions_framework(self, source: bytes) -> bool:
        """Does this file import a framework? Its handlers may call a factory defined elsewhere."""
        return not self._framework_modules.isdisjoint(imported_tops(source))

    def worth_parsing(self, source: bytes) -> bool:
        """The prefilter: only files importing a known client or framework module can matter,
        and Django settings modules (they import no client, yet configure the pools)."""
        tops = imported_tops(source)  # one scan of the import lines answers most questions
        return (
            not self._client_modules.isdisjoint(tops)
            or not self._cross_modules.isdisjoint(tops)
            or not self._framework_modules.isdisjoint(tops)
            or not self._pooler_modules.isdisjoint(tops)
            or (self._client_words is not None and self._client_words.search(source) is not None)
            or (b"DATABASES" in source and DJANGO_DATABASES.search(source) is not None)
            or self._mentions_url_literal(source)
            or (
                _may_import_project_code(tops)
                and mentions_lifecycle_hook(source)
                and imports_project_code(source)
            )
        )

    def mentions_urls(self, source: bytes) -> bool:
        """Settings modules, alembic `env.py`, connection URL literals: the URL rules read them."""
        return not self._pooler_modules.isdisjoint(imported_tops(source)) or (
            self._mentions_url_literal(source)
        )

    def _mentions_url_literal(self, source: bytes) -> bool:
        if self._url_schemes is None:
            return False
        # Look only just before each `://`: a regex scan of the whole file costs far more.
        end = source.find(b"://")
        while end != -1:
            if self._url_schemes.search(source, max(0, end - _SCHEME_REACH), end + 3):
                return True
            end = source.find(b"://", end + 3)
        return False

    @property
    def poolers(self) -> list[Pooler]:
        """User packs first: a user's `[[poolers]]` entry overrides a built-in one per host."""
        builtin = builtin_pack_dir().resolve()
        user = [p for p in self.packs if p.path.resolve().parent != builtin]
        own = [p for p in self.packs if p.path.resolve().parent == builtin]
        return [pooler for pack in (*user, *own) for pooler in pack.poolers]

    @property
    def statement_caches(self) -> list[StatementCache]:
        return [cache for pack in self.packs for cache in pack.statement_caches]

    @property
    def driver_options(self) -> list[DriverOptions]:
        return [options for pack in self.packs for options in pack.driver_options]

    @property
    def url_schemes(self) -> frozenset[str]:
        return frozenset(s for pack in self.packs for s in pack.url_schemes)


# Modules that register shutdown or per-request hooks close clients other modules create
# (`lifespan.py` importing only `contextlib` and `app.db`): DPL301/DPL303 need them parsed.
_HOOK_WORDS = (
    b"lifespan",
    b"on_shutdown",
    b"on_cleanup",
    b"cleanup_ctx",
    b"after_serving",
    b"worker_exit",
    b"worker_process_shutdown",
    b"worker_shutdown",
    b"atexit",
    b"teardown_appcontext",
    b"teardown_request",
    b"request_finished",
    b"add_event_handler",
)
_LIFECYCLE_HOOKS = re.compile(rb"\b(?:" + b"|".join(_HOOK_WORDS) + rb")\b")
# How far before `://` a URL's scheme (`postgresql+asyncpg`) can start.
_SCHEME_REACH = 64


def mentions_lifecycle_hook(source: bytes) -> bool:
    """`lifespan`, `atexit`, `on_shutdown`, ... as a word. Substring tests first: they are
    plain memory scans, many times cheaper than the regex over a file that has none."""
    return any(word in source for word in _HOOK_WORDS) and bool(_LIFECYCLE_HOOKS.search(source))


_IMPORTED = re.compile(rb"^[ \t]*(?:from[ \t]+(\.|[\w.]+)[ \t]+import|import[ \t]+([\w.]+))", re.M)


# CPython's own test package, private C modules and `__main__` are not project code either.
_STANDARD = sys.stdlib_module_names | {"__main__", "test"}


_STANDARD_BYTES = frozenset(name.encode() for name in _STANDARD)


def _may_import_project_code(tops: frozenset[bytes]) -> bool:
    """A cheap gate for `imports_project_code`: `tops` names every module it could count (a
    relative import's top is empty), so False here is False there."""
    return any(not top or (top not in _STANDARD_BYTES and top[:1] != b"_") for top in tops)


def imports_project_code(source: bytes) -> bool:
    """Whether a module imports anything beyond the standard library (a relative import, or a
    package of the project or a third party): a shutdown hook in a module importing only the
    standard library cannot close a client another module built."""
    for match in _IMPORTED.finditer(source):
        name = (match.group(1) or match.group(2) or b"").decode("ascii", "replace")
        top = name.split(".", 1)[0]
        if top.startswith("_") and top != "__future__":
            continue
        if name.startswith(".") or (top and top not in _STANDARD):
            return True
    return False


FLASK_SQLALCHEMY = re.compile(rb"SQLALCHEMY_(?:ENGINE_OPTIONS|DATABASE_URI|POOL_)|flask_sqlalchemy")
DJANGO_DATABASES = re.compile(rb"^DATABASES\b\s*(?::[^=\n]*)?(?:=|\[)", re.MULTILINE)


def qualname_matches(patterns: Iterable[str], qualnames: Iterable[str]) -> bool:
    return any(_matches(patterns, q) for q in qualnames)


def _local(pack: Pack) -> list[str]:
    """Names from user packs whose module is not a third-party import trigger."""
    return [n for c in pack.calls for n in c.names if n.split(".", 1)[0] not in pack.modules]


def _tops(modules: Iterable[str]) -> frozenset[bytes]:
    return frozenset(m.split(".", 1)[0].encode() for m in modules)


# `from redis.asyncio import ...`, `import a, redis`, `import x as y, psycopg2`, indented too.
# `from x import` and `import x, y` at the start of a line (after blanks). Two patterns that
# begin with a literal word, checked for the line start afterwards: the regex engine skips to
# the word quickly, where one `^[ \t]*(?:...)` pattern is tried at every character of the file.
_FROM_IMPORT = re.compile(rb"from[ \t]+([\w.]+)[ \t]+import\b")
_PLAIN_IMPORT = re.compile(rb"import[ \t]+([^\n#;]+)")


def imported_tops(source: bytes) -> frozenset[bytes]:
    """The top-level names of every module the source imports (by line, without parsing)."""
    source = source.removeprefix(codecs.BOM_UTF8)
    tops: set[bytes] = set()
    for match in _FROM_IMPORT.finditer(source):
        if _starts_line(source, match.start()):
            tops.add(match.group(1).split(b".", 1)[0])
    for match in _PLAIN_IMPORT.finditer(source):
        if _starts_line(source, match.start()):
            for part in match.group(1).split(b","):
                words = part.split()
                if words:
                    tops.add(words[0].split(b".", 1)[0].strip(b"()\\"))
    return frozenset(tops)


def _starts_line(source: bytes, start: int) -> bool:
    """Only blanks between the line's start and `start`."""
    line = source.rfind(b"\n", 0, start) + 1
    return not source[line:start].strip(b" \t")


# --- loading -------------------------------------------------------------------------------

_PACK_KEYS = {"name", "title", "kind", "modules", "docs", "cross-module-triggers", "url-schemes"}
_CALL_KEYS = {
    "names",
    "what",
    "asynchronous",
    "awaitable",
    "close",
    "reuses-pool-keywords",
    "pool-keywords",
    "pool-hint",
    "source",
    "knobs",
    "url-position",
    "url-keywords",
    "options-argument",
    "options-prefix",
    "unpooled-when",
    "unpooled-schemes",
    "max-connections",
    "fork-safe",
    "server-schemes",
    "close-at-exit",
}
_POOLER_KEYS = {
    "name",
    "title",
    "schemes",
    "hosts",
    "ports",
    "params",
    "images",
    "mode-env",
    "prepared-statements-env",
    "mode",
    "prepared-statements",
    "prepared-statements-note",
    "direct-port",
    "source",
}
_POOLER_MODES = ("transaction", "session", "direct", "pinning")
_STATEMENT_CACHE_KEYS = {"driver", "calls", "keywords", "url-drivers", "wrapped-keywords", "source"}
_DRIVER_OPTION_KEYS = {"names", "keyword", "driver"}
_KNOB_KEYS = {
    "role",
    "label",
    "keywords",
    "default",
    "package",
    "source",
    "since",
    "until",
    "url-params",
    "connect-args",
    "position",
    "unbounded-when",
    "unbounded-when-none",
    "url-schemes",
    "fix-keyword",
    "fix-value",
    "fix-setting",
    "scale",
    "lint",
    "note",
}
FIX_SETTINGS = (
    "pool-size",
    "max-overflow",
    "max-connections",
    "pool-timeout",
    "acquire-timeout",
    "connect-timeout",
)
_HANDLER_KEYS = {
    "shape",
    "label",
    "names",
    "classes",
    "methods",
    "exclude-methods",
    "functions",
    "argument",
    "keyword",
    "params",
    "module-names",
    "requires-import",
    "unresolved-receiver",
    "instance-per-request",
    "exclude-classes",
}


class _Reader:
    """Typed access to one TOML table, with errors that point at the file, key and line."""

    def __init__(self, path: Path, text: str, table: Mapping[str, Any], where: str, index: int):
        self.path = path
        self.text = text
        self.table = table
        self.where = where
        self.index = index

    def fail(self, key: str, problem: str) -> PackError:
        line = _line_of(self.text, self.where, self.index, key)
        location = f"{self.path}:{line}" if line else str(self.path)
        label = f"{self.where}.{key}" if self.where else key
        return PackError(f"{location}: invalid pack key `{label}`: {problem}")

    def check_keys(self, allowed: set[str]) -> None:
        for key in self.table:
            if key not in allowed:
                close = difflib.get_close_matches(key, sorted(allowed), n=1)
                hint = f" (did you mean `{close[0]}`?)" if close else ""
                raise self.fail(key, f"unknown key{hint}")

    def string(self, key: str, default: str | None = None) -> str:
        value = self.table.get(key, default)
        if value is None:
            raise self.fail(key, "required key is missing")
        if not isinstance(value, str):
            raise self.fail(key, f"expected a string, got {type(value).__name__}")
        return value

    def strings(self, key: str) -> tuple[str, ...]:
        value = self.table.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.fail(key, "expected a list of strings")
        return tuple(value)

    def boolean(self, key: str) -> bool:
        value = self.table.get(key, False)
        if not isinstance(value, bool):
            raise self.fail(key, f"expected true or false, got {value!r}")
        return value

    def optional_int(self, key: str) -> int | None:
        value = self.table.get(key)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
            raise self.fail(key, f"expected an integer, got {value!r}")
        return value

    def scalar(self, key: str, default: KnobValue | None = None) -> KnobValue | None:
        value = self.table.get(key, default)
        if value is not None and not isinstance(value, str | int | float | bool):
            raise self.fail(key, f"expected a string, number or boolean, got {value!r}")
        return value

    def number(self, key: str, default: float) -> float:
        value = self.table.get(key, default)
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise self.fail(key, f"expected a number, got {value!r}")
        return float(value)

    def choice(self, key: str, choices: Sequence[str], default: str | None = None) -> str:
        value = self.string(key, default)
        if value not in choices:
            raise self.fail(key, f"expected one of {', '.join(choices)}; got {value!r}")
        return value


def _line_of(text: str, where: str, index: int, key: str) -> int | None:
    """Find the line of `key` inside the `index`-th `[[where]]` table (or the top table)."""
    lines = text.splitlines()
    start = 0
    if where:
        header = re.compile(rf"^\s*\[\[?\s*{re.escape(where)}\s*\]\]?\s*(#.*)?$")
        seen = -1
        for number, line in enumerate(lines):
            if header.match(line):
                seen += 1
                if seen == index:
                    start = number
                    break
        else:
            return None
    key_line = re.compile(rf"^\s*\"?{re.escape(key)}\"?\s*=")
    for number in range(start, len(lines)):
        if number > start and lines[number].lstrip().startswith("[") and where:
            break
        if key_line.match(lines[number]):
            return number + 1
    return start + 1 if where else None


def load_pack(path: Path) -> Pack:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise PackError(f"{path}: cannot read pack: {error}") from error
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise PackError(f"{path}: invalid TOML: {error}") from error

    top = _Reader(path, text, data, "", 0)
    top.check_keys(
        {"pack", "pools", "openers", "handlers", "poolers", "statement-caches", "driver-options"}
    )
    header_table = data.get("pack")
    if not isinstance(header_table, dict):
        raise top.fail("pack", "a [pack] table with `name` and `kind` is required")
    header = _Reader(path, text, header_table, "pack", 0)
    header.check_keys(_PACK_KEYS)
    name = header.string("name")
    kind = header.choice("kind", ("client", "framework", "pooler"))
    title = header.string("title", name)
    modules = header.strings("modules")

    calls: list[ClientCall] = []
    knob_counter = {"pools": 0, "openers": 0}
    for key, call_kind in (("pools", "pool"), ("openers", "opener")):
        tables = data.get(key, [])
        if not isinstance(tables, list):
            raise top.fail(key, f"expected an array of tables ([[{key}]])")
        for index, table in enumerate(tables):
            reader = _Reader(path, text, table, key, index)
            reader.check_keys(_CALL_KEYS)
            names = reader.strings("names")
            if not names:
                raise reader.fail("names", "at least one qualified name is required")
            calls.append(
                ClientCall(
                    kind=call_kind,
                    names=names,
                    library=title,
                    what=reader.string("what", "client" if call_kind == "pool" else "connection"),
                    asynchronous=reader.boolean("asynchronous"),
                    awaitable=reader.boolean("awaitable"),
                    close=reader.strings("close"),
                    reuses_pool_keywords=reader.strings("reuses-pool-keywords"),
                    pool_keywords=reader.strings("pool-keywords"),
                    pool_hint=reader.string("pool-hint", ""),
                    source=reader.string("source", ""),
                    knobs=_knobs(reader, path, text, knob_counter),
                    url_position=reader.optional_int("url-position"),
                    url_keywords=reader.strings("url-keywords"),
                    options_argument=reader.optional_int("options-argument"),
                    options_prefix=reader.string("options-prefix", ""),
                    unpooled_when=reader.strings("unpooled-when"),
                    unpooled_schemes=reader.strings("unpooled-schemes"),
                    max_connections=_max_connections(reader),
                    fork_safe=reader.string("fork-safe", ""),
                    server_schemes=reader.strings("server-schemes"),
                    close_at_exit=reader.string("close-at-exit", ""),
                )
            )

    handlers: list[HandlerShape] = []
    tables = data.get("handlers", [])
    if not isinstance(tables, list):
        raise top.fail("handlers", "expected an array of tables ([[handlers]])")
    for index, table in enumerate(tables):
        reader = _Reader(path, text, table, "handlers", index)
        reader.check_keys(_HANDLER_KEYS)
        shape = HandlerShape(
            shape=reader.choice("shape", HANDLER_SHAPES),
            label=reader.string("label"),
            framework=title,
            names=reader.strings("names"),
            classes=reader.strings("classes"),
            methods=reader.strings("methods"),
            exclude_methods=reader.strings("exclude-methods"),
            functions=reader.strings("functions"),
            argument=reader.optional_int("argument"),
            keyword=reader.string("keyword", ""),
            params=reader.strings("params"),
            module_names=reader.strings("module-names"),
            requires_import=reader.strings("requires-import"),
            unresolved_receiver=reader.choice("unresolved-receiver", RECEIVER_POLICIES, "never"),
            instance_per_request=reader.boolean("instance-per-request"),
            exclude_classes=reader.strings("exclude-classes"),
        )
        _validate_shape(reader, shape)
        handlers.append(shape)

    poolers, caches, options = _load_pooler_tables(path, text, data, top, name)

    if kind == "client" and not modules:
        modules = tuple(sorted({n.split(".", 1)[0] for c in calls for n in c.names}))
    return Pack(
        name=name,
        title=title,
        kind=kind,
        path=path,
        modules=modules,
        calls=tuple(calls),
        handlers=tuple(handlers),
        cross_module_triggers=header.strings("cross-module-triggers"),
        poolers=poolers,
        statement_caches=caches,
        driver_options=options,
        url_schemes=header.strings("url-schemes"),
    )


def _tables(top: _Reader, data: Mapping[str, Any], key: str) -> list[Any]:
    tables = data.get(key, [])
    if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
        raise top.fail(key, f"expected an array of tables ([[{key}]])")
    return tables


def _code_table(reader: _Reader, key: str) -> tuple[tuple[str, str], ...]:
    value = reader.table.get(key, {})
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise reader.fail(key, 'expected a table of keyword = "python code"')
    return tuple(value.items())


def _load_pooler_tables(
    path: Path, text: str, data: Mapping[str, Any], top: _Reader, pack_name: str
) -> tuple[tuple[Pooler, ...], tuple[StatementCache, ...], tuple[DriverOptions, ...]]:
    poolers = []
    for index, table in enumerate(_tables(top, data, "poolers")):
        reader = _Reader(path, text, table, "poolers", index)
        reader.check_keys(_POOLER_KEYS)
        ports = reader.table.get("ports", [])
        if not isinstance(ports, list) or not all(
            isinstance(p, int) and not isinstance(p, bool) for p in ports
        ):
            raise reader.fail("ports", "expected a list of port numbers")
        schemes = reader.strings("schemes")
        if not schemes:
            raise reader.fail("schemes", "required: a port alone is weak evidence")
        pooler = Pooler(
            name=reader.string("name"),
            title=reader.string("title", reader.string("name")),
            schemes=schemes,
            hosts=reader.strings("hosts"),
            ports=tuple(ports),
            params=reader.strings("params"),
            mode=reader.choice("mode", _POOLER_MODES, "transaction"),
            prepared_statements=reader.choice(
                "prepared-statements", ("yes", "no", "depends"), "no"
            ),
            prepared_statements_note=reader.string("prepared-statements-note", ""),
            direct_port=reader.optional_int("direct-port"),
            source=reader.string("source", ""),
            pack=pack_name,
            images=reader.strings("images"),
            mode_env=reader.strings("mode-env"),
            prepared_statements_env=reader.strings("prepared-statements-env"),
        )
        if not (pooler.hosts or pooler.ports or pooler.params or pooler.images):
            raise reader.fail("hosts", "a pooler needs `hosts`, `ports`, `params` or `images`")
        poolers.append(pooler)
    caches = []
    for index, table in enumerate(_tables(top, data, "statement-caches")):
        reader = _Reader(path, text, table, "statement-caches", index)
        reader.check_keys(_STATEMENT_CACHE_KEYS)
        caches.append(
            StatementCache(
                driver=reader.string("driver"),
                calls=reader.strings("calls"),
                keywords=_code_table(reader, "keywords"),
                url_drivers=reader.strings("url-drivers"),
                wrapped_keywords=_code_table(reader, "wrapped-keywords"),
                source=reader.string("source", ""),
            )
        )
    options = []
    for index, table in enumerate(_tables(top, data, "driver-options")):
        reader = _Reader(path, text, table, "driver-options", index)
        reader.check_keys(_DRIVER_OPTION_KEYS)
        options.append(
            DriverOptions(
                names=reader.strings("names"),
                keyword=reader.string("keyword"),
                driver=reader.string("driver", ""),
            )
        )
    return tuple(poolers), tuple(caches), tuple(options)


def _knobs(reader: _Reader, path: Path, text: str, counter: dict[str, int]) -> tuple[Knob, ...]:
    """`[[pools.knobs]]` / `[[openers.knobs]]`: validated, with errors that name file and line."""
    tables = reader.table.get("knobs", [])
    if not isinstance(tables, list):
        raise reader.fail("knobs", f"expected an array of tables ([[{reader.where}.knobs]])")
    knobs = []
    for table in tables:
        where = f"{reader.where}.knobs"
        knob_reader = _Reader(path, text, table, where, counter[reader.where])
        counter[reader.where] += 1
        knob_reader.check_keys(_KNOB_KEYS)
        role = knob_reader.choice("role", KNOB_ROLES)
        keywords = knob_reader.strings("keywords")
        default = knob_reader.scalar("default")
        if default is None:
            raise knob_reader.fail("default", "required key is missing")
        source = knob_reader.string("source")
        if not source.startswith("https://"):
            raise knob_reader.fail("source", "expected an https:// link to the docs or source")
        for key in ("since", "until"):
            bound = knob_reader.string(key, "")
            if bound and parse_version(bound) is None:
                raise knob_reader.fail(key, f"expected a version like 8.0.0, got {bound!r}")
        unbounded = table.get("unbounded-when", [])
        if not isinstance(unbounded, list) or not all(
            isinstance(v, str | int | float | bool) for v in unbounded
        ):
            raise knob_reader.fail("unbounded-when", "expected a list of values")
        fix_setting = knob_reader.string("fix-setting", "")
        if fix_setting and fix_setting not in FIX_SETTINGS:
            raise knob_reader.fail(
                "fix-setting", f"expected one of {', '.join(FIX_SETTINGS)}; got {fix_setting!r}"
            )
        knobs.append(
            Knob(
                role=role,
                label=knob_reader.string("label", keywords[0] if keywords else role),
                keywords=keywords,
                default=default,
                package=knob_reader.string("package"),
                source=source,
                since=knob_reader.string("since", ""),
                until=knob_reader.string("until", ""),
                url_params=knob_reader.strings("url-params"),
                connect_args=knob_reader.strings("connect-args"),
                position=knob_reader.optional_int("position"),
                unbounded_when=tuple(unbounded),
                unbounded_when_none=knob_reader.boolean("unbounded-when-none"),
                url_schemes=knob_reader.strings("url-schemes"),
                fix_keyword=knob_reader.string("fix-keyword", ""),
                fix_value=knob_reader.scalar("fix-value"),
                fix_setting=fix_setting,
                scale=knob_reader.number("scale", 1),
                lint=knob_reader.boolean("lint") if "lint" in table else True,
                note=knob_reader.string("note", ""),
            )
        )
    return tuple(knobs)


def _validate_shape(reader: _Reader, shape: HandlerShape) -> None:
    required = {
        "decorator": ("names",),
        "instance-decorator": ("classes", "methods"),
        "base-class": ("classes", "methods"),
        "registration": (),
        "signature": ("params",),
        "method-name": ("methods", "requires-import"),
        "class-attribute": ("classes", "keyword"),
    }[shape.shape]
    for key in required:
        if not reader.table.get(key):
            raise reader.fail(key, f"required for shape {shape.shape!r}")
    if shape.shape == "registration":
        if not shape.functions and not shape.methods:
            raise reader.fail("functions", "a registration needs `functions` or `methods`")
        if shape.argument is None and not shape.keyword:
            raise reader.fail("argument", "a registration needs `argument` or `keyword`")


def load_packs(extra: Sequence[Path] = ()) -> PackSet:
    directory = builtin_pack_dir()
    paths = sorted(directory.glob("*.toml"))
    if not paths:
        raise PackError(f"{directory}: no built-in rule packs found (broken installation?)")
    packs = [load_pack(path) for path in [*paths, *extra]]
    return PackSet(packs)
