"""Where processes are started and how many copies run: Procfile, Dockerfile, compose,
Kubernetes manifests, Helm values; and the database servers' limits committed beside them
(compose/Kubernetes `postgres -c max_connections=N`, `postgresql.conf`, PgBouncer).

Each reader returns `Launch` records (a command, its environment, its replica count, each
with the file and line it came from). `dbpoollint.deploy` turns them into processes.
"""

from __future__ import annotations

import configparser
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import Any

from dbpoollint.compose import read_compose
from dbpoollint.deploy.model import Factor, PoolerConfig, ServerLimit
from dbpoollint.yaml_source import LineDict, LineList, YamlError, load_documents

WORKLOAD_KINDS = ("Deployment", "StatefulSet", "ReplicaSet", "DeploymentConfig")
POSTGRES_IMAGES = re.compile(r"(^|/)(postgres|postgis|timescaledb|pgvector)[^/]*(:|$)")
PGBOUNCER_IMAGES = re.compile(r"pgbouncer")
MAX_CONNECTIONS = re.compile(r"\bmax_connections\s*=\s*(\d+)")
RESERVED = re.compile(r"\b(?:superuser_)?reserved_connections\s*=\s*(\d+)")


@dataclass
class Launch:
    name: str  # "web (Procfile)", "compose service api"
    where: str  # file:line of the command
    command: str | list[str]
    environment: list[tuple[str, str, str]] = field(default_factory=list)
    replicas: Factor | None = None
    dockerfile: str = ""  # the Dockerfile whose CMD runs (compose `build:` without command)


@dataclass
class Found:
    launches: list[Launch] = field(default_factory=list)
    dockerfiles: dict[str, Launch] = field(default_factory=dict)  # path -> its CMD
    dockerfile_env: dict[str, list[tuple[str, str, str]]] = field(default_factory=dict)
    helm_replicas: Factor | None = None
    limits: list[ServerLimit] = field(default_factory=list)
    poolers: list[PoolerConfig] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def _where(path: str, line: int) -> str:
    return f"{PurePath(path).name}:{line}"


def read_manifests(files: Mapping[str, str]) -> Found:
    found = Found()
    for path in sorted(files):
        name = PurePath(path).name
        text = files[path]
        if name == "Procfile":
            found.launches.extend(_procfile(path, text))
        elif name == "Dockerfile" or name.startswith("Dockerfile.") or name.endswith(".Dockerfile"):
            _dockerfile(path, text, found)
        elif name == "postgresql.conf":
            _postgresql_conf(path, text, found)
        elif name == "pgbouncer.ini":
            _pgbouncer_ini(path, text, found)
        elif name.endswith((".yml", ".yaml")) and _worth_yaml(name, text):
            _yaml(path, text, found)
    return found


def _worth_yaml(name: str, text: str) -> bool:
    if "{{" in text:
        return False  # a Helm template: not YAML until rendered
    return (
        name.startswith(("docker-compose", "compose"))
        or name.startswith("values")
        or re.search(r"^kind:\s*(Deployment|StatefulSet|HorizontalPodAutoscaler)", text, re.M)
        is not None
    )


# --- Procfile ----------------------------------------------------------------------------------


def _procfile(path: str, text: str) -> Iterator[Launch]:
    for number, line in enumerate(text.splitlines(), start=1):
        match = re.match(r"^([A-Za-z0-9_-]+)\s*:\s*(.+)$", line)
        if match and not line.lstrip().startswith("#") and match.group(1) != "release":
            yield Launch(f"{match.group(1)} (Procfile)", _where(path, number), match.group(2))


# --- Dockerfile ----------------------------------------------------------------------------------


