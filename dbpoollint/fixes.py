"""Hoist a client built per call into a module-level lazy singleton (the DPL101 fix).

The call inside the handler becomes a call to a generated getter placed after the imports:

- sync clients: double-checked locking with a ``threading.Lock``: the fast path reads one global,
  and a first call from many threads at once still builds one client (``functools.cache`` does
  not promise that: two threads can both miss and both build);
- awaitable constructors (``await asyncpg.create_pool(...)``): an ``async`` getter guarded by an
  ``asyncio.Lock``, so concurrent tasks await one construction and the awaited pool is cached,
  never a coroutine;
- async clients built synchronously (``redis.asyncio.Redis``, ``create_async_engine``, Motor): a
  plain lazy getter, because nothing can interleave between the ``is None`` check and the
  assignment inside one event loop.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import libcst as cst
from libcst.metadata import (
    Assignment,
    BuiltinScope,
    CodeRange,
    GlobalScope,
    MetadataWrapper,
    PositionProvider,
    QualifiedNameProvider,
    ScopeProvider,
)

from dbpoollint.checks.base import Edit, Fix
from dbpoollint.packs import ClientCall

REQUEST_OBJECTS = ("flask.request", "quart.request", "flask.session", "flask.g", "quart.g")
ENVIRONMENT_READS = ("os.environ", "os.getenv", "os.environ.get")


@dataclass(frozen=True)
class HoistRequest:
    line: int
    column: int
    call: ClientCall
    in_handler: bool  # the call sits in the handler itself, so its parameters are request data


@dataclass(frozen=True)
class HoistPlan:
    request: HoistRequest
    applicability: str | None  # "safe", "unsafe", or None when no fix applies
    reason: str


@dataclass
class _Target:
    request: HoistRequest
    call: cst.Call
    replace: cst.BaseExpression  # the node replaced: the call, or the `await` around it
    function: cst.FunctionDef
    variable: str | None
    close_statements: list[cst.SimpleStatementLine]


def _reindent(construction: str, old_indent: str, new_indent: str) -> str:
    """Move the continuation lines of a multi-line call to the getter's indentation."""
    lines = construction.split("\n")
    if len(lines) == 1 or '"""' in construction or "'''" in construction:
        return construction
    moved = [lines[0]]
    for line in lines[1:]:
        body = line.removeprefix(old_indent) if line.startswith(old_indent) else line.lstrip()
        moved.append(new_indent + body if body else body)
    return "\n".join(moved)


def _getter_code(name: str, variable: str, construction: str, call: ClientCall) -> str:
    note = '    """Built once per process, on first use (hoisted by dbpoollint DPL101)."""\n'
    if call.awaitable:
        return (
            f"{variable} = None\n{variable}_lock = asyncio.Lock()\n\n\n"
            f"async def {name}():\n{note}    global {variable}\n"
            f"    if {variable} is None:\n        async with {variable}_lock:\n"
            f"            if {variable} is None:\n"
            f"                {variable} = await {construction}\n"
            f"    return {variable}\n"
        )
    if call.asynchronous:
        return (
            f"{variable} = None\n\n\ndef {name}():\n{note}    global {variable}\n"
            f"    if {variable} is None:\n        {variable} = {construction}\n"
            f"    return {variable}\n"
        )
    return (
        f"{variable} = None\n{variable}_lock = threading.Lock()\n\n\n"
        f"def {name}():\n{note}    global {variable}\n"
        f"    if {variable} is None:\n        with {variable}_lock:\n"
        f"            if {variable} is None:\n"
        f"                {variable} = {construction}\n"
        f"    return {variable}\n"
    )


