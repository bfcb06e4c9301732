"""dynaconf settings files: which values a key can take, and from which line."""

from __future__ import annotations

from pathlib import PurePath

from dbpoollint.dynaconf_settings import DynaconfSource, env_var, file_values

TOML = """\
database_url = "postgresql://top@db/app"

[database]
url = "postgresql://nested@db/app"

[production]
database_url = "postgresql://prod@pooler/app"
"""
YAML = """\
default:
  database_url: postgresql://dev@db/app
production:
  database_url: postgresql://prod@pooler/app
"""


def _values(
    files: dict[str, str], source: DynaconfSource, keys: list[str]
) -> list[tuple[str, int, str]]:
    found = file_values(source, keys, PurePath("app"), files.get)
    return [(v.path, v.line, v.value) for v in found]


def test_without_environments_tables_are_nested_settings() -> None:
    source = DynaconfSource("APP", ("settings.toml",), environments=False)
    files = {"settings.toml": TOML}
    assert _values(files, source, ["DATABASE_URL"]) == [
        ("settings.toml", 1, "postgresql://top@db/app")
    ]
    assert _values(files, source, ["database", "url"]) == [
        ("settings.toml", 4, "postgresql://nested@db/app")
    ]


def test_with_environments_every_profile_can_be_the_one_that_runs() -> None:
    source = DynaconfSource("APP", ("settings.yaml",), environments=True)
    assert _values({"settings.yaml": YAML}, source, ["database_url"]) == [
        ("settings.yaml", 2, "postgresql://dev@db/app"),
        ("settings.yaml", 4, "postgresql://prod@pooler/app"),
    ]


def test_unknown_environments_reads_both_ways_and_json_works() -> None:
    source = DynaconfSource("APP", ("settings.json",), environments=None)
    text = '{"database_url": "postgresql://a@db/x", "production": {"database_url": "postgresql://b@p/x"}}'
    found = [v for _, _, v in _values({"settings.json": text}, source, ["database_url"])]
    assert found == ["postgresql://a@db/x", "postgresql://b@p/x"]


def test_nearest_file_wins_and_broken_files_say_nothing() -> None:
    source = DynaconfSource("APP", ("settings.toml",), environments=False)
    files = {
        "app/settings.toml": 'database_url = "postgresql://near@db/x"\n',
        "settings.toml": TOML,
    }
    assert [v for _, _, v in _values(files, source, ["database_url"])] == ["postgresql://near@db/x"]
    assert _values({"settings.toml": "database_url = [unclosed"}, source, ["database_url"]) == []


def test_env_var_names_nested_keys_with_dunder() -> None:
    assert env_var("APP", ["database", "url"]) == "APP_DATABASE__URL"
    assert env_var("", ["database_url"]) is None
