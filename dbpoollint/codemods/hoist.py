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

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import ClassVar

import libcst as cst
from libcst.metadata import (
    Assignment,
    BuiltinScope,
    CodeRange,
    GlobalScope,
    MetadataWrapper,
    PositionProvider,
)
from libcst.metadata.base_provider import ProviderT

from dbpoollint.analysis.multiplex import AncestorsVisitor, visit_subtree
from dbpoollint.analysis.scopes import ScopesProvider
from dbpoollint.checks.base import Fix
from dbpoollint.codemods.imports import add_stdlib_import
from dbpoollint.codemods.line_split import DEFAULT_LINE_LENGTH, split_long_lines
from dbpoollint.fixes import (
    edits_between,
    imports_module,
    insertion_index,
    strip_blank,
    taken_names,
    unique_name,
)
from dbpoollint.packs import ClientCall, PackSet

REQUEST_OBJECTS = ("flask.request", "quart.request", "flask.session", "flask.g", "quart.g")
ENVIRONMENT_READS = ("os.environ", "os.getenv", "os.environ.get")


@dataclass(frozen=True)
class HoistRequest:
    line: int
    column: int
    call: ClientCall
    in_handler: bool  # the call sits in the handler itself, so its parameters are request data
    # The project's `line-length`: a getter line longer than it is split as `ruff format` would.
    line_length: int = DEFAULT_LINE_LENGTH


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


class _Planning(AncestorsVisitor):
    """How a hoist is judged, shared by `hoist` (`_Finder`) and the analysis (`HoistPlanner`)."""

    # Qualified names come from the scopes (QualifiedNameProvider would cost one more walk).
    METADATA_DEPENDENCIES: ClassVar[Collection[ProviderT]] = (ScopesProvider,)

    def __init__(self) -> None:
        super().__init__()
        self.functions: list[cst.FunctionDef] = []
        self.targets: list[_Target] = []
        self.plans: dict[HoistRequest, HoistPlan] = {}

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        self.functions.append(node)

    def leave_FunctionDef(self, original_node: cst.FunctionDef) -> None:
        self.functions.pop()

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
        """`engine = C(...)`, also a default built in place of a parameter: `engine = engine
        or C(...)`, `engine = C(...) if engine is None else engine` (its close counts too)."""
        depth = 3 if isinstance(replace, cst.Await) else 2
        child: cst.CSTNode = replace
        parent = self.ancestors[-depth]
        while depth < len(self.ancestors) and (
            (isinstance(parent, cst.BooleanOperation) and parent.right is child)
            or (isinstance(parent, cst.IfExp) and child in (parent.body, parent.orelse))
        ):
            depth += 1
            child, parent = parent, self.ancestors[-depth]
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
        scope = self.get_metadata(ScopesProvider, root, None)
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
                scope = self.get_metadata(ScopesProvider, name, None)
                if scope is None:
                    continue
                qualnames = {q.name for q in scope.get_qualified_names_for(name)}
                if qualnames & set(REQUEST_OBJECTS):
                    return None
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


class _Finder(_Planning):
    """Finds the requested calls by position and plans each."""

    METADATA_DEPENDENCIES: ClassVar[Collection[ProviderT]] = (PositionProvider,)

    def __init__(self, requests: Sequence[HoistRequest]) -> None:
        super().__init__()
        self.by_position = {(r.line, r.column): r for r in requests}

    def visit_Call(self, node: cst.Call) -> None:
        position: CodeRange = self.get_metadata(PositionProvider, node)
        request = self.by_position.get((position.start.line, position.start.column + 1))
        if request is None or not self.functions:
            return
        plan = self._plan(request, node)
        self.plans[request] = plan


