"""DPL501 / `dbpoollint budget`, DPL101's fix under gunicorn, and DPL105, against a real
PostgreSQL started with `max_connections=20` on loopback in a temporary folder:

1. four worker processes whose pools add up past the limit reproduce
   `FATAL: sorry, too many clients already`, and `dbpoollint budget` predicted that total;
2. a Flask app served by gunicorn (2 workers x 12 threads) that builds an engine per request
   exhausts the server under a burst of concurrent requests; after `dbpoollint fix` the same
   burst stays within the pools (counted in `pg_stat_activity`);
3. a forked child using a pooled connection inherited from its parent shares the parent's
   server backend, and closing it in the child kills the parent's connection (DPL105's
   prediction); with `engine.dispose(close=False)` in the child both keep working.

Skipped, with the reason, when the PostgreSQL server binaries, gunicorn, Flask, SQLAlchemy or
psycopg are not installed. Every process is started with a timeout and stopped at the end; only
127.0.0.1 is used, and every burst is bounded in count and time.
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import run_cli
from tests.test_pgbouncer_integration import (
    INITDB,
    POSTGRES,
    START_TIMEOUT,
    _free_ports,
    _service_user,
    _stop,
    _wait_for_port,
)

for module, extra in (("sqlalchemy", "sqlalchemy"), ("psycopg", "psycopg[binary]")):
    pytest.importorskip(module, reason=f"{extra} is a test extra: pip install -e '.[test]'")

pytestmark = pytest.mark.skipif(
    not (INITDB and POSTGRES),
    reason="PostgreSQL server binaries not installed (apt-get install postgresql)",
)
MAX_CONNECTIONS = 20
TOO_MANY = "too many clients already"


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    """A throwaway PostgreSQL with max_connections=20; yields its SQLAlchemy URL."""
    assert INITDB and POSTGRES
    root = Path(tempfile.mkdtemp(prefix="dbpoollint-cap-"))
    data = root / "data"
    (port,) = _free_ports(1)
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
    run = {"check": True, "timeout": START_TIMEOUT, "capture_output": True, **_service_user()}
    process: subprocess.Popen[bytes] | None = None
    try:
        subprocess.run(
            [INITDB, "-D", str(data), "-U", "app", "--auth=trust", "-E", "UTF8"],
            **run,  # type: ignore[call-overload]
        )
        command = [POSTGRES, "-D", str(data), "-c", "listen_addresses=127.0.0.1"]
        command += ["-p", str(port), "-k", str(root), "-c", f"max_connections={MAX_CONNECTIONS}"]
        process = subprocess.Popen(  # type: ignore[call-overload]
            command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **_service_user()
        )
        _wait_for_port(port, process)
        yield f"postgresql+psycopg://app@127.0.0.1:{port}/postgres"
    finally:
        if process is not None:
            _stop(process)
        shutil.rmtree(root, ignore_errors=True)


def _write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))


def _python(args: list[str], cwd: Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(cwd)}
    return subprocess.run(
        [sys.executable, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env
    )


# --- 1. the budget predicts `too many clients` ----------------------------------------------

HOLD_POOL = """\
import sys
import threading

from app.db import engine

# Check out every connection the pool allows, at once, and hold them for a moment.
held, errors, lock = [], [], threading.Lock()


def take():
    try:
        connection = engine.connect()
        with lock:
            held.append(connection)
    except Exception as error:
        with lock:
            errors.append(str(error).splitlines()[0])


threads = [threading.Thread(target=take) for _ in range({per_process})]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join(30)
print(len(held), len(errors), errors[0] if errors else "", flush=True)
sys.stdin.readline()  # hold until the test has seen every process
for connection in held:
    connection.close()
