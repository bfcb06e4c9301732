"""One walk per file: the multiplexer forwards like separate walks would, positions once."""

from __future__ import annotations

from pathlib import Path

import libcst as cst
import pytest
from libcst.metadata import MetadataWrapper, PositionProvider

from dbpoollint.analysis.lifecycle import function_keys
from dbpoollint.analysis.multiplex import Multiplexer, visit_all
from dbpoollint.engine import analyse_file
from dbpoollint.packs import load_packs
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


def test_positions_are_resolved_once_per_file(monkeypatch: pytest.MonkeyPatch) -> None:
    resolved: list[object] = []
    original = MetadataWrapper.resolve

    def counting(self: MetadataWrapper, provider: type) -> object:
        if provider is PositionProvider and provider not in self._metadata:
            resolved.append(provider)
        return original(self, provider)

    monkeypatch.setattr(MetadataWrapper, "resolve", counting)
    source = (
        Path(__file__).parent / "fixtures/DPL301/negative_other_shutdown_hooks.py"
    ).read_bytes()
    result = analyse_file("hooks.py", source, "hooks", False, load_packs([]), force=True)
    assert result.summary is not None and result.summary.lifecycle.closes
    assert len(resolved) == 1


def test_visit_all_runs_every_visitor_on_one_wrapper() -> None:
    wrapper = MetadataWrapper(cst.parse_module(SOURCE), unsafe_skip_copy=True)
    first, second = CallNames(), CallNames()
    visit_all(wrapper, [first, second])
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