def _instructions(text: str) -> Iterator[tuple[int, str, str]]:
    """(line, INSTRUCTION, arguments) with `\\` continuations joined."""
    start, parts = 0, list[str]()
    for number, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.strip()
        if not parts and (not stripped or stripped.startswith("#")):
            continue
        if not parts:
            start = number
        if stripped.endswith("\\"):
            parts.append(stripped[:-1])
            continue
        parts.append(stripped)
        joined = " ".join(p.strip() for p in parts)
        parts = []
        keyword, _, rest = joined.partition(" ")
        yield start, keyword.upper(), rest.strip()


def _exec_form(arguments: str) -> str | list[str]:
    if arguments.startswith("["):
        try:
            value = json.loads(arguments)
        except ValueError:
            return arguments
        if isinstance(value, list):
            return [str(v) for v in value]
    return arguments


def _dockerfile(path: str, text: str, found: Found) -> None:
    command: str | list[str] | None = None
    entrypoint: str | list[str] | None = None
    line = 0
    env: list[tuple[str, str, str]] = []
    for number, keyword, arguments in _instructions(text):
        if keyword == "FROM":
            command, entrypoint, env = None, None, []  # a new stage
        elif keyword == "CMD":
            command, line = _exec_form(arguments), number
        elif keyword == "ENTRYPOINT":
            entrypoint, line = _exec_form(arguments), number
        elif keyword == "ENV":
            env.extend(_env_instruction(arguments, _where(path, number)))
    found.dockerfile_env[path] = env
    full = _join_command(entrypoint, command)
    if full:
        found.dockerfiles[path] = Launch(
            f"{PurePath(path).name} CMD", _where(path, line), full, list(env)
        )


def _join_command(entrypoint: str | list[str] | None, command: str | list[str] | None) -> Any:
    if entrypoint is None:
        return command
    if command is None:
        return entrypoint
    if isinstance(entrypoint, list) and isinstance(command, list):
        return [*entrypoint, *command]
    return f"{_text(entrypoint)} {_text(command)}"


def _text(command: str | list[str]) -> str:
    return command if isinstance(command, str) else " ".join(command)


def _env_instruction(arguments: str, where: str) -> list[tuple[str, str, str]]:
    pairs = re.findall(r'([A-Za-z_][A-Za-z0-9_]*)=("[^"]*"|\'[^\']*\'|\S+)', arguments)
    if pairs:
        return [(k, v.strip("\"'"), where) for k, v in pairs]
    key, _, value = arguments.partition(" ")
    return [(key, value.strip().strip("\"'"), where)] if key else []


# --- compose, Kubernetes, Helm -----------------------------------------------------------------


def _yaml(path: str, text: str, found: Found) -> None:
    try:
        documents = load_documents(text)
    except YamlError as error:
        found.problems.append(f"{path}:{error.line}: not valid YAML: {error}")
        return
    name = PurePath(path).name
    if name.startswith(("docker-compose", "compose")):
        for document in documents:
            if isinstance(document, LineDict):
                _compose(path, text, document, found)
                break
        return
    if name.startswith("values") and documents and isinstance(documents[0], LineDict):
        _helm_values(path, documents[0], found)
        return
    _kubernetes(path, [d for d in documents if isinstance(d, LineDict)], found)


def _compose(path: str, text: str, document: LineDict, found: Found) -> None:
    """Services from `dbpoollint.compose` (commands and environment expanded as compose does);
    `deploy.replicas`, `scale` and `build` from the document itself."""
    compose = read_compose(path, text)
    if compose.error:
        found.problems.append(f"{path}: {compose.error}")
        return
    raw = document.get("services")
    bodies = raw if isinstance(raw, LineDict) else LineDict()
    folder = PurePath(path).parent
    for service in compose.services:
        body = bodies.get(service.name)
        spec = body if isinstance(body, LineDict) else LineDict()
        image = service.image or ""
        env = [(e.key, e.value or "", _where(path, e.line)) for e in service.environment]
        command = " ".join(c for c in (service.entrypoint, service.command) if c)
        where = _where(path, service.command_line or service.line)
        if POSTGRES_IMAGES.search(image):
            _postgres_flags(command, where, service.name, found)
            continue
        if PGBOUNCER_IMAGES.search(image):
            _pgbouncer_env(path, service.name, env, found)
            continue
        if image.startswith(("redis", "mongo", "mysql", "mariadb")):
            continue
        launch = Launch(
            f"compose service {service.name}", where, command, env, _compose_replicas(path, spec)
        )
        if not command:
            launch.dockerfile = _build_dockerfile(folder, spec.get("build"))
            if not launch.dockerfile:
                continue
        found.launches.append(launch)


