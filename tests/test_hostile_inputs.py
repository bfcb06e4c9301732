"""No single input takes a run down: each is reported, and every other file is still checked."""

from __future__ import annotations

import faulthandler
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import dbpoollint.engine
from dbpoollint.engine import FileResult
from tests.conftest import run_cli
from tests.test_cli import BAD_VIEW, write

# More files than the in-process threshold, so the worker pool runs.
OTHERS = 9
DEEP = "x = " + "(" * 5000 + "1" + ")" * 5000 + "\n"


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


def bad_views(root: Path, count: int = OTHERS) -> list[str]:
    return [str(write(root / f"view_{i}.py", BAD_VIEW)) for i in range(count)]


def lines(output: str, code: str) -> list[str]:
    return [line for line in output.splitlines() if f": {code} " in line]


def test_deep_nesting_is_a_syntax_error_not_a_crash(project: Path) -> None:
    write(project / "deep.py", "import redis\n" + DEEP)
    views = bad_views(project)
    result = run_cli(["check", ".", "--jobs", "2"])
    assert result.exit_code == 1, result.output
    assert "deep.py:2:" in result.output
    assert "DPL001 SyntaxError: too many nested parentheses" in result.output
    assert len(lines(result.output, "DPL101")) == len(views)


def test_deep_nesting_behind_an_earlier_syntax_error_never_reaches_libcst(project: Path) -> None:
    """CPython stops at the first error; the nesting after it would still crash libcst, and
    with one file there is no worker pool: the check must run in this process."""
    write(project / "deep.py", 'import redis\nx = "unterminated\n' + DEEP)
    write(project / "view.py", BAD_VIEW)
    run = subprocess.run(
        [sys.executable, "-m", "dbpoollint", "check", "."],
        capture_output=True,
        text=True,
        cwd=project,
        timeout=120,
    )
    assert run.returncode == 1, run.stderr
    assert "deep.py:2:" in run.stdout and ": DPL001 SyntaxError:" in run.stdout
    assert len(lines(run.stdout, "DPL101")) == 1


def test_deeper_than_python_can_parse_is_dpl002(project: Path) -> None:
    write(project / "chain.py", "import redis\nx = " + "-" * 20000 + "1\n")
    write(project / "view.py", BAD_VIEW)
    result = run_cli(["check", "."])
    assert result.exit_code == 1
    assert "chain.py:1:1: DPL002 cannot analyse: too deeply nested" in result.output
    assert len(lines(result.output, "DPL101")) == 1


def test_valid_python_libcst_cannot_parse_is_dpl002_not_dpl001(project: Path) -> None:
    parts = "".join(f'    "part {i} "\n' for i in range(3500))
    write(project / "strings.py", f"import redis\nTEXT = (\n{parts})\n")
    write(project / "view.py", BAD_VIEW)
    result = run_cli(["check", "."])
    assert result.exit_code == 1
    found = [line for line in result.output.splitlines() if line.startswith("strings.py")]
    assert len(found) == 1
    assert ": DPL002 cannot analyse: valid Python that libcst cannot parse" in found[0]
    assert len(lines(result.output, "DPL101")) == 1


def _dies_on_killer(
    path: str, data: bytes, module: str, is_test: bool, packs: object, force: bool = False
) -> FileResult:
    if path.endswith("killer.py") and os.getpid() != PARENT:
        faulthandler.disable()  # the crash is the point: no traceback dump for it
        os.kill(os.getpid(), signal.SIGSEGV)
    return REAL_ANALYSE(path, data, module, is_test, packs, force)  # type: ignore[arg-type]


PARENT = os.getpid()
REAL_ANALYSE = dbpoollint.engine.analyse_file


