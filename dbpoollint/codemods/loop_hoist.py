"""DPL104's fix: move `client = constructor(...)` from a loop body to just above the loop.

The rule asks only when every argument is loop-invariant. A `client.close()` (or `dispose()`)
written as a statement of the loop body moves to just after the loop, so the one client is
closed once; when the loop closes it any other way (`with client:`, in a `finally`), the
statement is left alone, because a hoisted client would be closed after the first iteration.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import libcst as cst
from libcst.metadata import CodeRange, MetadataWrapper, PositionProvider

CLOSE_METHODS = frozenset({"close", "dispose", "closeall", "aclose", "terminate", "disconnect"})


@dataclass(frozen=True)
class LoopHoist:
    call_line: int
    loop_line: int
    target: str


@dataclass
class _Plan:
    statement: cst.SimpleStatementLine
    closes: list[cst.SimpleStatementLine]


def hoist_out_of_loops(source: str, requests: Sequence[LoopHoist]) -> tuple[str, list[bool]]:
    """Apply every request it can; per request, whether it was made."""
    wrapper = MetadataWrapper(cst.parse_module(source), unsafe_skip_copy=True)
    positions = wrapper.resolve(PositionProvider)
    plans: dict[cst.CSTNode, _Plan] = {}
    made = [False] * len(requests)
    for node, where in positions.items():
        if not isinstance(node, cst.For | cst.While):
            continue
        for index, request in enumerate(requests):
            if where.start.line != request.loop_line or node in plans:
                continue
            plan = _plan(node, request, positions)
            if plan is not None:
                plans[node] = plan
                made[index] = True
    if not plans:
        return source, made
    return wrapper.module.visit(_Hoister(plans)).code, made


def _is_close_of(statement: cst.BaseStatement, target: str) -> bool:
    if not isinstance(statement, cst.SimpleStatementLine) or len(statement.body) != 1:
        return False
    expression = statement.body[0]
    if not isinstance(expression, cst.Expr):
        return False
    value = expression.value
    if isinstance(value, cst.Await):
        value = value.expression
    return (
        isinstance(value, cst.Call)
        and isinstance(value.func, cst.Attribute)
        and value.func.attr.value in CLOSE_METHODS
        and isinstance(value.func.value, cst.Name)
        and value.func.value.value == target
    )


def _plan(
    loop: cst.For | cst.While, request: LoopHoist, positions: Mapping[cst.CSTNode, CodeRange]
) -> _Plan | None:
    body = loop.body
    if not isinstance(body, cst.IndentedBlock):
        return None
    statement: cst.SimpleStatementLine | None = None
    closes: list[cst.SimpleStatementLine] = []
    for item in body.body:
        if (
            isinstance(item, cst.SimpleStatementLine)
            and positions[item].start.line == request.call_line
            and len(item.body) == 1
            and isinstance(item.body[0], cst.Assign)
        ):
            statement = item
        elif _is_close_of(item, request.target) and isinstance(item, cst.SimpleStatementLine):
            closes.append(item)
    if statement is None or _closed_elsewhere(body, request.target, closes):
        return None
    return _Plan(statement, closes)


class _CloseFinder(cst.CSTVisitor):
    def __init__(self, target: str) -> None:
        super().__init__()
        self.target = target
        self.found: list[cst.Call] = []
        self.with_target = False

    def visit_Call(self, node: cst.Call) -> None:
        func = node.func
        if (
            isinstance(func, cst.Attribute)
            and func.attr.value in CLOSE_METHODS
            and isinstance(func.value, cst.Name)
            and func.value.value == self.target
        ):
            self.found.append(node)

    def visit_WithItem(self, node: cst.WithItem) -> None:
        if isinstance(node.item, cst.Name) and node.item.value == self.target:
            self.with_target = True


def _closed_elsewhere(
    body: cst.IndentedBlock, target: str, closes: list[cst.SimpleStatementLine]
) -> bool:
    finder = _CloseFinder(target)
    body.visit(finder)
    return finder.with_target or len(finder.found) != len(closes)


class _Hoister(cst.CSTTransformer):
    def __init__(self, plans: dict[cst.CSTNode, _Plan]) -> None:
        super().__init__()
        self.plans = plans

    def _rebuild(
        self, original: cst.For | cst.While, updated: cst.For | cst.While
    ) -> cst.BaseStatement | cst.FlattenSentinel[cst.BaseStatement]:
        plan = self.plans.get(original)
        if plan is None or not isinstance(updated.body, cst.IndentedBlock):
            return updated
        original_body = original.body.body if isinstance(original.body, cst.IndentedBlock) else ()
        if len(original_body) != len(updated.body.body):
            return updated  # a nested fix changed the body; the next round does this one
        moved = {id(plan.statement), *(id(c) for c in plan.closes)}
        kept = [
            new
            for old, new in zip(original_body, updated.body.body, strict=True)
            if id(old) not in moved
        ]
        if not kept:
            kept = [cst.SimpleStatementLine([cst.Pass()])]
        hoisted = plan.statement.with_changes(
            leading_lines=(*updated.leading_lines, *plan.statement.leading_lines)
        )
        loop = updated.with_changes(leading_lines=(), body=updated.body.with_changes(body=kept))
        after = [c.with_changes(leading_lines=()) for c in plan.closes[-1:]]
        return cst.FlattenSentinel([hoisted, loop, *after])

    def leave_For(
        self, original_node: cst.For, updated_node: cst.For
    ) -> cst.BaseStatement | cst.FlattenSentinel[cst.BaseStatement]:
        return self._rebuild(original_node, updated_node)

    def leave_While(
        self, original_node: cst.While, updated_node: cst.While
    ) -> cst.BaseStatement | cst.FlattenSentinel[cst.BaseStatement]:
        return self._rebuild(original_node, updated_node)
