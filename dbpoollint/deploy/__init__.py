"""The process model: which servers run, how many processes each, and what forks.

`read_deployment(files, budget)` reads the committed deployment files (see
`dbpoollint.deploy.manifests`) and gunicorn config files, and returns every long-lived
process with its worker count, thread count and replica count, each number with the file and
line it came from, or the documented default it falls back to:

- gunicorn: `-w/--workers` > `GUNICORN_CMD_ARGS` > the config file (`-c FILE`, else
  `gunicorn.conf.py`) > `$WEB_CONCURRENCY` > 1 (gunicorn's `workers` default is
  `int(os.environ.get("WEB_CONCURRENCY", 1))`);
- uvicorn `--workers` > `$WEB_CONCURRENCY` > 1; hypercorn `-w` > 1; daphne 1;
- Celery `-c/--concurrency` > `worker_concurrency` in code > `[tool.dbpoollint.budget]
  workers` > the CPU count of this machine (Celery's default is the CPU count; the table says
  which number it assumed);
- replicas: compose `deploy.replicas` / `scale`, a Kubernetes workload's `replicas` or its
  HPA's `maxReplicas`, Helm `values.yaml` `replicaCount` / `autoscaling.maxReplicas`, else
  `[tool.dbpoollint.budget] replicas`, else 1.

The same server command described in several files (a Procfile for one platform, compose for
another) is one process: the worst case of its descriptions is kept.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import PurePath

from dbpoollint.deploy.commands import ServerCommand, parse_command
from dbpoollint.deploy.gunicorn_conf import GunicornConfig, read_gunicorn_config
from dbpoollint.deploy.manifests import Launch, read_manifests
from dbpoollint.deploy.model import ONE, ONE_REPLICA, Deployment, Factor, Process, ServerLimit

GUNICORN_CONFIG = re.compile(r"^gunicorn[\w.-]*\.py$")
BUDGET = "[tool.dbpoollint.budget]"


def is_gunicorn_config(path: str) -> bool:
    return GUNICORN_CONFIG.match(PurePath(path).name) is not None


def read_deployment(
    files: Mapping[str, str],
    budget: Mapping[str, int] | None = None,
    celery_concurrency: Factor | None = None,
) -> Deployment:
    budget = budget or {}
    found = read_manifests(files)
    configs = {
        path: read_gunicorn_config(path, text)
        for path, text in files.items()
        if is_gunicorn_config(path)
    }
    deployment = Deployment(problems=list(found.problems))
    deployment.problems.extend(c.error for c in configs.values() if c.error)
    for config in configs.values():
        for hook, (_, targets) in config.resets.items():
            deployment.gunicorn_resets.setdefault(hook, set()).update(targets)
    used_dockerfiles: set[str] = set()
    launches: list[Launch] = []
    for launch in found.launches:
        if launch.dockerfile:
            dockerfile = _dockerfile_for(launch.dockerfile, found.dockerfiles)
            if dockerfile is None:
                continue
            used_dockerfiles.add(dockerfile)
            cmd = found.dockerfiles[dockerfile]
            launch.command, launch.where = cmd.command, cmd.where
            launch.environment = [*cmd.environment, *launch.environment]
        launches.append(launch)
    launches.extend(
        cmd for path, cmd in sorted(found.dockerfiles.items()) if path not in used_dockerfiles
    )
    scripts = {PurePath(p).name: (p, t) for p, t in files.items() if p.endswith(".sh")}
    processes: dict[tuple[str, str], Process] = {}
    for launch in launches:
        if launch.replicas is None:
            launch.replicas = found.helm_replicas
        for command in parse_command(launch.command, scripts):
            process = _process(launch, command, configs, budget, celery_concurrency)
            key = (process.server, process.entry or process.command)
            kept = processes.get(key)
            if kept is None or _weight(process) > _weight(kept):
                processes[key] = process
    if not processes and configs:
        # A gunicorn config file and no command: gunicorn reads it from the working folder.
        path = sorted(configs)[0]
        launch = Launch(f"gunicorn ({PurePath(path).name})", f"{PurePath(path).name}:1", "")
        launch.replicas = found.helm_replicas
        command = ServerCommand("gunicorn", f"gunicorn -c {PurePath(path).name}")
        process = _process(launch, command, configs, budget, celery_concurrency)
        processes[("gunicorn", "")] = process
    deployment.processes = sorted(processes.values(), key=lambda p: (p.where, p.name))
    deployment.limits = _limits(found.limits, budget)
    deployment.poolers = found.poolers
    return deployment


def _dockerfile_for(wanted: str, dockerfiles: Mapping[str, Launch]) -> str | None:
    if wanted == "*":  # a Kubernetes container without a command: the image's own CMD
        return sorted(dockerfiles)[0] if len(dockerfiles) == 1 else None
    normal = os.path.normpath(wanted)
    for path in dockerfiles:
        if os.path.normpath(path) == normal:
            return path
    return None


def _weight(process: Process) -> int:
    workers = process.workers.value or 1
    replicas = process.replicas.value or 1
    return workers * replicas


def _limits(committed: list[ServerLimit], budget: Mapping[str, int]) -> list[ServerLimit]:
    reserved = None
    if "reserved-connections" in budget:
        value = budget["reserved-connections"]
        reserved = Factor(value, BUDGET)
    if "max-connections" in budget:
        value = budget["max-connections"]
        return [ServerLimit(Factor(value, BUDGET), reserved)]
    if reserved is not None:
        return [ServerLimit(limit.max_connections, reserved, limit.host) for limit in committed]
    return committed


def _process(
    launch: Launch,
    command: ServerCommand,
    configs: Mapping[str, GunicornConfig],
    budget: Mapping[str, int],
    celery_concurrency: Factor | None,
) -> Process:
    env = {name: (value, where) for name, value, where in launch.environment}
    replicas = launch.replicas or _budget_factor(budget, "replicas") or ONE_REPLICA
    if command.where:  # started by a script: its numbers are written there
        launch = Launch(launch.name, command.where, launch.command, launch.environment, replicas)
    process = Process(
        name=launch.name,
        server=command.server,
        where=launch.where,
        command=command.text,
        entry=command.entry,
        replicas=replicas,
        environment=tuple(launch.environment),
    )
    if command.server == "gunicorn":
        return _gunicorn(process, command, env, configs, budget)
    if command.server in ("uvicorn", "hypercorn"):
        workers = _cli_workers(command, launch, env, budget)
        if workers is None and command.server == "uvicorn" and "WEB_CONCURRENCY" in env:
            workers = _env_factor(env, "WEB_CONCURRENCY", None, "$WEB_CONCURRENCY", budget)
        default = Factor(1, f"{command.server} default", "--workers unset", assumed=True)
        return process.with_(workers=workers or default)
    if command.server == "celery":
        workers = _cli_workers(command, launch, env, budget) or celery_concurrency
        if workers is None:
            workers = _budget_factor(budget, "workers") or Factor(
                os.cpu_count() or 1,
                "Celery default",
                "the CPU count; assumed this machine's",
                assumed=True,
            )
        threads = ONE
        if command.celery_pool in ("threads", "gevent", "eventlet"):
            workers, threads = ONE, workers  # one process, `concurrency` threads/greenlets
        return process.with_(workers=workers, threads=threads, celery_pool=command.celery_pool)
    return process


def _cli_workers(
    command: ServerCommand,
    launch: Launch,
    env: Mapping[str, tuple[str, str]],
    budget: Mapping[str, int],
) -> Factor | None:
    if command.workers_env:
        return _env_factor(
            env, command.workers_env, command.workers, command.workers_note, budget, launch.where
        )
    if command.workers is not None:
        return Factor(command.workers, launch.where, command.workers_note)
    return None


def _env_factor(
    env: Mapping[str, tuple[str, str]],
    name: str,
    default: int | None,
    note: str,
    budget: Mapping[str, int],
    where: str = "",
) -> Factor | None:
    if name in env and env[name][0].strip().isdigit():
        value, origin = env[name]
        return Factor(int(value), origin, f"{name}={value}")
    if default is not None:
        return Factor(default, where, f"{note}, unset: default {default}", assumed=True)
    return _budget_factor(budget, "workers") or Factor(None, where, f"{note}, unset")


def _budget_factor(budget: Mapping[str, int], key: str) -> Factor | None:
    if key in budget:
        return Factor(budget[key], BUDGET, f"{key} = {budget[key]}")
    return None


def _gunicorn(
    process: Process,
    command: ServerCommand,
    env: Mapping[str, tuple[str, str]],
    configs: Mapping[str, GunicornConfig],
    budget: Mapping[str, int],
) -> Process:
    from_env = _cmd_args(env)
    config = _config_for(command.config_file, configs)
    workers = _cli_workers(command, Launch("", process.where, ""), env, budget)
    threads = (
        Factor(command.threads, process.where, f"--threads {command.threads}")
        if command.threads
        else None
    )
    preload = f"--preload, {process.where}" if command.preload else ""
    if from_env is not None:
        parsed, where = from_env
        workers = workers or (
            Factor(parsed.workers, where, f"GUNICORN_CMD_ARGS {parsed.workers_note}")
            if parsed.workers is not None
            else None
        )
        threads = threads or (
            Factor(parsed.threads, where, "GUNICORN_CMD_ARGS --threads") if parsed.threads else None
        )
        preload = preload or (f"GUNICORN_CMD_ARGS --preload, {where}" if parsed.preload else "")
    if config is not None:
        name = PurePath(config.path).name
        setting = config.settings.get("workers")
        if workers is None and setting is not None:
            workers = _config_count(setting, name, env, budget)
        setting = config.settings.get("threads")
        if threads is None and setting is not None:
            threads = _config_count(setting, name, env, budget)
        setting = config.settings.get("preload_app")
        if not preload and setting is not None and setting.value is True:
            preload = f"preload_app = True, {name}:{setting.line}"
        wsgi_app = config.settings.get("wsgi_app")
        if not process.entry and wsgi_app is not None and isinstance(wsgi_app.value, str):
            process = process.with_(entry=wsgi_app.value.split(":", 1)[0])
    if workers is None:
        workers = _env_factor(env, "WEB_CONCURRENCY", None, "$WEB_CONCURRENCY", {}) or None
        if workers is None or workers.value is None:
            workers = Factor(
                1, "gunicorn default", "workers unset, $WEB_CONCURRENCY unset", assumed=True
            )
    return process.with_(
        workers=workers,
        threads=threads or ONE,
        preload=preload,
        config_file=config.path if config else "",
    )


def _cmd_args(env: Mapping[str, tuple[str, str]]) -> tuple[ServerCommand, str] | None:
    if "GUNICORN_CMD_ARGS" not in env:
        return None
    value, where = env["GUNICORN_CMD_ARGS"]
    parsed = parse_command(f"gunicorn {value}")
    return (parsed[0], where) if parsed else None


def _config_for(wanted: str, configs: Mapping[str, GunicornConfig]) -> GunicornConfig | None:
    if wanted.startswith("python:"):
        wanted = wanted.removeprefix("python:").replace(".", "/") + ".py"
    candidates = sorted(configs)
    if wanted:
        tail = PurePath(wanted).parts[-2:]
        for path in candidates:
            if PurePath(path).parts[-len(tail) :] == tail:
                return configs[path]
        for path in candidates:
            if PurePath(path).name == PurePath(wanted).name:
                return configs[path]
        return None
    for path in candidates:  # gunicorn reads ./gunicorn.conf.py when no -c is given
        if PurePath(path).name == "gunicorn.conf.py":
            return configs[path]
    return None


def _config_count(
    setting: object, name: str, env: Mapping[str, tuple[str, str]], budget: Mapping[str, int]
) -> Factor:
    from dbpoollint.deploy.gunicorn_conf import Setting

    assert isinstance(setting, Setting)
    where = f"{name}:{setting.line}"
    if setting.env:
        if setting.env in env and env[setting.env][0].strip().isdigit():
            value, origin = env[setting.env]
            return Factor(int(value), origin, f"{setting.env}={value} read by {where}")
        if setting.value is not None and isinstance(setting.value, int):
            return Factor(
                setting.value, where, f"${setting.env} unset: {setting.value}", assumed=True
            )
    if isinstance(setting.value, int) and not isinstance(setting.value, bool):
        return Factor(setting.value, where, setting.note)
    fallback = _budget_factor(budget, "workers")
    if fallback is not None:
        return Factor(fallback.value, BUDGET, f"{setting.note} at {where}; assumed {fallback.note}")
    return Factor(None, where, setting.note)
