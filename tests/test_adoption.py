"""The adoption workflow: --add-noqa, DPL009 for stale suppressions, tokenized noqa, ruff."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from dbpoollint.noqa import add_noqa, parse_suppressions, remove_codes
from tests.conftest import check_json, run_cli
from tests.test_cli import BAD_VIEW, write

MULTI_LINE = """\
import redis
from flask import Flask

app = Flask(__name__)


@app.route("/hits")
def hits():
    client = redis.Redis(  # the shared cache
        host="cache",
        max_connections=20,
    )
    other = redis.Redis(host="cache", max_connections=20)  # noqa: E501
    return str(client.incr("hits")) + str(other)
"""


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_add_noqa_silences_every_finding_and_merges_with_existing_comments(
    project: Path,
) -> None:
    write(project / "app.py", MULTI_LINE)
    assert run_cli(["check", "app.py"]).exit_code == 1
    result = run_cli(["check", "app.py", "--add-noqa"])
    assert result.exit_code == 0
    assert "Added 2 noqa directives." in result.stderr
    text = (project / "app.py").read_text()
    # On the reported line of a multi-line call, after its own comment; ruff's code kept.
    assert "    client = redis.Redis(  # the shared cache  # noqa: DPL101\n" in text
    assert '    other = redis.Redis(host="cache", max_connections=20)  # noqa: E501, DPL101\n' in (
        text
    )
    assert run_cli(["check", "app.py"]).exit_code == 0
    again = run_cli(["check", "app.py", "--add-noqa"])
    assert "Added 0 noqa directives." in again.stderr
    assert (project / "app.py").read_text() == text


def test_add_noqa_keeps_crlf_and_refuses_fix(project: Path) -> None:
    write(project / "app.py", BAD_VIEW.replace("\n", "\r\n").encode())
    assert run_cli(["check", "app.py", "--add-noqa"]).exit_code == 0
    data = (project / "app.py").read_bytes()
    assert b"max_connections=20)  # noqa: DPL101\r\n" in data
    assert b"\n" not in data.replace(b"\r\n", b"")
    result = run_cli(["check", "app.py", "--add-noqa", "--fix"])
    assert result.exit_code == 2 and "--add-noqa cannot be combined" in result.output


def test_ruff_accepts_the_comments_add_noqa_writes(project: Path) -> None:
    write(project / "app.py", MULTI_LINE.replace("  # noqa: E501", ""))
    run_cli(["check", "app.py", "--add-noqa"])
    write(project / "ruff.toml", 'lint.external = ["DPL"]\nlint.extend-select = ["RUF100"]\n')
    result = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "app.py"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "# noqa: DPL101" in (project / "app.py").read_text()


def test_unused_noqa_is_opt_in_and_names_unused_non_enabled_and_unknown_codes(
    project: Path,
) -> None:
    source = BAD_VIEW.replace(
        "max_connections=20)", "max_connections=20)  # noqa: DPL101, DPL102, DPL205, DPL777"
    )
    write(project / "app.py", source)
    assert run_cli(["check", "app.py"]).exit_code == 0
    findings = check_json("app.py", extra=["--extend-select", "DPL009"])
    assert [f["code"] for f in findings] == ["DPL009"]
    message = findings[0]["message"]
    assert "unused: `DPL102`" in message
    assert "unknown: `DPL777`" in message
    assert "DPL101" not in message  # it suppressed the finding on that line
    assert "non-enabled: `DPL205`" in message or "unused: `DPL102`, `DPL205`" in message


def test_unused_noqa_fix_removes_the_codes_then_the_comment(project: Path) -> None:
    write(
        project / "settings.py",
        "TIMEOUT = 5  # noqa: DPL101, E501\nLIMIT = 3  # noqa: DPL101 legacy\n",
    )
    result = run_cli(["check", "settings.py", "--extend-select", "DPL009", "--fix"])
    assert result.exit_code == 0, result.output
    assert (project / "settings.py").read_text() == (
        "TIMEOUT = 5  # noqa: E501\nLIMIT = 3  # legacy\n"
    )


def test_unused_noqa_in_a_file_no_rule_parses(project: Path) -> None:
    write(project / "plain.py", "X = 1  # noqa: DPL101\n")
    findings = check_json("plain.py", extra=["--select", "DPL009"])
    assert [(f["code"], f["location"]) for f in findings] == [("DPL009", {"row": 1, "column": 8})]


def test_noqa_inside_a_string_is_not_a_suppression(project: Path) -> None:
    source = BAD_VIEW.replace(
        'client = redis.Redis(host="cache", max_connections=20)',
        'client = redis.Redis(host="cache # noqa: DPL101", max_connections=20)',
    )
    write(project / "app.py", source)
    assert [f["code"] for f in check_json("app.py")] == ["DPL101"]


def test_a_finding_inside_a_multi_line_string_is_silenced_where_the_string_ends() -> None:
    text = 'x = f("""a\nb""", 1)  # noqa: DPL101\n'
    suppressions = parse_suppressions(text)
    assert suppressions.suppresses("DPL101", 1)
    added, changed = add_noqa('x = f("""a\nb""", 1)\n', {1: ["DPL101"]})
    assert added == text and changed == 1


def test_remove_codes_keeps_other_tools_codes() -> None:
    text, lines = remove_codes("x = 1  # noqa: E501, DPL101\n", {1: ["DPL101"]})
    assert text == "x = 1  # noqa: E501\n" and lines == {1}


def test_rules_json_lists_dpl009_as_opt_in() -> None:
    rules = {r["code"]: r for r in json.loads(run_cli(["rules", "--output-format", "json"]).stdout)}
    assert rules["DPL009"]["enabled_by_default"] is False


def test_the_whole_adoption_loop_ends_without_noqa(project: Path) -> None:
    write(project / "app.py", BAD_VIEW)
    run_cli(["check", ".", "--add-noqa"])
    assert run_cli(["check", ".", "--extend-select", "DPL009"]).exit_code == 0
    preview = run_cli(["fix", "app.py", "--ignore-noqa", "--diff"])
    assert preview.exit_code == 1 and "+def get_redis():" in preview.output
    run_cli(["fix", "app.py", "--ignore-noqa"])
    stale = run_cli(["check", ".", "--extend-select", "DPL009"])
    assert "DPL009" in stale.output and " DPL101 " not in stale.output
    run_cli(["check", ".", "--extend-select", "DPL009", "--fix"])
    text = (project / "app.py").read_text()
    assert "noqa" not in text and "client = get_redis()" in text
    # Nothing is left: the hoisted sync client closes with its process (DPL301 judges sync
    # clients only with `contexts = ["process-exit"]`), and no noqa is stale.
    left = check_json(".", extra=["--extend-select", "DPL009"])
    assert [f["code"] for f in left] == []
