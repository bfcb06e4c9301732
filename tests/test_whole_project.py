"""Cross-module facts come from the whole project, whatever paths are checked.

Pre-commit passes only the changed files and CI often checks one folder: the project's other
modules are still read (found from its root), and findings are reported for the given paths only.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from dbpoollint.discovery import forget_file_system, module_aliases, module_name
from tests.conftest import FIXTURES, check_json, run_cli

ROOT = Path(__file__).parent.parent
PROJECT = FIXTURES / "projects" / "helper_other_module"


def _service(tmp_path: Path) -> Path:
    """A repository holding `backend/app/...`, the fixture project's package."""
    service = tmp_path / "service"
    shutil.copytree(PROJECT / "app", service / "backend" / "app")
    (service / "pyproject.toml").write_text('[project]\nname = "service"\n')
    return service


def _found(findings: list[dict[str, object]], under: Path) -> set[tuple[str, int, str]]:
    result = set()
    for finding in findings:
        path = Path(str(finding["filename"])).resolve()
        location = finding["location"]
        assert isinstance(location, dict)
        if path == under.resolve() or under.resolve() in path.parents:
            result.add((path.as_posix(), int(location["row"]), str(finding["code"])))
    return result


def test_checking_a_folder_a_file_or_the_root_reports_the_same(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    service = _service(tmp_path)
    monkeypatch.chdir(service)
    db = Path("backend/app/utils/db.py")
    whole = _found(check_json("."), db)
    assert ("DPL101", 7) in {(c, r) for _, r, c in whole}
    assert _found(check_json("backend/app"), db) == whole
    assert _found(check_json(str(db)), db) == whole
    assert _found(check_json("backend/app/utils"), db) == whole


def test_only_the_given_paths_are_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    service = _service(tmp_path)
    monkeypatch.chdir(service)
    findings = check_json("backend/app/api/routes.py")
    assert findings == []
    assert any(f["code"] == "DPL101" for f in check_json("backend/app/utils"))


def test_a_target_the_configuration_excludes_is_checked_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    service = _service(tmp_path)
    (service / "pyproject.toml").write_text('[tool.dbpoollint]\nextend-exclude = ["backend"]\n')
    monkeypatch.chdir(service)
    # Excluded from the project, the helper is not known to run per request.
    codes = {f["code"] for f in check_json("backend/app/utils/db.py")}
    assert "DPL101" not in codes


@pytest.mark.skipif(shutil.which("git") is None, reason="pre-commit needs git")
def test_pre_commit_on_one_changed_file_still_sees_its_callers(tmp_path: Path) -> None:
    service = _service(tmp_path)
    env = {
        **os.environ,
        "PRE_COMMIT_HOME": str(tmp_path / "cache"),
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.com",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.com",
    }

    def git(*args: str) -> None:
        done = subprocess.run(["git", *args], cwd=service, env=env, capture_output=True)
        assert done.returncode == 0, done.stderr

    git("init", "-q")
    git("add", ".")
    git("commit", "-q", "-m", "service")
    db = service / "backend" / "app" / "utils" / "db.py"
    db.write_text(db.read_text().replace("def sql_exec", "# run one query\ndef sql_exec"))
    git("add", str(db))
    hook = [sys.executable, "-m", "pre_commit", "try-repo", str(ROOT), "dbpoollint"]
    result = subprocess.run(hook, cwd=service, env=env, capture_output=True, text=True, timeout=600)
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert "backend/app/utils/db.py:8:" in output and "DPL101" in output
    assert "backend/app/api/routes.py:" not in output


PROJECT_CASES = sorted(p for p in (FIXTURES / "projects").iterdir() if p.is_dir())


@pytest.mark.parametrize("case", PROJECT_CASES, ids=lambda p: p.name)
def test_each_file_alone_reports_what_the_whole_project_reports_for_it(
    case: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A partial run reads the other modules for facts and judges only the given paths: it
    must neither lose a finding of the whole run nor add one."""
    copy = tmp_path / case.name
    shutil.copytree(case, copy)
    if not (copy / "pyproject.toml").exists():
        (copy / "pyproject.toml").write_text("")
    monkeypatch.chdir(copy)
    codes = ",".join(sorted({"DPL101", "DPL102", "DPL103", "DPL201", "DPL301", "DPL302"}))
    selected = ["--select", codes, "--no-cache"]
    whole = check_json(".", extra=selected)
    for module in sorted(copy.rglob("*.py")):
        alone = check_json(str(module.relative_to(copy)), extra=selected)
        assert _found(alone, module) == _found(whole, module), module.relative_to(copy)


def test_package_dir_names_modules_the_same_from_any_checked_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`package-dir = {"mypkg" = "source"}`: `from mypkg.db import ...` resolves whether the
    run starts at the root, at `source/api` or at one file."""
    project = tmp_path / "project"
    shutil.copytree(FIXTURES / "projects" / "package_dir_layout", project)
    monkeypatch.chdir(project)
    routes, db = Path("source/api/routes.py"), Path("source/db.py")
    whole_routes, whole_db = _found(check_json("."), routes), _found(check_json("."), db)
    assert ("DPL302", 10) in {(c, r) for _, r, c in whole_routes}
    assert ("DPL101", 16) in {(c, r) for _, r, c in whole_db}
    assert _found(check_json("source/api"), routes) == whole_routes
    assert _found(check_json(str(routes)), routes) == whole_routes
    assert _found(check_json(str(db)), db) == whole_db


@pytest.mark.parametrize(
    ("package_dir", "file", "name"),
    [
        pytest.param('{"" = "lib"}', "lib/mypkg/db.py", "mypkg.db", id="root-in-lib"),
        pytest.param('{"mypkg" = "source"}', "source/db.py", "mypkg.db", id="renamed"),
        pytest.param('{"mypkg" = "source"}', "source/api/__init__.py", "mypkg.api", id="package"),
        pytest.param('{"mypkg" = "source"}', "scripts/run.py", "run", id="not-mapped"),
        pytest.param('{"mypkg" = "src", "mypkg.db" = "db"}', "db/x.py", "mypkg.db.x", id="deepest"),
    ],
)
def test_package_dir_gives_module_names(
    tmp_path: Path, package_dir: str, file: str, name: str
) -> None:
    (tmp_path / "pyproject.toml").write_text(f"[tool.setuptools]\npackage-dir = {package_dir}\n")
    path = tmp_path / file
    path.parent.mkdir(parents=True)
    path.write_text("")
    forget_file_system()
    assert module_name(path) == name
    assert name not in module_aliases(path)


def test_a_run_resolves_relative_paths_against_its_own_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dbpoollint.discovery import resolved

    for folder in ("one", "two"):
        (tmp_path / folder).mkdir()
        monkeypatch.chdir(tmp_path / folder)
        forget_file_system()
        assert resolved(Path("db.py")) == (tmp_path / folder / "db.py").resolve()


def test_files_of_one_folder_share_its_package_but_keep_their_own_names(tmp_path: Path) -> None:
    package = tmp_path / "app" / "db"
    package.mkdir(parents=True)
    for name in ("__init__.py", "engine.py", "session.py"):
        (package / name).write_text("")
    (tmp_path / "app" / "__init__.py").write_text("")
    (tmp_path / "pyproject.toml").write_text("")
    forget_file_system()
    names = [module_name(package / n) for n in ("__init__.py", "engine.py", "session.py")]
    assert names == ["app.db", "app.db.engine", "app.db.session"]
    assert module_aliases(package / "engine.py") == ()


def test_a_run_raises_the_garbage_collector_thresholds_its_workers_do_not() -> None:
    """Summaries read from the cache are many long-lived objects: collecting them over and over
    cost a third of a warm single-file run."""
    import gc

    from dbpoollint.cli import GC_THRESHOLDS
    from dbpoollint.workers import DEFAULT_GC_THRESHOLDS, init_worker

    before = gc.get_threshold()
    try:
        assert run_cli(["rules"]).exit_code == 0
        assert gc.get_threshold() == GC_THRESHOLDS
        # A worker's parse trees are short-lived: it collects as Python does.
        init_worker(())
        assert gc.get_threshold() == DEFAULT_GC_THRESHOLDS
    finally:
        gc.set_threshold(*before)


def test_context_modules_are_named_as_relpath_names_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dbpoollint.cli import _planned_context
    from dbpoollint.config import Settings

    (tmp_path / "pyproject.toml").write_text("")
    for module in ("app/views.py", "app/db.py", "lib/cache.py", "lib/deep/x.py", "top.py"):
        (tmp_path / module).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / module).write_text("")
    monkeypatch.chdir(tmp_path / "app")
    forget_file_system()
    planned = _planned_context([Path("views.py")], Settings(root=tmp_path), {"views.py"})
    assert sorted(p.display for p in planned) == sorted(os.path.relpath(p.path) for p in planned)
    assert {p.display for p in planned} == {
        "db.py",
        "../lib/cache.py",
        "../lib/deep/x.py",
        "../top.py",
    }
