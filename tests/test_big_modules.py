"""A very large module is analysed in slices (`analysis.slicing`): the summary, and so every
finding, must be what the whole module gives. Thresholds are lowered so small files slice."""

from __future__ import annotations

import ast
import dataclasses
import textwrap
from pathlib import Path

import pytest

from dbpoollint.analysis import slicing
from dbpoollint.engine import FileResult, analyse_file
from dbpoollint.packs import PackSet, load_packs
from dbpoollint.source import statement_lines
from tests.conftest import FIXTURES, check_json


@pytest.fixture(scope="module")
def packs() -> PackSet:
    return load_packs(())


def _analyse(path: Path, packs: PackSet) -> FileResult:
    return analyse_file(path.as_posix(), path.read_bytes(), path.stem, False, packs, force=True)


def _whole_and_sliced(
    path: Path, packs: PackSet, monkeypatch: pytest.MonkeyPatch, lines: int
) -> tuple[FileResult, FileResult]:
    whole = _analyse(path, packs)
    with monkeypatch.context() as patch:
        patch.setattr(slicing, "SLICE_ABOVE_LINES", 0)
        patch.setattr(slicing, "SLICE_LINES", lines)
        sliced = _analyse(path, packs)
    return whole, sliced


# Cross-slice references everywhere: imports (with aliases) only at the top, a module-level
# engine and client used by functions further down, a class long enough to span a boundary,
# names rebound further down, handlers in the middle and at the end.
MODULE = textwrap.dedent('''\
    """A service module."""
    import os
    import sqlalchemy as sa
    from redis import Redis as R
    from flask import Flask, g
    from fastapi import APIRouter

    URL = os.environ["DATABASE_URL"]
    engine = sa.create_engine(URL, pool_size=5)
    app = Flask(__name__)
    router = APIRouter()


    class Repository:
        """Spans several slices' worth of lines: it must stay whole."""

        def __init__(self) -> None:
            self.engine = sa.create_engine(URL)

        def first(self):
            return 1

        def second(self):
            with engine.connect() as conn:
                return conn.execute(sa.text("SELECT 1"))

        def third(self):
            return R(host="localhost")


    def make_client():
        return R(host=os.environ.get("REDIS_HOST", "localhost"))


    @app.route("/a")
    def view_a():
        local = sa.create_engine(URL)  # expect: DPL101
        with local.connect() as conn:
            return str(conn.execute(sa.text("SELECT 1")).all())


    @app.route("/b")
    def view_b():
        with engine.connect() as conn:
            return str(conn.execute(sa.text("SELECT 2")).all())


    @router.get("/c")
    def view_c(key: str):
        client = make_client()
        return client.get(key)


    def helper():
        g.db = sa.create_engine(URL).connect()
        return g.db


    cache = R(host="cache")


    @app.route("/d")
    def view_d():
        helper()
        return cache.get("x")


    router = APIRouter()  # rebound: reads above and below see different bindings


    @router.get("/e")
    def view_e():
        pool = Repository()
        return pool.second()


    if __name__ == "__main__":
        engine.dispose()
''')


@pytest.mark.parametrize("lines", [1, 3, 10, 40])
def test_sliced_module_summarises_as_the_whole_module(
    tmp_path: Path, packs: PackSet, monkeypatch: pytest.MonkeyPatch, lines: int
) -> None:
    path = tmp_path / "service.py"
    path.write_text(MODULE)
    whole, sliced = _whole_and_sliced(path, packs, monkeypatch, lines)
    assert whole.summary is not None and whole.summary.sites  # the module is not trivial
    assert sliced.summary == whole.summary
    assert sliced.findings == whole.findings


def test_sliced_module_gives_the_same_findings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "pyproject.toml").write_text("")
    (tmp_path / "service.py").write_text(MODULE)
    whole = check_json(tmp_path / "service.py", extra=["--no-cache", "--jobs", "1"])
    monkeypatch.setattr(slicing, "SLICE_ABOVE_LINES", 0)
    monkeypatch.setattr(slicing, "SLICE_LINES", 5)
    sliced = check_json(tmp_path / "service.py", extra=["--no-cache", "--jobs", "1"])
    assert any(f["code"] == "DPL101" for f in whole)
    assert sliced == whole