class _Finder(cst.CSTVisitor):
    METADATA_DEPENDENCIES = (PositionProvider, ScopeProvider, QualifiedNameProvider)

    def __init__(self, requests: Sequence[HoistRequest]) -> None:
        super().__init__()
        self.by_position = {(r.line, r.column): r for r in requests}
        self.functions: list[cst.FunctionDef] = []
        self.ancestors: list[cst.CSTNode] = []
        self.targets: list[_Target] = []
        self.plans: dict[HoistRequest, HoistPlan] = {}

    def on_visit(self, node: cst.CSTNode) -> bool:
        self.ancestors.append(node)
        if isinstance(node, cst.FunctionDef):
            self.functions.append(node)
        return super().on_visit(node)

    def on_leave(self, original_node: cst.CSTNode) -> None:
        super().on_leave(original_node)
        self.ancestors.pop()
        if isinstance(original_node, cst.FunctionDef):
            self.functions.pop()

    def visit_Call(self, node: cst.Call) -> None:
        position: CodeRange = self.get_metadata(PositionProvider, node)
        request = self.by_position.get((position.start.line, position.start.column + 1))
        if request is None or not self.functions:
            return
        plan = self._plan(request, node)
        self.plans[request] = plan

    def _plan(self, request: HoistRequest, node: cst.Call) -> HoistPlan:
        function = self.functions[-1]
        parent = self.ancestors[-2]
        replace: cst.BaseExpression = node
        if request.call.awaitable:
            if not isinstance(parent, cst.Await):
                return HoistPlan(request, None, "the awaitable constructor is not awaited directly")
            replace = parent
        elif isinstance(parent, cst.Await):
            return HoistPlan(request, None, "an awaited result cannot be shared as is")
        if any(isinstance(a, cst.WithItem) for a in self.ancestors[-3:]):
            return HoistPlan(request, None, "a `with` block closes the client when it ends")
        if not self._module_level_name(node.func):
            return HoistPlan(request, None, "the constructor is imported inside the function")
        verdict = self._arguments_verdict(request, node)
        if verdict is None:
            return HoistPlan(
                request, None, "its arguments depend on request data: use a keyed cache instead"
            )
        variable = self._assigned_variable(replace)
        closes = _close_statements(function, variable, request.call) if variable else []
        applicability = "unsafe" if closes or verdict == "unsafe" else "safe"
        self.targets.append(_Target(request, node, replace, function, variable, closes))
        reason = "the handler closes the client" if closes else "arguments are constant"
        return HoistPlan(request, applicability, reason)

    def _assigned_variable(self, replace: cst.BaseExpression) -> str | None:
        parent = self.ancestors[-3] if isinstance(replace, cst.Await) else self.ancestors[-2]
        if isinstance(parent, cst.Assign) and len(parent.targets) == 1:
            target = parent.targets[0].target
            if isinstance(target, cst.Name):
                return target.value
        return None

    def _module_level_name(self, expression: cst.BaseExpression) -> bool:
        root = expression
        while isinstance(root, cst.Attribute):
            root = root.value
        if not isinstance(root, cst.Name):
            return False
        scope = self.get_metadata(ScopeProvider, root, None)
        if scope is None:
            return False
        return all(isinstance(a.scope, GlobalScope) for a in scope[root.value]) and bool(
            scope[root.value]
        )

    def _arguments_verdict(self, request: HoistRequest, node: cst.Call) -> str | None:
        """ "safe" (constants, env, settings), "unsafe" (helper parameters), None (request data)."""
        verdict = "safe"
        for argument in node.args:
            for name in _names_in(argument.value):
                qualnames = {q.name for q in self.get_metadata(QualifiedNameProvider, name, set())}
                if qualnames & set(REQUEST_OBJECTS):
                    return None
                scope = self.get_metadata(ScopeProvider, name, None)
                if scope is None:
                    continue
                assignments = list(scope[name.value]) if name.value in scope else []
                if not assignments:
                    continue  # builtins
                if all(isinstance(a.scope, GlobalScope | BuiltinScope) for a in assignments):
                    continue  # module constants, settings objects, imports, builtins
                is_parameter = any(
                    isinstance(a, Assignment) and isinstance(a.node, cst.Param) for a in assignments
                )
                if not is_parameter or request.in_handler:
                    return None
                verdict = "unsafe"
        return verdict


def _names_in(expression: cst.CSTNode) -> list[cst.Name]:
    """Names read by an expression, skipping attribute names (`x.attr` reads `x` only)."""
    found: list[cst.Name] = []

    class Collector(cst.CSTVisitor):
        def visit_Attribute(self, node: cst.Attribute) -> bool:
            node.value.visit(self)
            return False

        def visit_Name(self, node: cst.Name) -> None:
            found.append(node)

        def visit_Arg(self, node: cst.Arg) -> bool:
            node.value.visit(self)
            return False

    expression.visit(Collector())
    return found


def _close_statements(
    function: cst.FunctionDef, variable: str, call: ClientCall
) -> list[cst.SimpleStatementLine]:
    found: list[cst.SimpleStatementLine] = []

    class Closes(cst.CSTVisitor):
        def visit_SimpleStatementLine(self, node: cst.SimpleStatementLine) -> None:
            if len(node.body) != 1 or not isinstance(node.body[0], cst.Expr):
                return
            value = node.body[0].value
            if isinstance(value, cst.Await):
                value = value.expression
            if (
                isinstance(value, cst.Call)
                and isinstance(value.func, cst.Attribute)
                and isinstance(value.func.value, cst.Name)
                and value.func.value.value == variable
                and value.func.attr.value in call.close
            ):
                found.append(node)

    function.body.visit(Closes())
    return found


class _Rewriter(cst.CSTTransformer):
    def __init__(
        self, replacements: Mapping[cst.CSTNode, cst.BaseExpression], removals: set[cst.CSTNode]
    ):
        super().__init__()
        self.replacements = replacements
        self.removals = removals

    def leave_Call(self, original_node: cst.Call, updated_node: cst.Call) -> cst.BaseExpression:
        return self.replacements.get(original_node, updated_node)

    def leave_Await(self, original_node: cst.Await, updated_node: cst.Await) -> cst.BaseExpression:
        return self.replacements.get(original_node, updated_node)

    def leave_SimpleStatementLine(
        self, original_node: cst.SimpleStatementLine, updated_node: cst.SimpleStatementLine
    ) -> cst.SimpleStatementLine | cst.RemovalSentinel:
        if original_node in self.removals:
            return cst.RemoveFromParent()
        return updated_node

    def leave_IndentedBlock(
        self, original_node: cst.IndentedBlock, updated_node: cst.IndentedBlock
    ) -> cst.IndentedBlock:
        if not updated_node.body:
            return updated_node.with_changes(body=[cst.SimpleStatementLine([cst.Pass()])])
        return updated_node