def _build_dockerfile(folder: PurePath, build: object) -> str:
    if isinstance(build, str):
        return str(folder / build / "Dockerfile")
    if isinstance(build, LineDict):
        context = str(build.get("context", "."))
        return str(folder / context / str(build.get("dockerfile", "Dockerfile")))
    return ""


def _compose_replicas(path: str, spec: LineDict) -> Factor | None:
    deploy = spec.get("deploy")
    if isinstance(deploy, LineDict) and isinstance(deploy.get("replicas"), int):
        line = deploy.key_line("replicas")
        return Factor(deploy["replicas"], _where(path, line), "deploy.replicas")
    if isinstance(spec.get("scale"), int):
        return Factor(spec["scale"], _where(path, spec.key_line("scale")), "scale")
    return None


def _kubernetes(path: str, documents: list[LineDict], found: Found) -> None:
    autoscalers: dict[str, Factor] = {}
    for document in documents:
        if document.get("kind") != "HorizontalPodAutoscaler":
            continue
        spec = document.get("spec")
        if isinstance(spec, LineDict) and isinstance(spec.get("maxReplicas"), int):
            target = spec.get("scaleTargetRef")
            name = str(target.get("name", "")) if isinstance(target, LineDict) else ""
            line = spec.key_line("maxReplicas")
            autoscalers[name] = Factor(spec["maxReplicas"], _where(path, line), "HPA maxReplicas")
    for document in documents:
        kind = document.get("kind")
        if kind not in WORKLOAD_KINDS:
            continue
        metadata = document.get("metadata")
        name = str(metadata.get("name", "")) if isinstance(metadata, LineDict) else ""
        spec = document.get("spec")
        if not isinstance(spec, LineDict):
            continue
        replicas = autoscalers.get(name)
        if replicas is None and isinstance(spec.get("replicas"), int):
            replicas = Factor(spec["replicas"], _where(path, spec.key_line("replicas")), "replicas")
        if replicas is None:
            replicas = Factor(1, _where(path, spec.line), f"{kind} default", assumed=True)
        for container in _containers(spec):
            _container(path, f"{kind} {name}", container, replicas, found)


def _containers(spec: LineDict) -> Iterator[LineDict]:
    template = spec.get("template")
    pod = template.get("spec") if isinstance(template, LineDict) else None
    containers = pod.get("containers") if isinstance(pod, LineDict) else None
    if isinstance(containers, LineList):
        yield from (c for c in containers if isinstance(c, LineDict))


def _container(path: str, owner: str, container: LineDict, replicas: Factor, found: Found) -> None:
    image = str(container.get("image", ""))
    words: list[str] = []
    line = container.line
    for key in ("command", "args"):
        value = container.get(key)
        if isinstance(value, LineList):
            words.extend(str(v) for v in value)
            line = container.key_line(key) if key == "command" or not words else line
        elif isinstance(value, str):
            words.append(value)
    env: list[tuple[str, str, str]] = []
    variables = container.get("env")
    if isinstance(variables, LineList):
        for index, item in enumerate(variables):
            if isinstance(item, LineDict) and "value" in item:
                env.append(
                    (
                        str(item.get("name")),
                        str(item.get("value")),
                        _where(path, variables.item_line(index)),
                    )
                )
    if POSTGRES_IMAGES.search(image):
        _postgres_flags(" ".join(words), _where(path, line), "", found)
        return
    if PGBOUNCER_IMAGES.search(image):
        _pgbouncer_env(path, "", env, found)
        return
    if words:
        label = f"{owner} ({container.get('name', 'container')})"
        found.launches.append(Launch(label, _where(path, line), words, env, replicas))
    else:
        found.launches.append(Launch(owner, _where(path, container.line), "", env, replicas, "*"))


