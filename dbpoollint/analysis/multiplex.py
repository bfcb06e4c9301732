"""One traversal of a module that feeds every fact collector.

Each collector stays an ordinary `cst.CSTVisitor` (its `visit_X` / `leave_X`, its own `on_visit`,
returning False to skip a subtree). `Multiplexer` walks the tree once and forwards each node to
the collectors that are not skipping it, so the cost of libcst's traversal (child iteration,
attribute callbacks) is paid once per file instead of once per collector.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Collection, Mapping, Sequence

import libcst as cst
from libcst.metadata.base_provider import ProviderT

from dbpoollint.analysis.scopes import NamesMemo, ScopesProvider, scopes_of
from dbpoollint.analysis.walk import walk

_ATTRIBUTE_CALLBACK = re.compile(r"^(visit|leave)_([A-Za-z]+)_(\w+)$")
_VISIT = cst.CSTVisitor.on_visit
_LEAVE = cst.CSTVisitor.on_leave

Enter = Callable[[cst.CSTNode], "bool | None"]
Leave = Callable[[cst.CSTNode], None]


class AncestorsVisitor(cst.CSTVisitor):
    """A visitor that reads `self.ancestors`: the nodes from the root down to the current one.

    Walked alone it keeps the list itself. Under a `Multiplexer` it shares the multiplexer's
    list, and its `visit_X` / `leave_X` are called directly: no per-node `on_visit` of its own,
    which is what libcst's dispatch would otherwise cost on every node, for every such visitor.
    """

    def __init__(self) -> None:
        super().__init__()
        self.ancestors: list[cst.CSTNode] = []

    def on_visit(self, node: cst.CSTNode) -> bool:
        self.ancestors.append(node)
        return super().on_visit(node)

    def on_leave(self, original_node: cst.CSTNode) -> None:
        super().on_leave(original_node)
        self.ancestors.pop()


_ANCESTORS_VISIT = AncestorsVisitor.on_visit
_ANCESTORS_LEAVE = AncestorsVisitor.on_leave


class Multiplexer(cst.CSTVisitor):
    """Forward one walk to several visitors, honouring each one's "skip this subtree"."""

    def __init__(
        self, visitors: Sequence[cst.CSTVisitor], positioned: Collection[int] = frozenset()
    ) -> None:
        super().__init__()
        self.visitors = tuple(visitors)
        # Attribute callbacks (`visit_For_body`) cost a lookup per field of every node: they are
        # forwarded only to the visitors that define some.
        self._attribute_users = tuple(
            (index, visitor)
            for index, visitor in enumerate(self.visitors)
            if _attribute_fields(type(visitor))
        )
        self.attribute_fields = frozenset(
            field
            for _, visitor in self._attribute_users
            for field in _attribute_fields(type(visitor))
        )
        # visitor index -> the node whose subtree it skips (it sees that node's leave).
        self._skipping: dict[int, cst.CSTNode] = {}
        self._enter: dict[type[cst.CSTNode], tuple[tuple[int, Enter], ...]] = {}
        self._leave: dict[type[cst.CSTNode], tuple[tuple[int, Leave], ...]] = {}
        # id of every node walked -> the statement `StatementPositions` renders to position
        # it: the innermost one holding it whose id is in `positioned`, else the top-level one.
        # Keyed by id: a node's own `__hash__` is a Python call, paid on every node.
        self.owners: dict[int, cst.CSTNode] = {}
        self._positioned = positioned
        self._holders: list[cst.CSTNode] = []
        self._depth = 0
        self.ancestors: list[cst.CSTNode] = []
        for visitor in self.visitors:
            if isinstance(visitor, AncestorsVisitor):
                cls = type(visitor)
                if cls.on_visit is not _ANCESTORS_VISIT or cls.on_leave is not _ANCESTORS_LEAVE:
                    # Its own on_visit would push onto the shared list a second time.
                    raise TypeError(f"{cls.__name__} overrides on_visit or on_leave")
                visitor.ancestors = self.ancestors

    def _callbacks(self, kind: type[cst.CSTNode]) -> None:
        """Per node type, only the visitors that do something with it (looked up once)."""
        enter: list[tuple[int, Enter]] = []
        leave: list[tuple[int, Leave]] = []
        for index, visitor in enumerate(self.visitors):
            cls = type(visitor)
            shares = isinstance(visitor, AncestorsVisitor)  # its on_visit only keeps ancestors
            if cls.on_visit is not _VISIT and not shares:
                enter.append((index, visitor.on_visit))
            else:
                if _own(cls, f"visit_{kind.__name__}") is not None:
                    enter.append((index, getattr(visitor, f"visit_{kind.__name__}")))
            if cls.on_leave is not _LEAVE and not shares:
                leave.append((index, visitor.on_leave))
            else:
                if _own(cls, f"leave_{kind.__name__}") is not None:
                    leave.append((index, getattr(visitor, f"leave_{kind.__name__}")))
        self._enter[kind] = tuple(enter)
        self._leave[kind] = tuple(leave)

    def on_visit(self, node: cst.CSTNode) -> bool:
        depth = self._depth
        self._depth = depth + 1
        holders = self._holders
        if depth == 1 or id(node) in self._positioned:
            holders.append(node)
        if holders:
            self.owners[id(node)] = holders[-1]
        self.ancestors.append(node)
        kind = type(node)
        if kind not in self._enter:
            self._callbacks(kind)
        skipping = self._skipping
        for index, enter in self._enter[kind]:
            if index not in skipping and enter(node) is False:
                skipping[index] = node
        return len(skipping) < len(self.visitors)

    def on_leave(self, original_node: cst.CSTNode) -> None:
        self._depth -= 1
        skipping = self._skipping
        for index, leave in self._leave[type(original_node)]:
            if index not in skipping or skipping[index] is original_node:
                leave(original_node)
        if skipping:
            for index in [i for i, n in skipping.items() if n is original_node]:
                del skipping[index]
        self.ancestors.pop()
        if self._holders and self._holders[-1] is original_node:
            self._holders.pop()

    def on_visit_attribute(self, node: cst.CSTNode, attribute: str) -> None:
        for index, visitor in self._attribute_users:
            if index not in self._skipping:
                visitor.on_visit_attribute(node, attribute)

    def on_leave_attribute(self, original_node: cst.CSTNode, attribute: str) -> None:
        for index, visitor in self._attribute_users:
            if index not in self._skipping:
                visitor.on_leave_attribute(original_node, attribute)


