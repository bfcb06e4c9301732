"""Environment values from a project's non-Python files, with the line each comes from.

- `.env`, `.env.*`, `*.env`: dotenv syntax (`KEY=value`, `export KEY=value`, quotes, `#` comments,
  `${VAR}` / `${VAR:-default}` expanded from earlier keys of the same file).
- `alembic.ini`: `sqlalchemy.url` and `script_location`, with `%(here)s` interpolation.
- `docker-compose*.yml`, `compose.yml`, `serverless.yml`, `template.yaml` (SAM): the entries of
  `environment:` blocks (list form `- KEY=value` or map form `KEY: value`) and of SAM's
  `Environment: Variables:`. This is a small line reader, not a YAML parser: anchors, merges
  (`<<: *x`), flow mappings (`{A: b}`) and multi-line scalars are not read; values it cannot read
  are simply absent. Compose `${VAR:-default}` uses the default unless `.env` beside it sets VAR.
"""

from __future__ import annotations

import configparser
import fnmatch
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import PurePath

DOTENV_PATTERNS = (".env", ".env.*", "*.env")
COMPOSE_PATTERNS = ("docker-compose*.yml", "docker-compose*.yaml", "compose.yml", "compose.yaml")
SERVERLESS_PATTERNS = ("serverless.yml", "serverless.yaml", "template.yaml", "template.yml")
# Committed templates: they document what a deployment sets, with placeholder secrets.
TEMPLATE_SUFFIXES = (".example", ".sample", ".template", ".dist", ".tmpl", ".defaults")


@dataclass(frozen=True)
class ConfigValue:
    path: str
    line: int
    column: int  # 1-based column of the value
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


def is_template(path: str) -> bool:
    return PurePath(path).name.lower().endswith(TEMPLATE_SUFFIXES)


_DOTENV_LINE = re.compile(r"^\s*(?:export\s+)?(?P<key>[A-Za-z_][A-Za-z0-9_.]*)\s*=\s*(?P<rest>.*)$")
_EXPANSION = re.compile(r"\$\{(?P<name>\w+)(?::?-(?P<default>[^}]*))?\}")


def _expand(value: str, known: Mapping[str, str]) -> str:
    def substitute(match: re.Match[str]) -> str:
        name = match.group("name")
        if name in known:
            return known[name]
        default = match.group("default")
        return default if default is not None else match.group(0)

    return _EXPANSION.sub(substitute, value)


def _unquote(rest: str) -> tuple[str, int, bool]:
    """(value, offset of the value in `rest`, was quoted)."""
    stripped = rest.lstrip()
    offset = len(rest) - len(stripped)
    if stripped[:1] in ("'", '"'):
        quote = stripped[0]
        end = stripped.find(quote, 1)
        if end != -1:
            return stripped[1:end], offset + 1, True
    value = re.split(r"\s+#", stripped, maxsplit=1)[0].rstrip()
    return value, offset, False


def read_dotenv(path: str, text: str) -> list[ConfigValue]:
    values: list[ConfigValue] = []
    known: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        match = _DOTENV_LINE.match(line)
        if match is None or line.lstrip().startswith("#"):
            continue
        raw, offset, quoted = _unquote(match.group("rest"))
        value = (
            raw if quoted and match.group("rest").lstrip().startswith("'") else _expand(raw, known)
        )
        known[match.group("key")] = value
        column = match.start("rest") + offset + 1
        key = match.group("key")
        values.append(ConfigValue(path, number, column, key, value, "dotenv", raw))
    return values


_BLOCK_HEADERS = re.compile(r"^(?P<indent>\s*)(?:environment|Variables)\s*:\s*(?:#.*)?$")
_LIST_ENTRY = re.compile(r"^\s*-\s*(?P<q>['\"]?)(?P<key>[A-Za-z_][\w.]*)=(?P<value>.*?)(?P=q)\s*$")
_MAP_ENTRY = re.compile(r"^\s*(?P<key>[A-Za-z_][\w.]*)\s*:\s*(?P<value>.*?)\s*$")


def read_yaml_environment(
    path: str, text: str, kind: str, known: Mapping[str, str]
) -> list[ConfigValue]:
    values: list[ConfigValue] = []
    lines = text.splitlines()
    index = 0
    while index < len(lines):
        header = _BLOCK_HEADERS.match(lines[index])
        index += 1
        if header is None:
            continue
        indent = len(header.group("indent"))
        while index < len(lines):
            line = lines[index]
            if not line.strip() or line.lstrip().startswith("#"):
                index += 1
                continue
            if len(line) - len(line.lstrip()) <= indent:
                break
            entry = _LIST_ENTRY.match(line) or _MAP_ENTRY.match(line)
            if (
                entry is not None
                and entry.group("value")
                and not entry.group("value").endswith(":")
            ):
                raw = entry.group("value")
                value = raw
                if value[:1] in ("'", '"') and value[-1:] == value[:1]:
                    value = value[1:-1]
                value = re.split(r"\s+#", value, maxsplit=1)[0]
                column = entry.start("value") + 1
                key = entry.group("key")
                expanded = _expand(value, known)
                values.append(ConfigValue(path, index + 1, column, key, expanded, kind, value))
            index += 1
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
    """Every environment value and alembic.ini the checked paths hold."""

    env: list[ConfigValue]
    alembic: list[AlembicIni]

    def values_of(self, name: str) -> list[ConfigValue]:
        return [v for v in self.env if v.key == name]

    def values_of_insensitive(self, name: str) -> list[ConfigValue]:
        lowered = name.lower()
        return [v for v in self.env if v.key.lower() == lowered]


def read_project(files: Mapping[str, str]) -> ProjectConfig:
    env: list[ConfigValue] = []
    alembic: list[AlembicIni] = []
    dotenv_by_dir: dict[str, dict[str, str]] = {}
    for path in sorted(files):
        if _matches(path, DOTENV_PATTERNS):
            read = read_dotenv(path, files[path])
            env.extend(read)
            if PurePath(path).name == ".env":
                dotenv_by_dir[str(PurePath(path).parent)] = {v.key: v.value for v in read}
    for path in sorted(files):
        known = dotenv_by_dir.get(str(PurePath(path).parent), {})
        if _matches(path, COMPOSE_PATTERNS):
            env.extend(read_yaml_environment(path, files[path], "compose", known))
        elif _matches(path, SERVERLESS_PATTERNS):
            env.extend(read_yaml_environment(path, files[path], "serverless", known))
        elif PurePath(path).name == "alembic.ini":
            alembic.append(read_alembic_ini(path, files[path]))
    return ProjectConfig(env, alembic)
