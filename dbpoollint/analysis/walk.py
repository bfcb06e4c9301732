"""A read-only walk over libcst trees, several times cheaper than `node.visit`.

`CSTNode.visit` rebuilds every node it passes (its children are "replaced" by themselves), calls
attribute callbacks for every field, and descends into whitespace, commas and parentheses. The
analysis only reads: it needs the syntax nodes, in the order libcst visits them. That order is
read from libcst's own `_visit_and_replace_children` source (the keyword arguments of the node it
rebuilds, in evaluation order), so it follows whichever libcst is installed; a node class whose
order cannot be read falls back to libcst's own `children`.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

import libcst as cst

# Fields that hold only whitespace, comments and punctuation: no fact lives there.
_TOKEN_FIELDS = frozenset(
    {
        "asynchronous",
        "colon",
        "comma",
        "comment",
        "dot",
        "empty_lines",
        "equal",
        "first_colon",
        "first_line",
        "footer",
        "header",
        "last_line",
        "lbrace",
        "lbracket",
        "leading_lines",
        "leading_whitespace",
        "lines_after_decorators",
        "lpar",
        "newline",
        "operator",
        "posonly_ind",
        "rbrace",
        "rbracket",
        "relative",
        "rpar",
        "second_colon",
        "semicolon",
        "trailing_comma",
        "trailing_whitespace",
    }
)
_CLASS = re.compile(r"^class (\w+)\b.*?(?=^class |\Z)", re.S | re.M)
_CHILDREN_METHOD = re.compile(
    r"def _visit_and_replace_children\(.*?(?=\n    def |\n    @|\Z)", re.S
)
_VISITED_FIELD = re.compile(r'visit_\w+\(\s*self,\s*"(\w+)"')


class Walker(Protocol):
    """What `walk` drives: libcst's visitor protocol, without the rebuilding."""

    def on_visit(self, node: cst.CSTNode) -> bool: ...

    def on_leave(self, original_node: cst.CSTNode) -> None: ...

    def on_visit_attribute(self, node: cst.CSTNode, attribute: str) -> None: ...

    def on_leave_attribute(self, original_node: cst.CSTNode, attribute: str) -> None: ...


@functools.cache
def _visit_orders() -> dict[str, tuple[str, ...]]:
    """Class name -> the fields its `_visit_and_replace_children` visits, in order."""
    orders: dict[str, tuple[str, ...]] = {}
    for source in sorted((Path(cst.__file__).parent / "_nodes").glob("*.py")):
        for match in _CLASS.finditer(source.read_text(encoding="utf-8")):
            method = _CHILDREN_METHOD.search(match.group(0))
            if method is not None:
                # dict.fromkeys: a field visited in two branches (`ImportFrom.names`) once.
                orders[match.group(1)] = tuple(
                    dict.fromkeys(_VISITED_FIELD.findall(method.group(0)))
                )
    return orders


_FIELDS: dict[type[cst.CSTNode], tuple[str, ...] | None] = {}


def _fields(kind: type[cst.CSTNode]) -> tuple[str, ...] | None:
    """The syntax-bearing fields of a node class in visit order; None: ask libcst."""
    owner = kind._visit_and_replace_children.__qualname__.partition(".")[0]
    order = _visit_orders().get(owner)
    fields = None
    if order is not None and (order or owner in _LEAVES):
        fields = tuple(
            f for f in order if f not in _TOKEN_FIELDS and not f.startswith("whitespace")
        )
    _FIELDS[kind] = fields
    return fields


# Classes whose rebuild visits no field at all (`Name` visits only its parentheses, which are
# token fields; these visit nothing): an empty order is then right, not a failed read.
_LEAVES = frozenset({"BaseLeaf", "FormattedStringText", "TemplatedStringText"})


def children(node: cst.CSTNode) -> Iterator[cst.CSTNode]:
    """The node's syntax children, in the order libcst visits them."""
    fields = _fields_of(type(node))
    if fields is None:
        yield from node.children
        return
    for name in fields:
        yield from _values(getattr(node, name))


def walk(
    node: cst.CSTNode, walker: Walker, attributes: frozenset[tuple[str, str]] = frozenset()
) -> None:
    """Call `walker.on_visit` and `on_leave` on every syntax node under `node`, in order, and
    its attribute callbacks for the (class name, field) pairs in `attributes`."""
    if walker.on_visit(node):
        kind = type(node)
        fields = _fields_of(kind)
        if fields is None:
            for child in node.children:
                walk(child, walker, attributes)
        else:
            for name in fields:
                announce = bool(attributes) and (kind.__name__, name) in attributes
                if announce:
                    walker.on_visit_attribute(node, name)
                for child in _values(getattr(node, name)):
                    walk(child, walker, attributes)
                if announce:
                    walker.on_leave_attribute(node, name)
    walker.on_leave(node)


def _fields_of(kind: type[cst.CSTNode]) -> tuple[str, ...] | None:
    return _FIELDS[kind] if kind in _FIELDS else _fields(kind)


def _values(value: object) -> Iterator[cst.CSTNode]:
    # A visited field holds a node, a sequence of nodes, None or MaybeSentinel.DEFAULT; `type`
    # tests because `isinstance` against libcst's ABC-based node classes is slow.
    kind = type(value)
    if kind is tuple or kind is list:
        yield from value  # type: ignore[misc]
    elif value is not None and kind is not cst.MaybeSentinel:
        yield value  # type: ignore[misc]
