"""URL parsing, pooler classification, masking, and the project-file readers."""

from __future__ import annotations

import pytest

from dbpoollint.packs import load_packs
from dbpoollint.project_files import read_project
from dbpoollint.urls import classify, mask, parse, real_password

PACKS = load_packs()


@pytest.mark.parametrize(
    ("url", "pooler"),
    [
        pytest.param(
            "postgresql://u:p@aws-0-eu-west-1.pooler.supabase.com:6543/postgres",
            "supabase-transaction",
            id="supabase-transaction",
        ),
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
