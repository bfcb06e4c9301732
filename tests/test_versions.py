"""Pins read with `packaging`, aliases of one package, and the nearest project's pins."""

from __future__ import annotations

from pathlib import Path

import pytest

from dbpoollint.versions import PinIndex, in_range, newest_allowed, normalise, read_pins
from tests.conftest import check_json
from tests.test_cli import write

REDIS_MODULE = 'import redis\n\nclient = redis.Redis(host="cache")\n'


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        pytest.param("~=2.8", "<3", id="compatible-two-parts"),
        pytest.param("~=2.8.5", "<2.9", id="compatible-three-parts"),
        pytest.param("!=8.0.0,<9", "<9", id="not-equal-sets-no-bound"),
        pytest.param("!=7.4.*,>=7", "None", id="not-equal-wildcard-only"),
        pytest.param(">=8.0.0rc1,<8.1", "<8.1", id="pre-release-floor"),
        pytest.param("==1!2.0", "1!2.0", id="epoch"),
        pytest.param(">=1,<2 || >=3,<4", "<4", id="poetry-alternatives"),
    ],
)
def test_specifier_sets(spec: str, expected: str) -> None:
    assert str(newest_allowed(spec)) == expected


def test_pre_releases_sort_before_their_release() -> None:
    below = newest_allowed("<8.0.0")
    assert in_range(below, "7.99", "8.0.0") and not in_range(below, "8.0.0", "")
    assert not in_range(newest_allowed("==8.0.0rc1"), "8.0.0", "")
    assert in_range(newest_allowed("==8.0.0.post1"), "8.0.0", "")


def test_requirements_with_hashes_markers_extras_and_aliases() -> None:
    files = {
        "requirements.txt": (
            "redis[hiredis]==5.0.1 \\\n"
            "    --hash=sha256:0123456789abcdef\n"
            "psycopg2-binary==2.9.9  # the wheel\n"
            "psycopg[binary,pool]>=3.1,<3.2\n"
            "asyncpg==0.27.0 ; python_version < '3.0'\n"
            "asyncpg==0.29.0 ; python_version >= '3.8'\n"
            "-e .\n"
        ),
    }
    pins = read_pins(files)
    assert str(pins["redis"].version) == "5.0.1"
    assert pins["psycopg2"].describe() == "psycopg2-binary==2.9.9 in requirements.txt"
    assert str(pins["psycopg"].version) == "<3.2"
    assert str(pins["asyncpg"].version) == "0.29.0"  # the marker that applies
    assert normalise("Psycopg2_Binary") == "psycopg2"


def test_the_nearest_project_decides_and_the_workspace_lock_fills_open_ranges() -> None:
    files = {
        "repo/uv.lock": '[[package]]\nname = "redis"\nversion = "7.4.1"\n',
        "repo/services/a/requirements.txt": "redis==8.0.0\n",
        "repo/services/b/pyproject.toml": '[project]\nname = "b"\ndependencies = ["redis>=5"]\n',
        "repo/services/c/pyproject.toml": '[project]\nname = "c"\ndependencies = ["redis>=8"]\n',
    }
    index = PinIndex.build(files)
    assert str(index.pin("redis", "repo/services/a/app.py").version) == "8.0.0"  # type: ignore[union-attr]
    assert str(index.pin("redis", "repo/services/b/app.py").version) == "7.4.1"  # type: ignore[union-attr]
    # The lock's 7.4.1 does not satisfy c's `redis>=8`: c's own range stands (the newest).
    pin = index.pin("redis", "repo/services/c/app.py")
    assert pin is not None and pin.spec == ">=8" and pin.version is None
    assert str(index.pin("redis", "repo/tools/x.py").version) == "7.4.1"  # type: ignore[union-attr]


def test_monorepo_modules_use_their_own_pins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".git").mkdir()
    write(tmp_path / "uv.lock", '[[package]]\nname = "redis"\nversion = "7.4.1"\n')
    write(tmp_path / "services" / "new" / "requirements.txt", "redis==8.0.0\n")
    write(tmp_path / "services" / "new" / "app.py", REDIS_MODULE)
    write(tmp_path / "services" / "old" / "app.py", REDIS_MODULE)
    findings = check_json(".", extra=["--select", "DPL201"])
    assert [Path(f["filename"]).parent.name for f in findings] == ["old"]
    assert "redis==7.4.1 in uv.lock" in findings[0]["message"]


def test_a_negated_gitignore_pattern_re_includes_a_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".git").mkdir()
    write(tmp_path / "requirements.txt", "redis==7.4.1\n")  # unbounded by default: DPL201
    write(tmp_path / ".gitignore", "generated/*.py\n!generated/keep.py\n")
    write(tmp_path / "generated" / "drop.py", REDIS_MODULE)
    write(tmp_path / "generated" / "keep.py", REDIS_MODULE)
    write(tmp_path / "generated" / "nested" / "deep.py", REDIS_MODULE)  # `*` stops at `/`
    write(tmp_path / "generated" / ".gitignore", "# nothing\n")
    write(tmp_path / "sub" / ".gitignore", "*.py\n!/app.py\n")
    write(tmp_path / "sub" / "app.py", REDIS_MODULE)
    write(tmp_path / "sub" / "deep" / "app.py", REDIS_MODULE)
    findings = check_json(".", extra=["--select", "DPL201"])
    names = sorted(Path(f["filename"]).relative_to(tmp_path).as_posix() for f in findings)
    # `!/app.py` in sub/.gitignore is anchored to sub/: sub/deep/app.py stays ignored.
    assert names == ["generated/keep.py", "generated/nested/deep.py", "sub/app.py"]
