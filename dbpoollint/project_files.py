"""Environment values from a project's non-Python files, with the line each comes from.

- env files: `.env`, `.env.*`, `*.env`, `env.*` by convention, and any other file the project
  loads by name (`extra_env_files`: `load_dotenv("config/supabase")`, compose `env_file:`,
  pydantic `env_file=`, `--env-file` in a Procfile or Dockerfile). python-dotenv's own parser
  reads them (quotes, `export`, multi-line values, comments); `${VAR}` / `${VAR:-default}` are
  expanded from earlier keys of the same file, except in single-quoted values.
- `alembic.ini`: `sqlalchemy.url` and `script_location`, with `%(here)s` interpolation.
- `docker-compose*.yml`, `compose.yml` (through `dbpoollint.compose`), `serverless.yml` and SAM's
  `template.yaml` (through `yaml_source`): the entries of every `environment:` mapping or list
  and of SAM's `Environment: Variables:`. Anchors, merges, flow style and multi-line values work.
  Compose `${VAR:-default}` uses the default unless the `.env` beside the file sets VAR.
"""

from __future__ import annotations

import configparser
import fnmatch
import io
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import Any

from dotenv.parser import parse_stream
from dotenv.variables import Literal, Variable, parse_variables

from dbpoollint.compose import ComposeFile, read_compose
from dbpoollint.pgbouncer_ini import PgBouncerIni, is_pgbouncer_ini, read_pgbouncer_ini
from dbpoollint.yaml_source import LineDict, LineList, YamlError, load_documents

DOTENV_PATTERNS = (".env", ".env.*", "*.env", "env.*")
COMPOSE_PATTERNS = ("docker-compose*.yml", "docker-compose*.yaml", "compose.yml", "compose.yaml")
SERVERLESS_PATTERNS = ("serverless.yml", "serverless.yaml", "template.yaml", "template.yml")
# `env.py` is alembic's environment, `env.example.py` code: neither is an env file.
NOT_DOTENV_SUFFIXES = (".py", ".pyc", ".pyi", ".ts", ".js", ".sh", ".json", ".toml", ".md")
# Committed templates: they document what a deployment sets, with placeholder secrets.
TEMPLATE_SUFFIXES = (".example", ".sample", ".template", ".dist", ".tmpl", ".defaults")


@dataclass(frozen=True)
class ConfigValue:
    path: str
    line: int
    column: int  # 1-based column of the value on `line`
    key: str
    value: str
    kind: str  # "dotenv", "compose", "serverless", "alembic"
    raw: str = ""  # as written, before `${VAR}` expansion (DPL601 judges this)

    def where(self) -> str:
        return f"{PurePath(self.path).name}:{self.line}"


@dataclass(frozen=True)
class AlembicIni:
    path: str
    url: ConfigValue | None
    script_location: str | None


def _matches(path: str, patterns: tuple[str, ...]) -> bool:
    name = PurePath(path).name
    return any(fnmatch.fnmatchcase(name, p) for p in patterns)


def is_dotenv(path: str) -> bool:
    return _matches(path, DOTENV_PATTERNS) and not path.endswith(NOT_DOTENV_SUFFIXES)


def is_template(path: str) -> bool:
    return PurePath(path).name.lower().endswith(TEMPLATE_SUFFIXES)


def _column(lines: list[str], line: int, raw: str) -> int:
    """Where `raw` starts on its line; the line's indentation + 1 when it is not there (a
    multi-line value, or a value YAML unescaped)."""
    if not 1 <= line <= len(lines):
        return 1
    text = lines[line - 1]
    first_line = raw.splitlines()[0] if raw else ""
    found = text.find(first_line) if first_line else -1
    return found + 1 if found >= 0 else len(text) - len(text.lstrip()) + 1


def _expand_dotenv(value: str, known: Mapping[str, str]) -> str:
    """python-dotenv's POSIX expansion, except that an unset variable without a default stays
    `${NAME}` (unknown) instead of becoming empty."""
    parts = []
    for atom in parse_variables(value):
        if isinstance(atom, Literal):
            parts.append(atom.value)
        elif not isinstance(atom, Variable):
            continue
        elif atom.name in known:
            parts.append(known[atom.name])
        elif atom.default is not None:
            parts.append(atom.default)
        else:
            parts.append("${" + atom.name + "}")
    return "".join(parts)


def read_dotenv(path: str, text: str) -> list[ConfigValue]:
    values: list[ConfigValue] = []
    known: dict[str, str] = {}
    lines = text.splitlines()
    for binding in parse_stream(io.StringIO(text)):
        if binding.key is None or binding.value is None or binding.error:
            continue
        original = binding.original.string
        after = original.partition("=")[2].lstrip()
        single_quoted = after.startswith("'")
        value = binding.value if single_quoted else _expand_dotenv(binding.value, known)
        known[binding.key] = value
        line = binding.original.line
        column = _column(lines, line, binding.value)
        values.append(ConfigValue(path, line, column, binding.key, value, "dotenv", binding.value))
    return values


