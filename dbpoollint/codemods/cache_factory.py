"""Cache a client factory (the DPL103 fix).

- A sync factory without parameters gets `@functools.cache`: every caller then shares one
  client. (Two threads calling it first at the very same moment can both build one; the loser
  is garbage. For a process-wide client that is the documented trade-off of functools.cache.)
- An `async def` factory cannot be cached that way (the cache would hold a coroutine, which can
  be awaited once). When its body is a single `return <expression>`, the expression moves into
  a double-checked block under an `asyncio.Lock` and the awaited result is kept in a module
  variable; other async bodies get no fix.
- Factories with parameters, or with decorators already, are left alone: their arguments may be
  per request, and their decorators may wrap them in ways the fix cannot see.
"""

from __future__ import annotations

from collections.abc import Sequence

import libcst as cst
from libcst.metadata import MetadataWrapper, PositionProvider

from dbpoollint.codemods.imports import add_stdlib_import, is_docstring
from dbpoollint.codemods.line_split import DEFAULT_LINE_LENGTH, split_long_lines
from dbpoollint.fixes import imports_module, taken_names, unique_name


class _EnclosingFunction(cst.CSTVisitor):
    METADATA_DEPENDENCIES = (PositionProvider,)

    def __init__(self, positions: Sequence[tuple[int, int]]) -> None:
        super().__init__()
        self.wanted = set(positions)
        self.stack: list[cst.FunctionDef] = []
        self.found: dict[tuple[int, int], cst.FunctionDef | None] = {}

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        self.stack.append(node)

    def leave_FunctionDef(self, original_node: cst.FunctionDef) -> None:
        self.stack.pop()

    def visit_Call(self, node: cst.Call) -> None:
        start = self.get_metadata(PositionProvider, node).start
        key = (start.line, start.column + 1)
        if key in self.wanted:
            self.found[key] = self.stack[-1] if self.stack else None


def _cacheable(function: cst.FunctionDef) -> bool:
    params = function.params
    has_parameters = bool(
        params.params
        or params.posonly_params
        or params.kwonly_params
        or isinstance(params.star_arg, cst.Param)
        or params.star_kwarg
    )
    if has_parameters or function.decorators:
        return False
    # An async factory is rewritten around its returned expression; other bodies are left.
    return function.asynchronous is None or _returned_expression(function) is not None


def cache_factories(
    source: str, positions: Sequence[tuple[int, int]], line_length: int = DEFAULT_LINE_LENGTH
) -> tuple[str, list[str | None]]:
    """Cache the factories enclosing the calls at `positions`; applicability per position."""
    module = cst.parse_module(source)
    wrapper = MetadataWrapper(module, unsafe_skip_copy=True)
    finder = _EnclosingFunction(positions)
    wrapper.visit(finder)
    tree = wrapper.module
    top_level = {id(s): s for s in tree.body if isinstance(s, cst.FunctionDef)}
    applicability: list[str | None] = []
    chosen: dict[int, cst.FunctionDef] = {}
    for position in positions:
        function = finder.found.get(position)
        if function is None or id(function) not in top_level or not _cacheable(function):
            applicability.append(None)
            continue
        applicability.append("safe")
        chosen[id(function)] = function
    if not chosen:
        return source, applicability

    taken = taken_names(tree)
    body: list[cst.BaseStatement] = []
    needs: set[str] = set()
    for statement in tree.body:
        function = chosen.get(id(statement))
        if function is None:
            body.append(statement)
        elif function.asynchronous is None:
            decorator = cst.Decorator(cst.parse_expression("functools.cache"))
            body.append(function.with_changes(decorators=[decorator]))
            needs.add("functools")
        else:
            body.extend(_async_singleton(function, taken, line_length))
            needs.add("asyncio")
    rewritten = tree.with_changes(body=body)
    for module_name in sorted(needs):
        if not imports_module(rewritten, module_name):
            rewritten = add_stdlib_import(rewritten, f"import {module_name}")
    return rewritten.code, applicability


def _returned_expression(function: cst.FunctionDef) -> cst.BaseExpression | None:
    """The `X` of a body that is just `return X` (after an optional docstring)."""
    if not isinstance(function.body, cst.IndentedBlock):
        return None
    statements = list(function.body.body)
    if statements and is_docstring(statements[0]):
        statements = statements[1:]
    if len(statements) != 1 or not isinstance(statements[0], cst.SimpleStatementLine):
        return None
    (small,) = statements[0].body if len(statements[0].body) == 1 else (None,)
    if isinstance(small, cst.Return) and small.value is not None:
        return small.value
    return None


def _async_singleton(
    function: cst.FunctionDef, taken: set[str], line_length: int
) -> list[cst.BaseStatement]:
    """`async def f(): return await X(...)` -> a module variable set once under a lock."""
    expression = _returned_expression(function)
    assert expression is not None
    name = function.name.value
    variable = unique_name(f"_{name.lstrip('_')}_instance", taken)
    taken |= {variable, f"{variable}_lock"}
    construction = cst.Module([]).code_for_node(expression)
    code = (
        f"async def {name}():\n"
        f"    global {variable}\n"
        f"    if {variable} is None:\n"
        f"        async with {variable}_lock:\n"
        f"            if {variable} is None:\n"
        f"                {variable} = {construction}\n"
        f"    return {variable}\n"
    )
    getter = cst.parse_statement(split_long_lines(code, line_length))
    assert isinstance(getter, cst.FunctionDef)
    assert isinstance(getter.body, cst.IndentedBlock)
    assert isinstance(function.body, cst.IndentedBlock)
    docstring = [s for s in function.body.body[:1] if is_docstring(s)]
    # Keep the signature's return annotation and the docstring.
    getter = getter.with_changes(
        returns=function.returns,
        leading_lines=[cst.EmptyLine(), cst.EmptyLine()],
        body=getter.body.with_changes(body=[*docstring, *getter.body.body]),
    )
    state = cst.parse_module(f"{variable} = None\n{variable}_lock = asyncio.Lock()\n").body
    first, *rest = state
    return [first.with_changes(leading_lines=function.leading_lines), *rest, getter]
