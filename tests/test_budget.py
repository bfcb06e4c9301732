"""The process model and the budget: commands, config files, manifests, arithmetic, the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dbpoollint.deploy import read_deployment
from dbpoollint.deploy.commands import parse_command
from dbpoollint.deploy.gunicorn_conf import read_gunicorn_config
from dbpoollint.packs import PackError, load_packs
from tests.conftest import run_cli

COMMANDS = [
    ("gunicorn -w 4 --preload app.main:app", "gunicorn", "app.main", 4, {"preload": True}),
    (["gunicorn", "--workers=3", "-b", "0:80", "wsgi:app"], "gunicorn", "wsgi", 3, {}),
    (
        'sh -c "alembic upgrade head && exec gunicorn -w ${WEB_CONCURRENCY:-5} app:app"',
        "gunicorn",
        "app",
        5,
        {"workers_env": "WEB_CONCURRENCY"},
    ),
    ("python -m uvicorn api.main:app --host 0.0.0.0 --workers 2", "uvicorn", "api.main", 2, {}),
    ("poetry run celery -A proj worker -c 8", "celery", "proj", 8, {"celery_pool": "prefork"}),
    ("celery --app=proj.celery:app worker --pool=gevent", "celery", "proj.celery", None, {}),
    ("newrelic-admin run-program gunicorn -w4 x:y", "gunicorn", "x", 4, {}),
    # warehouse's compose: an option we do not know must not be taken for the app
    (
        "gunicorn --logger-class pkg.Logger --threads 4 pkg.wsgi:app",
        "gunicorn",
        "pkg.wsgi",
        None,
        {},
    ),
    (
        "python -m gunicorn.app.wsgiapp -c prod.conf.py pkg.wsgi:app",
        "gunicorn",
        "pkg.wsgi",
        None,
        {},
    ),
    ("env DD_SERVICE=w ddtrace-run celery -A pkg worker", "celery", "pkg", None, {}),
]


@pytest.mark.parametrize(("command", "server", "entry", "workers", "extra"), COMMANDS)
def test_reads_server_commands(
    command: str | list[str], server: str, entry: str, workers: int | None, extra: dict[str, object]
) -> None:
    (parsed,) = parse_command(command)
    assert (parsed.server, parsed.entry, parsed.workers) == (server, entry, workers)
    for key, value in extra.items():
        assert getattr(parsed, key) == value


def test_entrypoint_scripts_are_read_line_by_line() -> None:
    script = (
        "#!/bin/sh\nflask db upgrade\nexec gunicorn 'app:create_app()' \\\n  --workers $WORKERS\n"
    )
    compose = (
        "services:\n  web:\n    image: web\n    command: sh docker-entrypoint.sh\n"
        "    environment:\n      - WORKERS=6\n"
    )
    files = {"docker-entrypoint.sh": script, "docker-compose.yml": compose}
    (process,) = read_deployment(files).processes
    assert (process.entry, process.where) == ("app", "docker-entrypoint.sh:3")
    assert (process.workers.value, process.workers.where) == (6, "docker-compose.yml:6")


def test_other_commands_start_no_server() -> None:
    assert parse_command("python manage.py migrate") == []
    assert parse_command("celery -A proj flower") == []


def test_gunicorn_config_reads_env_defaults_and_post_fork_resets() -> None:
    config = read_gunicorn_config(
        "gunicorn.conf.py",
        "import multiprocessing, os\n"
        'workers = int(os.environ.get("WEB_CONCURRENCY", 4))\n'
        "threads = multiprocessing.cpu_count() * 2\n"
        "preload_app = True\n"
        "def post_fork(server, worker):\n"
        "    from app import db\n"
        "    db.engine.dispose(close=False)\n",
    )
    workers, threads = config.settings["workers"], config.settings["threads"]
    assert (workers.value, workers.env, workers.line) == (4, "WEB_CONCURRENCY", 2)
    assert threads.value is None  # only the machine knows its CPU count
    assert config.settings["preload_app"].value is True
    assert config.resets["post_fork"][1] == {"app.db.engine"}


def test_gunicorn_config_that_does_not_parse_is_a_problem_not_a_crash() -> None:
    assert read_gunicorn_config("gunicorn.conf.py", "workers = (\n").error


def _deployment(files: dict[str, str], budget: dict[str, int] | None = None):  # type: ignore[no-untyped-def]
    return read_deployment(files, budget)


def test_gunicorn_worker_count_precedence() -> None:
    conf = "workers = 3\n"
    compose = (
        "services:\n  web:\n    image: web\n    command: gunicorn -c gunicorn.conf.py app:app\n"
        "    environment:\n      GUNICORN_CMD_ARGS: --workers 5\n"
    )
    (process,) = _deployment({"gunicorn.conf.py": conf, "compose.yml": compose}).processes
    assert process.workers.value == 5 and "GUNICORN_CMD_ARGS" in process.workers.note
    (process,) = _deployment(
        {"gunicorn.conf.py": conf, "Procfile": "web: gunicorn app:app\n"}
    ).processes
    assert (process.workers.value, process.workers.where) == (3, "gunicorn.conf.py:1")
    (process,) = _deployment({"Procfile": "web: gunicorn -w 7 app:app\n"}).processes
    assert process.workers.value == 7
    (process,) = _deployment({"Procfile": "web: gunicorn app:app\n"}).processes
    assert (process.workers.value, process.workers.assumed) == (1, True)


def test_kubernetes_hpa_max_replicas_wins_over_replicas() -> None:
    manifest = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: api}
spec:
  replicas: 2
  template:
    spec:
      containers:
        - name: api
          image: api
          command: ["uvicorn", "api:app", "--workers", "3"]
---
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {name: api}
spec:
  scaleTargetRef: {kind: Deployment, name: api}
  maxReplicas: 9
"""
    (process,) = _deployment({"k8s/api.yaml": manifest}).processes
    assert (process.workers.value, process.replicas.value) == (3, 9)
    assert process.replicas.where == "api.yaml:18"