class HoistPlanner(_Planning):
    """The analysis' side of the fix: plans a hoist for every creation site as the indexer finds
    it, in the same walk, so `check` can show which DPL101 findings are fixable (and how safely)
    without running the codemod. `hoist` makes the same plan again when it rewrites.

    Runs after the indexer in one multiplexed walk: by the time it sees a call, the indexer has
    recorded it as a site or not.
    """

    def __init__(self, site_nodes: Sequence[tuple[cst.Call, object]], packs: PackSet) -> None:
        super().__init__()
        self.site_nodes = site_nodes
        self.packs = packs
        self._seen = 0
        # call -> (plan when it sits in the handler itself, plan when in a helper it calls)
        self.planned: dict[cst.Call, tuple[str | None, str | None]] = {}

    def visit_Call(self, node: cst.Call) -> None:
        if len(self.site_nodes) == self._seen:
            return
        self._seen = len(self.site_nodes)
        site_node, site = self.site_nodes[-1]
        callee = getattr(site, "callee", "")
        call = self.packs.client_call([callee])
        if site_node is not node or call is None or not self.functions:
            return
        in_handler = self._plan(HoistRequest(0, 0, call, True), node).applicability
        self.targets.clear()
        in_helper = self._plan(HoistRequest(0, 0, call, False), node).applicability
        self.targets.clear()
        self.planned[node] = (in_handler, in_helper)


def _names_in(expression: cst.CSTNode) -> list[cst.Name]:
    """Names read by an expression, skipping attribute names (`x.attr` reads `x` only)."""
    collector = _NamesRead()
    visit_subtree(expression, collector)
    return collector.found


# Module-level visitor classes: the read-only walk learns each class's callbacks once.
class _NamesRead(cst.CSTVisitor):
    def __init__(self) -> None:
        super().__init__()
        self.found: list[cst.Name] = []

    def visit_Attribute(self, node: cst.Attribute) -> bool:
        visit_subtree(node.value, self)
        return False

    def visit_Name(self, node: cst.Name) -> None:
        self.found.append(node)

    def visit_Arg(self, node: cst.Arg) -> bool:
        visit_subtree(node.value, self)
        return False


def _close_statements(
    function: cst.FunctionDef, variable: str, call: ClientCall
) -> list[cst.SimpleStatementLine]:
    closes = _Closes(variable, call)
    visit_subtree(function.body, closes)
    return closes.found


class _Closes(cst.CSTVisitor):
    """`variable.close()` (or `await variable.close()`) statements."""

    def __init__(self, variable: str, call: ClientCall) -> None:
        super().__init__()
        self.variable = variable
        self.call = call
        self.found: list[cst.SimpleStatementLine] = []

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
            and value.func.value.value == self.variable
            and value.func.attr.value in self.call.close
        ):
            self.found.append(node)


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


def hoist(
    source: str, requests: Sequence[HoistRequest], allow_unsafe: bool
) -> tuple[str, list[HoistPlan]]:
    """Apply every applicable hoist; return the new source and the plan for each request."""
    module = cst.parse_module(source)
    wrapper = MetadataWrapper(module, unsafe_skip_copy=True)
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
            code = _getter_code(name, variable, construction, target.request.call)
            definitions.append(split_long_lines(code, target.request.line_length))
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
    for number, definition in enumerate(definitions):
        parsed = cst.parse_module(definition).body
        first = parsed[0]
        # isort (ruff's I001) keeps one blank line between the import block and a plain
        # statement; after anything else, and before a def, two.
        after_imports = number == 0 and index > 0 and _is_import(rewritten.body[index - 1])
        plain = isinstance(first, cst.SimpleStatementLine)
        blank = [cst.EmptyLine()] * (1 if after_imports and plain else 2)
        new_statements.extend([first.with_changes(leading_lines=blank), *parsed[1:]])
    body = list(rewritten.body)
    if index < len(body) and new_statements:
        following = body[index]
        body[index] = following.with_changes(
            leading_lines=[cst.EmptyLine(), cst.EmptyLine(), *strip_blank(following.leading_lines)]
        )
    body[index:index] = new_statements
    rewritten = rewritten.with_changes(body=body)
    for module_name in sorted(needs):
        if not imports_module(rewritten, module_name):
            rewritten = add_stdlib_import(rewritten, f"import {module_name}")
    return rewritten.code, plans


def _is_import(statement: cst.BaseStatement) -> bool:
    return isinstance(statement, cst.SimpleStatementLine) and all(
        isinstance(small, cst.Import | cst.ImportFrom) for small in statement.body
    )


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
    if synchronous and imports_module(module, "atexit"):
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


def hoist_fix(source: str, request: HoistRequest) -> Fix | None:
    """The fix for one finding, as edits, for JSON output and `--diff`."""
    fixed, (plan,) = hoist(source, [request], allow_unsafe=True)
    if plan.applicability is None or fixed == source:
        return None
    return Fix(
        plan.applicability, "Hoist into a module-level lazy singleton", edits_between(source, fixed)
    )
