"""docker-compose files as data: services, images, ports, environment, env files, commands.

Read with `yaml_source` (PyYAML keeping lines), so anchors, `<<: *merge`, flow style and
multi-line scalars load as compose itself reads them. Every value keeps the 1-based line it was
written on. Variables (`${VAR}`, `${VAR:-default}`, `${VAR-default}`, `$VAR`, `$$`) are expanded
as compose does from the `known` mapping (the `.env` beside the compose file); a variable with
neither a value nor a default stays written as `${VAR}`, so later readers see an unknown part.

Used by the URL rules (which image publishes a host port: `postgres:16` is direct, a PgBouncer
image is a pooler) and by anything else that wants compose services (process counts, commands).
A file that is not valid YAML, or not a compose file, yields no services and a one-line `error`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from dbpoollint.yaml_source import LineDict, LineList, YamlError, load_documents

_VARIABLE = re.compile(
    r"\$(?:\$|\{(?P<braced>\w+)(?:(?P<op>:?[-?+])(?P<default>[^}]*))?\}|(?P<bare>[A-Za-z_]\w*))"
)


def expand(text: str, known: Mapping[str, str]) -> str:
    """Compose's interpolation: `$$` is a literal `$`; unknown variables stay as `${NAME}`."""

    def substitute(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name = match.group("braced") or match.group("bare")
        op, default = match.group("op") or "", match.group("default")
        value = known.get(name)
        if op.endswith("+"):  # `${VAR:+alt}`: alt when VAR is set
            return (default or "") if value else ""
        if value is not None and (value or not op.startswith(":")):
            return value
        if default is not None and op.endswith("-"):
            return default
        return "${" + name + "}"

    return _VARIABLE.sub(substitute, text)


@dataclass(frozen=True)
class EnvEntry:
    """One `environment:` entry. `value` is expanded; None when the entry names only a key
    (`- DATABASE_URL`: taken from the shell running compose)."""

    key: str
    value: str | None
    raw: str | None
    line: int


@dataclass(frozen=True)
class PortMapping:
    """`"127.0.0.1:6432:5432"` -> host_ip 127.0.0.1, published 6432, target 5432. `published`
    is None when compose picks a random host port (`- "5432"`)."""

    published: int | None
    target: int | None
    host_ip: str
    line: int


@dataclass(frozen=True)
class Mount:
    """A volume or bind mount: `./pgbouncer.ini:/etc/pgbouncer/pgbouncer.ini:ro`."""

    source: str
    target: str
    line: int


@dataclass(frozen=True)
class ComposeService:
    path: str
    name: str
    line: int
    image: str | None = None
    image_line: int = 0
    ports: tuple[PortMapping, ...] = ()
    environment: tuple[EnvEntry, ...] = ()
    env_files: tuple[tuple[str, int], ...] = ()  # (path as written, line)
    command: str | None = None  # a list command is joined with spaces
    command_line: int = 0
    entrypoint: str | None = None
    mounts: tuple[Mount, ...] = ()

    def env(self, key: str) -> EnvEntry | None:
        return next((e for e in self.environment if e.key == key), None)


@dataclass(frozen=True)
class ComposeFile:
    path: str
    services: tuple[ComposeService, ...]
    error: str = ""


def read_compose(path: str, text: str, known: Mapping[str, str] | None = None) -> ComposeFile:
    known = known or {}
    try:
        documents = load_documents(text)
    except YamlError as error:
        where = f" (line {error.line})" if error.line else ""
        return ComposeFile(path, (), f"not valid YAML{where}: {error}")
    root = documents[0] if documents else None
    services = root.get("services") if isinstance(root, LineDict) else None
    if not isinstance(services, LineDict):
        return ComposeFile(path, (), "no `services:` mapping")
    found = []
    for name, body in services.items():
        if isinstance(body, LineDict):
            found.append(_service(path, str(name), services.key_line(name), body, known))
    return ComposeFile(path, tuple(found))


def _text(value: Any, known: Mapping[str, str]) -> str | None:
    if value is None or isinstance(value, dict | list):
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return expand(str(value), known)


def _service(
    path: str, name: str, line: int, body: LineDict, known: Mapping[str, str]
) -> ComposeService:
    image = _text(body.get("image"), known)
    command, command_line = _command(body, "command", known)
    entrypoint, _ = _command(body, "entrypoint", known)
    return ComposeService(
        path=path,
        name=name,
        line=line,
        image=image,
        image_line=body.key_line("image") if image is not None else 0,
        ports=tuple(_ports(body, known)),
        environment=tuple(_environment(body.get("environment"), body, known)),
        env_files=tuple(_env_files(body)),
        command=command,
        command_line=command_line,
        entrypoint=entrypoint,
        mounts=tuple(_mounts(body, known)),
    )


def _command(body: LineDict, key: str, known: Mapping[str, str]) -> tuple[str | None, int]:
    value = body.get(key)
    if isinstance(value, list):
        parts = [_text(v, known) for v in value]
        return " ".join(p for p in parts if p is not None), body.key_line(key)
    return _text(value, known), body.key_line(key) if value is not None else 0


def _environment(value: Any, body: LineDict, known: Mapping[str, str]) -> list[EnvEntry]:
    entries = []
    if isinstance(value, LineDict):
        for key, raw in value.items():
            raw_text = None if raw is None or isinstance(raw, dict | list) else _text(raw, {})
            entries.append(EnvEntry(str(key), _text(raw, known), raw_text, value.key_line(key)))
    elif isinstance(value, LineList):
        for index, item in enumerate(value):
            if not isinstance(item, str | int | float):
                continue
            key, equals, raw_text = str(item).partition("=")
            entries.append(
                EnvEntry(
                    key.strip(),
                    expand(raw_text, known) if equals else None,
                    raw_text if equals else None,
                    value.item_line(index),
                )
            )
    return entries


def _env_files(body: LineDict) -> list[tuple[str, int]]:
    value = body.get("env_file")
    line = body.key_line("env_file")
    if isinstance(value, str):
        return [(value, line)]
    found = []
    if isinstance(value, LineList):
        for index, item in enumerate(value):
            if isinstance(item, dict):  # long syntax: `- path: ./x.env` (`required: false`)
                item = item.get("path")
            if isinstance(item, str):
                found.append((item, value.item_line(index)))
    return found


_SHORT_PORT = re.compile(
    r"^(?:(?P<ip>\[[^\]]*\]|[\d.]+|[A-Za-z][\w.-]*):)??"
    r"(?:(?P<published>\d+)(?:-\d+)?:)?(?P<target>\d+)(?:-\d+)?(?:/\w+)?$"
)


def _ports(body: LineDict, known: Mapping[str, str]) -> list[PortMapping]:
    value = body.get("ports")
    if not isinstance(value, LineList):
        return []
    found = []
    for index, item in enumerate(value):
        line = value.item_line(index)
        if isinstance(item, LineDict):  # long syntax
            target = _port(item.get("target"), known)
            published = _port(item.get("published"), known)
            host_ip = _text(item.get("host_ip"), known) or ""
            found.append(PortMapping(published, target, host_ip, line))
            continue
        # YAML 1.1 reads an unquoted `22:22` as a base-60 number; compose warns about it too.
        text = _text(item, known)
        match = _SHORT_PORT.match(text.strip()) if text else None
        if match is not None:
            published_text = match.group("published")
            found.append(
                PortMapping(
                    int(published_text) if published_text else None,
                    int(match.group("target")),
                    (match.group("ip") or "").strip("[]"),
                    line,
                )
            )
    return found


def _port(value: Any, known: Mapping[str, str]) -> int | None:
    text = _text(value, known)
    if text is None:
        return None
    text = text.split("-", 1)[0]
    return int(text) if text.isdigit() else None


def _mounts(body: LineDict, known: Mapping[str, str]) -> list[Mount]:
    value = body.get("volumes")
    if not isinstance(value, LineList):
        return []
    found = []
    for index, item in enumerate(value):
        line = value.item_line(index)
        if isinstance(item, LineDict):
            source, target = _text(item.get("source"), known), _text(item.get("target"), known)
            if source and target:
                found.append(Mount(source, target, line))
        elif isinstance(item, str):
            parts = expand(item, known).split(":")
            if len(parts) >= 2:
                found.append(Mount(parts[0], parts[1], line))
    return found