def taken_names(module: cst.Module) -> set[str]:
    names: set[str] = set()
    for statement in module.body:
        if isinstance(statement, cst.FunctionDef | cst.ClassDef):
            names.add(statement.name.value)
        for node in _assign_targets(statement):
            names.add(node)
    return names


def _assign_targets(statement: cst.CSTNode) -> list[str]:
    names = []
    if isinstance(statement, cst.SimpleStatementLine):
        for small in statement.body:
            if isinstance(small, cst.Assign):
                names += [t.target.value for t in small.targets if isinstance(t.target, cst.Name)]
            elif isinstance(small, cst.AnnAssign) and isinstance(small.target, cst.Name):
                names.append(small.target.value)
            elif isinstance(small, cst.Import | cst.ImportFrom) and not isinstance(
                small.names, cst.ImportStar
            ):
                for alias in small.names:
                    bound = alias.asname.name if alias.asname else alias.name
                    if isinstance(bound, cst.Name):
                        names.append(bound.value)
                    elif isinstance(bound, cst.Attribute):
                        names.append(cst.Module([]).code_for_node(bound).split(".")[0])
    return names


def _imports_module(module: cst.Module, name: str) -> bool:
    for statement in module.body:
        if isinstance(statement, cst.SimpleStatementLine):
            for small in statement.body:
                if isinstance(small, cst.Import) and any(
                    cst.Module([]).code_for_node(a.name) == name and a.asname is None
                    for a in small.names
                ):
                    return True
    return False


def add_module_import(module: cst.Module, name: str) -> cst.Module:
    """`import name` after the module's leading imports, unless it is imported already."""
    if _imports_module(module, name):
        return module
    index = insertion_index(module)
    body = list(module.body)
    body[index:index] = cst.parse_module(f"import {name}\n").body
    return module.with_changes(body=body)


def insertion_index(module: cst.Module) -> int:
    """After the last import of the module's leading block (docstring, imports)."""
    index = 0
    for position, statement in enumerate(module.body):
        if isinstance(statement, cst.SimpleStatementLine) and all(
            isinstance(s, cst.Import | cst.ImportFrom) for s in statement.body
        ):
            index = position + 1
        elif isinstance(statement, cst.FunctionDef | cst.ClassDef):
            break
    if index == 0 and module.body:
        first = module.body[0]
        if (
            isinstance(first, cst.SimpleStatementLine)
            and isinstance(first.body[0], cst.Expr)
            and isinstance(first.body[0].value, cst.SimpleString)
        ):
            index = 1
    return index


def hoist(
    source: str, requests: Sequence[HoistRequest], allow_unsafe: bool
) -> tuple[str, list[HoistPlan]]:
    """Apply every applicable hoist; return the new source and the plan for each request."""
    module = cst.parse_module(source)
    wrapper = MetadataWrapper(module)
    finder = _Finder(requests)
    wrapper.visit(finder)
    plans = [finder.plans.get(r, HoistPlan(r, None, "call not found")) for r in requests]
    chosen = [
        t
        for t in finder.targets
        if finder.plans[t.request].applicability == "safe"
        or (allow_unsafe and finder.plans[t.request].applicability == "unsafe")
    ]
    if not chosen:
        return source, plans

    tree = wrapper.module
    taken = taken_names(tree)
    getters: dict[str, str] = {}  # construction code -> getter name
    definitions: list[str] = []
    replacements: dict[cst.CSTNode, cst.BaseExpression] = {}
    removals: set[cst.CSTNode] = set()
    needs: set[str] = set()
    closes: list[tuple[str, str]] = []  # (shared variable, close statement) moved to shutdown
    for target in chosen:
        # code_for_node drops the enclosing block's indentation from continuation lines.
        depth = 8 if target.request.call.asynchronous and not target.request.call.awaitable else 16
        construction = _reindent(tree.code_for_node(target.call), "", " " * depth)
        name = getters.get(construction)
        if name is None:
            base = target.request.call.what
            name = unique_name(f"get_{base}", taken)
            variable = unique_name(f"_{name.removeprefix('get_')}", taken)
            taken |= {name, variable, f"{variable}_lock"}
            getters[construction] = name
            definitions.append(_getter_code(name, variable, construction, target.request.call))
            if target.request.call.awaitable:
                needs.add("asyncio")
            elif not target.request.call.asynchronous:
                needs.add("threading")
            if target.close_statements and target.variable:
                closes.append(
                    _shutdown_close(target.close_statements[0], target.variable, variable)
                )
        call_code = f"await {name}()" if target.request.call.awaitable else f"{name}()"
        replacements[target.replace] = cst.parse_expression(call_code)
        removals.update(target.close_statements)

    rewritten = tree.visit(_Rewriter(replacements, removals))
    assert isinstance(rewritten, cst.Module)
    if closes:
        rewritten, definitions = _wire_shutdown(rewritten, closes, definitions)
    index = insertion_index(rewritten)
    new_statements: list[cst.SimpleStatementLine | cst.BaseCompoundStatement] = []
    for module_name in sorted(needs):
        if not _imports_module(rewritten, module_name):
            new_statements.extend(cst.parse_module(f"import {module_name}\n").body)
    for definition in definitions:
        parsed = cst.parse_module(definition).body
        first = parsed[0]
        spaced = first.with_changes(leading_lines=[cst.EmptyLine(), cst.EmptyLine()])
        new_statements.extend([spaced, *parsed[1:]])
    body = list(rewritten.body)
    if index < len(body) and new_statements:
        following = body[index]
        body[index] = following.with_changes(
            leading_lines=[cst.EmptyLine(), cst.EmptyLine(), *_strip_blank(following.leading_lines)]
        )
    body[index:index] = new_statements
    return rewritten.with_changes(body=body).code, plans


