"""The hoisting fix: goldens, the SPEC's guarantees, and generated getters under concurrency."""

from __future__ import annotations

import asyncio
import os
import shutil
import stat
import subprocess
import sys
import threading
import types
from pathlib import Path

import libcst as cst
import pytest

from dbpoollint.codemods.hoist import HoistRequest, hoist
from dbpoollint.packs import load_packs
from tests.conftest import FIXTURES, check_json, run_cli

GOLDENS = sorted(FIXTURES.glob("*/fix_*.fixed.py"))


def _fix(path: Path, unsafe: bool, code: str = "DPL101") -> None:
    args = ["check", "--fix", "--quiet", "--select", code, str(path)]
    run_cli(args + (["--unsafe-fixes"] if unsafe else []))


@pytest.mark.parametrize("golden", GOLDENS, ids=lambda p: p.name.removesuffix(".fixed.py"))
def test_golden(golden: Path, tmp_path: Path) -> None:
    case = golden.with_name(golden.name.replace(".fixed.py", ".py"))
    work = tmp_path / case.name
    shutil.copy(case, work)
    unsafe = "unsafe" in case.name
    code = golden.parent.name
    _fix(work, unsafe, code)
    fixed = work.read_text()
    assert fixed == golden.read_text()
    cst.parse_module(fixed)  # the fixed output parses
    _fix(work, unsafe, code)
    assert work.read_text() == fixed, "a second fix pass changed the file"
    remaining = [f for f in check_json(work) if f["code"] == code]
    assert all(f["fix"] is None for f in remaining), f"a fixable {code} survived the fix"
    if fixed != case.read_text():
        lint = subprocess.run(
            [sys.executable, "-m", "ruff", "check", "--select", "E,F", "--no-cache", str(work)],
            capture_output=True,
            text=True,
        )
        assert lint.returncode == 0, lint.stdout


def test_unsafe_fix_is_skipped_without_the_flag(tmp_path: Path) -> None:
    case = FIXTURES / "DPL101" / "fix_handler_closes_unsafe.py"
    work = tmp_path / case.name
    shutil.copy(case, work)
    result = run_cli(["check", "--fix", str(work)])
    assert work.read_text() == case.read_text()
    assert "1 unsafe fix(es) skipped" in result.output


def test_diff_prints_and_writes_nothing(tmp_path: Path) -> None:
    case = FIXTURES / "DPL101" / "fix_flask_sync_engine.py"
    work = tmp_path / case.name
    shutil.copy(case, work)
    result = run_cli(["check", "--diff", str(work)])
    assert result.exit_code == 1
    assert "+def get_engine():" in result.output
    assert work.read_text() == case.read_text()


def test_fix_keeps_bom_crlf_encoding_and_mode(tmp_path: Path) -> None:
    case = FIXTURES / "DPL101" / "fix_fastapi_redis_route.py"
    text = case.read_text().replace("\n", "\r\n")
    work = tmp_path / "route.py"
    work.write_bytes(b"\xef\xbb\xbf" + text.encode())
    os.chmod(work, 0o640)
    # DPL101 only: the getter it generates is DPL301's next finding (closing it at shutdown).
    result = run_cli(["fix", "--select", "DPL101", str(work)])
    assert result.exit_code == 0, result.output
    data = work.read_bytes()
    assert data.startswith(b"\xef\xbb\xbf")
    assert b"def get_redis():\r\n" in data and b"\n" not in data.replace(b"\r\n", b"")
    assert stat.S_IMODE(work.stat().st_mode) == 0o640


def test_exit_non_zero_on_fix(tmp_path: Path) -> None:
    work = tmp_path / "route.py"
    shutil.copy(FIXTURES / "DPL101" / "fix_fastapi_redis_route.py", work)
    assert run_cli(["check", "--fix", str(work), "--exit-non-zero-on-fix"]).exit_code == 1


def test_files_with_syntax_errors_are_never_rewritten(tmp_path: Path) -> None:
    work = tmp_path / "broken.py"
    source = "import redis\n\n@app.route('/')\ndef f(:\n    redis.Redis()\n"
    work.write_text(source)
    result = run_cli(["fix", str(work)])
    assert result.exit_code == 1 and "DPL001" in result.output
    assert work.read_text() == source


def test_changed_file_is_not_overwritten(tmp_path: Path) -> None:
    from dbpoollint.writer import StaleFileError, write_atomically

    work = tmp_path / "a.py"
    work.write_text("new content\n")
    with pytest.raises(StaleFileError):
        write_atomically(work, b"old content\n", b"fixed\n")
    assert work.read_text() == "new content\n"
    assert [p.name for p in tmp_path.iterdir()] == ["a.py"]


# --- generated getters, executed -------------------------------------------------------------

SYNC_HANDLER = """\
import threading

import sqlalchemy
from flask import Flask

app = Flask(__name__)


@app.route("/")
def index():
    engine = sqlalchemy.create_engine("postgresql:///app")
    return engine
"""
ASYNC_HANDLER = """\
import asyncpg
from fastapi import FastAPI

app = FastAPI()


@app.get("/")
async def index():
    pool = await asyncpg.create_pool(dsn="postgresql:///app")
    return pool
"""


def _getter_module(
    source: str, line: int, column: int, callee: str, fakes: dict[str, object]
) -> types.ModuleType:
    call = load_packs().client_call([callee])
    assert call is not None
    fixed, (plan,) = hoist(source, [HoistRequest(line, column, call, True)], allow_unsafe=False)
    assert plan.applicability == "safe", plan
    prelude = "".join(
        line
        for line in fixed.splitlines(keepends=True)
        if not line.startswith(("import ", "from "))
    )
    module = types.ModuleType("generated")
    module.__dict__.update(fakes)
    module.__dict__["app"] = types.SimpleNamespace(
        route=lambda *a, **k: lambda f: f, get=lambda *a, **k: lambda f: f
    )
    body = prelude.replace("app = Flask(__name__)", "").replace("app = FastAPI()", "")
    exec(compile(body, "generated.py", "exec"), module.__dict__)
    return module


def test_sync_getter_builds_once_under_32_racing_threads() -> None:
    built = []
    barrier = threading.Barrier(32)

    def create_engine(url: str) -> object:
        built.append(url)
        threading.Event().wait(0.01)  # widen the race window
        return object()

    fakes = {
        "threading": threading,
        "sqlalchemy": types.SimpleNamespace(create_engine=create_engine),
    }
    module = _getter_module(SYNC_HANDLER, 11, 14, "sqlalchemy.create_engine", fakes)
    results = []

    def call() -> None:
        barrier.wait()
        results.append(module.get_engine())

    threads = [threading.Thread(target=call) for _ in range(32)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(built) == 1
    assert len({id(r) for r in results}) == 1


def test_async_getter_builds_once_across_100_tasks_and_caches_the_pool() -> None:
    built = []

    class Pool:
        pass

    async def create_pool(dsn: str) -> Pool:
        built.append(dsn)
        await asyncio.sleep(0.01)
        return Pool()

    fakes = {"asyncio": asyncio, "asyncpg": types.SimpleNamespace(create_pool=create_pool)}
    module = _getter_module(ASYNC_HANDLER, 9, 18, "asyncpg.create_pool", fakes)

    async def main() -> list[object]:
        return await asyncio.gather(*(module.get_pool() for _ in range(100)))

    results = asyncio.run(main())
    assert len(built) == 1
    assert all(isinstance(r, Pool) for r in results)
    assert len({id(r) for r in results}) == 1
