"""Load and validate ``[tool.dbpoollint]`` from pyproject.toml, or top-level keys from any other
file (dbpoollint.toml, or whatever --config names).

Validation is a table of keys, each with a checker that returns a problem or None, so a new key
or a new sub-table (`[tool.dbpoollint.<name>]`) is one entry in `_KEYS` / `_TABLES`.
"""

from __future__ import annotations

import difflib
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


class ConfigError(Exception):
    """The configuration is broken; the message names the file and key."""


@dataclass
class Settings:
    path: Path | None = None
    root: Path = field(default_factory=Path.cwd)
    select: list[str] | None = None
    extend_select: list[str] = field(default_factory=list)
    ignore: list[str] = field(default_factory=list)
    per_file_ignores: dict[str, list[str]] = field(default_factory=dict)
    exclude: list[str] = field(default_factory=list)
    extend_exclude: list[str] = field(default_factory=list)
    respect_gitignore: bool = True
    unsafe_fixes: bool = False
    packs: list[Path] = field(default_factory=list)
    fix_values: dict[str, float] = field(default_factory=dict)
    budget: dict[str, Any] = field(default_factory=dict)
    # Run contexts the long-lived rules also judge (dbpoollint.analysis.contexts.WIDENING).
    contexts: list[str] = field(default_factory=list)
    # Where the cache lives, relative to `root` (DBPOOLLINT_CACHE_DIR overrides it).
    cache_dir: str | None = None


Checker = Callable[[Any], str | None]


def _string_list(value: Any) -> str | None:
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return None
    return "expected a list of strings"


def _contexts(values: list[str]) -> str | None:
    from dbpoollint.analysis.contexts import WIDENING

    unknown = next((v for v in values if v not in WIDENING), None)
    if unknown is None:
        return None
    return f"unknown context `{unknown}` (one of {', '.join(f'`{w}`' for w in WIDENING)})"


def _string(value: Any) -> str | None:
    return None if isinstance(value, str) and value else f"expected a path, got {value!r}"


def _boolean(value: Any) -> str | None:
    return None if isinstance(value, bool) else f"expected true or false, got {value!r}"


def _globs_to_codes(value: Any) -> str | None:
    if isinstance(value, dict) and all(_string_list(v) is None for v in value.values()):
        return None
    return 'expected a table of glob = ["CODE", ...]'


def _integer(minimum: int) -> Checker:
    def check(value: Any) -> str | None:
        if isinstance(value, int) and not isinstance(value, bool) and value >= minimum:
            return None
        wanted = "a positive integer" if minimum == 1 else "a non-negative integer"
        return f"expected {wanted}, got {value!r}"

    return check


def _seconds(value: Any) -> str | None:
    # libpq reads connect_timeout = 0 as "wait forever": a timeout must be above zero.
    if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
        return None
    return f"expected a number of seconds above 0, got {value!r}"


# Sub-tables: `[tool.dbpoollint.<table>]` key -> checker.
_TABLES: dict[str, dict[str, Checker]] = {
    # The numbers the DPL201/203/204 fixes write (checks/knobs.py FIX_VALUE_DEFAULTS).
    "fix-values": {
        "pool-size": _integer(1),
        "max-overflow": _integer(0),
        "max-connections": _integer(1),
        "pool-timeout": _seconds,
        "acquire-timeout": _seconds,
        "connect-timeout": _seconds,
    },
    "budget": {
        "max-connections": _integer(0),
        "reserved-connections": _integer(0),
        "replicas": _integer(0),
        "workers": _integer(0),
    },
}
_KEYS: dict[str, Checker] = {
    "select": _string_list,
    "extend-select": _string_list,
    "ignore": _string_list,
    "per-file-ignores": _globs_to_codes,
    "exclude": _string_list,
    "extend-exclude": _string_list,
    "respect-gitignore": _boolean,
    "unsafe-fixes": _boolean,
    "packs": _string_list,
    "contexts": lambda value: _string_list(value) or _contexts(value),
    "cache-dir": _string,
}
# Keys whose values are rule selectors, checked against the rule codes.
_SELECTOR_KEYS = ("select", "extend-select", "ignore")


