"""URL parsing, pooler classification, masking, and the project-file readers."""

from __future__ import annotations

from pathlib import Path

import pytest

from dbpoollint.packs import load_packs
from dbpoollint.pgbouncer_ini import is_pgbouncer_ini, read_pgbouncer_ini
from dbpoollint.pooler_evidence import PoolerEvidence, Verdict
from dbpoollint.project_files import read_project
from dbpoollint.urls import classify, mask, parse, real_password
from tests.conftest import check_json

PACKS = load_packs()


@pytest.mark.parametrize(
    ("url", "pooler"),
    [
        pytest.param(
            "postgresql://u:p@aws-0-eu-west-1.pooler.supabase.com:6543/postgres",
            "supabase-transaction-host",
            id="supabase-transaction",
        ),
        pytest.param("postgresql://u@db.internal:6543/app", "supabase-transaction", id="6543"),
        pytest.param(
            "postgresql://u@aws-0-eu-west-1.pooler.supabase.com:5432/postgres",
            "supabase-session",
            id="supabase-session",
        ),
        pytest.param("postgres://u@db:6432/app", "pgbouncer", id="pgbouncer-port"),
        pytest.param("postgresql+asyncpg://u@db/app?pgbouncer=true", "pgbouncer-param", id="param"),
        pytest.param(
            "postgresql://u@ep-cool-123-pooler.us-east-2.aws.neon.tech/app",
            "neon-pooler",
            id="neon",
        ),
        pytest.param(
            "postgresql://u@db-pg-1.ondigitalocean.com:25061/app", "digitalocean-pool", id="do"
        ),
        pytest.param(
            "postgresql://u@api.proxy-abc.eu-west-1.rds.amazonaws.com/app", "rds-proxy", id="rds"
        ),
        pytest.param("host=db port=6432 dbname=app", "pgbouncer", id="keyword-dsn"),
        pytest.param("rediss://default@db-redis.ondigitalocean.com:25061", None, id="do-redis"),
        pytest.param("postgresql://u@{host}:{port}/app", None, id="unknown-host-and-port"),
        pytest.param("postgresql://u@db.internal:5432/app", None, id="direct"),
        pytest.param("mysql://u@db:6432/app", None, id="port-needs-the-scheme"),
    ],
)
def test_classifies_poolers_by_scheme_host_port_and_params(url: str, pooler: str | None) -> None:
    parsed = parse(url)
    assert parsed is not None
    found = classify(parsed, PACKS)
    assert (found.name if found else None) == pooler


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("postgresql://u:s3cret@h:6543/db", "postgresql://u:***@h:6543/db"),
        ("postgresql://u:p@ss@h/db", "postgresql://u:***@h/db"),
        ("redis://:pw@cache:6379/0", "redis://:***@cache:6379/0"),
        ("host=h password=abc port=1", "host=h password=*** port=1"),
        ("postgresql://u@h/db", "postgresql://u@h/db"),
        ("postgresql://u.ref:/#Rp8+A9*&F@h:5432/db", "postgresql://u.ref:***@h:5432/db"),
        ("postgresql://h:5432/db?next=a@b", "postgresql://h:5432/db?next=a@b"),
    ],
)
def test_masks_passwords(text: str, masked: str) -> None:
    assert mask(text) == masked


@pytest.mark.parametrize(
    ("url", "secret"),
    [
        ("postgresql://app:Xk82-vqPz7@db.example.com/app", True),
        ("postgresql://app:changeme@db.example.com/app", False),
        ("postgresql://app:${DB_PASSWORD}@db.example.com/app", False),
        ("postgresql://app:{password}@db.example.com/app", False),
        ("postgresql://app:Xk82-vqPz7@localhost/app", False),
        ("postgresql://postgres:postgres@db/app", False),
        ("postgresql://app:PWD-YOUR@db.example.com/app", False),
    ],
)
def test_tells_real_passwords_from_placeholders(url: str, secret: bool) -> None:
    parsed = parse(url)
    assert parsed is not None
    assert real_password(parsed) is secret


def test_reads_dotenv_compose_serverless_and_alembic_ini() -> None:
    files = {
        "p/.env": 'export HOST=db.internal\nURL="postgresql://app@${HOST}:6432/app"  # note\n',
        "p/docker-compose.yml": (
            "services:\n  api:\n    ports:\n      - '6432:5432'\n    environment:\n"
            "      - A_URL=postgresql://a@${HOST}/a\n  cache:\n    environment:\n"
            "      B_URL: 'redis://cache:6379'\n"
        ),
        "p/serverless.yml": "provider:\n  environment:\n    C_URL: postgresql://c@h:6543/c\n",
        "p/alembic.ini": "[alembic]\nscript_location = %(here)s/migrations\n"
        "sqlalchemy.url = postgresql://m@h:6432/m\n",
    }
    config = read_project(files)
    values = {v.key: (v.value, v.line) for v in config.env}
    assert values["URL"] == ("postgresql://app@db.internal:6432/app", 2)
    assert values["A_URL"] == ("postgresql://a@db.internal/a", 6)
    assert values["B_URL"] == ("redis://cache:6379", 9)
    assert values["C_URL"] == ("postgresql://c@h:6543/c", 3)
    assert "6432" not in {k for k, _ in values.items()}  # a port mapping is not a variable
    (ini,) = config.alembic
    assert ini.url is not None and ini.url.value == "postgresql://m@h:6432/m"
    assert ini.url.line == 3
    assert ini.script_location == "p/migrations"


