"""Versions, pins, knob packs and fix values: the parts of DPL201-DPL206 fixtures do not show."""

from __future__ import annotations

from pathlib import Path

import pytest

from dbpoollint.packs import PackError, load_pack, load_packs
from dbpoollint.versions import in_range, newest_allowed, parse_version, read_pins
from tests.conftest import check_json, run_cli


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        pytest.param("==7.4.1", "7.4.1", id="exact"),
        pytest.param(">=4.5,<8", "<8", id="upper-bound"),
        pytest.param("~=2.8.5", "<2.9", id="compatible"),
        pytest.param("^7.1", "<8", id="poetry-caret"),
        pytest.param("~1.4", "<1.5", id="poetry-tilde"),
        pytest.param("==4.*", "<5", id="wildcard"),
        pytest.param("<=5.0.1", "5.0.1", id="at-most"),
    ],
)
def test_newest_allowed(spec: str, expected: str) -> None:
    assert str(newest_allowed(spec)) == expected


def test_open_ranges_and_no_pin_mean_the_newest() -> None:
    assert newest_allowed(">=5") is None
    assert in_range(None, "8.0.0", "")
    assert not in_range(None, "", "8.0.0")


def test_just_below_a_version_is_below_it_and_above_the_previous_release() -> None:
    below_eight = newest_allowed("<8")
    assert in_range(below_eight, "", "8.0.0")
    assert in_range(below_eight, "7.4.1", "")
    assert not in_range(parse_version("8.0.0b1"), "8.0.0", "")


def test_lock_files_beat_requirements_beat_pyproject() -> None:
    files = {
        "p/pyproject.toml": '[project]\nname = "x"\ndependencies = ["redis>=4", "asyncpg"]\n',
        "p/requirements.txt": "-r requirements-base.txt\nredis==5.0.1\n",
        "p/requirements-base.txt": "SQLAlchemy[asyncio]==1.4.54 ; python_version >= '3.8'\n",
        "p/uv.lock": '[[package]]\nname = "redis"\nversion = "7.4.1"\n',
    }
    pins = read_pins(files)
    assert pins["redis"].spec == "==7.4.1" and pins["redis"].source == "p/uv.lock"
    assert str(pins["sqlalchemy"].version) == "1.4.54"
    assert pins["asyncpg"].version is None


def test_every_builtin_knob_cites_a_source() -> None:
    knobs = [k for p in load_packs().packs for c in p.calls for k in c.knobs]
    assert len(knobs) > 50
    assert all(k.source.startswith("https://") and k.package for k in knobs)


@pytest.mark.parametrize(
    ("knob", "problem"),
    [
        pytest.param('role = "sizes"', "expected one of", id="role"),
        pytest.param('role = "size"\nsource = "http://x"', "https://", id="source"),
        pytest.param('role = "size"\nsince = "latest"', "version", id="since"),
        pytest.param('role = "size"\nfix-setting = "pool"', "fix-setting", id="fix-setting"),
    ],
)
def test_a_bad_knob_names_file_key_and_line(tmp_path: Path, knob: str, problem: str) -> None:
    defaults = {"role": "", "source": 'source = "https://example.org"', "package": ""}
    lines = [knob]
    if "source =" not in knob:
        lines.append(defaults["source"])
    pack = tmp_path / "inhouse.toml"
    pack.write_text(
        '[pack]\nname = "inhouse"\nkind = "client"\n\n[[pools]]\nnames = ["acme.make_engine"]\n\n'
        '[[pools.knobs]]\nkeywords = ["size"]\ndefault = 5\npackage = "acme"\n'
        + "\n".join(lines)
        + "\n"
    )
    with pytest.raises(PackError) as error:
        load_pack(pack)
    message = str(error.value)
    assert f"{pack}:" in message and "pools.knobs." in message and problem in message


def test_fix_values_come_from_the_configuration(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        "[tool.dbpoollint.fix-values]\nconnect-timeout = 3\nacquire-timeout = 2.5\n"
    )
    app = tmp_path / "app.py"
    app.write_text(
        "import psycopg2\nfrom pymongo import MongoClient\n\n"
        'conn = psycopg2.connect("dbname=shop")\n'
        'client = MongoClient("mongodb://db/shop", maxPoolSize=10)\n'
    )
    result = run_cli(
        ["check", "--fix", "--unsafe-fixes", "--select", "DPL203,DPL204", str(tmp_path)]
    )
    assert result.exit_code == 0, result.output
    fixed = app.read_text()
    assert 'psycopg2.connect("dbname=shop", connect_timeout=3)' in fixed
    assert "waitQueueTimeoutMS=2500" in fixed


def test_unsafe_limit_fixes_need_the_flag(tmp_path: Path) -> None:
    app = tmp_path / "app.py"
    source = 'import psycopg2\n\nconn = psycopg2.connect("dbname=shop")\n'
    app.write_text(source)
    result = run_cli(["check", "--fix", "--select", "DPL204", str(app)])
    assert app.read_text() == source
    assert "1 unsafe fix(es) skipped" in result.output


RETRY_WITHOUT_POOL_OPTIONS = """\
from sqlalchemy import create_engine


def make_engine(config):
    try:
        engine = create_engine(config["url"], pool_size=20, pool_recycle=600)
    except TypeError:  # SQLite does not support pool_size
        engine = create_engine(config["url"])
    return engine
"""


def test_the_retry_without_pool_options_for_sqlite_is_not_judged(tmp_path: Path) -> None:
    # privacyidea's engine factories: the handler's call exists for dialects without a pool.
    module = tmp_path / "engines.py"
    module.write_text(RETRY_WITHOUT_POOL_OPTIONS)
    assert check_json(module, extra=["--select", "DPL2"]) == []
    # The same bare call outside such a handler is judged.
    module.write_text(RETRY_WITHOUT_POOL_OPTIONS.replace("except TypeError:", "finally:"))
    rows = [f["location"]["row"] for f in check_json(module, extra=["--select", "DPL205"])]
    assert rows == [8]
