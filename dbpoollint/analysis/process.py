"""Facts about loops and processes: clients built per iteration (DPL104) and what a fork
inherits (DPL105, the budget).

One more visitor on the module's wrapper, next to the indexer: it records

- pool/opener calls and calls to project functions that run once per loop iteration (a `for` or
  `while` body, a `while` test, a comprehension's element), with whether their arguments vary
  with the loop, whether the loop is a retry loop, and whether the statement can be hoisted;
- fork points (`os.fork`, `multiprocessing`, `ProcessPoolExecutor`) and the start methods a
  module names;
- post-fork resets: `worker_process_init` handlers and `os.register_at_fork(after_in_child=...)`
  callbacks, with the objects they dispose or close, and every `x.dispose(close=False)`;
- the project modules it imports, for the import graph the process model walks.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Mapping
from dataclasses import dataclass

import libcst as cst
from libcst.helpers import get_full_name_for_node
from libcst.metadata import CodeRange, QualifiedNameSource

from dbpoollint.analysis.model import (
    NO_SPAN,
    ForkFact,
    ForkResetFact,
    LoopCallFact,
    ModuleSummary,
    ProcessFacts,
    span_of,
)
from dbpoollint.analysis.multiplex import AncestorsVisitor, visit_subtree
from dbpoollint.analysis.scopes import NamesMemo, ScopesProvider, absolute_name
from dbpoollint.packs import PackSet

FORK_CALLS = {
    "os.fork": "os.fork()",
    "os.forkpty": "os.forkpty()",
    "multiprocessing.Process": "multiprocessing.Process",
    "multiprocessing.context.Process": "multiprocessing.Process",
    "multiprocessing.Pool": "multiprocessing.Pool",
    "multiprocessing.pool.Pool": "multiprocessing.Pool",
    "concurrent.futures.ProcessPoolExecutor": "ProcessPoolExecutor",
    "concurrent.futures.process.ProcessPoolExecutor": "ProcessPoolExecutor",
}
START_METHOD_CALLS = ("multiprocessing.set_start_method", "multiprocessing.get_context")
RESET_METHODS = frozenset({"dispose", "close", "reset", "closeall", "terminate", "close_all"})
WORKER_PROCESS_INIT = ("celery.signals.worker_process_init",)
_STDLIB = frozenset(sys.stdlib_module_names)


@dataclass
class _Loop:
    kind: str
    line_node: cst.CSTNode
    variant: frozenset[str]
    has_exit: bool
    over_range: bool
    body: cst.BaseSuite | None


class ProcessVisitor(AncestorsVisitor):
    METADATA_DEPENDENCIES = (ScopesProvider,)

    def __init__(self, summary: ModuleSummary, packs: PackSet, package: str) -> None:
        super().__init__()
        self.summary = summary
        self.facts: ProcessFacts = summary.process
        self.packs = packs
        self.package = package
        self.names_memo = NamesMemo(package)
        self.scopes: list[tuple[str, str]] = []  # ("function" | "class", key)
        # Loops per scope: a nested function's body does not run per iteration of the outer one.
        self.active: list[list[_Loop]] = [[]]
        self._loop_nodes: dict[int, cst.CSTNode] = {}
        self.defined: set[str] = set()
        self.pending: list[tuple[cst.CSTNode, object]] = []

    # --- bookkeeping ----------------------------------------------------------------------------

    def _qualified(self, node: cst.CSTNode) -> tuple[frozenset[str], bool]:
        """Qualified names, and whether they name an import or a module-level definition."""
        every, names = self.names_memo.names(self, node)
        # A project function a loop may call: imported, or defined at this module's top level.
        known = any(
            (n.source is QualifiedNameSource.IMPORT and n.name.split(".", 1)[0] not in _STDLIB)
            or (n.source is QualifiedNameSource.LOCAL and n.name in self.defined)
            for n in names
        )
        return every, known

    def qualnames(self, node: cst.CSTNode) -> frozenset[str]:
        return self._qualified(node)[0]

    def finish(self, positions: Mapping[cst.CSTNode, CodeRange]) -> None:
        for node, fact in self.pending:
            span = span_of(positions[node])
            if isinstance(fact, LoopCallFact):
                loop_line = positions[self._loop_nodes[id(fact)]].start.line
                self.facts.loop_calls.append(
                    dataclasses.replace(fact, span=span, loop_line=loop_line)
                )
            elif isinstance(fact, ForkFact):
                self.facts.forks.append(dataclasses.replace(fact, span=span))
            elif isinstance(fact, ForkResetFact):
                self.facts.resets.append(dataclasses.replace(fact, span=span))

    @property
    def function(self) -> str | None:
        """The enclosing function's key; None at module level or directly in a class body."""
        if self.scopes and self.scopes[-1][0] == "function":
            return self.scopes[-1][1]
        return None

    # --- scopes and imports ---------------------------------------------------------------------

    def visit_Module(self, node: cst.Module) -> None:
        for statement in node.body:
            if isinstance(statement, cst.FunctionDef | cst.ClassDef):
                self.defined.add(statement.name.value)

    def visit_Import(self, node: cst.Import) -> None:
        for alias in node.names:
            name = get_full_name_for_node(alias.name) or ""
            if name and name.split(".", 1)[0] not in _STDLIB:
                self.facts.imports.add(name)

    def visit_ImportFrom(self, node: cst.ImportFrom) -> None:
        dots = "." * len(node.relative)
        module = dots + (get_full_name_for_node(node.module) or "" if node.module else "")
        module = absolute_name(module, self.package) if dots else module
        if not module or module.split(".", 1)[0] in _STDLIB:
            return
        self.facts.imports.add(module)
        if not isinstance(node.names, cst.ImportStar):
            for alias in node.names:
                self.facts.imports.add(f"{module}.{get_full_name_for_node(alias.name)}")

    def _child_key(self, name: str) -> str:
        """The indexer's function keys: `Class.method`, `outer.<locals>.inner`."""
        if not self.scopes:
            return name
        kind, key = self.scopes[-1]
        return f"{key}.{name}" if kind == "class" else f"{key}.<locals>.{name}"

    def visit_ClassDef(self, node: cst.ClassDef) -> None:
        self.scopes.append(("class", self._child_key(node.name.value)))
        self.active.append([])

    def leave_ClassDef(self, original_node: cst.ClassDef) -> None:
        self.scopes.pop()
        self.active.pop()

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        self.scopes.append(("function", self._child_key(node.name.value)))
        self.active.append([])

    def leave_FunctionDef(self, original_node: cst.FunctionDef) -> None:
        self.scopes.pop()
        self.active.pop()

    def visit_Lambda(self, node: cst.Lambda) -> None:
        self.active.append([])

    def leave_Lambda(self, original_node: cst.Lambda) -> None:
        self.active.pop()

    # --- loops ------------------------------------------------------------------------------------

    def visit_For_body(self, node: cst.For) -> None:
        over_range = isinstance(node.iter, cst.Call) and "builtins.range" in self.qualnames(
            node.iter.func
        )
        variant = _assigned_names(node.target) | _assigned_in(node.body)
        self.active[-1].append(
            _Loop("for", node, frozenset(variant), _exits(node.body), over_range, node.body)
        )

    def leave_For_body(self, node: cst.For) -> None:
        self.active[-1].pop()

    def visit_While_test(self, node: cst.While) -> None:
        variant = frozenset(_assigned_in(node.body))
        self.active[-1].append(_Loop("while", node, variant, _exits(node.body), False, node.body))

    def leave_While_body(self, node: cst.While) -> None:
        self.active[-1].pop()

    def _enter_comprehension(self, node: cst.BaseComp | cst.DictComp) -> None:
        variant: set[str] = set()
        generator: cst.CompFor | None = node.for_in
        while generator is not None:
            variant |= _assigned_names(generator.target)
            generator = generator.inner_for_in
        self.active[-1].append(_Loop("comprehension", node, frozenset(variant), False, False, None))

    def visit_ListComp_elt(self, node: cst.ListComp) -> None:
        self._enter_comprehension(node)

    def leave_ListComp_elt(self, node: cst.ListComp) -> None:
        self.active[-1].pop()

    def visit_SetComp_elt(self, node: cst.SetComp) -> None:
        self._enter_comprehension(node)

    def leave_SetComp_elt(self, node: cst.SetComp) -> None:
        self.active[-1].pop()

    def visit_GeneratorExp_elt(self, node: cst.GeneratorExp) -> None:
        self._enter_comprehension(node)

    def leave_GeneratorExp_elt(self, node: cst.GeneratorExp) -> None:
        self.active[-1].pop()

    def visit_DictComp_value(self, node: cst.DictComp) -> None:
        self._enter_comprehension(node)

    def leave_DictComp_value(self, node: cst.DictComp) -> None:
        self.active[-1].pop()

    # --- calls ------------------------------------------------------------------------------------

    def visit_Call(self, node: cst.Call) -> None:
        qualnames, known = self._qualified(node.func)
        self._record_fork(node, qualnames)
        self._record_reset(node, qualnames)
        if self.active[-1] and qualnames:
            self._record_loop_call(node, qualnames, known)

    def _record_loop_call(self, node: cst.Call, qualnames: frozenset[str], known: bool) -> None:
        call = self.packs.client_call(sorted(qualnames))
        if call is not None:
            keywords = {a.keyword.value for a in node.args if a.keyword is not None}
            if keywords & {*call.reuses_pool_keywords, *call.pool_keywords}:
                return  # `Redis(connection_pool=shared)`: no new pool
        elif not known or (
            isinstance(node.func, cst.Attribute)
            and not isinstance(node.func.value, cst.Name | cst.Attribute)
        ):
            return  # not a project function, or a method of a call's result
        loop = self.active[-1][-1]
        used = _names_in_arguments(node)
        varies = bool(used & loop.variant)
        in_try = any(isinstance(a, cst.Try) for a in self._since(loop.line_node))
        retry = loop.has_exit and (in_try or loop.kind == "while" or loop.over_range)
        fact = LoopCallFact(
            NO_SPAN,
            tuple(sorted(qualnames)),
            call is not None,
            self.function,
            loop.kind,
            0,
            varies,
            retry,
            self._hoist_target(node, loop) if call is not None and not varies else "",
        )
        self._loop_nodes[id(fact)] = loop.line_node
        self.pending.append((node, fact))

    def _since(self, loop_node: cst.CSTNode) -> list[cst.CSTNode]:
        """The ancestors between the loop and the current node."""
        index = max(i for i, a in enumerate(self.ancestors) if a is loop_node)
        return self.ancestors[index + 1 : -1]

    def _hoist_target(self, node: cst.Call, loop: _Loop) -> str:
        """`name = call(...)` as a statement of the loop body itself, the only assignment of
        `name` in the loop."""
        between = self._since(loop.line_node)
        if loop.body is None or len(between) != 3:
            return ""
        block, line, assign = between[0], between[1], between[2]
        if (
            block is not loop.body
            or not isinstance(line, cst.SimpleStatementLine)
            or len(line.body) != 1
            or not isinstance(assign, cst.Assign)
            or assign.value is not node
            or len(assign.targets) != 1
            or not isinstance(assign.targets[0].target, cst.Name)
        ):
            return ""
        name = assign.targets[0].target.value
        return name if _assignment_count(loop.body, name) == 1 else ""

    # --- forks and resets -------------------------------------------------------------------------

    def _record_fork(self, node: cst.Call, qualnames: frozenset[str]) -> None:
        for name in qualnames:
            if name in FORK_CALLS:
                self.pending.append((node, ForkFact(NO_SPAN, FORK_CALLS[name], self.function)))
                return
        if qualnames & frozenset(START_METHOD_CALLS) and node.args:
            first = node.args[0].value
            if isinstance(first, cst.SimpleString) and isinstance(first.evaluated_value, str):
                self.facts.start_methods.add(first.evaluated_value)

    def _record_reset(self, node: cst.Call, qualnames: frozenset[str]) -> None:
        func = node.func
        if isinstance(func, cst.Attribute) and func.attr.value in RESET_METHODS:
            targets = self.qualnames(func.value) or _text_name(func.value)
            function = self.function
            if function is not None:
                self.facts.function_resets.setdefault(function, set()).update(targets)
            if func.attr.value == "dispose" and _keyword_is(node, "close", "False"):
                self.facts.disposed_keeping_connections.update(targets)
        if "os.register_at_fork" in qualnames:
            for arg in node.args:
                if arg.keyword is not None and arg.keyword.value == "after_in_child":
                    self._reset_hook(node, "os.register_at_fork(after_in_child=...)", arg.value)
        if (
            isinstance(func, cst.Attribute)
            and func.attr.value == "connect"
            and node.args
            and self.qualnames(func.value) & frozenset(WORKER_PROCESS_INIT)
        ):
            self._reset_hook(node, "worker_process_init", node.args[0].value)

    def visit_Decorator(self, node: cst.Decorator) -> None:
        expression = node.decorator
        if isinstance(expression, cst.Call):
            expression = expression.func
        if not isinstance(expression, cst.Attribute) or expression.attr.value != "connect":
            return
        if self.qualnames(expression.value) & frozenset(WORKER_PROCESS_INIT):
            parent = self.ancestors[-2] if len(self.ancestors) > 1 else None
            if isinstance(parent, cst.FunctionDef):
                key = self.scopes[-1][1] if self.scopes else parent.name.value
                self.pending.append((node, ForkResetFact(NO_SPAN, "worker_process_init", key)))

    def _reset_hook(self, node: cst.Call, hook: str, callback: cst.BaseExpression) -> None:
        if isinstance(callback, cst.Lambda):
            targets: set[str] = set()
            for call in _calls_in(callback.body):
                if isinstance(call.func, cst.Attribute) and call.func.attr.value in RESET_METHODS:
                    targets |= self.qualnames(call.func.value) or _text_name(call.func.value)
            self.pending.append((node, ForkResetFact(NO_SPAN, hook, "", frozenset(targets))))
            return
        if isinstance(callback, cst.Attribute) and callback.attr.value in RESET_METHODS:
            # `after_in_child=engine.dispose`
            targets = set(self.qualnames(callback.value) or _text_name(callback.value))
            self.pending.append((node, ForkResetFact(NO_SPAN, hook, "", frozenset(targets))))
            return
        names = self.qualnames(callback)
        local = next((n for n in sorted(names) if "." not in n), None)
        key = local or (get_full_name_for_node(callback) or "")
        self.pending.append((node, ForkResetFact(NO_SPAN, hook, key)))