def _evidence(files: dict[str, str]) -> PoolerEvidence:
    config = read_project(files)
    return PoolerEvidence(load_packs(), config.compose, config.pgbouncer)


def _verdict(files: dict[str, str], url: str) -> Verdict:
    parsed = parse(url)
    assert parsed is not None
    return _evidence(files).verdict(parsed, "p/app.py")


COMPOSE_POSTGRES_6432 = "services:\n  db:\n    image: postgres:16\n    ports: ['6432:5432']\n"


def test_a_port_alone_is_weak_and_says_so() -> None:
    verdict = _verdict({}, "postgresql://app@db.internal:6432/app")
    assert verdict.evidence == "port"
    assert verdict.pooler is not None and "only the port says so" in verdict.pooler.title


def test_compose_postgres_image_outweighs_the_pgbouncer_port() -> None:
    files = {"p/docker-compose.yml": COMPOSE_POSTGRES_6432}
    verdict = _verdict(files, "postgresql://app@localhost:6432/app")
    assert (verdict.pooler, verdict.evidence) == (None, "compose")
    # Another host is not what compose publishes: the port stays the only (weak) evidence.
    assert _verdict(files, "postgresql://app@db.internal:6432/app").evidence == "port"


def test_compose_in_another_service_folder_says_nothing() -> None:
    files = {"other/docker-compose.yml": COMPOSE_POSTGRES_6432}
    assert _verdict(files, "postgresql://app@localhost:6432/app").evidence == "port"


def test_compose_pooler_overrules_the_port_and_the_title_says_why() -> None:
    files = {
        "p/compose.yaml": (
            "services:\n  bouncer:\n    image: bitnami/pgbouncer:latest\n"
            "    environment: {PGBOUNCER_POOL_MODE: transaction}\n    ports: ['6543:6432']\n"
        )
    }
    verdict = _verdict(files, "postgresql://app@localhost:6543/app")
    assert verdict.evidence == "compose" and verdict.pooler is not None
    assert verdict.pooler.mode == "transaction"
    assert verdict.pooler.prepared_statements == "depends"  # `latest` names no version
    assert "`PGBOUNCER_POOL_MODE=transaction` at compose.yaml:4" in verdict.pooler.title
    assert verdict.pooler.title.endswith("not Supabase Supavisor (transaction mode, port 6543)")


def test_mounted_pgbouncer_ini_decides_the_compose_service() -> None:
    files = {
        "p/docker-compose.yml": (
            "services:\n  pgbouncer:\n    image: edoburu/pgbouncer\n"
            "    environment: [POOL_MODE=session]\n    ports: ['6432:5432']\n"
            "    volumes: ['./pgbouncer/pgbouncer.ini:/etc/pgbouncer/pgbouncer.ini:ro']\n"
        ),
        "p/pgbouncer/pgbouncer.ini": "[pgbouncer]\npool_mode = transaction\n",
    }
    verdict = _verdict(files, "postgresql://app@localhost:6432/app")
    assert verdict.pooler is not None and verdict.pooler.mode == "transaction"
    assert "`pool_mode = transaction` in pgbouncer.ini:2" in verdict.pooler.title


def test_known_pooler_host_decides_without_project_files() -> None:
    verdict = _verdict({}, "postgresql://a@ep-cool-1-pooler.us-east-2.aws.neon.tech/db")
    assert verdict.evidence == "url" and verdict.pooler is not None
    assert verdict.pooler.name == "neon-pooler"


def test_reads_pgbouncer_ini_with_includes_comments_and_defaults() -> None:
    text = (
        "%include /etc/pgbouncer/extra.ini\n[databases]\n* = host=db\n"
        "[pgbouncer]\n; a comment\nlisten_addr = *\nmax_prepared_statements = 0 ; off\n"
    )
    ini = read_pgbouncer_ini("deploy/pgbouncer.ini", text)
    assert ini is not None
    assert (ini.pool_mode, ini.pool_mode_line, ini.listen_port) == ("session", 0, 6432)
    assert ini.max_prepared_statements == 0 and ini.prepared_statements == "no"
    assert ini.max_prepared_statements_line == 7
    assert read_pgbouncer_ini("pgbouncer.ini", "[databases]\na = host=b\n") is None
    assert is_pgbouncer_ini("config/pgbouncer-prod.ini") and not is_pgbouncer_ini("alembic.ini")


def test_origin_chain_names_the_parts_that_decide(tmp_path: Path) -> None:
    """A built URL's origin names where its host and port came from, not its user or database."""
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "__init__.py").write_text("")
    (tmp_path / "app" / "env.py").write_text(
        "import os\n"
        "from alembic import context\n"
        "from sqlalchemy import URL\n\n"
        'url = URL.create("postgresql", username=os.environ["DB_USER"],'
        ' host=os.environ["DB_HOST"], port=os.environ["DB_PORT"], database=os.environ["DB_NAME"])\n'
        "context.configure(url=url)\n"
    )
    (tmp_path / ".env").write_text(
        "DB_USER=postgres.abcdefgh\nDB_HOST=aws-0-eu-west-1.pooler.supabase.com\n"
        "DB_PORT=6543\nDB_NAME=postgres\n"
    )
    (finding,) = check_json(tmp_path, extra=["--select", "DPL401"])
    assert "`.env:2`, `.env:3`" in finding["message"]
    assert "`.env:1`" not in finding["message"] and "`.env:4`" not in finding["message"]
