"""One traversal of a module that feeds every fact collector.

Each collector stays an ordinary `cst.CSTVisitor` (its `visit_X` / `leave_X`, its own `on_visit`,
returning False to skip a subtree). `Multiplexer` walks the tree once and forwards each node to
the collectors that are not skipping it, so the cost of libcst's traversal (child iteration,
attribute callbacks) is paid once per file instead of once per collector.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Sequence

import libcst as cst
from libcst.metadata import MetadataWrapper

_ATTRIBUTE_CALLBACK = re.compile(r"^(visit|leave)_[A-Za-z]+_\w+$")
_VISIT = cst.CSTVisitor.on_visit
_LEAVE = cst.CSTVisitor.on_leave

Enter = Callable[[cst.CSTNode], "bool | None"]
Leave = Callable[[cst.CSTNode], None]


class Multiplexer(cst.CSTVisitor):
    """Forward one walk to several visitors, honouring each one's "skip this subtree"."""

    def __init__(self, visitors: Sequence[cst.CSTVisitor]) -> None:
        super().__init__()
        self.visitors = tuple(visitors)
        # Attribute callbacks (`visit_For_body`) cost a lookup per field of every node: they are
        # forwarded only to the visitors that define some.
        self._attribute_users = tuple(
            (index, visitor)
            for index, visitor in enumerate(self.visitors)
            if any(
                _ATTRIBUTE_CALLBACK.match(n) and _own(type(visitor), n) is not None
                for n in dir(type(visitor))
            )
        )
        # visitor index -> the node whose subtree it skips (it sees that node's leave).
        self._skipping: dict[int, cst.CSTNode] = {}
        self._enter: dict[type[cst.CSTNode], tuple[tuple[int, Enter], ...]] = {}
        self._leave: dict[type[cst.CSTNode], tuple[tuple[int, Leave], ...]] = {}

    def _callbacks(self, kind: type[cst.CSTNode]) -> None:
        """Per node type, only the visitors that do something with it (looked up once)."""
        enter: list[tuple[int, Enter]] = []
        leave: list[tuple[int, Leave]] = []
        for index, visitor in enumerate(self.visitors):
            cls = type(visitor)
            if cls.on_visit is not _VISIT:
                enter.append((index, visitor.on_visit))
            else:
                if _own(cls, f"visit_{kind.__name__}") is not None:
                    enter.append((index, getattr(visitor, f"visit_{kind.__name__}")))
            if cls.on_leave is not _LEAVE:
                leave.append((index, visitor.on_leave))
            else:
                if _own(cls, f"leave_{kind.__name__}") is not None:
                    leave.append((index, getattr(visitor, f"leave_{kind.__name__}")))
        self._enter[kind] = tuple(enter)
        self._leave[kind] = tuple(leave)

    def on_visit(self, node: cst.CSTNode) -> bool:
        kind = type(node)
        if kind not in self._enter:
            self._callbacks(kind)
        skipping = self._skipping
        for index, enter in self._enter[kind]:
            if index not in skipping and enter(node) is False:
                skipping[index] = node
        return len(skipping) < len(self.visitors)

    def on_leave(self, original_node: cst.CSTNode) -> None:
        skipping = self._skipping
        for index, leave in self._leave[type(original_node)]:
            if index not in skipping or skipping[index] is original_node:
                leave(original_node)
        if skipping:
            for index in [i for i, n in skipping.items() if n is original_node]:
                del skipping[index]

    def on_visit_attribute(self, node: cst.CSTNode, attribute: str) -> None:
        for index, visitor in self._attribute_users:
            if index not in self._skipping:
                visitor.on_visit_attribute(node, attribute)

    def on_leave_attribute(self, original_node: cst.CSTNode, attribute: str) -> None:
        for index, visitor in self._attribute_users:
            if index not in self._skipping:
                visitor.on_leave_attribute(original_node, attribute)


def _own(cls: type, name: str) -> object | None:
    """`cls.name` unless it is one of libcst's empty stubs (every visitor class has them all)."""
    method: object | None = getattr(cls, name, None)
    if method is None or getattr(method, "__module__", "").startswith("libcst."):
        return None
    return method


def visit_all(wrapper: MetadataWrapper, visitors: Sequence[cst.CSTVisitor]) -> None:
    """Resolve every visitor's metadata on the shared wrapper, then walk the module once."""
    with contextlib.ExitStack() as stack:
        for visitor in visitors:
            stack.enter_context(visitor.resolve(wrapper))
        wrapper.module.visit(Multiplexer(visitors))