def test_slices_are_whole_top_level_statements(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(slicing, "SLICE_ABOVE_LINES", 0)
    monkeypatch.setattr(slicing, "SLICE_LINES", 3)
    planned = slicing.plan(MODULE)
    assert planned is not None
    slices, keys = planned
    assert {"Repository.__init__", "view_a", "make_client"} <= keys
    lines = MODULE.splitlines(keepends=True)
    class_start = next(i for i, line in enumerate(lines, 1) if line.startswith("class "))
    class_end = next(i for i, line in enumerate(lines, 1) if line.startswith("def make_"))
    owners = [s for s in slices if s.own_first <= class_start + 3 <= s.own_last]
    assert owners[0].own_first <= class_start and owners[0].own_last >= class_end - 3
    # Own lines partition the module, and every line of a slice is the original line.
    assert [s.own_first for s in slices[1:]] == [s.own_last + 1 for s in slices[:-1]]
    assert slices[0].own_first == 1 and slices[-1].own_last == len(lines)
    for piece in slices:
        for number, line in enumerate(piece.text.splitlines(keepends=True), 1):
            assert lines[piece.original_line(number) - 1] == line


def test_prelude_holds_only_what_the_slice_reads(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(slicing, "SLICE_ABOVE_LINES", 0)
    monkeypatch.setattr(slicing, "SLICE_LINES", 1)
    planned = slicing.plan(MODULE)
    assert planned is not None
    view_b = next(s for s in planned[0] if "def view_b" in s.text)
    assert "import sqlalchemy as sa" in view_b.text and "engine = sa.create_engine" in view_b.text
    assert "URL = os.environ" in view_b.text  # what `engine` reads comes too
    assert "from redis import" not in view_b.text and "class Repository" not in view_b.text


def test_repeated_statements_come_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """A module repeating its imports must not give each slice a prelude as long as itself."""
    part = "import logging\nlog = logging.getLogger(__name__)\n\n\ndef f{n}():\n    log.info(1)\n"
    text = "".join(part.format(n=n) for n in range(200))
    monkeypatch.setattr(slicing, "SLICE_ABOVE_LINES", 0)
    monkeypatch.setattr(slicing, "SLICE_LINES", 6)
    planned = slicing.plan(text)
    assert planned is not None
    assert max(s.text.count("\n") - (s.own_last - s.own_first + 1) for s in planned[0]) <= 2


def test_a_candidate_cut_inside_a_string_is_not_a_boundary(
    tmp_path: Path, packs: PackSet, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "queries.py"
    path.write_text(
        'import sqlalchemy\nQUERY = """\nfrom users\nimport x\nclass y\n"""\n\n\n'
        "def run():\n    return sqlalchemy.create_engine(QUERY)\n"
    )
    monkeypatch.setattr(slicing, "SLICE_ABOVE_LINES", 0)
    monkeypatch.setattr(slicing, "SLICE_LINES", 1)
    planned = slicing.plan(path.read_text())
    assert planned is not None
    assert any('QUERY = """\nfrom users\nimport x\nclass y\n"""\n' in s.text for s in planned[0])
    whole, sliced = _whole_and_sliced(path, packs, monkeypatch, 1)
    assert sliced.summary == whole.summary


def test_invalid_big_module_reports_as_a_whole(
    tmp_path: Path, packs: PackSet, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "broken.py"
    path.write_text("import os\n\n\ndef f(:\n    pass\n\n\nx = 1\n")
    whole, sliced = _whole_and_sliced(path, packs, monkeypatch, 1)
    assert whole.findings and sliced.findings == whole.findings


def _fixture_files() -> list[Path]:
    return sorted(p for p in FIXTURES.rglob("*.py") if not p.name.endswith(".fixed.py"))


def test_every_fixture_summarises_the_same_in_slices(
    packs: PackSet, monkeypatch: pytest.MonkeyPatch
) -> None:
    different = []
    for path in _fixture_files():
        whole, sliced = _whole_and_sliced(path, packs, monkeypatch, 1)
        if (sliced.summary, sliced.findings) != (whole.summary, whole.findings):
            different.append(path.relative_to(FIXTURES).as_posix())
    assert different == []


def test_module_summary_fields_are_all_merged() -> None:
    """A new summary field must be taught to `merge_slice`: this lists the ones it knows."""
    from dbpoollint.analysis.model import ModuleSummary

    assert [f.name for f in dataclasses.fields(ModuleSummary)] == [
        "path", "module", "is_test", "functions", "classes", "sites", "roots", "external_roots",
        "per_request_classes", "client_calls", "constants", "databases", "flask_sqlalchemy",
        "urls", "lifecycle", "imports", "star_imports", "exports", "process", "run_context",
        "hoist_plans", "one_off_functions", "context_markers",
    ]  # fmt: skip


@pytest.mark.parametrize("lines", [1, 7])
def test_slice_statement_lines_are_cpythons(monkeypatch: pytest.MonkeyPatch, lines: int) -> None:
    """Positions skip rendering a slice when its statements' lines are known: they must be the
    ones CPython would give for the slice's text."""
    monkeypatch.setattr(slicing, "SLICE_ABOVE_LINES", 0)
    monkeypatch.setattr(slicing, "SLICE_LINES", lines)
    planned = slicing.plan(MODULE + "a = 1; b = 2\n@app.route('/f')\ndef f(): pass\n")
    assert planned is not None
    for piece in planned[0]:
        assert piece.statement_lines is not None
        assert piece.statement_lines == statement_lines(ast.parse(piece.text), piece.text)