engine.dispose()
"""


def test_budget_predicts_too_many_clients(server: str, tmp_path: Path) -> None:
    _write(
        tmp_path,
        {
            "app/__init__.py": "",
            "app/db.py": f"""\
                from sqlalchemy import create_engine

                engine = create_engine({server!r}, pool_size=3, max_overflow=3, pool_timeout=5)
                """,
            "app/main.py": """\
                from flask import Flask

                from app.db import engine

                app = Flask(__name__)


                @app.route("/")
                def index():
                    with engine.connect():
                        return "ok"
                """,
            "Procfile": "web: gunicorn --workers 4 app.main:app\n",
            "postgresql.conf": f"max_connections = {MAX_CONNECTIONS}\n",
        },
    )
    result = run_cli(["budget", str(tmp_path), "--output-format", "json"])
    budget = json.loads(result.stdout)
    (predicted,) = budget["servers"]
    assert predicted["total"] == 24  # (3 + 3) x 4 workers
    assert predicted["limit"]["value"] == MAX_CONNECTIONS
    assert predicted["over_budget"] and result.exit_code == 1
    assert [f["code"] for f in _check(tmp_path, "DPL501")] == ["DPL501"]

    script = tmp_path / "hold.py"
    script.write_text(HOLD_POOL.format(per_process=6))
    workers = [
        subprocess.Popen(
            [sys.executable, str(script)],
            cwd=tmp_path,
            env={**os.environ, "PYTHONPATH": str(tmp_path)},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    try:
        reports = [w.stdout.readline().split(" ", 2) for w in workers if w.stdout]
    finally:
        for worker in workers:
            assert worker.stdin is not None
            worker.stdin.write("\n")
            worker.stdin.close()
            worker.wait(30)
    opened = sum(int(r[0]) for r in reports)
    refused = sum(int(r[1]) for r in reports)
    messages = " ".join(r[2] for r in reports)
    assert opened + refused == predicted["total"]
    assert opened == MAX_CONNECTIONS and refused == predicted["total"] - MAX_CONNECTIONS
    assert TOO_MANY in messages


def _check(root: Path, code: str, *extra: str) -> list[dict[str, object]]:
    result = run_cli(["check", str(root), "--select", code, "--output-format", "json", *extra])
    findings: list[dict[str, object]] = json.loads(result.stdout)
    return findings


# --- 2. gunicorn, an engine per request, and `dbpoollint fix` ---------------------------------

PER_REQUEST_APP = """\
from flask import Flask
from sqlalchemy import create_engine, text

app = Flask(__name__)


@app.route("/report")
def report():
    engine = create_engine({url!r}, pool_size=2, max_overflow=0)
    with engine.connect() as connection:
        connection.execute(text("SELECT pg_sleep(0.4)"))
    return "ok"
