"""No output format, and not `--diff`, prints a password from a URL in code, `.env`,
`alembic.ini` or compose. Each case also checks the finding itself is there, masked, so a format
that printed nothing would not pass."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dbpoollint.output import FORMATTERS
from tests.conftest import run_cli

SECRETS = ("Xk82-vqPz7", "Hq7-rT2x9", "Zp3-kW8m1q", "Wd5/#nB3c8")
APP = """\
import asyncpg
from sqlalchemy import create_engine

engine = create_engine("postgresql://app:Xk82-vqPz7@db.example.com:5432/app")


async def startup(app):
    # `/` and `#` left unescaped in the password: SQLAlchemy and asyncpg still read them
    app.pool = await asyncpg.create_pool(
        "postgresql://app:Wd5/#nB3c8@aws-0-eu-west-1.pooler.supabase.com:6543/postgres"
    )
"""
FILES = {
    "app.py": APP,
    ".env": "BROKER_URL=amqp://worker:Hq7-rT2x9@rabbit.example.com:5672//\n",
    "alembic.ini": (
        "[alembic]\nscript_location = migrations\n"
        "sqlalchemy.url = postgresql://m:Zp3-kW8m1q@db.example.com/m\n"
    ),
    "docker-compose.yml": (
        "services:\n  api:\n    environment:\n"
        "      CACHE_URL: 'redis://:Hq7-rT2x9@cache.example.com:6379/0'\n"
    ),
}


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    for name, text in FILES.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    return tmp_path


def _assert_no_secret(output: str) -> None:
    leaked = [secret for secret in SECRETS if secret in output]
    assert not leaked, f"leaked {leaked} in:\n{output}"


@pytest.mark.parametrize("output_format", sorted(FORMATTERS))
def test_no_format_prints_a_url_password(project: Path, output_format: str) -> None:
    result = run_cli(
        ["check", ".", "--select", "DPL401,DPL402,DPL601", "--output-format", output_format]
    )
    assert result.exit_code == 1, result.output
    _assert_no_secret(result.output)
    for where in ("app.py", ".env", "alembic.ini", "docker-compose.yml"):
        assert where in result.output, f"{where} missing from {output_format} output"
    assert "DPL601" in result.output and "DPL402" in result.output
    assert "postgresql://app:***@db.example.com:5432/app" in result.output


def test_json_fix_edits_carry_no_url(project: Path) -> None:
    """DPL402's fix inserts the option; it does not rewrite the line holding the URL."""
    result = run_cli(["check", "app.py", "--select", "DPL402", "--output-format", "json"])
    (finding,) = json.loads(result.stdout)
    edits = finding["fix"]["edits"]
    assert edits and all("://" not in edit["content"] for edit in edits)
    assert any("statement_cache_size=0" in edit["content"] for edit in edits)


def test_diff_prints_no_url_password(project: Path) -> None:
    result = run_cli(["check", "app.py", "--select", "DPL402", "--diff"])
    assert result.exit_code == 1, result.output
    assert "statement_cache_size=0" in result.output
    _assert_no_secret(result.output)
