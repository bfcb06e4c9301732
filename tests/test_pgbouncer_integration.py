"""DPL402 against a real PgBouncer in transaction mode: the error it predicts, and its fix.

Starts PostgreSQL (initdb, then `postgres` in the foreground) and PgBouncer
(`pool_mode = transaction`, `max_prepared_statements = 0` where the version knows it,
`auth_type = trust`) on loopback in a temporary folder, then:

1. asyncpg with default settings, through PgBouncer, fails with the prepared-statement error
   DPL402 predicts (`prepared statement "__asyncpg_stmt_..." does not exist` / `already exists`);
2. the code DPL402's fix produces (`statement_cache_size=0`) works through the same PgBouncer;
3. with PgBouncer >= 1.21 and `max_prepared_statements = 200`, asyncpg's defaults work, and
   DPL402 is silent for a project whose pgbouncer.ini says so. Skipped, naming the installed
   version, when PgBouncer is older (Debian's 1.18 is; nothing is built here).

Skipped, with the reason, when the Debian packages (`postgresql`, `pgbouncer`) or asyncpg are not
installed; `.ci/run` installs them. Every process is started with a timeout and stopped at the end.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from dbpoollint.fixing import apply_fixes
from dbpoollint.packs import load_packs
from tests.conftest import check_json

asyncpg = pytest.importorskip("asyncpg", reason="asyncpg is a test extra: pip install -e '.[test]'")

POSTGRES_BIN_DIRS = sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
START_TIMEOUT = 60.0


def _binary(name: str) -> str | None:
    for directory in POSTGRES_BIN_DIRS:
        if (directory / name).is_file():
            return str(directory / name)
    return shutil.which(name) or (
        f"/usr/sbin/{name}" if Path(f"/usr/sbin/{name}").is_file() else None
    )


INITDB, POSTGRES, PGBOUNCER = _binary("initdb"), _binary("postgres"), _binary("pgbouncer")
pytestmark = pytest.mark.skipif(
    not (INITDB and POSTGRES and PGBOUNCER),
    reason="PostgreSQL server / PgBouncer binaries not installed "
    "(apt-get install postgresql pgbouncer; .ci/run does this)",
)


def _pgbouncer_version() -> tuple[int, ...]:
    assert PGBOUNCER
    output = subprocess.run(
        [PGBOUNCER, "--version"], capture_output=True, text=True, timeout=30
    ).stdout
    match = re.search(r"PgBouncer (\d+)\.(\d+)", output)
    return (int(match.group(1)), int(match.group(2))) if match else (0, 0)


def _free_ports(count: int) -> list[int]:
    """Distinct free loopback ports: every socket stays bound until all are chosen."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [int(sock.getsockname()[1]) for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _service_user() -> dict[str, object]:
    """initdb, postgres and pgbouncer refuse to run as root: run them as `postgres` when root
    (directly, no `su`/`runuser` in between, so the test reaps what it starts)."""
    if os.geteuid() != 0:
        return {}
    try:
        import pwd

        pwd.getpwnam("postgres")
    except KeyError:
        pytest.skip("running as root and no `postgres` user exists to run the servers")
    return {"user": "postgres", "group": "postgres", "extra_groups": [], "cwd": "/"}


def _stop(process: subprocess.Popen[bytes]) -> None:
    """SIGINT is PostgreSQL's fast shutdown; PgBouncer exits on it too. Kill after 15 s."""
    process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=15)


def _wait_for_port(port: int, process: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"process exited early with {process.returncode}")
        with socket.socket() as sock:
            sock.settimeout(0.5)
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {START_TIMEOUT} s")


