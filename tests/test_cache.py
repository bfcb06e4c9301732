"""The content cache: hits match cold runs, edits and pack changes invalidate, bad entries and
concurrent runs are harmless."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import dbpoollint.engine
from dbpoollint.cache import CACHE_FOLDER, ENV_VARIABLE, ResultCache, cache_folder
from tests.conftest import run_cli
from tests.test_cli import BAD_VIEW, GOOD_VIEW, write

FACTORY = """\
from sqlalchemy import create_engine


def get_engine():
    return create_engine("postgresql://app@db/app")
"""
CALLER = """\
from flask import Flask

from proj.db import get_engine

app = Flask(__name__)


@app.route("/")
def index():
    with get_engine().connect() as connection:
        return str(connection.execute("select 1").scalar())
"""
CALLER_WITHOUT_CALL = CALLER.replace("get_engine().connect()", "open_engine().connect()")


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(ENV_VARIABLE, raising=False)
    write(tmp_path / "pyproject.toml", "[tool.dbpoollint]\n")
    write(tmp_path / "proj" / "__init__.py", "")
    write(tmp_path / "proj" / "db.py", FACTORY)
    write(tmp_path / "proj" / "views.py", CALLER)
    for i in range(3):
        write(tmp_path / "proj" / f"view_{i}.py", BAD_VIEW)
        write(tmp_path / "proj" / f"good_{i}.py", GOOD_VIEW)
    write(tmp_path / "proj" / "plain.py", "def add(a, b):\n    return a + b\n")
    return tmp_path


class Counting:
    """Counts the files the engine really analyses (cache misses)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.paths: list[str] = []
        real = dbpoollint.engine.analyse_file

        def counting(path: str, *args: Any, **kwargs: Any) -> Any:
            self.paths.append(Path(path).name)
            return real(path, *args, **kwargs)

        monkeypatch.setattr(dbpoollint.engine, "analyse_file", counting)


def findings(*extra: str) -> list[dict[str, Any]]:
    result = run_cli(["check", ".", "--output-format", "json", "--jobs", "1", *extra])
    assert result.exit_code in (0, 1), result.output
    found: list[dict[str, Any]] = json.loads(result.stdout)
    return found