def find_config(start: Path) -> Path | None:
    """Walk up from `start`: the first dbpoollint.toml, or pyproject.toml with our table."""
    try:
        directory = start.resolve()
    except RuntimeError:  # a symlink loop: reported as unreadable by the engine
        directory = start.absolute()
    if not directory.is_dir():
        directory = directory.parent
    for candidate_dir in [directory, *directory.parents]:
        dedicated = candidate_dir / "dbpoollint.toml"
        if dedicated.is_file():
            return dedicated
        pyproject = candidate_dir / "pyproject.toml"
        if pyproject.is_file() and _has_our_table(pyproject):
            return pyproject
    return None


def _has_our_table(pyproject: Path) -> bool:
    try:
        text = pyproject.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return False
    return "[tool.dbpoollint" in text


def load_settings(path: Path | None, explicit: bool = False) -> Settings:
    """`explicit`: the user named this file with --config, so it must hold a configuration."""
    if path is None:
        return Settings()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as error:
        raise ConfigError(f"{path}: configuration file not found") from error
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"{path}: cannot read configuration: {error}") from error
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path}: invalid TOML: {error}") from error
    ours = data.get("tool", {}).get("dbpoollint") if isinstance(data.get("tool"), dict) else None
    if path.name == "pyproject.toml":
        # As ruff does: a pyproject.toml holds a tool table, any other file holds the keys.
        if ours is None and explicit:
            raise ConfigError(f"{path}: no [tool.dbpoollint] table")
        table: Any = ours if ours is not None else {}
    else:
        table = ours if ours is not None else data
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: [tool.dbpoollint] must be a table")
    return _validate(path, table)


def _fail(path: Path, key: str, problem: str) -> ConfigError:
    return ConfigError(f"{path}: `{key}`: {problem}")


def _suggest(key: str, known: Mapping[str, object]) -> str:
    close = difflib.get_close_matches(key, list(known), n=1)
    return f" (did you mean `{close[0]}`?)" if close else ""


def _check_selectors(path: Path, key: str, selectors: list[str]) -> None:
    from dbpoollint.selection import SelectionError, validate_selectors

    try:
        validate_selectors(selectors)
    except SelectionError as error:
        raise _fail(path, key, str(error)) from error


def _validate(path: Path, table: Mapping[str, Any]) -> Settings:
    known = {**_KEYS, **_TABLES}
    for key, value in table.items():
        if key not in known:
            raise _fail(path, key, f"unknown configuration key{_suggest(key, known)}")
        if key in _TABLES:
            _validate_table(path, key, value)
            continue
        problem = _KEYS[key](value)
        if problem is not None:
            raise _fail(path, key, problem)
        if key in _SELECTOR_KEYS:
            _check_selectors(path, key, value)
    for glob, codes in table.get("per-file-ignores", {}).items():
        _check_selectors(path, f'per-file-ignores."{glob}"', codes)
    root = path.parent.resolve()
    return Settings(
        path=path,
        root=root,
        select=list(table["select"]) if "select" in table else None,
        extend_select=list(table.get("extend-select", [])),
        ignore=list(table.get("ignore", [])),
        per_file_ignores={k: list(v) for k, v in table.get("per-file-ignores", {}).items()},
        exclude=list(table.get("exclude", [])),
        extend_exclude=list(table.get("extend-exclude", [])),
        respect_gitignore=bool(table.get("respect-gitignore", True)),
        unsafe_fixes=bool(table.get("unsafe-fixes", False)),
        packs=[root / p for p in table.get("packs", [])],
        fix_values=dict(table.get("fix-values", {})),
        budget=dict(table.get("budget", {})),
        contexts=list(table.get("contexts", [])),
        cache_dir=table.get("cache-dir"),
    )


def _validate_table(path: Path, name: str, value: Any) -> None:
    if not isinstance(value, dict):
        raise _fail(path, name, "expected a table")
    keys = _TABLES[name]
    for sub, item in value.items():
        if sub not in keys:
            raise _fail(path, f"{name}.{sub}", f"unknown key{_suggest(sub, keys)}")
        problem = keys[sub](item)
        if problem is not None:
            raise _fail(path, f"{name}.{sub}", problem)
