"""The wheel carries the rule packs, and the pre-commit hook works from this repository.

Both build real environments from the package registry, so they take tens of seconds.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
BAD_VIEW = (ROOT / "tests" / "fixtures" / "DPL101" / "flask_view_alias.py").read_text()


def _run(
    args: list[str], cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


def test_wheel_installs_in_a_fresh_venv_and_ships_the_packs(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    built = _run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-w", str(dist), str(ROOT)], tmp_path
    )
    assert built.returncode == 0, built.stderr
    (wheel,) = dist.glob("dbpoollint-*.whl")

    environment = tmp_path / "venv"
    venv.create(environment, with_pip=True)
    python = environment / "bin" / "python"
    installed = _run([str(python), "-m", "pip", "install", "--quiet", str(wheel)], tmp_path)
    assert installed.returncode == 0, installed.stderr

    project = tmp_path / "service"
    project.mkdir()
    (project / "views.py").write_text(BAD_VIEW)
    # Run from elsewhere so nothing from the source tree can be picked up.
    result = _run([str(environment / "bin" / "dbpoollint"), "check", str(project)], tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "DPL101" in result.stdout
    packs = _run(
        [str(python), "-c", "import dbpoollint.packs as p; print(p.builtin_pack_dir())"], tmp_path
    )
    assert "site-packages/dbpoollint/rules" in packs.stdout


@pytest.mark.skipif(shutil.which("git") is None, reason="pre-commit needs git")
def test_pre_commit_hook_runs_from_this_repository(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    env = {
        **os.environ,
        "PRE_COMMIT_HOME": str(tmp_path / "cache"),
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.com",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.com",
    }
    assert _run(["git", "init", "-q"], repo, env).returncode == 0
    (repo / "views.py").write_text(BAD_VIEW)
    (repo / "clean.py").write_text("import os\n")
    assert _run(["git", "add", "."], repo, env).returncode == 0

    pre_commit = [
        sys.executable,
        "-m",
        "pre_commit",
        "try-repo",
        str(ROOT),
        "dbpoollint",
        "--all-files",
    ]
    result = _run(pre_commit, repo, env)
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert "views.py:11:14: DPL101" in output

    (repo / "views.py").write_text("import os\n")
    assert _run(["git", "add", "."], repo, env).returncode == 0
    result = _run(pre_commit, repo, env)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.skipif(shutil.which("git") is None, reason="pre-commit needs git")
def test_pre_commit_fix_hook_rewrites_and_fails_like_a_fixer(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    env = {**os.environ, "PRE_COMMIT_HOME": str(tmp_path / "cache")}
    assert _run(["git", "init", "-q"], repo, env).returncode == 0
    (repo / "views.py").write_text(BAD_VIEW)
    assert _run(["git", "add", "."], repo, env).returncode == 0
    hook = [sys.executable, "-m", "pre_commit", "try-repo", str(ROOT), "dbpoollint-fix"]
    result = _run([*hook, "--all-files"], repo, env)
    assert result.returncode == 1, result.stdout + result.stderr
    fixed = (repo / "views.py").read_text()
    assert "def get_engine():" in fixed and "engine = get_engine()" in fixed
    assert _run(["git", "add", "."], repo, env).returncode == 0
    # A second run converges: nothing left to rewrite (other rules may still report).
    _run([*hook, "--all-files"], repo, env)
    assert (repo / "views.py").read_text() == fixed
