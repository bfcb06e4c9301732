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


class StatementPositions(Mapping[cst.CSTNode, CodeRange]):
    """`positions[node]` as PositionProvider would give it, computed one statement at a time.

    `owners` maps the id of every node the walk reached to the statement that holds it: the
    top-level statement, or the innermost statement inside it whose first line and indent
    `nested` knows (`nested_starts`). `original_line` maps a line of this module's source to
    the line of the file it was cut from (`slicing`): a top-level statement's lines are never
    split, so mapping each statement's first line is enough.
    """

    def __init__(
        self,
        module: cst.Module,
        owners: Mapping[int, cst.CSTNode],
        statement_lines: Sequence[int] | None = None,
        original_line: Callable[[int], int] | None = None,
        nested: Mapping[int, NestedStart] | None = None,
    ) -> None:
        self._module = module
        self._owners = owners
        self._original_line = original_line
        self._first_lines = _from_statement_lines(module, statement_lines)
        self._nested = dict(nested or {})
        if original_line is not None:
            if self._first_lines is not None:
                self._first_lines = {p: original_line(n) for p, n in self._first_lines.items()}
            self._nested = {k: (original_line(n), i) for k, (n, i) in self._nested.items()}
        self._provider = PositionProvider()
        self._done: set[int] = set()

    def __getitem__(self, node: cst.CSTNode) -> CodeRange:
        computed = self._provider._computed
        if node not in computed:
            owner = self._owners.get(id(node))
            # A node no walk reached (a child kept from a skipped subtree): position them all.
            module = self._module
            for part in [owner] if owner is not None else [*module.header, *module.body]:
                if id(part) not in self._done:
                    self._done.add(id(part))
                    self._position_statement(part)
        position = computed[node]
        assert isinstance(position, CodeRange)  # the codegen stores ranges, never lazy values
        return position

    def _position_statement(self, statement: cst.CSTNode) -> None:
        nested = self._nested.get(id(statement))
        state = PositionProvidingCodegenState(
            default_indent=self._module.default_indent,
            default_newline=self._module.default_newline,
            provider=self._provider,
            line=nested[0] if nested is not None else self._first_line(statement),
        )
        for indent in nested[1] if nested is not None else ():
            # A statement inside a block renders after the indents of the blocks it is in.
            state.increase_indent(indent)
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
    module: cst.Module, statement_lines: Sequence[int] | None
) -> dict[cst.CSTNode, int] | None:
    """First lines from CPython's statement positions (`source.statement_lines`), which cost
    nothing to read, instead of rendering the module; None when the two trees disagree."""
    if statement_lines is None:
        return None
    first_lines: dict[cst.CSTNode, int] = {}
    for number, part in enumerate(module.header, start=1):
        first_lines[part] = number
    index, previous = 0, len(module.header)
    for statement in module.body:
        if index >= len(statement_lines):
            return None
        line = statement_lines[index] - len(statement.leading_lines)
        if line <= previous or (index == 0 and line != len(module.header) + 1):
            return None
        first_lines[statement] = previous = line
        # `a = 1; b = 2` is one libcst statement and two of CPython's.
        index += len(statement.body) if isinstance(statement, cst.SimpleStatementLine) else 1
    if index != len(statement_lines):
        return None
    return first_lines


# A statement's first line (its leading blank and comment lines included) and the indents of
# the blocks it is in, outermost first.
NestedStart = tuple[int, tuple[str, ...]]


def nested_starts(module: cst.Module, lines: Sequence[int]) -> dict[int, NestedStart]:
    """id -> `NestedStart` of every statement inside a compound statement whose start CPython
    knows, from `source.nested_lines` (read in the same order); {} when the trees disagree."""
    found: dict[int, NestedStart] = {}
    position = 0
    default = module.default_indent

    def statements(block: Sequence[cst.BaseStatement], indents: tuple[str, ...]) -> None:
        nonlocal position
        known: list[tuple[cst.BaseStatement, int]] = []
        previous, plain = 0, True
        for statement in block:
            if position >= len(lines):
                raise _Disagree
            start = lines[position]
            position += len(statement.body) if isinstance(statement, cst.SimpleStatementLine) else 1
            line = start - len(getattr(statement, "leading_lines", ()))
            plain = plain and start > 0 and line > previous
            previous = line
            known.append((statement, line))
            for inner, extra in _suites(statement, default):
                suite(inner, (*indents, *extra))
        if plain:
            found.update((id(statement), (line, indents)) for statement, line in known)

    def suite(inner: cst.BaseSuite | cst.If, indents: tuple[str, ...]) -> None:
        nonlocal position
        if isinstance(inner, cst.If):  # an `elif`: a statement of CPython's, never alone here
            position += 1
            for block, extra in _suites(inner, default):
                suite(block, (*indents, *extra))
        elif isinstance(inner, cst.SimpleStatementSuite):  # `if x: y = 1`, on the header's line
            position += len(inner.body)
        elif isinstance(inner, cst.IndentedBlock):
            indent = default if inner.indent is None else inner.indent
            statements(inner.body, (*indents, indent))

    try:
        for statement in module.body:
            for inner, extra in _suites(statement, default):
                suite(inner, extra)
    except _Disagree:
        return {}
    return found if position == len(lines) else {}


class _Disagree(Exception):
    """libcst's tree and CPython's do not line up."""


def _suites(
    statement: cst.CSTNode, default: str
) -> list[tuple[cst.BaseSuite | cst.If, tuple[str, ...]]]:
    """The blocks of a compound statement in `source._blocks`' order, each with the indent its
    clause adds (a `match` indents its cases); an `elif` stands for its own blocks."""
    suites: list[cst.BaseSuite | cst.If] = []
    if isinstance(statement, cst.Try | cst.TryStar):
        suites = [statement.body, *(handler.body for handler in statement.handlers)]
        suites += [clause.body for clause in (statement.orelse, statement.finalbody) if clause]
    elif isinstance(statement, cst.Match):
        indent = default if statement.indent is None else statement.indent
        return [(case.body, (indent,)) for case in statement.cases]
    elif isinstance(statement, cst.If):
        orelse = statement.orelse
        suites = [statement.body]
        if isinstance(orelse, cst.If):
            suites.append(orelse)
        elif orelse is not None:
            suites.append(orelse.body)
    elif isinstance(statement, cst.For | cst.While):
        suites = [statement.body, *([statement.orelse.body] if statement.orelse else [])]
    elif isinstance(statement, cst.FunctionDef | cst.ClassDef | cst.With):
        suites = [statement.body]
    return [(suite, ()) for suite in suites]