@contextlib.contextmanager
def _pgbouncer(max_prepared_statements: int) -> Iterator[str]:
    """PostgreSQL behind PgBouncer in transaction mode; the DSN of PgBouncer."""
    assert INITDB and POSTGRES and PGBOUNCER
    root = Path(tempfile.mkdtemp(prefix="dbpoollint-pgb-"))
    data = root / "data"
    pg_port, bouncer_port = _free_ports(2)
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
    run = {"check": True, "timeout": START_TIMEOUT, "capture_output": True, **_service_user()}
    bouncer: subprocess.Popen[bytes] | None = None
    server: subprocess.Popen[bytes] | None = None
    try:
        subprocess.run(
            [INITDB, "-D", str(data), "-U", "app", "--auth=trust", "-E", "UTF8"],
            **run,  # type: ignore[call-overload]
        )
        # The server runs in the foreground as our child (not daemonised by pg_ctl): the test
        # stops it and reaps it itself.
        server_command = [POSTGRES, "-D", str(data), "-c", "listen_addresses=127.0.0.1"]
        server_command += ["-p", str(pg_port), "-k", str(root)]
        server = subprocess.Popen(  # type: ignore[call-overload]
            server_command,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            **_service_user(),
        )
        _wait_for_port(pg_port, server)
        ini = root / "pgbouncer.ini"
        ini.write_text(
            "[databases]\n"
            f"app = host=127.0.0.1 port={pg_port} dbname=postgres user=app\n"
            "[pgbouncer]\n"
            f"listen_addr = 127.0.0.1\nlisten_port = {bouncer_port}\n"
            f"unix_socket_dir = {root}\n"
            "auth_type = trust\n"
            f"auth_file = {root / 'users.txt'}\n"
            "pool_mode = transaction\n"
            # Before 1.21 PgBouncer has no such setting and keeps no prepared statements.
            + (
                f"max_prepared_statements = {max_prepared_statements}\n"
                if _pgbouncer_version() >= (1, 21)
                else ""
            )
            + "default_pool_size = 2\n"
            "ignore_startup_parameters = extra_float_digits\n"
            f"logfile = {root / 'pgbouncer.log'}\n"
        )
        (root / "users.txt").write_text('"app" ""\n')
        if os.geteuid() == 0:
            for path in (ini, root / "users.txt"):
                shutil.chown(path, "postgres", "postgres")
        bouncer = subprocess.Popen(  # type: ignore[call-overload]
            [PGBOUNCER, str(ini)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            **_service_user(),
        )
        _wait_for_port(bouncer_port, bouncer)
        yield f"postgresql://app@127.0.0.1:{bouncer_port}/app"
    finally:
        for process in (bouncer, server):
            if process is not None:
                _stop(process)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def pgbouncer_dsn() -> Iterator[str]:
    with _pgbouncer(max_prepared_statements=0) as dsn:
        yield dsn


@pytest.fixture(scope="module")
def pgbouncer_keeping_prepared_dsn() -> Iterator[str]:
    version = _pgbouncer_version()
    if version < (1, 21):
        pytest.skip(
            f"installed PgBouncer is {version[0]}.{version[1]}; max_prepared_statements needs "
            ">= 1.21 (Debian's package is older, and this test builds nothing)"
        )
    with _pgbouncer(max_prepared_statements=200) as dsn:
        yield dsn


PROGRAM = """\
import asyncio
import sys

import asyncpg

DSN = {dsn!r}


async def main():
    pool = await asyncpg.create_pool(DSN, min_size=2, max_size=2)
    try:
        async def query(n):
            async with pool.acquire() as conn:
                for i in range(20):
                    await conn.fetchval("select $1::int + " + str(n), i)
        await asyncio.wait_for(asyncio.gather(*(query(n) for n in range(4))), 60)
    finally:
        await pool.close()


asyncio.run(main())
"""


def _run(program: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(program)], capture_output=True, text=True, timeout=120
    )


def test_asyncpg_defaults_fail_through_pgbouncer_and_dpl402_fix_works(
    pgbouncer_dsn: str, tmp_path: Path
) -> None:
    program = tmp_path / "app.py"
    # The URL the linter sees says PgBouncer (port 6432); the program connects to the test one.
    program.write_text(PROGRAM.format(dsn=pgbouncer_dsn))
    linted = tmp_path / "lint" / "app.py"
    linted.parent.mkdir()
    linted.write_text(PROGRAM.format(dsn="postgresql://app@127.0.0.1:6432/app"))

    findings = [f for f in check_json(linted) if f["code"] == "DPL402"]
    assert len(findings) == 1, findings

    before = _run(program)
    assert before.returncode != 0, "asyncpg defaults unexpectedly worked through PgBouncer"
    # asyncpg's named statements meet another server connection: "does not exist" / "already
    # exists" (DuplicatePreparedStatementError / InvalidSQLStatementNameError).
    assert "prepared statement" in before.stderr, before.stderr[-2000:]
    print(next(line for line in before.stderr.splitlines() if "prepared statement" in line))

    from dbpoollint.engine import FileInput, check_files
    from dbpoollint.selection import Selection

    packs = load_packs()
    data = linted.read_bytes()
    result = check_files(
        [FileInput(str(linted), data, "app", False)], packs, Selection(select=["DPL402"])
    )
    outcome = apply_fixes(result.findings, {str(linted): data}, packs, allow_unsafe=False)
    fixed = outcome.changed[str(linted)].decode()
    assert "statement_cache_size=0" in fixed
    program.write_text(fixed.replace("postgresql://app@127.0.0.1:6432/app", pgbouncer_dsn))

    after = _run(program)
    assert after.returncode == 0, after.stderr[-2000:]


def test_direct_connection_needs_no_fix(pgbouncer_dsn: str) -> None:
    """Sanity check of the set-up: one statement per transaction also works through it."""

    async def main() -> int:
        conn = await asyncpg.connect(pgbouncer_dsn, statement_cache_size=0, timeout=30)
        try:
            value: int = await conn.fetchval("select 41 + 1")
            return value
        finally:
            await conn.close()

    assert asyncio.run(asyncio.wait_for(main(), 60)) == 42


def test_asyncpg_defaults_work_through_pgbouncer_keeping_prepared_statements(
    pgbouncer_keeping_prepared_dsn: str, tmp_path: Path
) -> None:
    """PgBouncer >= 1.21 with `max_prepared_statements > 0` keeps asyncpg's statements, which
    is why DPL402 stays silent when the committed pgbouncer.ini says so."""
    program = tmp_path / "app.py"
    program.write_text(PROGRAM.format(dsn=pgbouncer_keeping_prepared_dsn))
    assert _run(program).returncode == 0

    project = tmp_path / "lint"
    project.mkdir()
    (project / "app.py").write_text(PROGRAM.format(dsn="postgresql://app@127.0.0.1:6432/app"))
    (project / "pgbouncer.ini").write_text(
        "[pgbouncer]\nlisten_port = 6432\npool_mode = transaction\nmax_prepared_statements = 200\n"
    )
    assert [f for f in check_json(project) if f["code"] == "DPL402"] == []