def visit_subtree(node: cst.CSTNode, visitor: cst.CSTVisitor) -> None:
    """`node.visit(visitor)` for a visitor that only reads syntax nodes: the same callbacks in
    the same order, without rebuilding the subtree or descending into whitespace."""
    walk(node, visitor, _attribute_fields(type(visitor)))


@functools.cache
def _attribute_fields(cls: type) -> frozenset[tuple[str, str]]:
    """(class name, field) of every attribute callback `cls` defines (`visit_For_body`)."""
    return frozenset(
        (match.group(2), match.group(3))
        for match in map(_ATTRIBUTE_CALLBACK.match, dir(cls))
        if match is not None and _own(cls, match.group(0)) is not None
    )


@functools.cache
def _own(cls: type, name: str) -> object | None:
    """`cls.name` unless it is one of libcst's empty stubs (every visitor class has them all).
    Cached: each file's multiplexer asks again for every node type it meets."""
    method: object | None = getattr(cls, name, None)
    if method is None or getattr(method, "__module__", "").startswith("libcst."):
        return None
    return method


@functools.cache
def _dependencies(cls: type[cst.CSTVisitor]) -> frozenset[ProviderT]:
    """`cls.get_inherited_dependencies()`, without libcst's cache: it stores the answer on the
    class it was asked of, where every subclass not yet asked then finds it (asked of
    `CSTVisitor` itself, every visitor would seem to need nothing)."""
    return frozenset(
        dependency
        for base in cls.__mro__
        if issubclass(base, cst.MetadataDependent)
        for dependency in base.METADATA_DEPENDENCIES
    )


def visit_all(
    module: cst.Module,
    visitors: Sequence[cst.CSTVisitor],
    positioned: Collection[int] = frozenset(),
) -> dict[int, cst.CSTNode]:
    """Give every visitor the module's scopes, then walk the module once.

    Scopes are the only whole-module metadata the collectors use; they are handed over directly
    rather than through `MetadataWrapper.resolve`, which walks the whole module once more even
    when it has nothing left to batch. Returns the walk's `owners` (id of a node -> the
    statement that positions it; `positioned`: the ids of the nested statements that can).
    """
    metadata: dict[ProviderT, Mapping[cst.CSTNode, object]] = {}
    for visitor in visitors:
        needed = _dependencies(type(visitor))
        if set(needed) - {ScopesProvider}:
            raise ValueError(f"{type(visitor).__name__} needs metadata the analysis does not give")
        if needed and not metadata:
            metadata[ScopesProvider] = scopes_of(module)
        visitor.metadata = metadata if needed else {}
    # Collectors of one package ask about the same calls: they share what was resolved.
    memos: dict[str, NamesMemo] = {}
    for visitor in visitors:
        memo = getattr(visitor, "names_memo", None)
        if isinstance(memo, NamesMemo):
            visitor.names_memo = memos.setdefault(memo.package, memo)  # type: ignore[attr-defined]
    multiplexer = Multiplexer(visitors, positioned)
    walk(module, multiplexer, multiplexer.attribute_fields)
    return multiplexer.owners
