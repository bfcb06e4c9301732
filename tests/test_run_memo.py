"""A check's report replayed for an unchanged tree, and every change that must re-check."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from typing import Any

import pytest

import dbpoollint.engine
import dbpoollint.manifest
from dbpoollint.cache import CACHE_FOLDER, ENV_VARIABLE, ResultCache
from dbpoollint.manifest import NAME as MANIFEST
from dbpoollint.manifest import RACY_NS, Manifest
from tests.conftest import run_cli
from tests.test_cli import BAD_VIEW, GOOD_VIEW, write

FIXTURES = Path(__file__).parent / "fixtures"
# BAD_VIEW with the client built once: the same size, one finding fewer.
FIXED_VIEW = BAD_VIEW.replace(
    '@app.route("/hits")\ndef hits():\n    client = redis.Redis(host="cache", max_connections=20)',
    'client = redis.Redis(host="cache", max_connections=20)\n@app.route("/hits")\ndef hits():\n   ',
)


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(ENV_VARIABLE, raising=False)
    write(tmp_path / "pyproject.toml", "[tool.dbpoollint]\n")
    write(tmp_path / "app" / "__init__.py", "")
    write(tmp_path / "app" / "view.py", BAD_VIEW)
    write(tmp_path / "app" / "good.py", GOOD_VIEW)
    return tmp_path


class Checks:
    """Counts the runs that really check (the engine runs) rather than replay."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.count = 0
        real = dbpoollint.engine.check_files

        def counting(*args: Any, **kwargs: Any) -> Any:
            self.count += 1
            return real(*args, **kwargs)

        monkeypatch.setattr(dbpoollint.engine, "check_files", counting)


def check(*extra: str) -> tuple[int, str]:
    result = run_cli(["check", ".", "--jobs", "1", *extra])
    return result.exit_code, result.stdout


def age(path: Path, seconds: float = 60) -> None:
    """Date the file back, out of the manifest's racy window."""
    stamp = time.time_ns() - int(seconds * 1e9)
    os.utime(path, ns=(stamp, stamp))


