"""Split a one-line call that a fix pushed past the line length, the way `ruff format` does.

`ruff format` (and black) first try the arguments on one line of their own, indented one level
below the line that holds the call, with the closing bracket back at that line's indentation;
when they do not fit there either, one argument per line with a trailing comma. Only the
outermost call on its line is split (a call inside an open bracket is the formatter's business
at the level of that bracket), and a line that was already too long is left as it was.
"""

from __future__ import annotations

from collections.abc import Sequence

import libcst as cst
from libcst.metadata import MetadataWrapper, PositionProvider

DEFAULT_LINE_LENGTH = 88  # ruff's and black's default `line-length`

_EMPTY = cst.Module([])


def split_call(call: cst.Call, indent: str, line_length: int) -> cst.Call:
    """`call` with its arguments moved below it; `indent` is the indentation of its line."""

    def broken(extra: str) -> cst.ParenthesizedWhitespace:
        # Absolute indentation (`indent=False`): the call may sit on a continuation line whose
        # indentation is not the enclosing block's.
        return cst.ParenthesizedWhitespace(
            first_line=cst.TrailingWhitespace(),
            indent=False,
            last_line=cst.SimpleWhitespace(indent + extra),
        )

    flat = [
        a.with_changes(
            comma=cst.MaybeSentinel.DEFAULT, whitespace_after_arg=cst.SimpleWhitespace("")
        )
        for a in call.args
    ]
    joined = ", ".join(_EMPTY.code_for_node(a) for a in flat)
    if len(indent) + 4 + len(joined) <= line_length:
        space = cst.Comma(whitespace_after=cst.SimpleWhitespace(" "))
        args = [a.with_changes(comma=space) for a in flat[:-1]]
        args.append(flat[-1].with_changes(whitespace_after_arg=broken("")))
    else:
        args = [a.with_changes(comma=cst.Comma(whitespace_after=broken("    "))) for a in flat[:-1]]
        args.append(flat[-1].with_changes(comma=cst.Comma(whitespace_after=broken(""))))
    return call.with_changes(whitespace_before_args=broken("    "), args=args)


def outermost(prefix: str) -> bool:
    """No bracket is open before the call on its line (string literals skipped)."""
    depth = 0
    quote = ""
    index = 0
    while index < len(prefix):
        character = prefix[index]
        if quote:
            if character == "\\":
                index += 1
            elif prefix.startswith(quote, index):
                index += len(quote) - 1
                quote = ""
        elif character in "'\"":
            quote = character * 3 if prefix.startswith(character * 3, index) else character
            index += len(quote) - 1
        elif character in "([{":
            depth += 1
        elif character in ")]}":
            depth -= 1
        elif character == "#":
            return False
        index += 1
    return depth == 0 and not quote


def fit(
    original: cst.Call,
    updated: cst.Call,
    position: tuple[int, int, int],
    lines: Sequence[str],
    line_length: int,
) -> cst.Call:
    """`updated` split when the edit pushed the one-line `original` past `line_length`.

    `position` is (start line, end line, start column, 0-based) of `original`.
    """
    start, end, column = position
    if start != end or not updated.args:
        return updated
    line = lines[start - 1].rstrip("\r\n")
    grown = len(_EMPTY.code_for_node(updated)) - len(_EMPTY.code_for_node(original))
    if len(line) > line_length or len(line) + grown <= line_length:
        return updated
    if not outermost(line[:column]):
        return updated
    indent = line[: len(line) - len(line.lstrip())]
    return split_call(updated, indent, line_length)


class _SplitLong(cst.CSTTransformer):
    METADATA_DEPENDENCIES = (PositionProvider,)

    def __init__(self, lines: Sequence[str], line_length: int) -> None:
        super().__init__()
        self.lines = lines
        self.line_length = line_length

    def leave_Call(self, original_node: cst.Call, updated_node: cst.Call) -> cst.Call:
        position = self.get_metadata(PositionProvider, original_node)
        if position.start.line != position.end.line or not updated_node.args:
            return updated_node
        line = self.lines[position.start.line - 1].rstrip("\r\n")
        if len(line) <= self.line_length or not outermost(line[: position.start.column]):
            return updated_node
        indent = line[: len(line) - len(line.lstrip())]
        return split_call(updated_node, indent, self.line_length)


def split_long_lines(code: str, line_length: int = DEFAULT_LINE_LENGTH) -> str:
    """Code a fix generated (a hoisted getter) with its overlong one-line calls split."""
    lines = code.splitlines(keepends=True)
    if all(len(line.rstrip("\r\n")) <= line_length for line in lines):
        return code
    wrapper = MetadataWrapper(cst.parse_module(code), unsafe_skip_copy=True)
    return wrapper.visit(_SplitLong(lines, line_length)).code