def _shutdown_close(statement: cst.SimpleStatementLine, local: str, shared: str) -> tuple[str, str]:
    """`client.close()` in the handler -> `_mongo.close()` for the shutdown hook."""
    code = cst.Module([]).code_for_node(statement.body[0]).strip()
    prefix = "await " if code.startswith("await ") else ""
    return shared, prefix + shared + code.removeprefix(prefix).removeprefix(local)


def _wire_shutdown(
    module: cst.Module, closes: list[tuple[str, str]], definitions: list[str]
) -> tuple[cst.Module, list[str]]:
    """Move closes the handler did into the module's shutdown hook, when it has one.

    A lifespan (`@asynccontextmanager` function with a `yield`) gets them after the yield (in
    its `finally` when the yield sits in a `try`); without one, a module that imports `atexit`
    gets an `@atexit.register` function for sync closes. Otherwise shutdown is DPL301's.
    """
    lines = "".join(f"    if {shared} is not None:\n        {close}\n" for shared, close in closes)
    lifespan = _lifespan(module)
    if lifespan is not None:
        block = cst.parse_statement(f"if True:\n{lines}")
        assert isinstance(block, cst.If) and isinstance(block.body, cst.IndentedBlock)
        added = list(block.body.body)
        new_body = _after_yield(lifespan, added)
        if new_body is not None:
            body = [new_body if s is lifespan else s for s in module.body]
            return module.with_changes(body=body), definitions
    synchronous = all(not close.startswith("await ") for _, close in closes)
    if synchronous and _imports_module(module, "atexit"):
        name = unique_name("_close_hoisted_clients", taken_names(module))
        hook = f"@atexit.register\ndef {name}() -> None:\n{lines}"
        return module, [*definitions, hook]
    return module, definitions


def _lifespan(module: cst.Module) -> cst.FunctionDef | None:
    for statement in module.body:
        if isinstance(statement, cst.FunctionDef) and any(
            cst.Module([]).code_for_node(d.decorator).endswith("asynccontextmanager")
            for d in statement.decorators
        ):
            return statement
    return None


def _after_yield(
    function: cst.FunctionDef, added: list[cst.BaseStatement]
) -> cst.FunctionDef | None:
    if not isinstance(function.body, cst.IndentedBlock):
        return None
    body = list(function.body.body)
    for index, statement in enumerate(body):
        if _is_yield(statement):
            body[index + 1 : index + 1] = added
            return function.with_changes(body=function.body.with_changes(body=body))
        if (
            isinstance(statement, cst.Try)
            and statement.finalbody is not None
            and any(_is_yield(s) for s in statement.body.body)
        ):
            final = statement.finalbody
            new_final = final.with_changes(
                body=final.body.with_changes(body=[*final.body.body, *added])
            )
            body[index] = statement.with_changes(finalbody=new_final)
            return function.with_changes(body=function.body.with_changes(body=body))
    return None


def _is_yield(statement: cst.CSTNode) -> bool:
    return (
        isinstance(statement, cst.SimpleStatementLine)
        and isinstance(statement.body[0], cst.Expr)
        and isinstance(statement.body[0].value, cst.Yield)
    )


def _strip_blank(lines: Sequence[cst.EmptyLine]) -> list[cst.EmptyLine]:
    result = list(lines)
    while result and result[0].comment is None:
        result.pop(0)
    return result


def unique_name(name: str, taken: set[str]) -> str:
    if name not in taken:
        return name
    number = 2
    while f"{name}_{number}" in taken:
        number += 1
    return f"{name}_{number}"