def test_compose_service_without_command_runs_its_dockerfile_cmd() -> None:
    files = {
        "app/docker-compose.yml": "services:\n  web:\n    build: .\n    scale: 4\n",
        "app/Dockerfile": 'FROM python\nENV WEB_CONCURRENCY=3\nCMD ["gunicorn", "app:app"]\n',
    }
    (process,) = _deployment(files).processes
    assert (process.workers.value, process.replicas.value) == (3, 4)
    assert process.workers.where == "Dockerfile:2"


def test_helm_values_and_budget_fill_in_replicas() -> None:
    values = "replicaCount: 2\nautoscaling:\n  enabled: true\n  maxReplicas: 6\n"
    files = {"chart/values.yaml": values, "Dockerfile": "FROM python\nCMD gunicorn app:app\n"}
    (process,) = _deployment(files).processes
    assert process.replicas.value == 6
    (process,) = _deployment({"Procfile": "web: gunicorn app:app\n"}, {"replicas": 3}).processes
    assert (process.replicas.value, process.replicas.where) == (3, "[tool.dbpoollint.budget]")


def test_server_limits_from_compose_postgresql_conf_and_pgbouncer() -> None:
    files = {
        "compose.yaml": "services:\n  db:\n    image: postgres:16\n"
        "    command: postgres -c max_connections=40 -c superuser_reserved_connections=5\n",
        "pgbouncer.ini": "[databases]\napp = host=db\nother = host=db\n"
        "[pgbouncer]\nmax_client_conn = 500\ndefault_pool_size = 10\n",
    }
    deployment = _deployment(files)
    (limit,) = deployment.limits
    assert (limit.max_connections.value, limit.reserved and limit.reserved.value) == (40, 5)
    assert limit.host == "db"
    (pooler,) = deployment.poolers
    assert (pooler.max_client_conn.value, pooler.default_pool_size.value) == (500, 10)
    assert pooler.pools.value == 2
    conf = _deployment({"postgresql.conf": "max_connections = 60  # small box\n"})
    assert conf.limits[0].max_connections.value == 60


def _project(tmp_path: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return tmp_path


APP = {
    "app/__init__.py": "",
    "app/db.py": "from sqlalchemy import create_engine\n"
    'engine = create_engine("postgresql://app@db/app", pool_size=4, max_overflow=1)\n',
    "app/main.py": "from flask import Flask\nfrom app.db import engine\napp = Flask(__name__)\n",
    "Procfile": "web: gunicorn -w 3 app.main:app\n",
}


def test_budget_command_prints_one_table_with_every_factor(tmp_path: Path) -> None:
    root = _project(tmp_path, {**APP, "postgresql.conf": "max_connections = 20\n"})
    result = run_cli(["budget", str(root)])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "server postgresql://db/app"
    assert lines[1].split() == ["pool", "where", "per", "process", "processes", "(from)", "total"]
    assert "db.py:2" in lines[2] and "5 (pool_size 4 + max_overflow 1)" in lines[2]
    assert "3 = 3 (Procfile:1) gunicorn workers x 1 replicas" in lines[2]
    assert lines[2].endswith(" 15")
    assert "limit: max_connections 20 (postgresql.conf:1)" in lines[3]
    assert "headroom 2" in lines[3]


def test_budget_json_has_the_same_data_and_exit_1_when_over(tmp_path: Path) -> None:
    root = _project(
        tmp_path,
        {
            **APP,
            "pyproject.toml": "[tool.dbpoollint.budget]\n"
            "max-connections = 10\nreserved-connections = 0\n",
        },
    )
    result = run_cli(["budget", str(root), "--output-format", "json"])
    assert result.exit_code == 1
    (server,) = json.loads(result.stdout)["servers"]
    assert (server["total"], server["available"], server["headroom"]) == (15, 10, -5)
    (pool,) = server["pools"]
    assert (pool["per_process"], pool["processes"], pool["workers"]["where"]) == (
        5,
        3,
        "Procfile:1",
    )


def test_unknown_budget_key_is_a_usage_error(tmp_path: Path) -> None:
    root = _project(
        tmp_path, {**APP, "pyproject.toml": "[tool.dbpoollint.budget]\nmax-conections = 10\n"}
    )
    result = run_cli(["budget", str(root)])
    assert result.exit_code == 2
    assert "did you mean `max-connections`" in result.output


def test_init_writes_every_budget_key_commented(tmp_path: Path) -> None:
    pyproject = tmp_path / "pyproject.toml"
    run_cli(["init", "--path", str(pyproject)])
    text = pyproject.read_text()
    for key in ("max-connections", "reserved-connections", "replicas", "workers"):
        assert f"# {key} = " in text


def test_pack_max_connections_must_name_the_calls_knobs(tmp_path: Path) -> None:
    pack = tmp_path / "inhouse.toml"
    pack.write_text(
        '[pack]\nname = "inhouse"\ntitle = "In-house"\nkind = "client"\nmodules = ["inhouse"]\n'
        '[[pools]]\nnames = ["inhouse.make_engine"]\nmax-connections = "pool_size + overflow"\n'
        '[[pools.knobs]]\nrole = "size"\nkeywords = ["pool_size"]\ndefault = 5\n'
        'package = "inhouse"\nsource = "https://example.invalid"\n'
    )
    with pytest.raises(PackError, match="`overflow` is not a keyword"):
        load_packs([pack])
