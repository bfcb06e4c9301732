"""The code of expression nodes, each subtree rendered once per module.

Facts keep the code of the values they read (`Value.code`): an assignment's value, then each of
its call's arguments, then theirs. `Module.code_for_node` renders every one of those from
scratch, so a nested value is rendered once per level above it. `code_of` renders a node once,
remembers where each node inside it starts and ends in the tokens, and answers the nested
ones from that.
"""

from __future__ import annotations

import functools
import inspect
from dataclasses import dataclass, field

import libcst as cst
from libcst._nodes.internal import CodegenState

_EMPTY = cst.Module([])


@dataclass
class _Recording(CodegenState):
    """Codegen that notes each node's span of tokens."""

    open: list[int] = field(default_factory=list)
    spans: list[tuple[cst.CSTNode, int, int]] = field(default_factory=list)

    def before_codegen(self, node: cst.CSTNode) -> None:
        self.open.append(len(self.tokens))

    def after_codegen(self, node: cst.CSTNode) -> None:
        start = self.open.pop()
        # Inside an indented block a node renders with the block's indent (a statement, a
        # parenthesised line break): alone it would not.
        if not self.indent_tokens:
            self.spans.append((node, start, len(self.tokens)))


# node -> (the tokens of the render that held it, its first token, the one after its last).
_KNOWN: dict[cst.CSTNode, tuple[list[str], int, int]] = {}


def code_of(node: cst.CSTNode) -> str:
    """`cst.Module([]).code_for_node(node)`, from an earlier render of a node holding it when
    there was one. Call `forget` when the module is done."""
    plain = _plain_code(node)
    if plain is not None:
        return plain
    known = _KNOWN.get(node)
    if known is None:
        state = _Recording(
            default_indent=_EMPTY.default_indent, default_newline=_EMPTY.default_newline
        )
        node._codegen(state)
        tokens = state.tokens
        for part, start, end in state.spans:
            # A part rendered with its parent's arguments (`default_comma` for a list's
            # elements) may render otherwise alone: those are never answered from here.
            if part is node or not _renders_with_arguments(type(part)):
                _KNOWN.setdefault(part, (tokens, start, end))
        known = _KNOWN[node]
    tokens, start, end = known
    return "".join(tokens[start:end])


_LEAF_KINDS = (cst.Name, cst.SimpleString, cst.Integer, cst.Float)


def _plain_code(node: cst.CSTNode) -> str | None:
    """The code of a name, a literal or a dotted name written without parentheses or spaces
    (most of the values read), straight from the node: rendering costs a codegen per node."""
    kind = type(node)
    if kind in _LEAF_KINDS:
        return None if node.lpar else node.value  # type: ignore[attr-defined]
    if kind is cst.Attribute:
        assert isinstance(node, cst.Attribute)
        dot = node.dot
        if node.lpar or not isinstance(dot, cst.Dot) or not _tight(dot):
            return None
        left = _plain_code(node.value)
        return None if left is None else f"{left}.{node.attr.value}"
    return None


def _tight(dot: cst.Dot) -> bool:
    before, after = dot.whitespace_before, dot.whitespace_after
    return (
        type(before) is cst.SimpleWhitespace
        and not before.value
        and type(after) is cst.SimpleWhitespace
        and not after.value
    )


def forget() -> None:
    """Drop what the last module's renders remembered (and the nodes they keep alive)."""
    _KNOWN.clear()


@functools.cache
def _renders_with_arguments(kind: type[cst.CSTNode]) -> bool:
    """Whether the class's codegen takes more than the state (`default_comma=`, ...)."""
    return len(inspect.signature(kind._codegen_impl).parameters) > 2
