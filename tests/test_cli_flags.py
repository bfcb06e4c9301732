"""Flags that used to be broken, each with the behaviour a ruff user expects."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import pytest

from tests.conftest import check_json, run_cli
from tests.test_cli import BAD_VIEW, GOOD_VIEW, write

PER_REQUEST_ENGINE = """\
from flask import Flask
from sqlalchemy import create_engine

app = Flask(__name__)


@app.route("/")
def index():
    engine = create_engine("postgresql://app:s3cret@db.internal/app")
    return str(engine)
"""
MODULE_ENGINE = """\
from sqlalchemy import create_engine

engine = create_engine("postgresql://app:s3cret@db.internal/app", pool_size=5)
"""
# The same with a line short enough to take `, pool_pre_ping=True` without being split.
SHORT_MODULE_ENGINE = MODULE_ENGINE.replace("app:s3cret@db.internal", "app:pw@db")


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


# --- --config ---------------------------------------------------------------------------------


def test_config_file_with_any_name_reads_top_level_keys(project: Path) -> None:
    write(project / "app.py", BAD_VIEW)
    write(project / "ci" / "lint.toml", 'ignore = ["DPL101"]\n')
    assert run_cli(["check", "app.py"]).exit_code == 1
    assert run_cli(["check", "app.py", "--config", "ci/lint.toml"]).exit_code == 0


def test_config_file_with_a_tool_table_reads_the_table(project: Path) -> None:
    write(project / "app.py", BAD_VIEW)
    write(project / "other.toml", '[tool.dbpoollint]\nignore = ["DPL101"]\n')
    assert run_cli(["check", "app.py", "--config", "other.toml"]).exit_code == 0


def test_config_file_with_unknown_keys_is_an_error_not_silence(project: Path) -> None:
    write(project / "app.py", BAD_VIEW)
    write(project / "other.toml", '[lint]\nignore = ["DPL101"]\n')
    result = run_cli(["check", "app.py", "--config", "other.toml"])
    assert result.exit_code == 2
    assert "other.toml: `lint`: unknown configuration key" in result.output


def test_named_pyproject_without_our_table_is_an_error(project: Path) -> None:
    write(project / "app.py", BAD_VIEW)
    write(project / "sub" / "pyproject.toml", '[project]\nname = "x"\n')
    result = run_cli(["check", "app.py", "--config", "sub/pyproject.toml"])
    assert result.exit_code == 2 and "no [tool.dbpoollint] table" in result.output


# --- globs are relative to the config file's folder ------------------------------------------


@pytest.mark.parametrize("cwd", [".", "legacy", ".."], ids=["root", "subfolder", "outside"])
def test_per_file_ignores_are_relative_to_the_config_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cwd: str
) -> None:
    root = tmp_path / "repo"
    write(root / "legacy" / "old.py", BAD_VIEW)
    write(root / "other" / "legacy" / "nested.py", BAD_VIEW)
    write(root / "app.py", BAD_VIEW)
    write(
        root / "pyproject.toml",
        '[tool.dbpoollint]\nper-file-ignores = { "legacy/*.py" = ["DPL101"] }\n',
    )
    monkeypatch.chdir(root / cwd)
    findings = check_json(root)
    names = sorted(Path(f["filename"]).relative_to(root).as_posix() for f in findings)
    # `legacy/*.py` is the folder next to the config, not any folder called legacy.
    assert names == ["app.py", "other/legacy/nested.py"]


def test_exclude_is_relative_to_the_config_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "repo"
    write(root / "gen" / "app.py", BAD_VIEW)
    write(root / "src" / "gen" / "app.py", BAD_VIEW)
    write(root / "pyproject.toml", '[tool.dbpoollint]\nextend-exclude = ["gen/*"]\n')
    monkeypatch.chdir(root / "src")
    findings = check_json(root)
    assert [Path(f["filename"]).relative_to(root).as_posix() for f in findings] == [
        "src/gen/app.py"
    ]


# --- fix-values and selectors in config ----------------------------------------------------------


@pytest.mark.parametrize(
    ("table", "message"),
    [
        pytest.param(
            "conect-timeout = 5",
            "`fix-values.conect-timeout`: unknown key (did you mean `connect-timeout`?)",
            id="typo",
        ),
        pytest.param(
            "connect-timeout = 0",
            "`fix-values.connect-timeout`: expected a number of seconds above 0, got 0",
            id="zero-timeout",
        ),
        pytest.param(
            "pool-size = 2.5",
            "`fix-values.pool-size`: expected a positive integer, got 2.5",
            id="fractional-pool",
        ),
        pytest.param(
            "max-connections = 0",
            "`fix-values.max-connections`: expected a positive integer, got 0",
            id="zero-bound",
        ),
        pytest.param(
            "max-overflow = -1",
            "`fix-values.max-overflow`: expected a non-negative integer, got -1",
            id="negative-overflow",
        ),
    ],
)
def test_fix_values_are_checked(project: Path, table: str, message: str) -> None:
    write(project / "app.py", GOOD_VIEW)
    write(project / "pyproject.toml", f"[tool.dbpoollint.fix-values]\n{table}\n")
    result = run_cli(["check", "app.py"])
    assert result.exit_code == 2
    assert result.output.strip() == f"dbpoollint: error: {project / 'pyproject.toml'}: {message}"


def test_fix_value_keys_are_the_ones_the_fixes_read() -> None:
    from dbpoollint.checks.knobs import FIX_VALUE_DEFAULTS
    from dbpoollint.config import _TABLES

    assert set(_TABLES["fix-values"]) == set(FIX_VALUE_DEFAULTS)


@pytest.mark.parametrize(
    ("toml", "key"),
    [
        pytest.param('select = ["DPL1", "DPX"]', "`select`", id="select"),
        pytest.param('extend-select = ["E501"]', "`extend-select`", id="extend-select"),
        pytest.param(
            'per-file-ignores = { "a/*" = ["DPL77"] }', '`per-file-ignores."a/*"`', id="pfi"
        ),
    ],
)
def test_selector_errors_from_config_name_file_and_key(project: Path, toml: str, key: str) -> None:
    write(project / "app.py", GOOD_VIEW)
    write(project / "dbpoollint.toml", toml + "\n")
    result = run_cli(["check", "app.py"])
    assert result.exit_code == 2
    assert f"dbpoollint.toml: {key}: unknown rule selector" in result.output


# --- stdin with --fix ---------------------------------------------------------------------------


def test_stdin_fix_prints_the_source_and_reports_what_is_left(project: Path) -> None:
    source = (
        BAD_VIEW
        + '\n\n@app.route("/pg")\ndef pg():\n    import psycopg2\n'
        + ('    return psycopg2.connect("dbname=x")\n')
    )
    result = run_cli(["check", "-", "--stdin-filename", "views.py", "--fix"], input=source)
    assert result.exit_code == 1  # DPL102 has no fix: it is left
    assert "def get_redis():" in result.stdout and "DPL102" not in result.stdout
    assert "views.py:" not in result.stdout
    assert "DPL102" in result.stderr and "DPL101" not in result.stderr


def test_stdin_fix_exits_zero_when_nothing_is_left(project: Path) -> None:
    args = ["check", "-", "--stdin-filename", "views.py", "--fix", "--select", "DPL101"]
    result = run_cli(args, input=BAD_VIEW)
    assert result.exit_code == 0, result.stderr
    assert "get_redis()" in result.stdout and result.stderr == ""


# --- one progress bar -------------------------------------------------------------------------


def test_fix_shows_one_progress_bar_for_the_whole_run(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import dbpoollint.cli as cli

    for index in range(3):
        write(project / f"app{index}.py", PER_REQUEST_ENGINE)
    bars: list[dict[str, Any]] = []
    real = click.progressbar

    def recording(**kwargs: Any) -> Any:
        bars.append(kwargs)
        return real(**kwargs)

    monkeypatch.setattr(cli, "PROGRESS_THRESHOLD", 1)
    monkeypatch.setattr(cli, "_on_terminal", lambda: True)
    monkeypatch.setattr(cli.click, "progressbar", recording)
    result = run_cli(["fix", "."])
    assert "Fixed" in result.output
    assert len(bars) == 1  # several fix rounds, one bar


# --- unreadable paths ----------------------------------------------------------------------------


def test_a_folder_that_cannot_be_listed_is_dpl002(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    locked = project / "locked"
    write(locked / "app.py", BAD_VIEW)
    real_scandir = os.scandir

    def deny(path: Any = ".") -> Iterator[os.DirEntry[str]]:
        if Path(path).resolve() == locked.resolve():
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    real_listdir = os.listdir

    def deny_list(path: Any = ".") -> list[str]:
        if Path(path).resolve() == locked.resolve():
            raise PermissionError(13, "Permission denied", str(path))
        return real_listdir(path)

    monkeypatch.setattr(os, "scandir", deny)
    monkeypatch.setattr(os, "listdir", deny_list)
    for given in ("locked", "."):
        result = run_cli(["check", given])
        assert result.exit_code == 1, result.output
        assert "locked:1:1: DPL002 cannot list folder: permission denied" in result.output


# --- passwords in printed source ---------------------------------------------------------------


def test_full_output_masks_url_passwords(project: Path) -> None:
    write(project / "views.py", PER_REQUEST_ENGINE)
    result = run_cli(["check", "views.py", "--output-format", "full"])
    assert result.exit_code == 1
    assert "postgresql://app:***@db.internal/app" in result.output
    assert "s3cret" not in result.output


def test_diff_masks_url_passwords(project: Path) -> None:
    write(project / "db.py", MODULE_ENGINE)
    result = run_cli(["check", "db.py", "--diff", "--select", "DPL205"])
    assert result.exit_code == 1
    # The new keyword pushes the line past 88 characters: the call is split as `ruff format`
    # would split it (issue 12), and the moved URL is masked on its new line.
    assert '+    "postgresql://app:***@db.internal/app", pool_size=5, pool_pre_ping=True' in (
        result.output
    )
    assert "s3cret" not in result.output


# --- output details -----------------------------------------------------------------------------


def test_json_fix_edits_are_minimal_spans(project: Path) -> None:
    # A line that still fits after the fix (a longer one is split: the test below).
    write(project / "db.py", SHORT_MODULE_ENGINE)
    (finding,) = check_json("db.py", extra=["--select", "DPL205"])
    (edit,) = finding["fix"]["edits"]
    assert edit["content"] == ", pool_pre_ping=True"
    assert edit["location"] == edit["end_location"] == {"row": 3, "column": 65}


def test_json_fix_edit_of_a_split_call_keeps_the_unchanged_start(project: Path) -> None:
    write(project / "db.py", MODULE_ENGINE)
    (finding,) = check_json("db.py", extra=["--select", "DPL205"])
    (edit,) = finding["fix"]["edits"]
    assert edit["location"] == {"row": 3, "column": 24}  # after `engine = create_engine(`
    assert edit["content"].endswith("pool_size=5, pool_pre_ping=True\n")


def test_github_annotations_use_the_rule_severity(project: Path) -> None:
    write(project / "app.py", BAD_VIEW)
    write(project / "db.py", MODULE_ENGINE)
    result = run_cli(["check", ".", "--output-format", "github", "--select", "DPL101,DPL205"])
    lines = result.stdout.splitlines()
    assert any(line.startswith("::error title=dbpoollint (DPL101)") for line in lines)
    assert any(line.startswith("::warning title=dbpoollint (DPL205)") for line in lines)


def test_rule_prints_its_online_docs_and_severity() -> None:
    result = run_cli(["rule", "DPL205"])
    assert "Severity: warning" in result.output
    assert "Online: https://" in result.output and "/docs/rules/DPL205.md" in result.output


def test_statistics_json_counts(project: Path) -> None:
    write(project / "a.py", BAD_VIEW)
    result = run_cli(["check", "a.py", "--statistics", "--output-format", "json"])
    assert json.loads(result.stdout) == [
        {
            "code": "DPL101",
            "name": "client-in-handler",
            "count": 1,
            "fixable": True,
            "fixable_count": 1,
        }
    ]


# --- long-lived-pool rules stay silent on a per-request construction ----------------------------


def test_per_request_engine_gets_dpl101_only_until_it_is_hoisted(project: Path) -> None:
    write(project / "views.py", PER_REQUEST_ENGINE)
    codes = [f["code"] for f in check_json("views.py", extra=["--select", "DPL1,DPL2,DPL3"])]
    assert codes == ["DPL101"]
    # After the hoist the construction is long-lived and the pool rules apply to it.
    write(project / "db.py", MODULE_ENGINE.replace(", pool_size=5", ""))
    codes = [f["code"] for f in check_json("db.py", extra=["--select", "DPL2"])]
    assert "DPL205" in codes


def test_pool_rules_still_speak_when_dpl101_is_not_selected(project: Path) -> None:
    write(project / "views.py", PER_REQUEST_ENGINE)
    codes = [f["code"] for f in check_json("views.py", extra=["--select", "DPL205"])]
    assert codes == ["DPL205"]


# --- the README's pre-commit snippet ----------------------------------------------------------


def test_readme_pre_commit_rev_is_the_release_the_changelog_prepares_or_made() -> None:
    import re

    root = Path(__file__).parent.parent
    readme = (root / "README.md").read_text(encoding="utf-8")
    changelog = (root / "CHANGELOG.md").read_text(encoding="utf-8")
    (rev,) = re.findall(r"^\s*rev: (\S+)$", readme, re.MULTILINE)
    newest = re.search(r"^## (\d+\.\d+\.\d+)", changelog, re.MULTILINE)
    assert newest is not None and rev == f"v{newest.group(1)}"
    assert "## Releases" in readme and "git tag -a" in readme
