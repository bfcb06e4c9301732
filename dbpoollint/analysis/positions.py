"""Positions of the few nodes a summary reports, without positioning the whole module.

libcst's PositionProvider renders every node of the module with position bookkeeping: on a
typical file that costs twice the parse itself, while a summary needs the positions of a
handful of calls. A top-level statement always starts at column 0 on a line that plain code
generation can count, so positions are computed one top-level statement at a time, and only
for the statements that hold a node someone asks about.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping, Sequence

import libcst as cst
from libcst.metadata import CodeRange, PositionProvider
from libcst.metadata.position_provider import PositionProvidingCodegenState

_NEWLINE = re.compile(r"\r\n?|\n")
# Top-level statements whose own statements are positioned one by one (`member_lines`).
_BLOCK_OWNERS = (cst.ClassDef, cst.FunctionDef)


class StatementPositions(Mapping[cst.CSTNode, CodeRange]):
    """`positions[node]` as PositionProvider would give it, computed per top-level statement.

    `owners` maps every node of the module to the top-level statement (or header line) that
    holds it: the multiplexed walk records it as it goes. `original_line` maps a line of this
    module's source to the line of the file it was cut from (`slicing`): a top-level statement's
    lines are never split, so mapping each statement's first line is enough.
    """

    def __init__(
        self,
        module: cst.Module,
        owners: Mapping[cst.CSTNode, cst.CSTNode],
        statement_lines: Sequence[int] | None = None,
        original_line: Callable[[int], int] | None = None,
        member_lines: Mapping[int, Sequence[int]] | None = None,
    ) -> None:
        self._module = module
        self._owners = owners
        self._original_line = original_line
        self._first_lines, self._members = _from_statement_lines(
            module, statement_lines, member_lines or {}
        )
        if original_line is not None:
            if self._first_lines is not None:
                self._first_lines = {p: original_line(n) for p, n in self._first_lines.items()}
            self._members = {m: (original_line(n), i) for m, (n, i) in self._members.items()}
        # A class's or function's statements -> it: positioned with it when theirs are not known.
        self._class_of: dict[cst.CSTNode, cst.CSTNode] = {
            member: statement
            for statement in module.body
            if isinstance(statement, _BLOCK_OWNERS)
            and isinstance(statement.body, cst.IndentedBlock)
            for member in statement.body.body
        }
        self._provider = PositionProvider()
        self._done: set[cst.CSTNode] = set()

    def __getitem__(self, node: cst.CSTNode) -> CodeRange:
        computed = self._provider._computed
        if node not in computed:
            owner = self._owners.get(node)
            if owner is not None and owner not in self._members:
                owner = self._class_of.get(owner, owner)
            # A node no walk reached (a child kept from a skipped subtree): position them all.
            module = self._module
            for part in [owner] if owner is not None else [*module.header, *module.body]:
                if part not in self._done:
                    self._done.add(part)
                    self._position_statement(part)
        position = computed[node]
        assert isinstance(position, CodeRange)  # the codegen stores ranges, never lazy values
        return position

    def _position_statement(self, statement: cst.CSTNode) -> None:
        member = self._members.get(statement)
        state = PositionProvidingCodegenState(
            default_indent=self._module.default_indent,
            default_newline=self._module.default_newline,
            provider=self._provider,
            line=member[0] if member is not None else self._first_line(statement),
        )
        if member is not None:
            # A statement of a class or function renders after the indent of the body it is in.
            state.increase_indent(member[1])
        statement._codegen(state)

    def _first_line(self, statement: cst.CSTNode) -> int:
        """The line the statement's code (its leading blank and comment lines) starts on."""
        if self._first_lines is None:
            self._first_lines = {}
            line = 1
            module = self._module
            original = self._original_line
            for part in (*module.header, *module.body, *module.footer):
                self._first_lines[part] = line if original is None else original(line)
                code = module.code_for_node(part)
                line += code.count("\n") if "\r" not in code else len(_NEWLINE.findall(code))
        return self._first_lines[statement]

    def __iter__(self) -> Iterator[cst.CSTNode]:
        return iter(self._provider._computed)

    def __len__(self) -> int:
        return len(self._provider._computed)


def _from_statement_lines(
    module: cst.Module,
    statement_lines: Sequence[int] | None,
    member_lines: Mapping[int, Sequence[int]],
) -> tuple[dict[cst.CSTNode, int] | None, dict[cst.CSTNode, tuple[int, str]]]:
    """First lines from CPython's statement positions (`source.statement_lines`), which cost
    nothing to read, instead of rendering the module; None when the two trees disagree. Also
    the first line and indent of the statements of top-level classes whose lines are known."""
    members: dict[cst.CSTNode, tuple[int, str]] = {}
    if statement_lines is None:
        return None, members
    first_lines: dict[cst.CSTNode, int] = {}
    for number, part in enumerate(module.header, start=1):
        first_lines[part] = number
    index, previous = 0, len(module.header)
    for statement in module.body:
        if index >= len(statement_lines):
            return None, {}
        line = statement_lines[index] - len(statement.leading_lines)
        if line <= previous or (index == 0 and line != len(module.header) + 1):
            return None, {}
        first_lines[statement] = previous = line
        inner = member_lines.get(index)
        if inner is not None and isinstance(statement, _BLOCK_OWNERS):
            block = statement.body
            if isinstance(block, cst.IndentedBlock):
                known = _lines(block.body, line + 1, inner)
                indent = module.default_indent if block.indent is None else block.indent
                members.update({m: (first, indent) for m, first in (known or {}).items()})
        # `a = 1; b = 2` is one libcst statement and two of CPython's.
        index += len(statement.body) if isinstance(statement, cst.SimpleStatementLine) else 1
    if index != len(statement_lines):
        return None, {}
    return first_lines, members


def _lines(
    statements: Sequence[cst.BaseStatement], earliest: int, starts: Sequence[int]
) -> dict[cst.CSTNode, int] | None:
    """Each statement's first line from its first token's line (CPython's), less its leading
    blank and comment lines; None when they do not line up."""
    found: dict[cst.CSTNode, int] = {}
    index, previous = 0, earliest - 1
    for statement in statements:
        if index >= len(starts):
            return None
        # Every statement of a block (a line of simple ones, or a compound) has leading lines.
        line = starts[index] - len(getattr(statement, "leading_lines", ()))
        if line <= previous:
            return None
        found[statement] = previous = line
        index += len(statement.body) if isinstance(statement, cst.SimpleStatementLine) else 1
    return found if index == len(starts) else None