# --- small tree helpers ---------------------------------------------------------------------


class _Collector(cst.CSTVisitor):
    """Names assigned, loop exits and calls in a block, not descending into nested scopes."""

    def __init__(self, nested_loops: bool = True) -> None:
        super().__init__()
        self.assigned: list[str] = []
        self.exits = False
        self.calls: list[cst.Call] = []
        self.loop_depth = 0
        self.nested_loops = nested_loops

    def visit_FunctionDef(self, node: cst.FunctionDef) -> bool:
        return False

    def visit_ClassDef(self, node: cst.ClassDef) -> bool:
        return False

    def visit_Lambda(self, node: cst.Lambda) -> bool:
        return False

    def visit_For(self, node: cst.For) -> None:
        self.loop_depth += 1

    def leave_For(self, original_node: cst.For) -> None:
        self.loop_depth -= 1

    def visit_While(self, node: cst.While) -> None:
        self.loop_depth += 1

    def leave_While(self, original_node: cst.While) -> None:
        self.loop_depth -= 1

    def visit_Break(self, node: cst.Break) -> None:
        self.exits = self.exits or self.loop_depth == 0

    def visit_Return(self, node: cst.Return) -> None:
        self.exits = True

    def visit_AssignTarget(self, node: cst.AssignTarget) -> None:
        self.assigned.extend(_assigned_names(node.target))

    def visit_AnnAssign(self, node: cst.AnnAssign) -> None:
        self.assigned.extend(_assigned_names(node.target))

    def visit_AugAssign(self, node: cst.AugAssign) -> None:
        self.assigned.extend(_assigned_names(node.target))

    def visit_NamedExpr(self, node: cst.NamedExpr) -> None:
        self.assigned.extend(_assigned_names(node.target))

    def visit_AsName(self, node: cst.AsName) -> None:
        self.assigned.extend(_assigned_names(node.name))

    def visit_CompFor(self, node: cst.CompFor) -> None:
        self.assigned.extend(_assigned_names(node.target))

    def visit_For_target(self, node: cst.For) -> None:
        self.assigned.extend(_assigned_names(node.target))

    def visit_Call(self, node: cst.Call) -> None:
        self.calls.append(node)


