"""Every fixture file carries its expectations inline: `# expect: DPL101` on the line concerned.

A fixture is a single file (`tests/fixtures/<CODE>/<case>.py`) or a project folder
(`tests/fixtures/<CODE>/<case>/`) checked as a whole, for cross-module cases. A file without any
`# expect:` comment asserts that nothing fires.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from dbpoollint.discovery import is_project_file
from tests.conftest import FIXTURES, check_json

# `tests/fixtures/projects/<case>/`: whole projects for the cross-module analysis, judged by
# every rule that follows calls and closes across modules.
PROJECT_RULES = ("DPL101", "DPL102", "DPL103", "DPL301", "DPL302", "DPL303")
EXPECT = re.compile(r"#\s*expect:\s*(?P<codes>DPL\d{3}(?:\s*,\s*DPL\d{3})*)")


def _cases() -> list[Path]:
    cases = []
    for rule_dir in sorted(p for p in FIXTURES.iterdir() if p.is_dir()):
        for case in sorted(rule_dir.iterdir()):
            if case.name.endswith(".fixed.py") or case.name.startswith((".", "_")):
                continue
            if case.suffix == ".py" or case.is_dir():
                cases.append(case)
    return cases


def fixture_files(case: Path) -> list[Path]:
    """A single file, or every Python and project file (.env, alembic.ini, compose, ...) of a
    project fixture: config files carry `# expect:` comments too."""
    if not case.is_dir():
        return [case]
    return sorted(
        f for f in case.rglob("*") if f.is_file() and (f.suffix == ".py" or is_project_file(f.name))
    )


def expected_findings(case: Path) -> set[tuple[str, int, str]]:
    files = fixture_files(case)
    expected = set()
    for file in files:
        if file.name.endswith(".fixed.py"):
            continue
        text = file.read_bytes().decode("utf-8", errors="replace")
        for number, line in enumerate(text.splitlines(), start=1):
            match = EXPECT.search(line)
            if match:
                for code in re.split(r"\s*,\s*", match.group("codes")):
                    expected.add((file.resolve().as_posix(), number, code))
    return expected


@pytest.mark.parametrize("case", _cases(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_fixture(case: Path) -> None:
    # A fixture folder tests its own rule (plus any code a case expects): a DPL101 fixture
    # with a module-level engine need not spell out DPL202's opinion of its pool size.
    own = set(PROJECT_RULES) if case.parent.name == "projects" else {case.parent.name}
    codes = own | {code for _, _, code in expected_findings(case)}
    findings = check_json(case, extra=["--select", ",".join(sorted(codes))])
    actual = {
        (Path(f["filename"]).resolve().as_posix(), f["location"]["row"], f["code"])
        for f in findings
    }
    expected = expected_findings(case)
    missing = sorted(expected - actual)
    unexpected = sorted(
        (Path(f["filename"]).name, f["location"]["row"], f["code"], f["message"])
        for f in findings
        if (Path(f["filename"]).resolve().as_posix(), f["location"]["row"], f["code"])
        not in expected
    )
    assert not missing and not unexpected, f"missing={missing}\nunexpected={unexpected}"
