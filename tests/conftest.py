from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from dbpoollint.cli import main

FIXTURES = Path(__file__).parent / "fixtures"


def run_cli(args: Sequence[str], input: str | bytes | None = None) -> Result:
    return CliRunner().invoke(main, list(args), input=input, catch_exceptions=False)


def check_json(*paths: Path | str, extra: Sequence[str] = ()) -> list[dict[str, Any]]:
    result = run_cli(["check", *map(str, paths), "--output-format", "json", *extra])
    assert result.exit_code in (0, 1), result.output
    findings: list[dict[str, Any]] = json.loads(result.stdout)
    return findings


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()
