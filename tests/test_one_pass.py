"""One walk per file: the multiplexer forwards like separate walks would, positions once."""

from __future__ import annotations

import sysconfig
from pathlib import Path

import libcst as cst
import pytest
from libcst.metadata import MetadataWrapper, PositionProvider

from dbpoollint.analysis.lifecycle import function_keys
from dbpoollint.analysis.multiplex import AncestorsVisitor, Multiplexer, visit_all
from dbpoollint.analysis.positions import StatementPositions, nested_starts
from dbpoollint.analysis.walk import children, walk
from dbpoollint.engine import analyse_file
from dbpoollint.packs import load_packs
from dbpoollint.source import python_verdict
from tests.conftest import check_json

SOURCE = """\
def outer():
    def inner():
        return call_a()
    return call_b([x for x in y])

class Box:
    def method(self):
        call_c()
"""


class Recorder(cst.CSTVisitor):
    def __init__(self, skip: type[cst.CSTNode] | None = None) -> None:
        super().__init__()
        self.skip = skip
        self.events: list[str] = []

    def on_visit(self, node: cst.CSTNode) -> bool:
        self.events.append(f"visit {type(node).__name__}")
        return not (self.skip is not None and isinstance(node, self.skip))

    def on_leave(self, original_node: cst.CSTNode) -> None:
        self.events.append(f"leave {type(original_node).__name__}")


class CallNames(cst.CSTVisitor):
    def __init__(self) -> None:
        super().__init__()
        self.names: list[str] = []

    def visit_ClassDef(self, node: cst.ClassDef) -> bool:
        return False  # skips the class body: call_c is not seen

    def visit_Call(self, node: cst.Call) -> None:
        if isinstance(node.func, cst.Name):
            self.names.append(node.func.value)


def separately(*visitors: cst.CSTVisitor) -> None:
    module = cst.parse_module(SOURCE)
    for visitor in visitors:
        module.visit(visitor)


@pytest.mark.parametrize("skip", [None, cst.FunctionDef, cst.ListComp, cst.Module])
def test_multiplexer_sees_what_separate_walks_see(skip: type[cst.CSTNode] | None) -> None:
    alone = [Recorder(skip), CallNames(), Recorder()]
    separately(*alone)
    together = [Recorder(skip), CallNames(), Recorder()]
    cst.parse_module(SOURCE).visit(Multiplexer(together))
    assert together[0].events == alone[0].events
    assert together[1].names == alone[1].names == ["call_a", "call_b"]
    assert together[2].events == alone[2].events


class LoopBodies(cst.CSTVisitor):
    def __init__(self) -> None:
        super().__init__()
        self.in_body = 0
        self.calls: list[str] = []

    def visit_For_body(self, node: cst.For) -> None:
        self.in_body += 1

    def leave_For_body(self, node: cst.For) -> None:
        self.in_body -= 1

    def visit_Call(self, node: cst.Call) -> None:
        if self.in_body and isinstance(node.func, cst.Name):
            self.calls.append(node.func.value)


def test_multiplexer_forwards_attribute_callbacks() -> None:
    source = "for x in f():\n    g()\nh()\n"
    alone = LoopBodies()
    cst.parse_module(source).visit(alone)
    together = LoopBodies()
    cst.parse_module(source).visit(Multiplexer([CallNames(), together]))
    assert together.calls == alone.calls == ["g"]