def edits_between(before: str, after: str) -> tuple[Edit, ...]:
    """Line-level edits that turn `before` into `after`, in ruff's (row, column) terms."""
    old = before.splitlines(keepends=True)
    new = after.splitlines(keepends=True)
    edits = []
    matcher = difflib.SequenceMatcher(a=old, b=new, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            continue
        edits.append(Edit("".join(new[j1:j2]), (i1 + 1, 1), (i2 + 1, 1)))
    return tuple(edits)


def hoist_fix(source: str, request: HoistRequest) -> Fix | None:
    """The fix for one finding, as edits, for JSON output and `--diff`."""
    fixed, (plan,) = hoist(source, [request], allow_unsafe=True)
    if plan.applicability is None or fixed == source:
        return None
    return Fix(
        plan.applicability, "Hoist into a module-level lazy singleton", edits_between(source, fixed)
    )


# --- DPL402 / DPL403: edit the arguments of one call -------------------------------------------


@dataclass(frozen=True)
class CallEdit:
    """Edit the call starting at (line, column) (1-based column, as findings report it)."""

    line: int
    column: int
    # DPL402: (keyword, python code) to set, directly or inside the `container` dict argument.
    container: str = ""
    entries: tuple[tuple[str, str], ...] = ()
    # DPL403: URL query parameters to remove from string literals among the arguments.
    strip_params: tuple[str, ...] = ()


def _set_keywords(call: cst.Call, entries: Sequence[tuple[str, str]]) -> cst.Call:
    args = list(call.args)
    for keyword, code in entries:
        value = cst.parse_expression(code)
        existing = next(
            (i for i, a in enumerate(args) if a.keyword is not None and a.keyword.value == keyword),
            None,
        )
        if existing is not None:
            args[existing] = args[existing].with_changes(value=value)
            continue
        new = cst.Arg(
            value=value,
            keyword=cst.Name(keyword),
            equal=cst.AssignEqual(
                whitespace_before=cst.SimpleWhitespace(""),
                whitespace_after=cst.SimpleWhitespace(""),
            ),
        )
        args = _append(args, new, call.whitespace_before_args)
    return call.with_changes(args=args)


def _append(
    args: list[cst.Arg], new: cst.Arg, leading: cst.BaseParenthesizableWhitespace
) -> list[cst.Arg]:
    """Append an argument, keeping a trailing comma and one-per-line layout when present."""
    if not args:
        return [new]
    last = args[-1]
    if isinstance(last.comma, cst.Comma):
        between = cst.Comma(whitespace_after=_without_comment(leading))
        return [*args[:-1], last.with_changes(comma=between), new.with_changes(comma=last.comma)]
    comma = cst.Comma(whitespace_after=cst.SimpleWhitespace(" "))
    return [*args[:-1], last.with_changes(comma=comma), new]


def _without_comment(
    whitespace: cst.BaseParenthesizableWhitespace,
) -> cst.BaseParenthesizableWhitespace:
    """The line break and indentation of the first item, without a comment after the bracket."""
    if isinstance(whitespace, cst.ParenthesizedWhitespace):
        return whitespace.with_changes(first_line=cst.TrailingWhitespace(), empty_lines=())
    return cst.SimpleWhitespace(" ")


def _set_dict_entries(node: cst.Dict, entries: Sequence[tuple[str, str]]) -> cst.Dict:
    elements = list(node.elements)
    for keyword, code in entries:
        value = cst.parse_expression(code)
        index = next(
            (
                i
                for i, e in enumerate(elements)
                if isinstance(e, cst.DictElement)
                and isinstance(e.key, cst.SimpleString)
                and e.key.evaluated_value == keyword
            ),
            None,
        )
        if index is not None:
            element = elements[index]
            assert isinstance(element, cst.DictElement)
            elements[index] = element.with_changes(value=value)
            continue
        new = cst.DictElement(key=cst.SimpleString(f'"{keyword}"'), value=value)
        if elements and isinstance(elements[-1].comma, cst.Comma):
            last = elements[-1]
            between = cst.Comma(whitespace_after=_without_comment(node.lbrace.whitespace_after))
            elements = [
                *elements[:-1],
                last.with_changes(comma=between),
                new.with_changes(comma=last.comma),
            ]
        elif elements:
            comma = cst.Comma(whitespace_after=cst.SimpleWhitespace(" "))
            elements = [*elements[:-1], elements[-1].with_changes(comma=comma), new]
        else:
            elements = [new]
    return node.with_changes(elements=elements)


def _dict_code(entries: Sequence[tuple[str, str]]) -> str:
    return "{" + ", ".join(f'"{k}": {v}' for k, v in entries) + "}"


def _set_container(
    call: cst.Call, container: str, entries: Sequence[tuple[str, str]]
) -> cst.Call | None:
    """None when the options are a variable: adding to it here would be guesswork."""
    index = next(
        (
            i
            for i, a in enumerate(call.args)
            if a.keyword is not None and a.keyword.value == container
        ),
        None,
    )
    if index is None:
        return _set_keywords(call, [(container, _dict_code(entries))])
    value = call.args[index].value
    if isinstance(value, cst.Dict):
        new_value: cst.BaseExpression = _set_dict_entries(value, entries)
    elif (
        isinstance(value, cst.Call)
        and isinstance(value.func, cst.Name)
        and value.func.value == "dict"
    ):
        new_value = _set_keywords(value, entries)
    else:
        return None
    args = list(call.args)
    args[index] = args[index].with_changes(value=new_value)
    return call.with_changes(args=args)


def strip_query_params(url: str, params: Sequence[str]) -> str:
    base, question, query = url.partition("?")
    if not question:
        return url
    kept = [p for p in query.split("&") if p and p.split("=", 1)[0] not in params]
    return base + ("?" + "&".join(kept) if kept else "")


class _StripParams(cst.CSTTransformer):
    def __init__(self, params: Sequence[str]) -> None:
        super().__init__()
        self.params = params
        self.changed = False

    def leave_SimpleString(
        self, original_node: cst.SimpleString, updated_node: cst.SimpleString
    ) -> cst.SimpleString:
        value = original_node.evaluated_value
        if not isinstance(value, str) or original_node.raw_value != value or "?" not in value:
            return updated_node
        stripped = strip_query_params(value, self.params)
        if stripped == value:
            return updated_node
        self.changed = True
        return updated_node.with_changes(
            value=f"{original_node.prefix}{original_node.quote}{stripped}{original_node.quote}"
        )


class _CallEditor(cst.CSTTransformer):
    METADATA_DEPENDENCIES = (PositionProvider,)

    def __init__(self, edits: Sequence[CallEdit]) -> None:
        super().__init__()
        self.edits = {(e.line, e.column): e for e in edits}
        self.done: set[tuple[int, int]] = set()

    def leave_Call(self, original_node: cst.Call, updated_node: cst.Call) -> cst.Call:
        position = self.get_metadata(PositionProvider, original_node)
        key = (position.start.line, position.start.column + 1)
        edit = self.edits.get(key)
        if edit is None:
            return updated_node
        result: cst.Call | None = updated_node
        if edit.entries:
            if edit.container:
                result = _set_container(updated_node, edit.container, edit.entries)
            else:
                result = _set_keywords(updated_node, edit.entries)
        if edit.strip_params and result is not None:
            stripper = _StripParams(edit.strip_params)
            args = [a.with_changes(value=a.value.visit(stripper)) for a in result.args]
            result = result.with_changes(args=args) if stripper.changed else None
        if result is None:
            return updated_node
        self.done.add(key)
        return result


def edit_calls(source: str, edits: Sequence[CallEdit]) -> tuple[str, list[bool]]:
    """Apply every edit in one transform; per edit, whether it could be made."""
    module = cst.parse_module(source)
    editor = _CallEditor(edits)
    fixed = MetadataWrapper(module).visit(editor)
    return fixed.code, [(e.line, e.column) in editor.done for e in edits]


# --- add a keyword argument or a dict key (DPL201-DPL205) --------------------------------------


@dataclass(frozen=True)
class AddArgument:
    """Add `keyword=value` to the call at (line, column), `"keyword": value` to a dict there,
    or `within={"keyword": value}` (a key inside `connect_args=`, created when absent)."""

    line: int
    column: int
    keyword: str
    value: str
    within: str = ""


def _separator(
    items: Sequence[cst.Arg] | Sequence[cst.BaseDictElement],
    opening: cst.BaseParenthesizableWhitespace,
) -> cst.Comma:
    """The comma between the last item and a new one, copied from the existing layout."""
    if len(items) > 1 and isinstance(items[-2].comma, cst.Comma):
        return items[-2].comma
    if isinstance(opening, cst.ParenthesizedWhitespace):
        return cst.Comma(whitespace_after=opening)
    return cst.Comma(whitespace_after=cst.SimpleWhitespace(" "))


def _with_arg(call: cst.Call, arg: cst.Arg) -> cst.Call:
    args = list(call.args)
    if not args:
        return call.with_changes(args=[arg])
    last = args[-1]
    separator = _separator(args, call.whitespace_before_args)
    if isinstance(last.comma, cst.Comma):  # trailing comma: the new item takes it
        args[-1] = last.with_changes(comma=separator)
        args.append(arg.with_changes(comma=last.comma))
    else:
        args[-1] = last.with_changes(comma=separator)
        args.append(arg)
    return call.with_changes(args=args)


def _with_element(node: cst.Dict, element: cst.DictElement) -> cst.Dict:
    elements = list(node.elements)
    if not elements:
        return node.with_changes(elements=[element])
    last = elements[-1]
    separator = _separator(elements, node.lbrace.whitespace_after)
    if isinstance(last.comma, cst.Comma):
        elements[-1] = last.with_changes(comma=separator)
        elements.append(element.with_changes(comma=last.comma))
    else:
        elements[-1] = last.with_changes(comma=separator)
        elements.append(element)
    return node.with_changes(elements=elements)


def _keyword_arg(keyword: str, value: str) -> cst.Arg:
    return cst.Arg(
        value=cst.parse_expression(value),
        keyword=cst.Name(keyword),
        equal=cst.AssignEqual(
            whitespace_before=cst.SimpleWhitespace(""), whitespace_after=cst.SimpleWhitespace("")
        ),
    )


def _dict_element(key: str, value: str) -> cst.DictElement:
    return cst.DictElement(cst.SimpleString(f'"{key}"'), cst.parse_expression(value))


class _AddArguments(cst.CSTTransformer):
    METADATA_DEPENDENCIES = (PositionProvider,)

    def __init__(self, requests: Sequence[AddArgument]) -> None:
        super().__init__()
        self.by_position: dict[tuple[int, int], list[AddArgument]] = {}
        for request in requests:
            self.by_position.setdefault((request.line, request.column), []).append(request)
        self.done: set[AddArgument] = set()

    def _requests(self, node: cst.CSTNode) -> list[AddArgument]:
        position = self.get_metadata(PositionProvider, node)
        return self.by_position.get((position.start.line, position.start.column + 1), [])

    def leave_Call(self, original_node: cst.Call, updated_node: cst.Call) -> cst.Call:
        for request in self._requests(original_node):
            names = {a.keyword.value for a in updated_node.args if a.keyword is not None}
            if not request.within:
                if request.keyword not in names:
                    new = _keyword_arg(request.keyword, request.value)
                    updated_node = _with_arg(updated_node, new)
                self.done.add(request)
                continue
            if request.within not in names:
                value = f'{{"{request.keyword}": {request.value}}}'
                updated_node = _with_arg(updated_node, _keyword_arg(request.within, value))
                self.done.add(request)
                continue
            args = list(updated_node.args)
            for index, arg in enumerate(args):
                if (
                    arg.keyword is not None
                    and arg.keyword.value == request.within
                    and isinstance(arg.value, cst.Dict)
                    and all(isinstance(e, cst.DictElement) for e in arg.value.elements)
                ):
                    element = _dict_element(request.keyword, request.value)
                    args[index] = arg.with_changes(value=_with_element(arg.value, element))
                    self.done.add(request)
            updated_node = updated_node.with_changes(args=args)
        return updated_node

    def leave_Dict(self, original_node: cst.Dict, updated_node: cst.Dict) -> cst.Dict:
        for request in self._requests(original_node):
            keys = {
                e.key.evaluated_value
                for e in updated_node.elements
                if isinstance(e, cst.DictElement) and isinstance(e.key, cst.SimpleString)
            }
            if request.keyword not in keys:
                element = _dict_element(request.keyword, request.value)
                updated_node = _with_element(updated_node, element)
            self.done.add(request)
        return updated_node


def add_arguments(source: str, requests: Sequence[AddArgument]) -> tuple[str, set[AddArgument]]:
    """Apply every request; return the new source and the requests that were applied."""
    wrapper = MetadataWrapper(cst.parse_module(source))
    transformer = _AddArguments(requests)
    fixed = wrapper.visit(transformer)
    return fixed.code, transformer.done


# --- DPL301: close a module-level client at interpreter exit ----------------------------------


def register_atexit_closes(
    source: str, requests: Sequence[tuple[int, str, str]]
) -> tuple[str, list[bool]]:
    """For each (line, variable, method): `atexit.register(variable.method)` after the
    module-level statement on that line, plus `import atexit`. Per request, whether it was made."""
    from libcst.codemod import CodemodContext
    from libcst.codemod.visitors import AddImportsVisitor

    module = cst.parse_module(source)
    wrapper = MetadataWrapper(module)
    positions = wrapper.resolve(PositionProvider)
    body = list(wrapper.module.body)
    made = [False] * len(requests)
    insertions: dict[int, list[cst.BaseStatement]] = {}
    for number, (line, variable, method) in enumerate(requests):
        for index, statement in enumerate(body):
            where = positions[statement]
            if where.start.line <= line <= where.end.line and isinstance(
                statement, cst.SimpleStatementLine
            ):
                code = f"atexit.register({variable}.{method})\n"
                insertions.setdefault(index, []).append(cst.parse_statement(code))
                made[number] = True
                break
    if not any(made):
        return source, made
    new_body: list[cst.BaseStatement] = []
    for index, statement in enumerate(body):
        new_body.append(statement)
        new_body.extend(insertions.get(index, []))
    fixed = wrapper.module.with_changes(body=new_body)
    context = CodemodContext()
    AddImportsVisitor.add_needed_import(context, "atexit")
    fixed = AddImportsVisitor(context).transform_module(fixed)
    return fixed.code, made


# --- DPL302: move a release into `finally:` ----------------------------------------------------


def _releases(statement: cst.CSTNode, variable: str) -> bool:
    """`v.close()`, `await v.close()`, `pool.putconn(v)`, `await pool.release(v)` as a statement."""
    if not isinstance(statement, cst.SimpleStatementLine) or len(statement.body) != 1:
        return False
    expression = statement.body[0]
    if not isinstance(expression, cst.Expr):
        return False
    call = (
        expression.value.expression if isinstance(expression.value, cst.Await) else expression.value
    )
    if not isinstance(call, cst.Call) or not isinstance(call.func, cst.Attribute):
        return False
    method = call.func.attr.value
    receiver = call.func.value
    if isinstance(receiver, cst.Name) and receiver.value == variable:
        return method in ("close", "aclose", "release")
    return method in ("putconn", "release") and any(
        isinstance(a.value, cst.Name) and a.value.value == variable for a in call.args
    )


class _ReleaseInFinally(cst.CSTTransformer):
    METADATA_DEPENDENCIES = (PositionProvider,)

    def __init__(self, positions: set[tuple[int, int]]) -> None:
        super().__init__()
        self.positions = positions
        self.done: set[tuple[int, int]] = set()

    def _acquired(self, statement: cst.CSTNode) -> tuple[tuple[int, int], str] | None:
        if not isinstance(statement, cst.SimpleStatementLine) or len(statement.body) != 1:
            return None
        small = statement.body[0]
        if not isinstance(small, cst.Assign) or len(small.targets) != 1:
            return None
        target = small.targets[0].target
        value = small.value.expression if isinstance(small.value, cst.Await) else small.value
        if not isinstance(target, cst.Name) or not isinstance(value, cst.Call):
            return None
        where = self.get_metadata(PositionProvider, value)
        key = (where.start.line, where.start.column + 1)
        return (key, target.value) if key in self.positions else None

    def leave_IndentedBlock(
        self, original_node: cst.IndentedBlock, updated_node: cst.IndentedBlock
    ) -> cst.IndentedBlock:
        originals = list(original_node.body)
        body = list(updated_node.body)
        for index, statement in enumerate(originals):
            found = self._acquired(statement)
            if found is None:
                continue
            key, variable = found
            release = next(
                (j for j in range(index + 1, len(body)) if _releases(body[j], variable)), None
            )
            if release is None or release == index + 1:
                continue
            moved = body[index + 1 : release]
            release_statement = body[release].with_changes(leading_lines=())
            attempt = cst.Try(
                body=cst.IndentedBlock(body=moved),
                finalbody=cst.Finally(body=cst.IndentedBlock(body=[release_statement])),
            )
            body = [*body[: index + 1], attempt, *body[release + 1 :]]
            self.done.add(key)
            break  # one rewrite per block and pass: positions of the rest are stale
        return updated_node.with_changes(body=body)


def release_in_finally(source: str, positions: Sequence[tuple[int, int]]) -> tuple[str, list[bool]]:
    """For each acquisition call at (line, column): wrap the statements between it and its
    release (a statement of the same block) in `try:` and move the release into `finally:`."""
    wrapper = MetadataWrapper(cst.parse_module(source))
    transformer = _ReleaseInFinally(set(positions))
    fixed = wrapper.visit(transformer)
    return fixed.code, [p in transformer.done for p in positions]


# --- DPL302: a dependency that returns its session yields it and closes it ---------------------


class _YieldInsteadOfReturn(cst.CSTTransformer):
    METADATA_DEPENDENCIES = (PositionProvider,)

    def __init__(self, positions: set[tuple[int, int]]) -> None:
        super().__init__()
        self.positions = positions
        self.done: set[tuple[int, int]] = set()

    def leave_FunctionDef(
        self, original_node: cst.FunctionDef, updated_node: cst.FunctionDef
    ) -> cst.FunctionDef:
        body = updated_node.body
        if updated_node.returns is not None or not isinstance(body, cst.IndentedBlock):
            return updated_node
        statements = list(body.body)
        originals = (
            list(original_node.body.body)
            if isinstance(original_node.body, cst.IndentedBlock)
            else []
        )
        for index, statement in enumerate(originals):
            key_and_name = self._acquisition(statement)
            if key_and_name is None:
                continue
            key, name = key_and_name
            last = statements[-1]
            if not (
                isinstance(last, cst.SimpleStatementLine)
                and len(last.body) == 1
                and isinstance(last.body[0], cst.Return)
                and isinstance(last.body[0].value, cst.Name)
                and last.body[0].value.value == name
                and index < len(statements) - 1
            ):
                continue
            close = f"await {name}.close()" if updated_node.asynchronous else f"{name}.close()"
            attempt = cst.Try(
                body=cst.IndentedBlock(body=[cst.parse_statement(f"yield {name}\n")]),
                finalbody=cst.Finally(
                    body=cst.IndentedBlock(body=[cst.parse_statement(close + "\n")])
                ),
                leading_lines=last.leading_lines,
            )
            self.done.add(key)
            return updated_node.with_changes(
                body=body.with_changes(body=[*statements[:-1], attempt])
            )
        return updated_node

    def _acquisition(self, statement: cst.CSTNode) -> tuple[tuple[int, int], str] | None:
        if not isinstance(statement, cst.SimpleStatementLine) or len(statement.body) != 1:
            return None
        small = statement.body[0]
        if not isinstance(small, cst.Assign) or len(small.targets) != 1:
            return None
        target = small.targets[0].target
        value = small.value.expression if isinstance(small.value, cst.Await) else small.value
        if not isinstance(target, cst.Name) or not isinstance(value, cst.Call):
            return None
        where = self.get_metadata(PositionProvider, value)
        key = (where.start.line, where.start.column + 1)
        return (key, target.value) if key in self.positions else None


def yield_session(source: str, positions: Sequence[tuple[int, int]]) -> tuple[str, list[bool]]:
    """`db = SessionLocal(); return db` -> `try: yield db` / `finally: db.close()`."""
    wrapper = MetadataWrapper(cst.parse_module(source))
    transformer = _YieldInsteadOfReturn(set(positions))
    fixed = wrapper.visit(transformer)
    return fixed.code, [p in transformer.done for p in positions]
