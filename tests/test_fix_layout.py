"""Fixes a maintainer would merge: the goldens pass ruff's import, style and format checks
after the fix whenever the input passed them."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from dbpoollint.codemods.line_split import outermost, split_long_lines
from tests.conftest import FIXTURES

LAYOUT_GOLDENS = [
    FIXTURES / "DPL205" / "fix_layout_commented_call.fixed.py",
    FIXTURES / "DPL205" / "fix_layout_one_argument_per_line.fixed.py",
    FIXTURES / "DPL205" / "fix_layout_single_quoted_dict.fixed.py",
    FIXTURES / "DPL301" / "fix_atexit_import_into_sorted_block_unsafe.fixed.py",
]
EVERY_GOLDEN = sorted(FIXTURES.glob("*/fix_*.fixed.py"))


def _ruff_passes(path: Path, case: Path) -> bool:
    """`ruff check --select I,E,W` and `ruff format --check` on `path`, a copy of fixture
    `case`, with ruff's defaults (a single-quoted fixture is checked with
    `quote-style = "single"`, its project's style)."""
    options = ["--isolated", "--no-cache"]
    if "single_quoted" in case.name:
        options += ["--config", "format.quote-style = 'single'"]
    lint = [sys.executable, "-m", "ruff", "check", *options, "--select", "I,E,W", str(path)]
    formatting = [sys.executable, "-m", "ruff", "format", *options, "--check", str(path)]
    return all(
        subprocess.run(command, capture_output=True, cwd=path.parent).returncode == 0
        for command in (lint, formatting)
    )


@pytest.mark.parametrize("golden", LAYOUT_GOLDENS, ids=lambda p: p.name.removesuffix(".fixed.py"))
def test_layout_golden_inputs_pass_ruff(golden: Path, tmp_path: Path) -> None:
    # These inputs are written to pass, so that the test below has something to prove.
    case = golden.with_name(golden.name.replace(".fixed.py", ".py"))
    work = tmp_path / "module.py"
    shutil.copy(case, work)
    assert _ruff_passes(work, case), f"{case.name} should pass ruff before the fix"


@pytest.mark.parametrize("golden", EVERY_GOLDEN, ids=lambda p: p.name.removesuffix(".fixed.py"))
def test_fixed_output_passes_ruff_when_the_input_did(golden: Path, tmp_path: Path) -> None:
    case = golden.with_name(golden.name.replace(".fixed.py", ".py"))
    before, after = tmp_path / "before" / "module.py", tmp_path / "after" / "module.py"
    for source, target in ((case, before), (golden, after)):
        target.parent.mkdir()
        shutil.copy(source, target)
    if golden.read_text() == case.read_text() or not _ruff_passes(before, case):
        pytest.skip("the input does not pass ruff, or the fix changes nothing")
    assert _ruff_passes(after, case), f"{golden.name} fails ruff where {case.name} passed"


# --- splitting a call a fix pushed past the line length ----------------------------------------


@pytest.mark.parametrize(
    ("prefix", "expected"),
    [
        pytest.param("engine = ", True, id="assignment"),
        pytest.param('    "replica": ', True, id="dict-value-after-a-string-key"),
        pytest.param("    'a(': ", True, id="bracket-inside-a-string"),
        pytest.param("    run(", False, id="inside-an-open-call"),
        pytest.param('    x = "unterminated ', False, id="inside-a-string"),
    ],
)
def test_only_the_outermost_call_on_its_line_is_split(prefix: str, expected: bool) -> None:
    assert outermost(prefix) is expected


def test_a_generated_line_past_the_length_is_split_as_ruff_format_would() -> None:
    code = (
        "async def get_pool():\n"
        "    if _pool is None:\n"
        '        _pool = await asyncpg.create_pool(dsn=os.environ["DATABASE_URL"], max_size=5)\n'
    )
    assert split_long_lines(code) == code  # 86 characters: fits ruff's default of 88
    assert split_long_lines(code, 60) == (
        "async def get_pool():\n"
        "    if _pool is None:\n"
        "        _pool = await asyncpg.create_pool(\n"
        '            dsn=os.environ["DATABASE_URL"], max_size=5\n'
        "        )\n"
    )
    assert split_long_lines(code, 50) == (
        "async def get_pool():\n"
        "    if _pool is None:\n"
        "        _pool = await asyncpg.create_pool(\n"
        '            dsn=os.environ["DATABASE_URL"],\n'
        "            max_size=5,\n"
        "        )\n"
    )