def test_positions_come_from_the_statements_that_hold_findings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Positions are computed per top-level statement, only where a fact needs one."""
    positioned: list[cst.CSTNode] = []
    original = StatementPositions._position_statement

    def counting(self: StatementPositions, statement: cst.CSTNode) -> None:
        positioned.append(statement)
        original(self, statement)

    monkeypatch.setattr(StatementPositions, "_position_statement", counting)
    monkeypatch.setattr(
        MetadataWrapper, "resolve", lambda *a: pytest.fail("whole-module metadata resolved")
    )
    source = (
        Path(__file__).parent / "fixtures/DPL301/negative_other_shutdown_hooks.py"
    ).read_bytes()
    result = analyse_file("hooks.py", source, "hooks", False, load_packs([]), force=True)
    assert result.summary is not None and result.summary.lifecycle.closes
    statements = len(cst.parse_module(source).body)
    assert 0 < len(positioned) < statements
    assert len(set(map(id, positioned))) == len(positioned)


def _corpus() -> list[Path]:
    """Real code of many shapes: this package, the fixtures, a slice of the stdlib."""
    here = Path(__file__).parent
    stdlib = sorted(Path(sysconfig.get_paths()["stdlib"]).glob("*.py"))
    return [
        *sorted((here.parent / "dbpoollint").rglob("*.py")),
        *sorted((here / "fixtures").rglob("*.py"))[::7],
        *stdlib[::10],
    ]


def _parses(path: Path) -> cst.Module | None:
    try:
        return cst.parse_module(path.read_bytes())
    except (cst.ParserSyntaxError, RecursionError):
        return None


def _walked(module: cst.Module) -> list[cst.CSTNode]:
    """Every node the multiplexed walk reaches under the module, in order."""
    seen: list[cst.CSTNode] = []

    class Noting(cst.CSTVisitor):
        def on_visit(self, node: cst.CSTNode) -> bool:
            if node is not module:
                seen.append(node)
            return True

    visit_all(module, [Noting()])
    return seen


@pytest.mark.parametrize("from_cpython", [False, True])
def test_statement_positions_equal_libcsts(from_cpython: bool) -> None:
    """Counting lines by rendering, or taking them from CPython's tree: libcst's positions."""
    checked = nested = 0
    for path in _corpus()[::3]:
        module = _parses(path)
        if module is None:
            continue
        expected = MetadataWrapper(module, unsafe_skip_copy=True).resolve(PositionProvider)
        verdict = python_verdict(str(path), module.code)
        lines = verdict.statement_lines if from_cpython else None
        assert lines is not None or not from_cpython
        starts = nested_starts(module, verdict.nested_lines) if from_cpython else {}
        owners = visit_all(module, [cst.CSTVisitor()], starts.keys())
        positions = StatementPositions(module, owners, lines, None, starts)
        nested += len(starts)
        for node in _walked(module):
            assert positions[node] == expected[node], (path, type(node).__name__)
            checked += 1
    assert checked > 10_000
    # From CPython's lines, statements inside others are positioned one at a time.
    assert (nested > 1000) is from_cpython


def test_nested_statements_render_alone() -> None:
    """A call deep in a method renders its own statement, not the class or the method."""
    source = (
        "class A:\n"
        "    def f(self):\n"
        "        if x:\n"
        "            pass\n"
        "        elif y:\n"
        "            try:\n"
        "                # note\n"
        "                z = make()\n"
        "            except E:\n"
        "                pass\n"
    )
    module = cst.parse_module(source)
    verdict = python_verdict("m.py", source)
    starts = nested_starts(module, verdict.nested_lines)
    owners = visit_all(module, [cst.CSTVisitor()], starts.keys())
    positions = StatementPositions(module, owners, verdict.statement_lines, None, starts)
    call = next(n for n in _walked(module) if isinstance(n, cst.Call))
    assert (positions[call].start.line, positions[call].start.column) == (8, 20)
    holder = owners[id(call)]
    assert isinstance(holder, cst.SimpleStatementLine) and starts[id(holder)] == (7, (" " * 4,) * 4)


@pytest.mark.parametrize(
    ("source", "lines"),
    [
        ("# head\n\nimport a\n\n\n@d\n# note\ndef f():\n    pass\nx = 1; y = 2\n", (3, 6, 10, 10)),
        ("(\n    a\n)\nb\n", (1, 4)),
        # A decorator's `@` on one line and its expression on the next; a continued line.
        ("@\\\nd\ndef f():\n    pass\n", None),
        ("x = 1 + \\\n    2\n\\\ny = 2\n", None),
    ],
)
def test_statement_lines_from_cpython(source: str, lines: tuple[int, ...] | None) -> None:
    assert python_verdict("m.py", source).statement_lines == lines


class EveryNode(cst.CSTVisitor):
    def __init__(self) -> None:
        super().__init__()
        self.nodes: list[cst.CSTNode] = []

    def on_visit(self, node: cst.CSTNode) -> bool:
        self.nodes.append(node)
        return True


# What `walk` leaves out: whitespace, comments, punctuation, operators.
TOKENS = (
    cst.BaseParenthesizableWhitespace,
    cst.TrailingWhitespace,
    cst.EmptyLine,
    cst.Newline,
    cst.Comment,
    cst.LeftParen,
    cst.RightParen,
    cst.LeftSquareBracket,
    cst.RightSquareBracket,
    cst.LeftCurlyBrace,
    cst.RightCurlyBrace,
    cst.Comma,
    cst.Dot,
    cst.Colon,
    cst.Semicolon,
    cst.AssignEqual,
    cst.Asynchronous,
    cst.ParamSlash,
    cst.BaseBinaryOp,
    cst.BaseBooleanOp,
    cst.BaseCompOp,
    cst.BaseUnaryOp,
    cst.BaseAugOp,
)


def test_walk_visits_libcsts_syntax_nodes_in_libcsts_order() -> None:
    walked_total = 0
    for path in _corpus():
        module = _parses(path)
        if module is None:
            continue
        by_libcst = EveryNode()
        module.visit(by_libcst)
        walker = EveryNode()
        walk(module, walker)
        walked = {id(node) for node in walker.nodes}
        assert [n for n in by_libcst.nodes if id(n) in walked] == walker.nodes, path
        skipped = [n for n in by_libcst.nodes if id(n) not in walked]
        assert all(isinstance(n, TOKENS) for n in skipped), (path, skipped[:3])
        assert list(children(module)) == list(module.body)
        walked_total += len(walker.nodes)
    assert walked_total > 100_000


def test_walk_forwards_attribute_callbacks_it_is_asked_for() -> None:
    source = "for x in f():\n    g()\nh()\n"
    alone = LoopBodies()
    cst.parse_module(source).visit(alone)
    together = LoopBodies()
    multiplexer = Multiplexer([CallNames(), together])
    walk(cst.parse_module(source), multiplexer, multiplexer.attribute_fields)
    assert multiplexer.attribute_fields == {("For", "body")}
    assert together.calls == alone.calls == ["g"]


def test_visit_all_runs_every_visitor_in_one_walk() -> None:
    first, second = CallNames(), CallNames()
    visit_all(cst.parse_module(SOURCE), [first, second])
    assert first.names == second.names == ["call_a", "call_b"]


def test_function_keys_follow_the_indexer_scheme() -> None:
    module = cst.parse_module(
        "def f():\n    def g(): pass\nclass C:\n    def m(self): pass\n"
        "if x:\n    def h(): pass\nelse:\n    try:\n        pass\n    except E:\n"
        "        def k(): pass\n"
    )
    assert function_keys(module) == {"f", "f.<locals>.g", "C.m", "h", "k"}


def test_shutdown_hook_defined_below_its_registration(tmp_path: Path) -> None:
    """In one walk the hook is registered before the indexer has seen its `def`.

    An async engine: DPL301 judges a sync one only with `contexts = ["process-exit"]`.
    """
    path = tmp_path / "app.py"
    path.write_text(
        "from fastapi import FastAPI\n"
        "from sqlalchemy.ext.asyncio import create_async_engine\n\n"
        'engine = create_async_engine("postgresql+asyncpg://app@db/app", pool_pre_ping=True)\n'
        "app = FastAPI()\n\n\n"
        '@app.get("/")\n'
        "def index():\n"
        "    return {}\n\n\n"
        "def create_app():\n"
        '    app.add_event_handler("shutdown", close_engine)\n\n\n'
        "async def close_engine():\n"
        "    await engine.dispose()\n"
    )
    assert [f["code"] for f in check_json(path) if f["code"] == "DPL301"] == []
    path.write_text(
        path.read_text().replace('app.add_event_handler("shutdown", close_engine)', "pass")
    )
    assert [f["code"] for f in check_json(path) if f["code"] == "DPL301"] == ["DPL301"]


class CallParents(AncestorsVisitor):
    def __init__(self) -> None:
        super().__init__()
        self.seen: list[list[str]] = []

    def visit_ClassDef(self, node: cst.ClassDef) -> bool:
        return False

    def visit_Call(self, node: cst.Call) -> None:
        self.seen.append([type(a).__name__ for a in self.ancestors])


def test_ancestors_visitors_see_the_same_ancestors_multiplexed() -> None:
    alone, together = CallParents(), CallParents()
    cst.parse_module(SOURCE).visit(alone)
    visit_all(cst.parse_module(SOURCE), [CallNames(), together, CallParents()])
    assert together.seen == alone.seen
    assert len(together.seen) == 2  # call_a and call_b; call_c is in the skipped class


def test_an_ancestors_visitor_with_its_own_on_visit_is_refused() -> None:
    class Counting(AncestorsVisitor):
        def on_visit(self, node: cst.CSTNode) -> bool:
            return super().on_visit(node)

    with pytest.raises(TypeError):
        Multiplexer([Counting()])


def test_nested_lines_from_cpython() -> None:
    source = (
        "class A:\n"
        "    x = 1; y = 2\n"
        "\n"
        "    # note\n"
        "    @property\n"
        "    def f(self):\n"
        "        return 1\n"
        "class B: pass\n"
        "class C:\n"
        "    @\\\n"
        "    d\n"
        "    def g(self): ...\n"
    )
    # B's body shares its line; C's decorator is continued: neither is known statement by
    # statement, and `g`'s body (on its header's line) is not either.
    assert python_verdict("m.py", source).nested_lines == (2, 2, 5, 7, 0, 0, 0)
    assert python_verdict("m.py", "def f():\n    x = 1\n\n    return x\n").nested_lines == (2, 4)


def test_walking_a_plain_visitor_leaves_libcsts_dependency_cache_alone() -> None:
    """libcst caches a class's dependencies on the class asked: asked of `CSTVisitor`, every
    visitor class not asked yet would seem to need no metadata at all."""

    class Later(cst.CSTVisitor):
        METADATA_DEPENDENCIES = (PositionProvider,)

    visit_all(cst.parse_module("x = 1\n"), [cst.CSTVisitor()])
    assert PositionProvider in Later.get_inherited_dependencies()
