"""Where fixes are computed: the walk plans the DPL101 hoist, so text output runs no codemod and
agrees with it; the other fixes are planned per file and cached by content."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

import dbpoollint.fixers
from dbpoollint.cache import ENV_VARIABLE
from tests.conftest import run_cli
from tests.test_cli import BAD_VIEW, write

FIXTURES = Path(__file__).parent / "fixtures" / "DPL101"
MARKED = re.compile(r"^(?P<path>[^:]+):(?P<row>\d+):(?P<column>\d+): DPL101 \[\*\]", re.M)


def _count_calls(monkeypatch: pytest.MonkeyPatch, fixer: str) -> list[int]:
    calls: list[int] = []
    original = dbpoollint.fixers.FIXERS[fixer]

    def counting(*args: Any) -> Any:
        calls.append(1)
        return original(*args)

    monkeypatch.setitem(dbpoollint.fixers.FIXERS, fixer, counting)
    return calls


def _json(arguments: Sequence[str]) -> list[dict[str, Any]]:
    result = run_cli([*arguments, "--output-format", "json", "--exit-zero"])
    found: list[dict[str, Any]] = json.loads(result.output)
    return found


def test_text_output_runs_no_hoist_and_marks_what_the_codemod_would_fix(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(FIXTURES)
    common = ["check", ".", "--no-cache", "--jobs", "1", "--select", "DPL101"]
    calls = _count_calls(monkeypatch, "hoist")
    text = run_cli([*common, "--exit-zero"]).output
    assert calls == []
    found = _json(common)
    assert calls, "JSON output carries edits, so it runs the codemod"
    safe = {
        (Path(f["filename"]).name, f["location"]["row"], f["location"]["column"])
        for f in found
        if f["fix"] and f["fix"]["applicability"] == "safe"
    }
    unsafe = sum(1 for f in found if f["fix"] and f["fix"]["applicability"] == "unsafe")
    unfixable = sum(1 for f in found if f["code"] == "DPL101" and not f["fix"])
    assert len(safe) >= 10 and unsafe >= 2 and unfixable >= 5  # the fixtures show all three
    marked = {
        (Path(m["path"]).name, int(m["row"]), int(m["column"])) for m in MARKED.finditer(text)
    }
    assert marked == safe
    assert f"({unsafe} more fixable with `--fix --unsafe-fixes`.)" in text


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(ENV_VARIABLE, raising=False)
    write(tmp_path / "pyproject.toml", "[tool.dbpoollint]\n")
    write(tmp_path / "view.py", BAD_VIEW)
    return tmp_path


def test_edits_come_from_the_cache_when_nothing_changed(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = _count_calls(monkeypatch, "hoist")
    cold = _json(["check", ".", "--jobs", "1"])
    assert calls and any(f["fix"] and f["fix"]["edits"] for f in cold)
    calls.clear()
    assert _json(["check", ".", "--jobs", "1"]) == cold
    assert calls == []
    # An edit to the file plans its fixes again.
    (project / "view.py").write_text(BAD_VIEW + "\n# edited\n")
    edited = _json(["check", ".", "--jobs", "1"])
    assert calls and [f["fix"] for f in edited] == [f["fix"] for f in cold]


def test_no_cache_always_plans(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _count_calls(monkeypatch, "hoist")
    _json(["check", ".", "--jobs", "1", "--no-cache"])
    _json(["check", ".", "--jobs", "1", "--no-cache"])
    assert len(calls) == 2
