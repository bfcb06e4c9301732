"""Run contexts: which process runs a module, and what that changes in the default rule set."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from dbpoollint.analysis.contexts import path_context
from tests.conftest import FIXTURES, check_json, run_cli


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        pytest.param("app/views.py", "", id="service-code"),
        pytest.param("scripts/backfill.py", "one-off", id="scripts"),
        pytest.param("tools/dump.py", "one-off", id="tools"),
        pytest.param("bin/run_once.py", "one-off", id="bin"),
        pytest.param("shop/migrations/0001_initial.py", "one-off", id="django-migrations"),
        pytest.param("shop/management/commands/reindex.py", "one-off", id="management-command"),
        pytest.param("manage.py", "one-off", id="manage-py"),
        pytest.param("examples/app.py", "examples", id="examples"),
        pytest.param("docs/conf.py", "examples", id="docs"),
        pytest.param("configuration_example.py", "examples", id="configuration-example"),
        pytest.param("api/versions/v2.py", "", id="versions-without-alembic"),
        pytest.param("netbox/configuration_testing.py", "examples", id="configuration-testing"),
        pytest.param("mysite/settings_test.py", "examples", id="settings-test"),
        pytest.param("mysite/test_settings.py", "examples", id="test-settings"),
        pytest.param("mysite/settings/testing.py", "examples", id="settings-package-testing"),
        pytest.param("ci_settings.py", "examples", id="ci-settings"),
        pytest.param("mysite/settings/production.py", "", id="settings-package-production"),
        pytest.param("src/settings/testmysql.py", "examples", id="settings-package-testmysql"),
        pytest.param("src/settings/ci_postgres.py", "examples", id="settings-package-ci-db"),
        pytest.param("src/settings/city.py", "", id="settings-package-city"),
        pytest.param("app/testing.py", "", id="testing-module-outside-settings"),
        pytest.param("load_testing.py", "", id="load-testing-module"),
    ],
)
def test_path_context(path: str, expected: str) -> None:
    assert path_context(Path(path)) == expected


def test_folders_count_only_below_the_named_path(tmp_path: Path) -> None:
    base = tmp_path / "examples" / "shop"
    assert path_context(base / "app.py", base) == ""
    assert path_context(base / "scripts" / "seed.py", base) == "one-off"


def test_alembic_versions_folder_next_to_env_py(tmp_path: Path) -> None:
    versions = tmp_path / "db" / "versions"
    versions.mkdir(parents=True)
    (tmp_path / "db" / "env.py").write_text("")
    assert path_context(versions / "0001_add_users.py", tmp_path) == "one-off"


def test_unknown_context_in_configuration_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[tool.dbpoollint]\ncontexts = ["scripts"]\n')
    (tmp_path / "app.py").write_text("import sqlalchemy\n")
    result = run_cli(["check", str(tmp_path)])
    assert result.exit_code == 2
    assert "`contexts`: unknown context `scripts`" in result.output


def test_implicit_pool_size_is_not_in_the_default_set() -> None:
    case = FIXTURES / "DPL202" / "sqlalchemy_engines.py"
    assert not [f for f in check_json(case) if f["code"] == "DPL202"]
    assert [f for f in check_json(case, extra=["--select", "DPL202"]) if f["code"] == "DPL202"]


SQLITE_DEFAULT = """\
from pydantic_settings import BaseSettings
from sqlalchemy import create_engine


class Settings(BaseSettings):
    database_url: str = "sqlite:///./app.db"


settings = Settings()
engine = create_engine(settings.database_url)
"""


def test_pool_size_fix_on_a_sqlite_default_engine_is_unsafe(tmp_path: Path) -> None:
    work = tmp_path / "db.py"
    work.write_text(SQLITE_DEFAULT)
    (finding,) = check_json(work, extra=["--select", "DPL202"])
    assert "not known to be a server database" in finding["message"]
    result = run_cli(["check", "--fix", "--select", "DPL202", str(work)])
    assert work.read_text() == SQLITE_DEFAULT
    assert "1 unsafe fix(es) skipped" in result.output


def test_pool_size_fix_on_a_postgres_url_is_safe(tmp_path: Path) -> None:
    work = tmp_path / "db.py"
    shutil.copy(FIXTURES / "DPL202" / "fix_sqlalchemy_pool_size.py", work)
    run_cli(["check", "--fix", "--select", "DPL202", str(work)])
    assert "pool_size=5" in work.read_text()


@pytest.mark.parametrize(
    "url",
    ["sqlite+aiosqlite:///./app.db", "duckdb:///:memory:", "gsheets://", "sqlite://"],
)
def test_non_server_dialects_have_no_pool_to_judge(tmp_path: Path, url: str) -> None:
    work = tmp_path / "db.py"
    work.write_text(
        f"from sqlalchemy.ext.asyncio import create_async_engine\n\n"
        f'engine = create_async_engine("{url}")\n'
    )
    assert check_json(work, extra=["--select", "DPL2"]) == []


def test_a_client_closed_in_its_handler_is_worded_as_a_connection_per_request() -> None:
    case = FIXTURES / "DPL101" / "client_closed_by_with_in_handler.py"
    findings = check_json(case, extra=["--select", "DPL101"])
    assert len(findings) == 2
    for finding in findings:  # the sync and the async client alike
        assert "pays the connection handshake" in finding["message"]
        assert "pile up" not in finding["message"]


RELEASED_OUTSIDE_FINALLY = """\
import psycopg2


def backfill():
    conn = psycopg2.connect("postgresql://app@db/app")
    conn.cursor().execute("update users set active = true")
    conn.close()
"""


def test_no_try_finally_rewrite_in_one_off_code(tmp_path: Path) -> None:
    script = tmp_path / "scripts" / "backfill.py"
    script.parent.mkdir()
    script.write_text(RELEASED_OUTSIDE_FINALLY)
    # A one-off script's exit closes what an exception skipped: not reported, so not
    # re-indented either (DPL302 judges its releases outside `finally:` in services only).
    assert check_json(tmp_path, extra=["--select", "DPL302"]) == []
    service = tmp_path / "app.py"
    service.write_text(RELEASED_OUTSIDE_FINALLY)
    fixes = {f["filename"]: f["fix"] for f in check_json(tmp_path, extra=["--select", "DPL302"])}
    assert fixes[str(service)] is not None