def _collect(node: cst.CSTNode) -> _Collector:
    collector = _Collector()
    visit_subtree(node, collector)
    return collector


def _assigned_in(body: cst.BaseSuite) -> set[str]:
    return set(_collect(body).assigned)


def _assignment_count(body: cst.BaseSuite, name: str) -> int:
    return _collect(body).assigned.count(name)


def _exits(body: cst.BaseSuite) -> bool:
    return _collect(body).exits


def _calls_in(node: cst.CSTNode) -> list[cst.Call]:
    collector = _Collector()
    visit_subtree(node, collector)
    return collector.calls


def _assigned_names(target: cst.CSTNode) -> set[str]:
    if isinstance(target, cst.Name):
        return {target.value}
    if isinstance(target, cst.Tuple | cst.List):
        names: set[str] = set()
        for element in target.elements:
            names |= _assigned_names(element.value)
        return names
    if isinstance(target, cst.StarredElement):
        return _assigned_names(target.value)
    return set()


class _Names(cst.CSTVisitor):
    def __init__(self) -> None:
        super().__init__()
        self.names: set[str] = set()

    def visit_Name(self, node: cst.Name) -> None:
        self.names.add(node.value)


def _names_in_arguments(call: cst.Call) -> set[str]:
    collector = _Names()
    for arg in call.args:
        visit_subtree(arg.value, collector)
    # `row.connect()`, `clients[name]()`: the receiver is per iteration too.
    if isinstance(call.func, cst.Attribute | cst.Subscript):
        visit_subtree(call.func.value, collector)
    return collector.names


def _text_name(node: cst.BaseExpression) -> frozenset[str]:
    text = get_full_name_for_node(node)
    return frozenset({text}) if text else frozenset()


def _keyword_is(call: cst.Call, keyword: str, code: str) -> bool:
    return any(
        a.keyword is not None
        and a.keyword.value == keyword
        and isinstance(a.value, cst.Name)
        and a.value.value == code
        for a in call.args
    )
