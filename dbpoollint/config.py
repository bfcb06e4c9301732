"""Load and validate ``[tool.dbpoollint]`` from pyproject.toml or a dbpoollint.toml."""

from __future__ import annotations

import difflib
import tomllib
from collections.abc import Mapping
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


_STRING_LISTS = ("select", "extend-select", "ignore", "exclude", "extend-exclude", "packs")
_KEYS = (
    *_STRING_LISTS,
    "per-file-ignores",
    "respect-gitignore",
    "unsafe-fixes",
    "fix-values",
    "budget",
)
_BUDGET_KEYS = ("max-connections", "reserved-connections", "replicas", "workers")


def find_config(start: Path) -> Path | None:
    """Walk up from `start`: the first dbpoollint.toml, or pyproject.toml with our table."""
    directory = start.resolve()
    if directory.is_file():
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


def load_settings(path: Path | None) -> Settings:
    if path is None:
        return Settings()
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"{path}: cannot read configuration: {error}") from error
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path}: invalid TOML: {error}") from error
    if path.name == "dbpoollint.toml":
        table: Any = data.get("tool", {}).get("dbpoollint", data) if "tool" in data else data
    else:
        table = data.get("tool", {}).get("dbpoollint", {})
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: [tool.dbpoollint] must be a table")
    return _validate(path, table)


def _fail(path: Path, key: str, problem: str) -> ConfigError:
    return ConfigError(f"{path}: `{key}`: {problem}")


def _suggest(key: str, known: tuple[str, ...]) -> str:
    close = difflib.get_close_matches(key, known, n=1)
    return f" (did you mean `{close[0]}`?)" if close else ""


def _validate(path: Path, table: Mapping[str, Any]) -> Settings:
    settings = Settings(path=path, root=path.parent.resolve())
    for key, value in table.items():
        if key not in _KEYS:
            raise _fail(path, key, f"unknown configuration key{_suggest(key, _KEYS)}")
        if key in _STRING_LISTS:
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise _fail(path, key, "expected a list of strings")
        elif key in ("respect-gitignore", "unsafe-fixes"):
            if not isinstance(value, bool):
                raise _fail(path, key, f"expected true or false, got {value!r}")
        elif key == "per-file-ignores":
            if not isinstance(value, dict) or not all(
                isinstance(v, list) and all(isinstance(c, str) for c in v) for v in value.values()
            ):
                raise _fail(path, key, 'expected a table of glob = ["CODE", ...]')
        elif key == "fix-values":
            if not isinstance(value, dict) or not all(
                isinstance(v, int | float) and not isinstance(v, bool) for v in value.values()
            ):
                raise _fail(path, key, "expected a table of numbers")
        elif key == "budget":
            if not isinstance(value, dict):
                raise _fail(path, key, "expected a table")
            for sub, number in value.items():
                if sub not in _BUDGET_KEYS:
                    raise _fail(path, f"budget.{sub}", f"unknown key{_suggest(sub, _BUDGET_KEYS)}")
                if not isinstance(number, int) or isinstance(number, bool) or number < 0:
                    raise _fail(path, f"budget.{sub}", "expected a non-negative integer")
    settings.select = list(table["select"]) if "select" in table else None
    settings.extend_select = list(table.get("extend-select", []))
    settings.ignore = list(table.get("ignore", []))
    settings.per_file_ignores = {k: list(v) for k, v in table.get("per-file-ignores", {}).items()}
    settings.exclude = list(table.get("exclude", []))
    settings.extend_exclude = list(table.get("extend-exclude", []))
    settings.respect_gitignore = bool(table.get("respect-gitignore", True))
    settings.unsafe_fixes = bool(table.get("unsafe-fixes", False))
    settings.packs = [(settings.root / p) for p in table.get("packs", [])]
    settings.fix_values = dict(table.get("fix-values", {}))
    settings.budget = dict(table.get("budget", {}))
    return settings
