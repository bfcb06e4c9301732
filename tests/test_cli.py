"""The command line: exit codes, formats, selection, suppression and every kind of bad input."""

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pytest

from tests.conftest import check_json, run_cli

BAD_VIEW = """\
import redis
from flask import Flask

app = Flask(__name__)


@app.route("/hits")
def hits():
    client = redis.Redis(host="cache", max_connections=20)
    return str(client.incr("hits"))
"""
GOOD_VIEW = """\
import atexit

import redis
from flask import Flask

app = Flask(__name__)
client = redis.Redis(host="cache", max_connections=20)
atexit.register(client.close)


@app.route("/hits")
def hits():
    return str(client.incr("hits"))
"""


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


def write(path: Path, text: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


# --- exit codes and text output ------------------------------------------------------------


def test_clean_file_exits_zero_and_says_so(project: Path) -> None:
    write(project / "app.py", GOOD_VIEW)
    result = run_cli(["check", "app.py"])
    assert result.exit_code == 0
    assert "All checks passed!" in result.output


def test_finding_exits_one_with_ruff_style_line(project: Path) -> None:
    write(project / "app.py", BAD_VIEW)
    result = run_cli(["check", "app.py"])
    assert result.exit_code == 1
    first = result.output.splitlines()[0]
    assert first.startswith("app.py:9:14: DPL101 [*] `redis.Redis()` builds a new Redis client")
    assert "Flask view `hits`" in first
    assert "Found 1 error." in result.output


def test_exit_zero_keeps_findings_but_exits_zero(project: Path) -> None:
    write(project / "app.py", BAD_VIEW)
    result = run_cli(["check", "app.py", "--exit-zero"])
    assert result.exit_code == 0
    assert "DPL101" in result.output


def test_quiet_prints_no_summary(project: Path) -> None:
    write(project / "app.py", BAD_VIEW)
    result = run_cli(["check", "app.py", "--quiet"])
    assert "Found" not in result.output and "DPL101" in result.output


def test_default_path_is_the_current_directory(project: Path) -> None:
    write(project / "pkg" / "app.py", BAD_VIEW)
    result = run_cli(["check"])
    assert result.exit_code == 1
    assert "pkg/app.py:9:14" in result.output


def test_statistics_counts_per_rule(project: Path) -> None:
    write(project / "a.py", BAD_VIEW)
    write(project / "b.py", BAD_VIEW)
    result = run_cli(["check", ".", "--statistics"])
    # As ruff: only the counts table, no findings and no summary.
    assert result.output == "2\tDPL101\t[*] client-in-handler\n"
    assert result.exit_code == 1


def test_version() -> None:
    result = run_cli(["--version"])
    assert result.exit_code == 0 and "dbpoollint, version" in result.output


# --- selection and suppression ---------------------------------------------------------------


def test_ignore_and_select(project: Path) -> None:
    write(project / "app.py", BAD_VIEW)
    assert run_cli(["check", "app.py", "--ignore", "DPL101"]).exit_code == 0
    assert run_cli(["check", "app.py", "--select", "DPL102"]).exit_code == 0
    assert run_cli(["check", "app.py", "--select", "DPL1"]).exit_code == 1
    assert run_cli(["check", "app.py", "--select", "DPL1", "--ignore", "DPL101"]).exit_code == 0


def test_unknown_selector_is_a_usage_error(project: Path) -> None:
    write(project / "app.py", BAD_VIEW)
    result = run_cli(["check", "app.py", "--select", "E501"])
    assert result.exit_code == 2
    assert "unknown rule selector `E501`" in result.output


@pytest.mark.parametrize(
    "comment",
    ["  # noqa: DPL101", "  # noqa", "  # NOQA:DPL101,DPL102"],
    ids=["code", "bare", "list"],
)
def test_noqa_on_the_line_suppresses(project: Path, comment: str) -> None:
    line = 'client = redis.Redis(host="cache", max_connections=20)'
    source = BAD_VIEW.replace(line, line + comment)
    write(project / "app.py", source)
    assert run_cli(["check", "app.py"]).exit_code == 0


def test_noqa_for_another_code_does_not_suppress(project: Path) -> None:
    call = 'redis.Redis(host="cache", max_connections=20)'
    source = BAD_VIEW.replace(call, call + "  # noqa: DPL102")
    write(project / "app.py", source)
    assert run_cli(["check", "app.py"]).exit_code == 1


def test_file_level_noqa(project: Path) -> None:
    write(project / "app.py", "# dbpoollint: noqa\n" + BAD_VIEW)
    assert run_cli(["check", "app.py"]).exit_code == 0


def test_config_ignore_and_per_file_ignores(project: Path) -> None:
    write(project / "app.py", BAD_VIEW)
    write(project / "legacy" / "old.py", BAD_VIEW)
    write(
        project / "pyproject.toml",
        '[tool.dbpoollint]\nper-file-ignores = { "legacy/*" = ["DPL101"] }\n',
    )
    findings = check_json(".")
    assert [Path(f["filename"]).name for f in findings] == ["app.py"]


def test_config_exclude_skips_folders_but_explicit_paths_are_checked(project: Path) -> None:
    write(project / "vendored" / "app.py", BAD_VIEW)
    write(project / "pyproject.toml", '[tool.dbpoollint]\nextend-exclude = ["vendored"]\n')
    assert run_cli(["check", "."]).exit_code == 0
    assert run_cli(["check", "vendored"]).exit_code == 1
    assert run_cli(["check", "vendored/app.py", "--force-exclude"]).exit_code == 0


def test_gitignored_files_are_skipped(project: Path) -> None:
    (project / ".git").mkdir()
    write(project / ".gitignore", "generated/\n")
    write(project / "generated" / "app.py", BAD_VIEW)
    write(project / "app.py", GOOD_VIEW)
    assert run_cli(["check", "."]).exit_code == 0


def test_virtualenvs_are_skipped_by_default(project: Path) -> None:
    write(project / ".venv" / "lib" / "app.py", BAD_VIEW)
    write(project / "node_modules" / "x" / "app.py", BAD_VIEW)
    result = run_cli(["check", "."])
    assert result.exit_code == 0


def test_tests_and_conftest_are_not_per_call(project: Path) -> None:
    write(project / "tests" / "helpers.py", BAD_VIEW)
    write(project / "conftest.py", BAD_VIEW)
    assert run_cli(["check", "."]).exit_code == 0


def test_project_under_a_tests_folder_is_still_checked(tmp_path: Path) -> None:
    service = tmp_path / "tests" / "service"
    write(service / "app.py", BAD_VIEW)
    assert run_cli(["check", str(service)]).exit_code == 1


# --- output formats ---------------------------------------------------------------------------


def _ruff_json_keys(project: Path) -> tuple[set[str], set[str], set[str]]:
    """The keys ruff itself writes (finding, fix, edit), from a run on a fixable mistake."""
    source = write(project / "ruff_sample" / "sample.py", "import os\n")
    result = subprocess.run(
        [
            *(sys.executable, "-m", "ruff", "check", "--isolated", "--select", "F401"),
            *("--output-format", "json", str(source)),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    (finding,) = json.loads(result.stdout)
    return set(finding), set(finding["fix"]), set(finding["fix"]["edits"][0])


def test_json_is_a_superset_of_ruffs_schema(project: Path) -> None:
    write(project / "app.py", BAD_VIEW)
    (finding,) = check_json("app.py")
    ruff_keys, ruff_fix_keys, ruff_edit_keys = _ruff_json_keys(project)
    assert {"name", "url", "noqa_row", "cell"} <= ruff_keys <= set(finding)
    assert finding["code"] == "DPL101"
    assert finding["name"] == "client-in-handler"
    assert finding["severity"] == "error"
    assert finding["url"].endswith("/docs/rules/DPL101.md")
    assert finding["location"] == {"row": 9, "column": 14}
    assert finding["end_location"] == {"row": 9, "column": 59}
    assert finding["filename"] == str((project / "app.py").resolve())
    assert finding["noqa_row"] == 9
    assert finding["fix"]["applicability"] == "safe"
    assert finding["fix"]["message"] == "Hoist into a module-level lazy singleton"
    assert ruff_fix_keys <= set(finding["fix"])
    edit = finding["fix"]["edits"][0]
    assert ruff_edit_keys <= set(edit) == {"content", "end_location", "location"}


def test_json_of_a_clean_run_is_an_empty_array(project: Path) -> None:
    write(project / "app.py", GOOD_VIEW)
    result = run_cli(["check", "app.py", "--output-format", "json"])
    assert result.exit_code == 0 and json.loads(result.stdout) == []


def test_github_annotations(project: Path) -> None:
    write(project / "app.py", BAD_VIEW)
    result = run_cli(["check", "app.py", "--output-format", "github"])
    line = result.stdout.splitlines()[0]
    assert line.startswith("::error title=dbpoollint (DPL101),file=app.py,line=9,col=14,")
    assert "::app.py:9:14: DPL101 " in line


def test_sarif_and_junit_are_well_formed(project: Path) -> None:
    write(project / "app.py", BAD_VIEW)
    sarif = json.loads(run_cli(["check", "app.py", "--output-format", "sarif"]).stdout)
    assert sarif["runs"][0]["results"][0]["ruleId"] == "DPL101"
    junit = run_cli(["check", "app.py", "--output-format", "junit"]).stdout
    root = ElementTree.fromstring(junit.split("?>", 1)[1])
    assert root.attrib["failures"] == "1"


def test_full_format_shows_the_source_line(project: Path) -> None:
    write(project / "app.py", BAD_VIEW)
    result = run_cli(["check", "app.py", "--output-format", "full"])
    assert '   9 |     client = redis.Redis(host="cache", max_connections=20)' in result.output
    assert "^" * 25 in result.output


def test_stdin_with_filename(project: Path) -> None:
    result = run_cli(["check", "-", "--stdin-filename", "views.py"], input=BAD_VIEW)
    assert result.exit_code == 1
    assert result.output.startswith("views.py:9:14: DPL101 [*]")


# --- rules and docs ---------------------------------------------------------------------------


def test_rule_prints_docs() -> None:
    result = run_cli(["rule", "DPL101"])
    assert result.exit_code == 0
    assert "# client-in-handler (DPL101)" in result.output
    assert "## Why is this bad?" in result.output


def test_rule_by_name_and_unknown_rule() -> None:
    assert run_cli(["rule", "connection-per-request"]).exit_code == 0
    result = run_cli(["rule", "DPL999"])
    assert result.exit_code == 2 and "unknown rule `DPL999`" in result.output


def test_rules_json_lists_every_rule() -> None:
    data = json.loads(run_cli(["rules", "--output-format", "json"]).stdout)
    assert {"DPL001", "DPL002", "DPL101", "DPL102"} <= {r["code"] for r in data}


# --- bad input --------------------------------------------------------------------------------


def test_unknown_selector_is_a_usage_error_also_without_python_files(project: Path) -> None:
    write(project / "docs" / "index.md", "# docs\n")
    result = run_cli(["check", "docs", "--select", "E501"])
    assert result.exit_code == 2
    assert "unknown rule selector `E501`" in result.output


def test_missing_path(project: Path) -> None:
    result = run_cli(["check", "nope/"])
    assert result.exit_code == 2
    assert result.output.strip() == "dbpoollint: error: nope: no such file or directory"


def test_directory_without_python_files(project: Path) -> None:
    write(project / "docs" / "index.md", "# docs\n")
    result = run_cli(["check", "docs"])
    assert result.exit_code == 0
    assert "No Python files found" in result.output


def test_json_on_a_tree_without_python_files_is_an_empty_list(project: Path) -> None:
    write(project / "docs" / "index.md", "# docs\n")
    result = run_cli(["check", "docs", "--output-format", "json"])
    assert result.exit_code == 0
    assert json.loads(result.stdout) == []


def test_a_reader_that_goes_away_is_no_internal_error(project: Path) -> None:
    """`dbpoollint check | head -1`: the pipe closes before the findings are written."""
    for number in range(20):
        write(project / f"app_{number}.py", BAD_VIEW)
    process = subprocess.Popen(
        [sys.executable, "-m", "dbpoollint", "check", ".", "--no-cache"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stdout is not None and process.stderr is not None
    process.stdout.close()  # the reader is gone before the first line is written
    errors = process.stderr.read().decode()
    assert process.wait(timeout=120) in (0, 1)
    assert "internal error" not in errors
    assert "Traceback" not in errors and "BrokenPipeError" not in errors


def test_syntax_error_is_reported_and_other_files_still_checked(project: Path) -> None:
    write(project / "broken.py", "import redis\ndef f(:\n    pass\n")
    write(project / "app.py", BAD_VIEW)
    findings = check_json(".")
    codes = {(Path(f["filename"]).name, f["code"], f["location"]["row"]) for f in findings}
    assert codes == {("broken.py", "DPL001", 2), ("app.py", "DPL101", 9)}
    broken = next(f for f in findings if f["code"] == "DPL001")
    assert broken["message"].startswith("SyntaxError: ")


def test_non_utf8_file(project: Path) -> None:
    write(project / "latin.py", b"import redis\n# caf\xe9\n")
    result = run_cli(["check", "latin.py"])
    assert result.exit_code == 1
    assert "latin.py:1:1: DPL002 cannot read file: not valid utf-8" in result.output


def test_coding_cookie_is_honoured(project: Path) -> None:
    write(project / "latin.py", b"# -*- coding: latin-1 -*-\nimport redis\n# caf\xe9\n")
    assert run_cli(["check", "latin.py"]).exit_code == 0


def test_bom_file_is_checked(project: Path) -> None:
    write(project / "bom.py", b"\xef\xbb\xbf" + BAD_VIEW.encode())
    findings = check_json("bom.py")
    assert [(f["code"], f["location"]["row"]) for f in findings] == [("DPL101", 9)]


def test_unreadable_file(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = write(project / "secret.py", BAD_VIEW)
    original = Path.read_bytes

    def deny(self: Path) -> bytes:
        if self.name == target.name:
            raise PermissionError(13, "Permission denied")
        return original(self)

    monkeypatch.setattr(Path, "read_bytes", deny)
    result = run_cli(["check", "secret.py"])
    assert result.exit_code == 1
    assert "secret.py:1:1: DPL002 cannot read file: permission denied" in result.output


def test_deeply_nested_file_is_reported_not_fatal(project: Path) -> None:
    expression = "(" * 200 + "1" + ")" * 200
    chain = " + ".join(["'x'"] * 3000)
    write(project / "deep.py", f"import redis\nX = {expression}\nY = {chain}\n")
    write(project / "app.py", BAD_VIEW)
    result = run_cli(["check", "."])
    assert result.exit_code == 1
    assert "app.py:9:14: DPL101" in result.output
    assert "Traceback" not in result.output


def test_broken_pyproject(project: Path) -> None:
    write(project / "pyproject.toml", "[tool.dbpoollint\nselect = [\n")
    write(project / "app.py", GOOD_VIEW)
    result = run_cli(["check", "app.py"])
    assert result.exit_code == 2
    assert "pyproject.toml: invalid TOML" in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_unknown_config_key_suggests(project: Path) -> None:
    write(project / "pyproject.toml", '[tool.dbpoollint]\nselct = ["DPL1"]\n')
    write(project / "app.py", GOOD_VIEW)
    result = run_cli(["check", "app.py"])
    assert result.exit_code == 2
    assert "`selct`: unknown configuration key (did you mean `select`?)" in result.output


def test_wrong_config_type(project: Path) -> None:
    write(project / "dbpoollint.toml", 'ignore = "DPL101"\n')
    write(project / "app.py", GOOD_VIEW)
    result = run_cli(["check", "app.py"])
    assert result.exit_code == 2
    assert "dbpoollint.toml: `ignore`: expected a list of strings" in result.output


def test_missing_config_file(project: Path) -> None:
    write(project / "app.py", GOOD_VIEW)
    result = run_cli(["check", "app.py", "--config", "nope.toml"])
    assert result.exit_code == 2


def test_bad_user_pack_names_file_key_and_line(project: Path) -> None:
    write(
        project / "packs" / "inhouse.toml",
        '[pack]\nname = "inhouse"\nkind = "client"\n\n[[pools]]\nnames = "myapp.db.make_engine"\n',
    )
    write(project / "pyproject.toml", '[tool.dbpoollint]\npacks = ["packs/inhouse.toml"]\n')
    write(project / "app.py", GOOD_VIEW)
    result = run_cli(["check", "app.py"])
    assert result.exit_code == 2
    assert "inhouse.toml:6: invalid pack key `pools.names`: expected a list of strings" in (
        result.output
    )


def test_user_pack_makes_an_inhouse_wrapper_a_pool_constructor(project: Path) -> None:
    write(
        project / "packs" / "inhouse.toml",
        '[pack]\nname = "inhouse"\nkind = "client"\n\n'
        '[[pools]]\nnames = ["myapp.db.make_engine"]\nwhat = "engine"\n',
    )
    write(project / "pyproject.toml", '[tool.dbpoollint]\npacks = ["packs/inhouse.toml"]\n')
    write(
        project / "views.py",
        "from flask import Flask\nfrom myapp.db import make_engine\n\napp = Flask(__name__)\n\n\n"
        '@app.get("/")\ndef index():\n    engine = make_engine()\n    return "ok"\n',
    )
    findings = check_json("views.py")
    assert [(f["code"], f["location"]["row"]) for f in findings] == [("DPL101", 9)]


def test_pins_above_the_checked_path_are_read(project: Path) -> None:
    (project / ".git").mkdir()
    write(project / "pyproject.toml", '[project]\nname = "x"\ndependencies = ["redis==5.0.1"]\n')
    write(project / "src" / "app.py", 'import redis\nclient = redis.Redis(host="cache")\n')
    findings = check_json("src", extra=["--select", "DPL201"])
    assert [f["code"] for f in findings] == ["DPL201"]
    assert "redis==5.0.1 in pyproject.toml" in findings[0]["message"]


def test_init_adds_a_commented_table_and_keeps_the_rest(project: Path) -> None:
    original = '# service\n[project]\nname = "svc"  # the name\n\n[tool.ruff]\nline-length = 99\n'
    write(project / "pyproject.toml", original)
    result = run_cli(["init"])
    assert result.exit_code == 0, result.output
    text = (project / "pyproject.toml").read_text()
    assert text.startswith(original)
    assert "[tool.dbpoollint]\n# dbpoollint: database connection-pool checks." in text
    assert "[tool.dbpoollint.fix-values]" in text
    write(project / "app.py", GOOD_VIEW)
    assert run_cli(["check", "app.py", "--select", "DPL101"]).exit_code == 0  # config is valid
    again = run_cli(["init"])
    assert again.exit_code == 2 and "already has a [tool.dbpoollint] table" in again.output


def test_init_creates_pyproject_and_refuses_broken_toml(project: Path) -> None:
    assert run_cli(["init"]).exit_code == 0
    assert "[tool.dbpoollint]" in (project / "pyproject.toml").read_text()
    write(project / "broken" / "pyproject.toml", "[project\n")
    result = run_cli(["init", "--path", "broken/pyproject.toml"])
    assert result.exit_code == 2 and "invalid TOML, not changed" in result.output
    assert (project / "broken" / "pyproject.toml").read_text() == "[project\n"


def test_project_templates_are_not_checked(project: Path) -> None:
    # CKAN's contrib/cookiecutter/.../{{cookiecutter.project}}/: Jinja until rendered, so a
    # DPL001 syntax error there is noise. The same file outside the template folder is checked.
    template = 'from flask import Blueprint\n\n{{cookiecutter.name}} = Blueprint("x", __name__)\n'
    write(project / "contrib" / "{{cookiecutter.project}}" / "plugin.py", template)
    write(project / "app.py", GOOD_VIEW)
    assert check_json(".") == []
    write(project / "contrib" / "rendered" / "plugin.py", template)
    assert [f["code"] for f in check_json(".")] == ["DPL001"]
