"""Commands in a project's files that run migrations, with the environment they give them.

- `Procfile`: the `release:` process (Heroku's release phase) or any process whose command
  runs migrations; `VAR=value` words before the command;
- shell scripts (`*.sh`): `export VAR=value` / `VAR=value` lines above the command, and the
  command's own `VAR=value` prefix;
- Makefiles: `VAR = value` / `VAR := value` / `export VAR ?= value` assignments and recipe
  lines, with `$(VAR)` / `${VAR}` expanded from earlier assignments;
- docker-compose: a service whose `command:` or `entrypoint:` runs migrations, with that
  service's `environment:` and `env_file:` values.

A migration command is `alembic ... upgrade|downgrade|stamp`, `manage.py migrate`,
`django-admin migrate` or `flask db upgrade`. Values keep `${VAR}` when nothing sets VAR.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import PurePath

from dbpoollint.analysis.vocabulary import MIGRATION_COMMAND
from dbpoollint.compose import ComposeFile
from dbpoollint.project_files import ConfigValue, ProjectConfig

SHELL_PATTERNS = ("*.sh", "*.bash")
MAKEFILE_NAMES = ("Makefile", "makefile", "GNUmakefile")
_ASSIGNMENT = re.compile(r"^(?P<key>[A-Za-z_][A-Za-z0-9_]*)=(?P<value>.*)$")
_MAKE_ASSIGNMENT = re.compile(
    r"^(?:export\s+)?(?P<key>[A-Za-z_][A-Za-z0-9_]*)\s*(?:\?|:|::)?=\s*(?P<value>.*)$"
)
_MAKE_REFERENCE = re.compile(r"\$[({](?P<name>\w+)[)}]")
_SHELL_REFERENCE = re.compile(r"\$\{(?P<braced>\w+)(?::?-(?P<default>[^}]*))?\}|\$(?P<bare>\w+)")


@dataclass(frozen=True)
class MigrationCommand:
    path: str
    line: int
    column: int
    text: str  # the migration part of the command, `alembic upgrade head`
    runner: str  # "Procfile `release:`", "compose service `migrate`", "shell script", ...
    env: tuple[ConfigValue, ...]  # what the command is given, each with where it was set


def _expand_shell(value: str, known: Mapping[str, str]) -> str:
    def substitute(match: re.Match[str]) -> str:
        name = match.group("braced") or match.group("bare")
        if name in known:
            return known[name]
        if match.group("default") is not None:
            return match.group("default")
        return "${" + name + "}"

    return _SHELL_REFERENCE.sub(substitute, value)


def _expand_make(text: str, known: Mapping[str, str]) -> str:
    return _MAKE_REFERENCE.sub(lambda m: known.get(m.group("name"), m.group(0)), text)


def _words(line: str) -> list[str]:
    try:
        return shlex.split(line, comments=True)
    except ValueError:
        return line.split()


def _prefix_env(
    path: str, number: int, line: str, words: list[str], known: Mapping[str, str], kind: str
) -> list[ConfigValue]:
    """`DATABASE_URL=... alembic upgrade head`: the assignments before the command word."""
    found = []
    for word in words:
        match = _ASSIGNMENT.match(word)
        if match is None:
            break
        value = _expand_shell(match.group("value"), known)
        column = line.find(word) + len(match.group("key")) + 2
        found.append(ConfigValue(path, number, column, match.group("key"), value, kind, value))
    return found


def _command(path: str, number: int, line: str, text: str) -> tuple[int, str] | None:
    match = MIGRATION_COMMAND.search(text)
    if match is None:
        return None
    return line.find(match.group(0)) + 1, match.group(0)


def read_procfile(path: str, text: str) -> list[MigrationCommand]:
    found = []
    for number, line in enumerate(text.splitlines(), start=1):
        process, colon, command = line.partition(":")
        if not colon or line.lstrip().startswith("#"):
            continue
        where = _command(path, number, line, command)
        if where is None:
            continue
        env = _prefix_env(path, number, line, _words(command), {}, "procfile")
        runner = f"Procfile `{process.strip()}:`"
        found.append(MigrationCommand(path, number, where[0], where[1], runner, tuple(env)))
    return found


def read_shell_script(path: str, text: str) -> list[MigrationCommand]:
    found = []
    known: dict[str, ConfigValue] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        words = _words(stripped)
        if words and words[0] == "export":
            words = words[1:]
        values = {k: v.value for k, v in known.items()}
        prefix = _prefix_env(path, number, line, words, values, "shell")
        if prefix and len(prefix) == len(words):  # an assignment line
            known.update((v.key, v) for v in prefix)
            continue
        where = _command(path, number, line, stripped)
        if where is not None:
            env = {**known, **{v.key: v for v in prefix}}
            command = MigrationCommand(
                path, number, where[0], where[1], "shell script", tuple(env.values())
            )
            found.append(command)
    return found


def read_makefile(path: str, text: str) -> list[MigrationCommand]:
    found = []
    known: dict[str, ConfigValue] = {}
    target = ""
    for number, line in enumerate(text.splitlines(), start=1):
        if line.startswith("\t"):
            recipe = line.strip().lstrip("@-+")
            where = _command(path, number, line, recipe)
            if where is None:
                continue
            values = {k: v.value for k, v in known.items()}
            recipe = _expand_make(recipe, values)
            words = _words(recipe)
            words = words[1:] if words and words[0] == "export" else words
            prefix = _prefix_env(path, number, line, words, values, "makefile")
            env = {**known, **{v.key: v for v in prefix}}
            runner = f"Makefile target `{target}`" if target else "Makefile"
            found.append(
                MigrationCommand(path, number, where[0], where[1], runner, tuple(env.values()))
            )
            continue
        assignment = _MAKE_ASSIGNMENT.match(line.strip())
        if assignment is not None and ":" not in assignment.group("key"):
            values = {k: v.value for k, v in known.items()}
            raw = assignment.group("value").split(" #", 1)[0].strip()
            value = _expand_make(raw, values)
            column = line.find(raw) + 1 if raw else 1
            key = assignment.group("key")
            known[key] = ConfigValue(path, number, column, key, value, "makefile", raw)
        elif re.match(r"^[\w.%/-]+\s*:(?!=)", line):
            target = line.split(":", 1)[0].strip()
    return found


def compose_commands(
    compose: ComposeFile, env_files: Mapping[str, list[ConfigValue]]
) -> list[MigrationCommand]:
    """`env_files`: the values of each env file by its path (as the project holds it)."""
    found = []
    folder = PurePath(compose.path).parent
    for service in compose.services:
        for text, line in ((service.command, service.command_line), (service.entrypoint, 0)):
            match = MIGRATION_COMMAND.search(text or "")
            if match is None:
                continue
            env: dict[str, ConfigValue] = {}
            for env_file, _ in service.env_files:
                for value in env_files.get(_join(folder, env_file), []):
                    env[value.key] = value
            for entry in service.environment:
                if entry.value is not None:
                    raw = entry.raw or ""
                    env[entry.key] = ConfigValue(
                        compose.path, entry.line, 1, entry.key, entry.value, "compose", raw
                    )
            runner = f"compose service `{service.name}`"
            found.append(
                MigrationCommand(
                    compose.path,
                    line or service.line,
                    1,
                    match.group(0),
                    runner,
                    tuple(env.values()),
                )
            )
    return found


def _join(folder: PurePath, relative: str) -> str:
    return normalise(str(folder / relative))


def normalise(path: str) -> str:
    """`a/./b/../c` -> `a/c`, as the project's file paths are written."""
    parts: list[str] = []
    for part in PurePath(path).parts:
        if part == "..":
            if parts and parts[-1] != "..":
                parts.pop()
            else:
                parts.append(part)
        elif part != ".":
            parts.append(part)
    return str(PurePath(*parts)) if parts else "."


def read_migration_commands(
    files: Mapping[str, str], config: ProjectConfig
) -> list[MigrationCommand]:
    env_files: dict[str, list[ConfigValue]] = {}
    for value in config.env:
        if value.kind == "dotenv":
            env_files.setdefault(normalise(value.path), []).append(value)
    found: list[MigrationCommand] = []
    for path in sorted(files):
        name = PurePath(path).name
        if name.startswith("Procfile"):
            found.extend(read_procfile(path, files[path]))
        elif name in MAKEFILE_NAMES or name.endswith(".mk"):
            found.extend(read_makefile(path, files[path]))
        elif name.endswith((".sh", ".bash")):
            found.extend(read_shell_script(path, files[path]))
    for compose in config.compose:
        found.extend(compose_commands(compose, env_files))
    return found
