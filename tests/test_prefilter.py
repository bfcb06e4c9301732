"""The prefilter decides the speed: files that cannot matter are never parsed."""

from __future__ import annotations

import pytest

from dbpoollint.analysis.model import ModuleSummary
from dbpoollint.engine import FileInput, FileResult, _mentioning_builders
from dbpoollint.packs import imported_tops, imports_project_code, load_packs


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        (b"import atexit\nimport os\n", False),
        (b"from test import support\nimport _testcapi\n", False),
        (b"from __future__ import annotations\nimport atexit\n", False),
        (b"from .db import engine\n", True),
        (b"from app.db import engine\n", True),
        (b"import myservice.db as db\n", True),
    ],
)
def test_imports_project_code(source: bytes, expected: bool) -> None:
    assert imports_project_code(source) is expected


def test_shutdown_hook_words_alone_do_not_trigger_a_parse() -> None:
    packs = load_packs()
    assert not packs.worth_parsing(b"import atexit\natexit.register(print)\n")
    assert packs.worth_parsing(
        b"import atexit\nfrom app.db import engine\natexit.register(engine.dispose)\n"
    )


def test_files_without_database_imports_are_not_parsed() -> None:
    packs = load_packs()
    assert not packs.worth_parsing(b"import os\n\ndef connect():\n    return os.getcwd()\n")
    assert packs.worth_parsing(b"import sqlalchemy as sa\n")
    assert packs.worth_parsing(b"from redis import asyncio as aioredis\n")


def _package_init(module: str, text: bytes) -> FileInput:
    return FileInput(f"{module.replace('.', '/')}/__init__.py", text, module, False)


def test_a_package_init_is_parsed_only_when_it_names_a_known_submodule() -> None:
    """The second pass reads `__init__` re-exports of what the join knows, through chains, and
    not every package of a large tree (the stdlib's 200 `__init__` files)."""
    parsed = ModuleSummary(path="deps/cache.py", module="deps.cache", is_test=False)
    results = [FileResult("deps/cache.py", summary=parsed)]
    deps = _package_init("deps", b"from .cache import cache_client\n")
    outer = _package_init("app", b"from .other import thing\n")
    chain = _package_init("deps.sub", b"from .cache import x\n")  # names `cache`, not its own
    top = _package_init("top", b"from .deps import cache_client\n")
    chosen = {job[0] for job in _mentioning_builders([deps, outer, chain, top], results)}
    assert chosen == {"deps/__init__.py"}
    parent = _package_init("top.deps", b"from .cache import cache_client\n")
    nested = ModuleSummary(path="top/deps/cache.py", module="top.deps.cache", is_test=False)
    results = [FileResult("top/deps/cache.py", summary=nested)]
    chosen = {job[0] for job in _mentioning_builders([parent, top], results)}
    assert chosen == {"top/deps/__init__.py", "top/__init__.py"}


@pytest.mark.parametrize(
    ("source", "tops"),
    [
        (b"import os\nimport a.b, c as d\n", {b"os", b"a", b"c"}),
        (b"    from pkg.mod import x\nif y:\n\timport z\n", {b"pkg", b"z"}),
        (b"from . import x\n", {b""}),
        # Mid-line, in a string or a comment: not an import line.
        (b"text = 'from a import b'\n# import c\nx = 1; import d\n", set()),
        (b"\xef\xbb\xbfimport sqlalchemy\n", {b"sqlalchemy"}),
    ],
)
def test_imported_tops_reads_import_lines_only(source: bytes, tops: set[bytes]) -> None:
    assert imported_tops(source) == tops


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        (b'URL = "postgresql+asyncpg://u@h/db"\n', True),
        (b'see = "https://example.com"\nURL = "redis://cache:6379/0"\n', True),
        (b'see = "https://example.com/postgresql"\n', False),
        (b"no url here\n", False),
    ],
)
def test_url_literals_are_found_next_to_their_scheme(source: bytes, expected: bool) -> None:
    assert load_packs([]).worth_parsing(source) is expected
