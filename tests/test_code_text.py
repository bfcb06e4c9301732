"""`code_of` gives what `code_for_node` gives, also for nodes answered from an outer render."""

from __future__ import annotations

import sysconfig
from pathlib import Path

import libcst as cst
from libcst._nodes.base import CSTCodegenError

from dbpoollint.analysis import code_text
from dbpoollint.analysis.walk import children


def _preorder(node: cst.CSTNode) -> list[cst.CSTNode]:
    nodes = [node]
    for child in children(node):
        nodes.extend(_preorder(child))
    return nodes


def test_code_of_equals_libcsts_rendering_outer_nodes_first() -> None:
    here = Path(__file__).parent
    stdlib = sorted(Path(sysconfig.get_paths()["stdlib"]).glob("*.py"))[::25]
    paths = [*sorted((here / "fixtures").rglob("*.py"))[::9], *stdlib]
    checked = 0
    for path in paths:
        try:
            module = cst.parse_module(path.read_bytes())
        except (cst.ParserSyntaxError, RecursionError):
            continue
        # Statements are rendered in place too: their children are then answered from them.
        for node in _preorder(module)[1:]:
            try:
                expected = cst.Module([]).code_for_node(node)
            except CSTCodegenError:  # needs its parent's arguments (an annotation)
                continue
            assert code_text.code_of(node) == expected, path
            checked += 1
        code_text.forget()
    assert checked > 15_000


def test_elements_rendered_with_their_commas_are_rendered_again_alone() -> None:
    call = cst.parse_expression("f(a, [b, c], d=e)")
    assert code_text.code_of(call) == "f(a, [b, c], d=e)"
    arg = call.args[0]
    assert code_text.code_of(arg) == cst.Module([]).code_for_node(arg)
    element = call.args[1].value.elements[0]  # type: ignore[attr-defined]
    assert code_text.code_of(element) == cst.Module([]).code_for_node(element)
    code_text.forget()
