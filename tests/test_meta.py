"""Every rule is documented, has fixtures both ways, and the README's table is current."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from dbpoollint.checks import ALL_RULES
from dbpoollint.checks.base import DOC_SECTIONS, Rule
from dbpoollint.docs import render_readme
from tests.conftest import FIXTURES
from tests.test_fixtures import EXPECT, fixture_files

ROOT = Path(__file__).parent.parent


def test_codes_and_names_are_unique() -> None:
    codes = [rule.code for rule in ALL_RULES]
    names = [rule.name for rule in ALL_RULES]
    assert len(set(codes)) == len(codes)
    assert len(set(names)) == len(names)
    assert all(re.fullmatch(r"DPL\d{3}", code) for code in codes)
    assert all(re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", name) for name in names)


@pytest.mark.parametrize("rule", ALL_RULES, ids=lambda r: r.code)
def test_docs_have_every_section_in_order(rule: type[Rule]) -> None:
    docs = rule.docs()
    positions = [docs.find(f"## {section}") for section in DOC_SECTIONS]
    assert -1 not in positions, f"{rule.code} docs lack a section"
    assert positions == sorted(positions)


@pytest.mark.parametrize("rule", ALL_RULES, ids=lambda r: r.code)
def test_fix_title_exactly_when_the_rule_can_fix(rule: type[Rule]) -> None:
    says_no_fix = "No fix" in rule.docs().split("## Fix safety", 1)[1].split("##", 1)[0]
    detection_only = "Detection only" in rule.docs()
    assert (rule.fix_title is None) == (says_no_fix or detection_only)


@pytest.mark.parametrize("rule", ALL_RULES, ids=lambda r: r.code)
def test_every_rule_has_positive_and_negative_fixtures(rule: type[Rule]) -> None:
    folder = FIXTURES / rule.code
    assert folder.is_dir(), f"missing {folder}"
    positive = negative = 0
    for case in folder.iterdir():
        if case.name.startswith(("_", ".")) or case.name.endswith(".fixed.py"):
            continue
        files = fixture_files(case)
        texts = [f.read_bytes().decode("utf-8", errors="replace") for f in files]
        if any(EXPECT.search(t) and rule.code in t for t in texts):
            positive += 1
        elif not any(EXPECT.search(t) for t in texts):
            negative += 1
    assert positive and negative, f"{rule.code}: {positive} positive, {negative} negative"


def test_readme_rule_table_is_current() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert render_readme(readme) == readme, "run: python -m dbpoollint.docs --write"


def test_rule_pages_are_current() -> None:
    from dbpoollint.docs import RULE_PAGES, rule_pages

    folder = ROOT / RULE_PAGES
    expected = rule_pages()
    found = {page.name: page.read_text(encoding="utf-8") for page in folder.glob("DPL*.md")}
    assert found == expected, "run: python -m dbpoollint.docs --write README.md"


def test_readme_knob_table_is_current_and_generated_from_the_packs() -> None:
    from dbpoollint.docs import KNOBS_END, KNOBS_START, knobs_table

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    table = readme.split(KNOBS_START, 1)[1].split(KNOBS_END, 1)[0].strip()
    assert table == knobs_table(), "run: python -m dbpoollint.docs --write README.md"
    for library in ("SQLAlchemy", "redis-py", "PyMongo", "asyncpg", "psycopg 3", "Django"):
        assert f"| {library} |" in table


def test_a_warm_run_never_imports_libcst(tmp_path: Path) -> None:
    """Every file cached, no codemod to run: the start-up cost of libcst is not paid."""
    (tmp_path / "pyproject.toml").write_text("")
    (tmp_path / "app.py").write_text(
        "import redis\n\n\ndef view(request):\n    return redis.Redis().get('k')\n"
    )
    probe = (
        "import sys\n"
        "from dbpoollint.cli import main\n"
        "try:\n"
        "    main(['check', 'app.py', '--exit-zero', '--quiet'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "print('libcst' in sys.modules)\n"
    )
    run = [sys.executable, "-c", probe]
    first = subprocess.run(run, cwd=tmp_path, capture_output=True, text=True, check=True)
    assert first.stdout.split()[-1] == "True"  # the cold run parses
    warm = subprocess.run(run, cwd=tmp_path, capture_output=True, text=True, check=True)
    assert warm.stdout.split()[-1] == "False", warm.stderr


def test_a_text_check_never_imports_what_only_other_commands_need(tmp_path: Path) -> None:
    """tomlkit (`init`), importlib.metadata (`rule`, SARIF), xml.etree (JUnit) and the other
    formatters cost start-up time on every pre-commit run; a text check loads none of them."""
    (tmp_path / "pyproject.toml").write_text("")
    (tmp_path / "app.py").write_text("import redis\n\nclient = redis.Redis()\n")
    heavy = ["tomlkit", "importlib.metadata", "xml.etree", "dbpoollint.output.sarif"]
    probe = (
        "import sys\n"
        "from dbpoollint.cli import main\n"
        "try:\n"
        "    main(['check', 'app.py', '--exit-zero'])\n"
        "except SystemExit:\n"
        "    pass\n"
        f"print([name for name in {heavy!r} if name in sys.modules])\n"
    )
    run = [sys.executable, "-c", probe]
    for _ in range(2):  # cold, then warm
        done = subprocess.run(run, cwd=tmp_path, capture_output=True, text=True, check=True)
        assert done.stdout.splitlines()[-1] == "[]", done.stdout + done.stderr


def test_every_fixer_has_a_title() -> None:
    from dbpoollint.fixers import FIXERS
    from dbpoollint.fixing import FIX_TITLES

    assert FIXERS.keys() == FIX_TITLES.keys()