def _helm_values(path: str, values: LineDict, found: Found) -> None:
    autoscaling = values.get("autoscaling")
    if (
        isinstance(autoscaling, LineDict)
        and autoscaling.get("enabled") is True
        and isinstance(autoscaling.get("maxReplicas"), int)
    ):
        line = autoscaling.key_line("maxReplicas")
        found.helm_replicas = Factor(
            autoscaling["maxReplicas"], _where(path, line), "autoscaling.maxReplicas"
        )
    elif isinstance(values.get("replicaCount"), int):
        line = values.key_line("replicaCount")
        found.helm_replicas = Factor(values["replicaCount"], _where(path, line), "replicaCount")


# --- servers and poolers -------------------------------------------------------------------------


def _postgres_flags(command: str, where: str, host: str, found: Found) -> None:
    match = MAX_CONNECTIONS.search(command)
    if match:
        reserved = RESERVED.search(command)
        found.limits.append(
            ServerLimit(
                Factor(int(match.group(1)), where),
                Factor(int(reserved.group(1)), where) if reserved else None,
                host=host,
            )
        )


def _postgresql_conf(path: str, text: str, found: Found) -> None:
    limit: Factor | None = None
    reserved: Factor | None = None
    for number, line in enumerate(text.splitlines(), start=1):
        code = line.split("#", 1)[0]
        match = MAX_CONNECTIONS.search(code)
        if match:
            limit = Factor(int(match.group(1)), _where(path, number))
        match = RESERVED.search(code)
        if match:
            reserved = Factor(int(match.group(1)), _where(path, number))
    if limit is not None:
        found.limits.append(ServerLimit(limit, reserved))


def _pgbouncer_ini(path: str, text: str, found: Found) -> None:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    try:
        parser.read_string(text)
    except configparser.Error as error:
        found.problems.append(f"{path}: cannot read: {error}")
        return
    lines = {k.split("=")[0].strip(): n for n, k in enumerate(text.splitlines(), 1) if "=" in k}
    section = parser["pgbouncer"] if parser.has_section("pgbouncer") else {}
    where = _where(path, 1)

    def factor(key: str, default: int, note: str) -> Factor:
        value = section.get(key) if section else None
        if value is not None and value.strip().isdigit():
            return Factor(int(value), _where(path, lines.get(key, 1)), f"{key} = {value.strip()}")
        return Factor(default, "PgBouncer default", note, assumed=True)

    databases = parser.options("databases") if parser.has_section("databases") else []
    port = section.get("listen_port", "6432") if section else "6432"
    found.poolers.append(
        PoolerConfig(
            where,
            factor("max_client_conn", 100, "max_client_conn"),
            factor("default_pool_size", 20, "default_pool_size"),
            Factor(max(len([d for d in databases if d != "*"]), 1), where, "[databases] entries"),
            port=int(port) if str(port).isdigit() else 6432,
        )
    )


def _pgbouncer_env(path: str, host: str, env: list[tuple[str, str, str]], found: Found) -> None:
    values = {k.removeprefix("PGBOUNCER_"): (v, w) for k, v, w in env}

    def factor(key: str, default: int) -> Factor:
        if key in values and values[key][0].isdigit():
            return Factor(int(values[key][0]), values[key][1], f"{key}={values[key][0]}")
        return Factor(default, "PgBouncer default", key.lower(), assumed=True)

    found.poolers.append(
        PoolerConfig(
            _where(path, 1),
            factor("MAX_CLIENT_CONN", 100),
            factor("DEFAULT_POOL_SIZE", 20),
            Factor(1, "", "one database", assumed=True),
            host=host,
        )
    )
