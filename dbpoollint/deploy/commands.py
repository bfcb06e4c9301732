"""Read a start command (`gunicorn -w 4 --preload app:app`, `celery -A proj worker -c 8`).

Commands come from a Procfile line, a Dockerfile `CMD`/`ENTRYPOINT` (shell or JSON form), a
compose `command`, or a Kubernetes container's `command` + `args`. Shell wrappers are looked
through: `sh -c "alembic upgrade head && exec gunicorn ..."`, `python -m gunicorn`, `exec`,
`poetry run` / `uv run` / `pipenv run`, `ddtrace-run`, `newrelic-admin run-program`.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import PurePath

SERVERS = ("gunicorn", "uvicorn", "hypercorn", "daphne", "celery")
_WRAPPERS = {"exec", "env", "ddtrace-run", "opentelemetry-instrument", "dumb-init", "tini", "--"}
# `python -m gunicorn.app.wsgiapp`, `python -m celery.__main__`: the same servers.
_MODULE_ALIASES = {"gunicorn.app.wsgiapp": "gunicorn", "celery.__main__": "celery"}
_RUNNERS = {("poetry", "run"), ("uv", "run"), ("pipenv", "run"), ("pdm", "run")}
_ENV_WORD = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")


@dataclass(frozen=True)
class ServerCommand:
    """What one server invocation says; None/"" where it says nothing."""

    server: str  # gunicorn, uvicorn, hypercorn, daphne, celery, celery-beat
    text: str
    entry: str = ""
    workers: int | None = None
    workers_note: str = ""
    workers_env: str = ""  # `-w $WEB_CONCURRENCY`: the variable it reads
    threads: int | None = None
    preload: bool = False
    config_file: str = ""
    celery_pool: str = ""
    worker_class: str = ""
    where: str = ""  # `docker-entrypoint.sh:12` when a script started it


def parse_command(
    command: str | list[str], scripts: Mapping[str, tuple[str, str]] | None = None, depth: int = 0
) -> list[ServerCommand]:
    """Every server a command starts (a shell line can start more than one). `scripts` maps a
    shell script's file name to (path, text): `./docker-entrypoint.sh` is read, line by line."""
    words = _split(command) if isinstance(command, str) else [str(w) for w in command]
    found: list[ServerCommand] = []
    for part in _segments(words):
        script = _script_of(_strip_wrappers(part), scripts or {})
        if script is not None and depth < 3:
            found.extend(_from_script(*script, scripts or {}, depth))
            continue
        server = _server_command(part)
        if server is not None:
            found.append(server)
    return found


def _script_of(words: list[str], scripts: Mapping[str, tuple[str, str]]) -> tuple[str, str] | None:
    if words and words[0].rsplit("/", 1)[-1] in ("sh", "bash", "ash", "dash") and len(words) > 1:
        words = words[1:]
    if not words or not words[0].endswith(".sh"):
        return None
    return scripts.get(words[0].rsplit("/", 1)[-1])


def _from_script(
    path: str, text: str, scripts: Mapping[str, tuple[str, str]], depth: int
) -> list[ServerCommand]:
    found: list[ServerCommand] = []
    pending, start = "", 0
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not pending:
            start = number
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        logical, pending = pending + stripped, ""
        if not logical or logical.startswith("#"):
            continue
        where = f"{PurePath(path).name}:{start}"
        for command in parse_command(logical, scripts, depth + 1):
            found.append(replace(command, where=command.where or where))
    return found


def _split(text: str) -> list[str]:
    try:
        return shlex.split(text, comments=True)
    except ValueError:
        return text.split()


def _segments(words: list[str]) -> list[list[str]]:
    """Split on `&&`, `||`, `;`, `|`, `&`; look inside `sh -c "..."`."""
    segments: list[list[str]] = []
    current: list[str] = []
    index = 0
    while index < len(words):
        word = words[index]
        if word in ("&&", "||", ";", "|", "&"):
            segments.append(current)
            current = []
        elif word.endswith(";") and len(word) > 1:
            current.append(word[:-1])
            segments.append(current)
            current = []
        elif (
            not current
            and word.rsplit("/", 1)[-1] in ("sh", "bash", "ash", "dash")
            and index + 2 < len(words) + 1
            and words[index + 1 : index + 2] == ["-c"]
            and index + 2 < len(words)
        ):
            segments.extend(_segments(_split(words[index + 2])))
            index += 3
            continue
        else:
            current.append(word)
        index += 1
    segments.append(current)
    return [s for s in segments if s]


def _strip_wrappers(words: list[str]) -> list[str]:
    while words:
        head = words[0].rsplit("/", 1)[-1]
        if head in _WRAPPERS or _ENV_WORD.match(words[0]):
            words = words[1:]
        elif (
            (head == "newrelic-admin" and words[1:2] == ["run-program"])
            or tuple(words[:2]) in _RUNNERS
            or (re.fullmatch(r"python[0-9.]*", head) and words[1:2] == ["-m"] and len(words) > 2)
        ):
            words = words[2:]
        else:
            return words
    return words