def _scalar(value: Any) -> str | None:
    if value is None or isinstance(value, dict | list):
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def compose_values(compose: ComposeFile, lines: list[str]) -> list[ConfigValue]:
    values = []
    for service in compose.services:
        for entry in service.environment:
            if entry.value is None:
                continue
            raw = entry.raw or ""
            column = _column(lines, entry.line, raw)
            values.append(
                ConfigValue(
                    compose.path, entry.line, column, entry.key, entry.value, "compose", raw
                )
            )
    return values


def _environment_maps(node: Any, inside_environment: bool = False) -> Iterator[LineDict]:
    """serverless `environment:` mappings (provider and functions) and SAM `Variables:`."""
    if isinstance(node, LineDict):
        for key, value in node.items():
            is_env = key == "environment" or (inside_environment and key == "Variables")
            if is_env and isinstance(value, LineDict):
                yield value
            else:
                yield from _environment_maps(value, key == "Environment")
    elif isinstance(node, LineList):
        for item in node:
            yield from _environment_maps(item)


def read_serverless(path: str, text: str) -> list[ConfigValue]:
    try:
        documents = load_documents(text)
    except YamlError:
        return []
    lines = text.splitlines()
    values = []
    for document in documents:
        for mapping in _environment_maps(document):
            for key, raw_value in mapping.items():
                value = _scalar(raw_value)
                if value is None:
                    continue  # `!Ref`-style objects and lists name no literal value
                line = mapping.key_line(key)
                column = _column(lines, line, value)
                values.append(ConfigValue(path, line, column, str(key), value, "serverless", value))
    return values


def read_alembic_ini(path: str, text: str) -> AlembicIni:
    here = str(PurePath(path).parent)
    # Inline `#` comments are not part of alembic's syntax, but a URL never contains " #".
    parser = configparser.ConfigParser(
        defaults={"here": here}, interpolation=None, inline_comment_prefixes=("#",)
    )
    try:
        parser.read_string(text)
    except configparser.Error:
        return AlembicIni(path, None, None)
    section = "alembic" if parser.has_section("alembic") else None
    if section is None:
        return AlembicIni(path, None, None)
    script_location = parser.get(section, "script_location", fallback=None)
    url = parser.get(section, "sqlalchemy.url", fallback=None)
    value = None
    if url is not None:
        url = url.replace("%(here)s", here).replace("%%", "%")
        line, column = _ini_position(text, "sqlalchemy.url")
        url = url.strip()
        value = ConfigValue(path, line, column, "sqlalchemy.url", url, "alembic", url)
    if script_location is not None:
        script_location = script_location.replace("%(here)s", here)
    return AlembicIni(path, value, script_location)


def _ini_position(text: str, key: str) -> tuple[int, int]:
    in_alembic = False
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if stripped.startswith("["):
            in_alembic = stripped == "[alembic]"
            continue
        match = re.match(rf"^\s*{re.escape(key)}\s*[=:]\s*", line)
        if in_alembic and match:
            return number, match.end() + 1
    return 1, 1


@dataclass
class ProjectConfig:
    """Every environment value, alembic.ini, compose file and pgbouncer.ini the checked paths
    hold."""

    env: list[ConfigValue]
    alembic: list[AlembicIni]
    compose: list[ComposeFile] = field(default_factory=list)
    pgbouncer: list[PgBouncerIni] = field(default_factory=list)

    def values_of(self, name: str) -> list[ConfigValue]:
        return [v for v in self.env if v.key == name]

    def values_of_insensitive(self, name: str) -> list[ConfigValue]:
        lowered = name.lower()
        return [v for v in self.env if v.key.lower() == lowered]


def read_project(
    files: Mapping[str, str], extra_env_files: frozenset[str] = frozenset()
) -> ProjectConfig:
    """`extra_env_files`: paths of files the project loads as env files whatever their name."""
    env: list[ConfigValue] = []
    alembic: list[AlembicIni] = []
    compose: list[ComposeFile] = []
    pgbouncer: list[PgBouncerIni] = []
    dotenv_by_dir: dict[str, dict[str, str]] = {}
    for path in sorted(files):
        if is_dotenv(path) or path in extra_env_files:
            read = read_dotenv(path, files[path])
            env.extend(read)
            if PurePath(path).name == ".env":
                dotenv_by_dir[str(PurePath(path).parent)] = {v.key: v.value for v in read}
    for path in sorted(files):
        known = dotenv_by_dir.get(str(PurePath(path).parent), {})
        if _matches(path, COMPOSE_PATTERNS):
            parsed = read_compose(path, files[path], known)
            compose.append(parsed)
            env.extend(compose_values(parsed, files[path].splitlines()))
        elif _matches(path, SERVERLESS_PATTERNS):
            env.extend(read_serverless(path, files[path]))
        elif PurePath(path).name == "alembic.ini":
            alembic.append(read_alembic_ini(path, files[path]))
        elif is_pgbouncer_ini(path):
            ini = read_pgbouncer_ini(path, files[path])
            if ini is not None:
                pgbouncer.append(ini)
    return ProjectConfig(env, alembic, compose, pgbouncer)