def test_warm_run_returns_what_a_cold_run_does(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cold = findings("--no-cache")
    assert not (project / CACHE_FOLDER).exists()
    first = findings()
    counted = Counting(monkeypatch)
    warm = findings()
    assert cold == first == warm
    assert {f["code"] for f in warm} >= {"DPL101", "DPL103"}
    assert counted.paths == []  # nothing parsed, and nothing prefiltered either
    assert (project / CACHE_FOLDER / ".gitignore").read_text().splitlines()[-1] == "*"


def test_an_edit_reanalyses_only_that_file_and_rejoins_its_dependents(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    findings()
    write(project / "proj" / "views.py", CALLER_WITHOUT_CALL)
    counted = Counting(monkeypatch)
    warm = findings()
    assert counted.paths == ["views.py"]
    # db.py is cached, but its DPL103 came from the join with views.py: gone with the call.
    assert warm == findings("--no-cache")
    assert not [f for f in warm if f["filename"].endswith("db.py") and f["code"] == "DPL103"]


def test_a_changed_pack_invalidates_every_entry(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = '[pack]\nname = "house"\nkind = "client"\n\n[[pools]]\nnames = ["house.make"]\n'
    pack = write(project / "house.toml", text)
    config = '[tool.dbpoollint]\npacks = ["house.toml"]\n'
    write(project / "pyproject.toml", config)
    result = run_cli(["check", ".", "--jobs", "1"])
    assert result.exit_code == 1, result.output
    pack.write_text(text.replace('"house.make"', '"house.make_engine"'))
    counted = Counting(monkeypatch)
    findings()
    parsed = [
        "db.py",
        "views.py",
        *(f"{kind}_{i}.py" for kind in ("view", "good") for i in range(3)),
    ]
    assert sorted(counted.paths) == sorted(parsed)


def test_a_changed_setting_applies_to_cached_results(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    findings()
    write(project / "pyproject.toml", '[tool.dbpoollint]\nignore = ["DPL101"]\n')
    counted = Counting(monkeypatch)
    warm = findings()
    assert counted.paths == []
    assert warm == findings("--no-cache")
    assert "DPL101" not in {f["code"] for f in warm}


def test_a_corrupt_entry_is_ignored_and_rewritten(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cold = findings()
    # Both the files' results and the memos (the replayed run among them).
    folders = [project / CACHE_FOLDER / kind for kind in ("files", "memo")]
    entries = [p for folder in folders for p in folder.rglob("*") if p.is_file()]
    assert entries
    for index, entry in enumerate(entries):
        data = entry.read_bytes()
        entry.write_bytes(b"garbage" if index % 2 else data[: len(data) // 2])
    counted = Counting(monkeypatch)
    assert findings() == cold
    assert counted.paths  # the damaged entries were misses
    counted.paths.clear()
    assert findings() == cold
    assert counted.paths == []  # and were rewritten


def test_a_foreign_entry_is_not_trusted(tmp_path: Path) -> None:
    cache = ResultCache(tmp_path / "cache")
    job = ("a.py", b"x = 1\n", "a", False, False)
    other = ("b.py", b"x = 1\n", "b", False, False)
    cache.put(other, dbpoollint.engine.FileResult("b.py"))
    # An entry copied under another file's key says it is for b.py: a miss.
    (tmp_path / "cache" / "files").mkdir(exist_ok=True)
    source = cache._entry(cache.key(other))
    target = cache._entry(cache.key(job))
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(source.read_bytes())
    assert cache.get(job) is None
    assert cache.get(other) is not None


def test_two_concurrent_runs_both_succeed(project: Path) -> None:
    for i in range(40):
        write(project / "more" / f"view_{i}.py", BAD_VIEW)
    command = [sys.executable, "-m", "dbpoollint", "check", ".", "--output-format", "json"]
    runs = [
        subprocess.Popen(command, cwd=project, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for _ in range(2)
    ]
    outputs = [run.communicate(timeout=600) for run in runs]
    assert [run.returncode for run in runs] == [1, 1], [err for _, err in outputs]
    assert json.loads(outputs[0][0]) == json.loads(outputs[1][0])
    assert not [p for p in (project / CACHE_FOLDER).rglob("*.tmp")]
    warm = subprocess.run(command, cwd=project, capture_output=True, check=False)
    assert json.loads(warm.stdout) == json.loads(outputs[0][0])


def test_cache_dir_setting_and_environment_move_the_cache(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(project / "pyproject.toml", '[tool.dbpoollint]\ncache-dir = "build/lint-cache"\n')
    findings()
    assert (project / "build" / "lint-cache" / ".gitignore").is_file()
    assert not (project / CACHE_FOLDER).exists()
    monkeypatch.setenv(ENV_VARIABLE, str(project / "elsewhere"))
    findings()
    assert (project / "elsewhere" / "files").is_dir()
    assert cache_folder(project, "x") == project / "elsewhere"


def test_clean_removes_the_cache(project: Path) -> None:
    findings()
    assert (project / CACHE_FOLDER).is_dir()
    result = run_cli(["clean"])
    assert result.exit_code == 0
    assert not (project / CACHE_FOLDER).exists()
    assert run_cli(["clean"]).exit_code == 0  # nothing to remove is fine


def test_clean_refuses_a_folder_that_is_not_a_cache(project: Path) -> None:
    write(project / "pyproject.toml", '[tool.dbpoollint]\ncache-dir = "proj"\n')
    result = run_cli(["clean"])
    assert result.exit_code == 2
    assert "not a dbpoollint cache" in result.output
    assert (project / "proj" / "db.py").is_file()


def test_bad_cache_dir_value_is_a_config_error(project: Path) -> None:
    write(project / "pyproject.toml", "[tool.dbpoollint]\ncache-dir = 3\n")
    result = run_cli(["check", "."])
    assert result.exit_code == 2
    assert "`cache-dir`: expected a path" in result.output


def test_a_warm_run_does_not_rescan_the_files_the_prefilter_skipped(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Which skipped files name a builder is remembered: an unchanged tree reads it back, a
    skipped file that starts naming a builder is scanned (and parsed) again."""
    cold = findings()
    scanned: list[bytes] = []
    real = dbpoollint.engine._IDENTIFIER

    class Scanner:
        def findall(self, data: bytes) -> list[bytes]:
            scanned.append(data)
            return real.findall(data)

    monkeypatch.setattr(dbpoollint.engine, "_IDENTIFIER", Scanner())
    assert findings() == cold
    assert scanned == []
    write(project / "proj" / "plain.py", "def add(a, b):\n    return get_engine() + a + b\n")
    findings()
    assert any(b"get_engine" in data for data in scanned)