def test_a_worker_that_dies_costs_only_its_file(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Workers are forked, so they inherit the patched analyser: it segfaults on one file."""
    if sys.platform != "linux":
        pytest.skip("relies on fork")
    monkeypatch.setattr(dbpoollint.engine, "analyse_file", _dies_on_killer)
    views = bad_views(project, 14)
    write(project / "killer.py", BAD_VIEW)
    result = run_cli(["check", ".", "--jobs", "2", "--no-cache"])
    assert result.exit_code == 1, result.output
    assert (
        "killer.py:1:1: DPL002 cannot analyse: the process analysing this file died (SIGSEGV)"
        in result.output
    )
    reported = {line.split(":", 1)[0] for line in lines(result.output, "DPL101")}
    assert reported == {Path(v).name for v in views}


def test_symlink_loop_is_one_dpl002(project: Path) -> None:
    (project / "loop.py").symlink_to("loop.py")
    write(project / "view.py", BAD_VIEW)
    for given in (".", "loop.py"):
        result = run_cli(["check", given])
        assert result.exit_code == 1, result.output
        assert lines(result.output, "DPL002") == [
            "loop.py:1:1: DPL002 cannot read file: Too many levels of symbolic links"
        ]
    assert len(lines(run_cli(["check", "."]).output, "DPL101")) == 1
    # As one of the project's other modules (read for cross-module facts), it is no crash either.
    result = run_cli(["check", "view.py"])
    assert result.exit_code == 1, result.output
    assert len(lines(result.output, "DPL101")) == 1


def test_fix_writes_a_symlinks_target_and_keeps_the_link(project: Path) -> None:
    real = write(project / "real" / "app.py", BAD_VIEW)
    link = project / "app.py"
    link.symlink_to(real)
    result = run_cli(["fix", "app.py", "--select", "DPL101"])
    assert result.exit_code == 0, result.output
    assert link.is_symlink() and link.resolve() == real.resolve()
    assert real.read_text() != BAD_VIEW
    assert not [p for p in project.rglob("*.tmp")]


FIXABLE = """\
import os

import redis
from flask import Flask

app = Flask(__name__)


@app.route("/hits")
def hits():
    client = redis.Redis(host=os.environ["REDIS_HOST"], max_connections=20)
    return str(client.incr("hits"))
"""


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_interrupted_fix_leaves_no_temp_file(tmp_path: Path, signum: int) -> None:
    originals = [write(tmp_path / f"pkg{i // 50}" / f"view_{i}.py", FIXABLE) for i in range(300)]
    process = subprocess.Popen(
        [sys.executable, "-m", "dbpoollint", "fix", ".", "--jobs", "2", "--no-cache"],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    # Interrupt once the writes have begun (or at the latest when the run is about to end).
    deadline = time.monotonic() + 300
    while process.poll() is None and time.monotonic() < deadline:
        if any(p.read_text() != FIXABLE for p in originals[::25]):
            break
        time.sleep(0.05)
    if process.poll() is None:
        process.send_signal(signum)
    process.wait(timeout=300)
    assert not [p for p in tmp_path.rglob("*") if p.name.endswith(".tmp")]
    for path in originals:
        text = path.read_text()
        # Each file is untouched or completely fixed (it parses and no longer builds per call).
        compile(text, str(path), "exec")
        assert text == FIXABLE or "def hits():\n    client = redis.Redis(" not in text


def test_a_pass_after_a_worker_death_gets_fresh_workers(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both passes share one pool; a death in the first must not leave the second a broken one."""
    if sys.platform != "linux":
        pytest.skip("relies on fork")
    from dbpoollint.engine import _run_jobs, _Workers
    from dbpoollint.packs import load_packs

    monkeypatch.setattr(dbpoollint.engine, "analyse_file", _dies_on_killer)
    packs = load_packs()
    data = BAD_VIEW.encode()
    first = [(f"view_{i}.py", data, f"view_{i}", False, True) for i in range(9)]
    first.append(("killer.py", data, "killer", False, True))
    second = [(f"later_{i}.py", data, f"later_{i}", False, True) for i in range(9)]
    with _Workers(2, ()) as workers:
        before = _run_jobs(first, packs, workers)
        after = _run_jobs(second, packs, workers)
    died = [r.path for r in before if r.findings and "died (SIGSEGV)" in r.findings[0].message]
    assert died == ["killer.py"]
    assert [r.path for r in after] == [job[0] for job in second]
    assert all(r.summary is not None and not r.findings for r in after)