"""
BURST = 40


def _peak_connections(url: str, stop: threading.Event, peak: list[int]) -> None:
    import psycopg

    with psycopg.connect(url.replace("+psycopg", ""), autocommit=True) as observer:
        while not stop.is_set():
            row = observer.execute(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()"
            ).fetchone()
            peak[0] = max(peak[0], int(row[0]) if row else 0)
            time.sleep(0.02)


def _burst(url: str, app_root: Path, port: int) -> tuple[int, int, int, str]:
    """Serve the app with gunicorn (2 workers x 12 threads), send BURST concurrent requests:
    (peak client connections, ok responses, failed responses, gunicorn's error log)."""
    gunicorn = [sys.executable, "-m", "gunicorn", "--workers", "2", "--threads", "12"]
    gunicorn += ["--bind", f"127.0.0.1:{port}", "--timeout", "30", "app:app"]
    log = app_root / "gunicorn.log"
    with log.open("w") as sink:
        process = subprocess.Popen(
            gunicorn,
            cwd=app_root,
            stdout=sink,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONPATH": str(app_root)},
        )
    try:
        _wait_for_port(port, process)
        stop, peak = threading.Event(), [0]
        observer = threading.Thread(target=_peak_connections, args=(url, stop, peak))
        observer.start()
        time.sleep(0.2)

        def get(_: int) -> bool:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/report", timeout=30) as r:
                    return bool(r.status == 200)
            except (urllib.error.URLError, TimeoutError, ConnectionError):
                return False

        with concurrent.futures.ThreadPoolExecutor(BURST) as requests:
            results = list(requests.map(get, range(BURST)))
        stop.set()
        observer.join(10)
    finally:
        _stop(process)
    return peak[0], sum(results), BURST - sum(results), log.read_text(errors="replace")


def test_per_request_engine_under_gunicorn_then_fixed(server: str, tmp_path: Path) -> None:
    pytest.importorskip("gunicorn", reason="gunicorn is a test extra: pip install -e '.[test]'")
    pytest.importorskip("flask", reason="Flask is a test extra: pip install -e '.[test]'")
    app = tmp_path / "app.py"
    app.write_text(PER_REQUEST_APP.format(url=server))
    (port,) = _free_ports(1)

    peak, ok, failed, log = _burst(server, tmp_path, port)
    # Every in-flight request holds its own engine's connection: 24 threads want 24, the
    # leftovers of finished requests' engines stay open until garbage-collected.
    assert failed > 0 and TOO_MANY in log, (peak, ok, failed)
    assert peak >= MAX_CONNECTIONS - 2  # everything but the observer and a superuser slot

    assert [f["code"] for f in _check(tmp_path, "DPL101")] == ["DPL101"]
    result = run_cli(["fix", str(tmp_path), "--select", "DPL101"])
    assert result.exit_code == 0, result.output
    assert "create_engine" in app.read_text() and not _check(tmp_path, "DPL101")

    peak, ok, failed, log = _burst(server, tmp_path, port)
    assert (ok, failed) == (BURST, 0), log[-2000:]
    assert peak <= 2 * 2  # pool_size 2, max_overflow 0, in each of the 2 workers


# --- 3. a pooled connection inherited across fork ----------------------------------------------

FORK_PROGRAM = """\
import os
import sys

from sqlalchemy import create_engine, text

engine = create_engine({url!r}, pool_size=1, max_overflow=0)
with engine.connect() as connection:
    parent_backend = connection.execute(text("SELECT pg_backend_pid()")).scalar()
# The connection is back in the pool, open: what a preloaded app or a prefork parent holds.

read, write = os.pipe()
child = os.fork()
if child == 0:
    os.close(read)
{reset}
    with engine.connect() as connection:
        backend = connection.execute(text("SELECT pg_backend_pid()")).scalar()
    engine.dispose()  # a child shutting down cleanly closes what its pool holds
    os.write(write, str(backend).encode())
    os._exit(0)
os.close(write)
os.waitpid(child, 0)
child_backend = int(os.read(read, 100) or 0)
try:
    with engine.connect() as connection:
        after = connection.execute(text("SELECT pg_backend_pid()")).scalar()
    outcome = f"parent still works (backend {{after}})"
except Exception as error:
    outcome = "parent failed: " + type(error).__name__ + ": " + str(error).splitlines()[0]
print(parent_backend, child_backend, outcome)
"""


def test_inherited_pool_breaks_the_parent_and_dispose_close_false_fixes_it(
    server: str, tmp_path: Path
) -> None:
    reset = "    engine.dispose(close=False)  # forget the parent's connections, keep them open"
    (tmp_path / "inherited.py").write_text(FORK_PROGRAM.format(url=server, reset=""))
    (tmp_path / "reset.py").write_text(FORK_PROGRAM.format(url=server, reset=reset))
    assert [f["code"] for f in _check(tmp_path / "inherited.py", "DPL105")] == ["DPL105"]
    assert not _check(tmp_path / "reset.py", "DPL105")

    shared = _python(["inherited.py"], tmp_path)
    parent, child, outcome = shared.stdout.strip().split(" ", 2)
    print(f"inherited pool: parent backend {parent}, child backend {child}; {outcome}")
    assert parent == child, "the child talked to the parent's server backend"
    assert outcome.startswith("parent failed: OperationalError"), outcome

    fixed = _python(["reset.py"], tmp_path)
    parent, child, outcome = fixed.stdout.strip().split(" ", 2)
    print(f"dispose(close=False): parent backend {parent}, child backend {child}; {outcome}")
    assert parent != child
    assert outcome == f"parent still works (backend {parent})"
