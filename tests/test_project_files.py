"""Reading compose, env, serverless files: the YAML and dotenv edge cases real projects use."""

from __future__ import annotations

from dbpoollint.compose import PortMapping, expand, read_compose
from dbpoollint.project_files import read_dotenv, read_project, read_serverless

COMPOSE = """\
x-db-env: &db-env
  DATABASE_URL: postgresql://app@pgbouncer:6432/app
  POOL_MODE: transaction

services:
  db:
    image: "postgres:${PG_VERSION:-16}"
    ports: ["127.0.0.1:5433:5432", "5432"]
  pgbouncer:
    image: edoburu/pgbouncer:latest
    environment:
      <<: *db-env
      EXTRA: >-
        folded
        value
    ports:
      - target: 5432
        published: "6432"
    volumes:
      - ./pgbouncer.ini:/etc/pgbouncer/pgbouncer.ini:ro
  api:
    build: .
    env_file:
      - ./env.supabase
      - path: ./optional.env
        required: false
    environment: {API_URL: "postgresql://app@db:5432/app", SHELL_ONLY: null}
    command: ["sh", "-c", "alembic upgrade head && uvicorn app:app"]
  worker:
    image: myapp
    env_file: worker.env
    environment:
      - DATABASE_URL=postgresql://app@$${HOST}/app
      - FROM_SHELL
"""


def test_compose_services_with_anchor_merge_flow_style_and_long_syntax() -> None:
    compose = read_compose("docker-compose.yml", COMPOSE, {})
    assert compose.error == ""
    services = {s.name: s for s in compose.services}
    assert list(services) == ["db", "pgbouncer", "api", "worker"]

    db = services["db"]
    assert (db.image, db.image_line) == ("postgres:16", 7)
    assert db.ports == (PortMapping(5433, 5432, "127.0.0.1", 8), PortMapping(None, 5432, "", 8))

    bouncer = services["pgbouncer"]
    merged = bouncer.env("POOL_MODE")
    assert merged is not None and (merged.value, merged.line) == ("transaction", 3)
    url = bouncer.env("DATABASE_URL")
    assert url is not None and url.line == 2  # the anchor's line: where the text is written
    folded = bouncer.env("EXTRA")
    assert folded is not None and folded.value == "folded value"
    assert bouncer.ports == (PortMapping(6432, 5432, "", 17),)
    assert [(m.source, m.target) for m in bouncer.mounts] == [
        ("./pgbouncer.ini", "/etc/pgbouncer/pgbouncer.ini")
    ]

    api = services["api"]
    assert api.env_files == (("./env.supabase", 24), ("./optional.env", 25))
    api_url = api.env("API_URL")
    assert api_url is not None and api_url.value == "postgresql://app@db:5432/app"
    shell_only = api.env("SHELL_ONLY")
    assert shell_only is not None and shell_only.value is None
    assert api.command == "sh -c alembic upgrade head && uvicorn app:app"
    assert api.command_line == 28

    worker = services["worker"]
    assert worker.env_files == (("worker.env", 31),)
    escaped = worker.env("DATABASE_URL")
    assert escaped is not None and escaped.value == "postgresql://app@${HOST}/app"  # `$$`
    assert escaped.line == 33
    from_shell = worker.env("FROM_SHELL")
    assert from_shell is not None and from_shell.value is None


def test_compose_interpolation_follows_compose_rules() -> None:
    known = {"SET": "yes", "EMPTY": ""}
    assert expand("${SET:-no} ${UNSET:-dflt} ${EMPTY:-dflt} ${EMPTY-dflt}", known) == (
        "yes dflt dflt "
    )
    assert expand("${UNSET} $SET $$SET ${SET:+alt} ${UNSET:+alt}", known) == (
        "${UNSET} yes $SET alt "
    )


def test_invalid_compose_yaml_is_one_line_error_not_a_traceback() -> None:
    compose = read_compose("compose.yml", "services:\n  db: [unclosed\n", {})
    assert compose.services == ()
    assert compose.error.startswith("not valid YAML (line")
    assert read_compose("compose.yml", "- just a list\n", {}).error == "no `services:` mapping"


def test_dotenv_quoting_export_multiline_and_expansion() -> None:
    text = (
        "# comment\n"
        "export HOST=db.internal\n"
        'MULTI="postgresql://app@${HOST}:6432/app\n'
        'second line"\n'
        "LITERAL='postgresql://app@${HOST}/app'  # single quotes: no expansion\n"
        "DEFAULT=postgresql://app@${MISSING:-fallback}/app\n"
        "UNKNOWN=postgresql://app:${DB_PASSWORD}@h/app\n"
        "not a binding\n"
        'AFTER="x"\n'
    )
    values = {v.key: v for v in read_dotenv(".env.production", text)}
    assert values["HOST"].line == 2 and values["HOST"].value == "db.internal"
    multi = values["MULTI"]
    assert multi.line == 3
    assert multi.value == "postgresql://app@db.internal:6432/app\nsecond line"
    assert multi.column == len('MULTI="') + 1
    assert values["LITERAL"].value == "postgresql://app@${HOST}/app"
    assert values["LITERAL"].line == 5
    assert values["DEFAULT"].value == "postgresql://app@fallback/app"
    assert values["UNKNOWN"].value == "postgresql://app:${DB_PASSWORD}@h/app"  # stays unknown
    assert values["AFTER"].line == 9


def test_serverless_and_sam_environment_with_anchor() -> None:
    text = (
        "common: &env\n"
        "  DB_URL: postgresql://c@h:6543/c\n"
        "provider:\n"
        "  environment: *env\n"
        "Resources:\n"
        "  Fn:\n"
        "    Properties:\n"
        "      Environment:\n"
        "        Variables:\n"
        "          SAM_URL: postgresql://s@h/s\n"
        "          REF: !Ref Param\n"
    )
    values = {v.key: v for v in read_serverless("serverless.yml", text)}
    assert (values["DB_URL"].value, values["DB_URL"].line) == ("postgresql://c@h:6543/c", 2)
    assert values["SAM_URL"].line == 10
    assert values["REF"].value == "Param"


def test_env_files_of_any_name_are_read_when_something_loads_them() -> None:
    files = {
        "p/config/supabase": "DATABASE_URL=postgresql://a@h:6543/a\n",
        "p/env.staging": "STAGING_URL=postgresql://b@h/b\n",
        "p/env.py": "import os\n",  # alembic's env.py is code, not an env file
    }
    plain = read_project(files)
    assert {v.key for v in plain.env} == {"STAGING_URL"}
    loaded = read_project(files, frozenset({"p/config/supabase"}))
    assert {v.key for v in loaded.env} == {"STAGING_URL", "DATABASE_URL"}