def _server_command(words: list[str]) -> ServerCommand | None:
    words = _strip_wrappers(words)
    if not words:
        return None
    head = words[0].rsplit("/", 1)[-1]
    head = _MODULE_ALIASES.get(head, head)
    if head not in SERVERS:
        return None
    text = " ".join(words)
    if head == "celery":
        return _celery(words[1:], text)
    return _web(head, words[1:], text)


def _option(word: str, names: tuple[str, ...], following: str | None) -> tuple[str, int] | None:
    """(value, words consumed) when `word` is one of the options: `-w 4`, `-w4`, `--workers=4`."""
    for name in names:
        if word == name and following is not None:
            return following, 2
        if name.startswith("--") and word.startswith(name + "="):
            return word[len(name) + 1 :], 1
        if not name.startswith("--") and word.startswith(name) and len(word) > len(name):
            return word[len(name) :].lstrip("="), 1
    return None


_WEB_OPTIONS = {
    "workers": ("-w", "--workers"),
    "threads": ("--threads",),
    "config": ("-c", "--config"),
    "worker_class": ("-k", "--worker-class"),
}
# Options that take a value, so the value is not taken for the app module.
_VALUE_OPTIONS = re.compile(
    r"^(-b|--bind|--host|--port|-p|--chdir|--log-level|--log-config|--timeout|-t|--name|-n|"
    r"--access-logfile|--error-logfile|--pid|--user|--group|-u|-g|--max-requests|"
    r"--max-requests-jitter|--graceful-timeout|--keep-alive|--backlog|--root-path|--env-file|"
    r"--forwarded-allow-ips|--app-dir|--uds|--fd|--limit-concurrency|--ssl-keyfile|"
    r"--ssl-certfile|--worker-connections|--proxy-protocol|--factory-args)$"
)


def _web(server: str, args: list[str], text: str) -> ServerCommand:
    values: dict[str, str] = {}
    preload = False
    positionals: list[str] = []
    index = 0
    while index < len(args):
        word = args[index]
        following = args[index + 1] if index + 1 < len(args) else None
        matched = False
        for key, names in _WEB_OPTIONS.items():
            # uvicorn/hypercorn have no `-c` for a gunicorn config, nor `-w` in uvicorn.
            if server != "gunicorn" and key in ("config", "threads", "worker_class"):
                continue
            if server == "uvicorn" and word == "-w":
                continue
            found = _option(word, names, following)
            if found is not None:
                values[key], consumed = found
                index += consumed
                matched = True
                break
        if matched:
            continue
        if word == "--preload":
            preload = True
        elif _VALUE_OPTIONS.match(word):
            index += 1
        elif not word.startswith("-"):
            positionals.append(word)
        index += 1
    # The app is `module:callable`; an option value we do not know is never one of those.
    entry = next((w for w in positionals if ":" in w), positionals[-1] if positionals else "")
    workers, note, env = _count(values.get("workers"), "--workers")
    threads = _int(values.get("threads"))
    return ServerCommand(
        server,
        text,
        entry=module_of(entry),
        workers=workers,
        workers_note=note,
        workers_env=env,
        threads=threads,
        preload=preload,
        config_file=values.get("config", ""),
        worker_class=values.get("worker_class", ""),
    )


def _celery(args: list[str], text: str) -> ServerCommand | None:
    values: dict[str, str] = {}
    subcommand = ""
    index = 0
    options = {
        "app": ("-A", "--app"),
        "concurrency": ("-c", "--concurrency"),
        "pool": ("-P", "--pool"),
    }
    while index < len(args):
        word = args[index]
        following = args[index + 1] if index + 1 < len(args) else None
        matched = False
        for key, names in options.items():
            found = _option(word, names, following)
            if found is not None:
                values[key], consumed = found
                index += consumed
                matched = True
                break
        if matched:
            continue
        if not word.startswith("-") and not subcommand:
            subcommand = word
        index += 1
    if subcommand not in ("worker", "beat"):
        return None  # flower, inspect, call, ...: not a long-lived pool owner we count
    if subcommand == "beat":
        return ServerCommand("celery-beat", text, entry=module_of(values.get("app", "")))
    workers, note, env = _count(values.get("concurrency"), "--concurrency")
    return ServerCommand(
        "celery",
        text,
        entry=module_of(values.get("app", "")),
        workers=workers,
        workers_note=note,
        workers_env=env,
        celery_pool=values.get("pool", "prefork"),
    )


def _count(value: str | None, option: str) -> tuple[int | None, str, str]:
    """`4` -> 4; `$WEB_CONCURRENCY` / `${WORKERS:-4}` -> the variable (and its default)."""
    if value is None:
        return None, "", ""
    number = _int(value)
    if number is not None:
        return number, f"{option} {number}", ""
    match = re.fullmatch(r"\$\{?(\w+)(?::?-(\d+))?\}?", value)
    if match:
        default = _int(match.group(2)) if match.group(2) else None
        return default, f"{option} ${match.group(1)}", match.group(1)
    return None, f"{option} {value}", ""


def _int(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        return None


def module_of(spec: str) -> str:
    """`app.main:app` -> `app.main`; `proj.celery:app` -> `proj.celery`; `proj` -> `proj`."""
    module = spec.split(":", 1)[0].strip()
    if module.endswith(".py"):
        module = module[:-3].replace("/", ".")
    return module if re.fullmatch(r"[A-Za-z_][\w.]*", module) else ""