def test_an_unchanged_tree_replays_the_report(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cold = check("--no-cache")
    assert check() == cold
    checks = Checks(monkeypatch)
    assert check() == cold
    assert checks.count == 0
    assert cold[0] == 1 and "DPL101" in cold[1]
    assert check("--exit-zero") == (0, cold[1])  # the exit code follows the flags of this run


def test_an_edit_is_checked(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    check()
    write(project / "app" / "view.py", GOOD_VIEW)
    checks = Checks(monkeypatch)
    warm = check()
    assert checks.count == 1
    assert warm == check("--no-cache") == (0, "All checks passed!\n")


def test_an_edit_keeping_size_and_mtime_is_checked(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    view = project / "app" / "view.py"
    assert len(FIXED_VIEW) == len(BAD_VIEW) and FIXED_VIEW != BAD_VIEW
    monkeypatch.setattr(dbpoollint.manifest, "RACY_NS", 0)
    for path in project.rglob("*.py"):
        age(path)
    check()
    check()  # the manifest now trusts every file: only the stat tells an edit
    stamp = view.stat().st_mtime_ns
    view.write_text(FIXED_VIEW)
    os.utime(view, ns=(stamp, stamp))
    assert view.stat().st_size == len(BAD_VIEW) and view.stat().st_mtime_ns == stamp
    assert check() == check("--no-cache")
    assert "DPL101" not in check()[1]


def test_an_edit_in_the_same_second_as_the_last_run_is_checked(project: Path) -> None:
    view = project / "app" / "view.py"
    check()
    stamp = view.stat().st_mtime_ns
    view.write_text(FIXED_VIEW)
    os.utime(view, ns=(stamp, stamp))
    assert "DPL101" not in check()[1]


def test_a_recent_entry_is_hashed_again_an_old_one_trusted(tmp_path: Path) -> None:
    """Git's racily clean entries: a file written within the window before the manifest was
    written may have changed since without changing its stat; only older ones are trusted."""
    path = write(tmp_path / "db.py", "a = 1\n")
    manifest = Manifest(ResultCache(tmp_path / "cache"))
    manifest.digest(str(path))
    # A stored digest that no longer matches the bytes: only a re-hash notices.
    for key, (signature, _) in manifest.entries.items():
        manifest.entries[key] = (signature, "stale")
    stat = path.stat()
    newest = max(stat.st_mtime_ns, stat.st_ctime_ns)
    manifest.written_ns = newest + RACY_NS // 2
    assert manifest.digest(str(path))[0] != "stale"
    for key, (signature, _) in manifest.entries.items():
        manifest.entries[key] = (signature, "stale")
    manifest.written_ns = newest + 2 * RACY_NS
    assert manifest.digest(str(path)) == ("stale", None)


def test_a_manifest_round_trips_and_a_changed_stat_is_hashed_again(tmp_path: Path) -> None:
    path = write(tmp_path / "db.py", "a = 1\n")
    cache = ResultCache(tmp_path / "cache")
    first = Manifest(cache)
    digest, data = first.digest(str(path))
    assert data == b"a = 1\n"
    first.save()
    again = Manifest(cache)
    assert again.entries == first.entries and again.written_ns > 0
    path.write_text("a = 2\n")
    assert again.digest(str(path))[0] != digest


def test_a_new_file_and_a_removed_file_are_checked(project: Path) -> None:
    clean = project / "app" / "view.py"
    clean.unlink()
    assert check()[0] == 0
    write(project / "app" / "other.py", BAD_VIEW)
    assert "other.py" in check()[1]
    (project / "app" / "other.py").unlink()
    assert check() == (0, "All checks passed!\n")


def test_a_changed_setting_or_option_is_checked(project: Path) -> None:
    assert check()[0] == 1
    write(project / "pyproject.toml", '[tool.dbpoollint]\nignore = ["DPL101"]\n')
    assert check() == check("--no-cache")
    assert "DPL101" not in check()[1]
    write(project / "pyproject.toml", "[tool.dbpoollint]\n")
    assert "DPL101" in check()[1]
    assert check("--ignore", "DPL101") == check("--ignore", "DPL101", "--no-cache")
    assert check("--output-format", "json")[1].startswith("[")


def test_a_changed_pack_is_checked(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = '[pack]\nname = "house"\nkind = "client"\n\n[[pools]]\nnames = ["house.make"]\n'
    pack = write(project / "house.toml", text)
    write(project / "pyproject.toml", '[tool.dbpoollint]\npacks = ["house.toml"]\n')
    check()
    pack.write_text(text.replace('"house.make"', '"house.make_pool"'))
    checks = Checks(monkeypatch)
    assert check() == check("--no-cache")
    assert checks.count == 2


def test_a_corrupt_manifest_is_ignored(project: Path) -> None:
    cold = check()
    (project / CACHE_FOLDER / MANIFEST).write_bytes(b"not a manifest")
    assert check() == cold
    write(project / "app" / "view.py", GOOD_VIEW)
    (project / CACHE_FOLDER / MANIFEST).write_bytes(b"\x80\x05garbage")
    assert check() == (0, "All checks passed!\n")


def test_an_env_file_the_rules_read_by_name_is_checked_when_it_changes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = tmp_path / "project"
    shutil.copytree(FIXTURES / "DPL401" / "loaded_env_file_any_name", project)
    write(project / "pyproject.toml", "[tool.dbpoollint]\n")
    monkeypatch.chdir(project)
    monkeypatch.delenv(ENV_VARIABLE, raising=False)
    assert "DPL401" in check()[1]
    assert "DPL401" in check()[1]
    supabase = project / "config" / "supabase"
    supabase.write_text(supabase.read_text().replace(":6543/", ":5432/"))
    assert check() == check("--no-cache")
    assert "DPL401" not in check()[1]


def test_a_file_written_during_a_run_does_not_store_its_report_under_the_old_key(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import dbpoollint.cli

    view = project / "app" / "view.py"
    # No racy window: the manifest trusts every file older than its last write (ctime cannot be
    # dated back, so waiting out the window is the only other way).
    monkeypatch.setattr(dbpoollint.manifest, "RACY_NS", 0)
    check()
    check()  # the manifest trusts view.py: the next key takes its digest unread
    write(project / "app" / "good.py", GOOD_VIEW + "\n")  # a miss, so the files are read
    real = dbpoollint.cli._read

    def saved_meanwhile(planned: Any, data: bytes | None = None) -> Any:
        if planned.display.endswith("view.py") and data is None:
            view.write_text(GOOD_VIEW)  # an editor saves while the run reads
        return real(planned, data)

    monkeypatch.setattr(dbpoollint.cli, "_read", saved_meanwhile)
    assert "DPL101" not in check()[1]  # it checked what it read
    monkeypatch.setattr(dbpoollint.cli, "_read", real)
    view.write_text(BAD_VIEW)  # back to the bytes the key of that run hashed
    assert "DPL101" in check()[1]
