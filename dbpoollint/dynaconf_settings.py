"""dynaconf settings files as URL sources: `settings.DATABASE_URL` on a `Dynaconf(...)`.

dynaconf reads its keys case-insensitively from the settings files it is given (TOML, YAML,
JSON), and an environment variable `{ENVVAR_PREFIX}_{KEY}` (`DYNACONF_` by default, `__` between
nested keys) overrides any file. With `environments=True` the files' top-level tables are
environments (`[default]`, `[development]`, `[production]`, ...), any of which may be the one
that runs; without it, tables are nested settings (`settings.database.url`).
See https://www.dynaconf.com/settings_files/ and https://www.dynaconf.com/envvars/.
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import PurePath
from typing import Any

from dbpoollint.analysis.values import Value
from dbpoollint.project_files import ConfigValue
from dbpoollint.yaml_source import LineDict, YamlError, load_documents

DEFAULT_PREFIX = "DYNACONF"
# `from dynaconf import settings` (the legacy global) looks for these next to the program.
DEFAULT_FILES = ("settings.toml", ".secrets.toml", "settings.yaml", ".secrets.yaml")


@dataclass(frozen=True)
class DynaconfSource:
    prefix: str  # "" when `envvar_prefix=False`: no environment override
    files: tuple[str, ...]
    environments: bool | None  # None: cannot be told, so both readings


def env_var(prefix: str, keys: list[str]) -> str | None:
    """`DYNACONF_DATABASE__URL` for `settings.database.url`."""
    return f"{prefix}_{'__'.join(keys)}".upper() if prefix else None


def file_values(
    source: DynaconfSource,
    keys: list[str],
    folder: PurePath,
    read: Callable[[str], str | None],
) -> list[ConfigValue]:
    """Every string the settings files give `keys`, nearest file to `folder` first."""
    found: list[ConfigValue] = []
    for name in source.files:
        for directory in (folder, *folder.parents):
            path = str(directory / name)
            text = read(path)
            if text is None:
                continue
            found.extend(_values(path, text, keys, source.environments))
            break  # dynaconf takes the first match for each name
    return found


def _values(
    path: str, text: str, keys: list[str], environments: bool | None
) -> Iterator[ConfigValue]:
    data = _load(path, text)
    if not isinstance(data, Mapping):
        return
    roots: list[tuple[list[str], Mapping[Any, Any]]] = []
    if environments is not True:
        roots.append(([], data))
    if environments is not False:
        roots.extend(([str(k)], v) for k, v in data.items() if isinstance(v, Mapping))
    for tables, root in roots:
        value = _lookup(root, keys)
        if isinstance(value, str):
            line = _line_of(root, [*tables, *keys], text)
            yield ConfigValue(path, line, 1, "_".join(keys).upper(), value, "dynaconf", value)


def _lookup(data: Mapping[Any, Any], keys: list[str]) -> object:
    current: object = data
    for key in keys:
        if not isinstance(current, Mapping):
            return None
        match = next((k for k in current if str(k).lower() == key.lower()), None)
        if match is None:
            return None
        current = current[match]
    return current


def _line_of(root: Mapping[Any, Any], path: list[str], text: str) -> int:
    """The line of `path`'s last key: YAML keeps lines; for TOML (tomllib keeps none) the
    `key = ...` line under the `[table]` header holding it."""
    if isinstance(root, LineDict):
        match = next((k for k in root if str(k).lower() == path[-1].lower()), None)
        if match is not None:
            return root.key_line(match)
    header = re.compile(r"^\s*\[+\s*(?P<name>[^\]]+?)\s*\]+")
    key = re.compile(rf"^\s*[\"']?{re.escape(path[-1])}[\"']?\s*=", re.IGNORECASE)
    table = ".".join(path[:-1]).lower()
    current = ""
    for number, line in enumerate(text.splitlines(), start=1):
        found = header.match(line)
        if found is not None:
            current = found.group("name").lower()
        elif current == table and key.match(line):
            return number
    return 1


def _load(path: str, text: str) -> object:
    suffix = PurePath(path).suffix.lower()
    try:
        if suffix == ".toml":
            return tomllib.loads(text)
        if suffix in (".yaml", ".yml"):
            documents = load_documents(text)
            return documents[0] if documents else None
        if suffix == ".json":
            return json.loads(text)
    except (tomllib.TOMLDecodeError, YamlError, ValueError):
        return None  # a broken settings file says nothing about the URL
    return None


def dynaconf_source(value: Value | None) -> DynaconfSource:
    """What a `Dynaconf(...)` call says, as far as it can be read; dynaconf's defaults for
    the legacy `from dynaconf import settings`."""
    if value is None:
        return DynaconfSource(DEFAULT_PREFIX, DEFAULT_FILES, None)
    prefix_value = value.item("prefix")
    prefix = DEFAULT_PREFIX
    if prefix_value is not None:
        literal = prefix_value.literal if prefix_value.kind == "literal" else None
        prefix = literal if isinstance(literal, str) else ""  # False or unreadable: none
    files = tuple(
        str(v.literal)
        for k, v in value.items
        if k.startswith("file:") and v.kind == "literal" and isinstance(v.literal, str)
    )
    environments_value = value.item("environments")
    environments: bool | None = False
    if environments_value is not None:
        literal = environments_value.literal
        if environments_value.kind == "literal" and isinstance(literal, bool):
            environments = literal
        else:  # `environments=["production", ...]` turns them on; a name may be anything
            environments = True if environments_value.code.startswith(("[", "(")) else None
    return DynaconfSource(prefix, files, environments)
