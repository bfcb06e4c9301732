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
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HANDLER_SHAPES = (
    "decorator",
    "instance-decorator",
    "base-class",
    "registration",
    "signature",
    "method-name",
)
RECEIVER_POLICIES = ("never", "path-argument", "always")


class PackError(Exception):
    """A pack file is malformed; the message names the file, the key and the line."""


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
    _trigger: re.Pattern[bytes] | None = None
    _cross_trigger: re.Pattern[bytes] | None = None
    _framework_trigger: re.Pattern[bytes] | None = None

    def __post_init__(self) -> None:
        for pack in self.packs:
            for call in pack.calls:
                for name in call.names:
                    self._calls_by_name.setdefault(name, call)
        self._trigger = _import_regex(
            [m for p in self.packs if p.kind == "client" for m in p.modules],
            [n.rsplit(".", 1)[-1] for p in self.packs if p.kind == "client" for n in _local(p)],
        )
        self._cross_trigger = _import_regex(
            [m for p in self.packs for m in p.cross_module_triggers], []
        )
        self._framework_trigger = _import_regex(
            [m for p in self.packs if p.kind == "framework" for m in p.modules], []
        )

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
        source = source.removeprefix(codecs.BOM_UTF8)
        return self._trigger is not None and self._trigger.search(source) is not None

    def mentions_cross_module(self, source: bytes) -> bool:
        return self._cross_trigger is not None and self._cross_trigger.search(source) is not None

    def mentions_framework(self, source: bytes) -> bool:
        """Does this file import a framework? Its handlers may call a factory defined elsewhere."""
        source = source.removeprefix(codecs.BOM_UTF8)
        return (
            self._framework_trigger is not None
            and self._framework_trigger.search(source) is not None
        )

    def worth_parsing(self, source: bytes) -> bool:
        """The prefilter: only files importing a known client or framework module can matter."""
        return (
            self.mentions_client(source)
            or self.mentions_cross_module(source)
            or self.mentions_framework(source)
        )


def qualname_matches(patterns: Iterable[str], qualnames: Iterable[str]) -> bool:
    return any(_matches(patterns, q) for q in qualnames)


def _local(pack: Pack) -> list[str]:
    """Names from user packs whose module is not a third-party import trigger."""
    return [n for c in pack.calls for n in c.names if n.split(".", 1)[0] not in pack.modules]


def _import_regex(modules: Sequence[str], words: Sequence[str]) -> re.Pattern[bytes] | None:
    alternatives = []
    top = sorted({m.split(".", 1)[0] for m in modules})
    if top:
        joined = "|".join(re.escape(m) for m in top)
        alternatives.append(rf"^[ \t]*(?:from|import)[ \t]+(?:{joined})\b")
        # `import a, redis` and `import x as y, psycopg2`
        alternatives.append(rf"^[ \t]*import[ \t][^\n#]*,[ \t]*(?:{joined})\b")
    if words:
        alternatives.append(r"\b(?:" + "|".join(re.escape(w) for w in sorted(set(words))) + r")\b")
    if not alternatives:
        return None
    return re.compile("|".join(alternatives).encode(), re.MULTILINE)


# --- loading -------------------------------------------------------------------------------

_PACK_KEYS = {"name", "title", "kind", "modules", "docs", "cross-module-triggers"}
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
}
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
    top.check_keys({"pack", "pools", "openers", "handlers"})
    header_table = data.get("pack")
    if not isinstance(header_table, dict):
        raise top.fail("pack", "a [pack] table with `name` and `kind` is required")
    header = _Reader(path, text, header_table, "pack", 0)
    header.check_keys(_PACK_KEYS)
    name = header.string("name")
    kind = header.choice("kind", ("client", "framework"))
    title = header.string("title", name)
    modules = header.strings("modules")

    calls: list[ClientCall] = []
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
        )
        _validate_shape(reader, shape)
        handlers.append(shape)

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
    )


def _validate_shape(reader: _Reader, shape: HandlerShape) -> None:
    required = {
        "decorator": ("names",),
        "instance-decorator": ("classes", "methods"),
        "base-class": ("classes", "methods"),
        "registration": (),
        "signature": ("params",),
        "method-name": ("methods", "requires-import"),
    }[shape.shape]
    for key in required:
        if not reader.table.get(key):
            raise reader.fail(key, f"required for shape {shape.shape!r}")
    if shape.shape == "registration":
        if not shape.functions and not shape.methods:
            raise reader.fail("functions", "a registration needs `functions` or `methods`")
        if shape.argument is None and not shape.keyword:
            raise reader.fail("argument", "a registration needs `argument` or `keyword`")


def builtin_pack_dir() -> Path:
    """Packs ship inside the wheel as dbpoollint/rules; a source checkout keeps them in rules/."""
    installed = Path(__file__).with_name("rules")
    if installed.is_dir():
        return installed
    return Path(__file__).resolve().parent.parent / "rules"


def load_packs(extra: Sequence[Path] = ()) -> PackSet:
    directory = builtin_pack_dir()
    paths = sorted(directory.glob("*.toml"))
    if not paths:
        raise PackError(f"{directory}: no built-in rule packs found (broken installation?)")
    packs = [load_pack(path) for path in [*paths, *extra]]
    return PackSet(packs)
