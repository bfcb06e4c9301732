"""The prefilter decides the speed: files that cannot matter are never parsed."""

from __future__ import annotations

import pytest

from dbpoollint.packs import imports_project_code, load_packs


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
