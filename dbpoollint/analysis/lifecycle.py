"""Lifecycle facts of a module: closes of clients, shutdown and per-request hooks, and
connection acquisitions with how they are released (see :mod:`dbpoollint.analysis.leaks`).

Hooks are recognised by shape, whatever the receiver is called:

- shutdown: the function passed as `lifespan=` (code after its `yield`), FastAPI/Starlette
  `@app.on_event("shutdown")`, `add_event_handler("shutdown", f)`, `on_shutdown=[f]`, aiohttp
  `app.on_cleanup.append(f)` / `app.on_shutdown.append(f)` / `app.cleanup_ctx.append(f)` (after
  its `yield`), Quart `@app.after_serving`, Celery `@worker_process_shutdown.connect` /
  `worker_shutdown`, gunicorn `worker_exit` / `on_exit` hooks (module-level functions of that
  name), `atexit.register(f)` / `@atexit.register`, `signal.signal(SIG, f)`;
- per request: Flask/Quart `teardown_appcontext`, `teardown_request`, `after_request`,
  blueprints' `teardown_app_request` / `after_app_request`, Django
  `request_finished.connect(f)` / `@receiver(request_finished)`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Iterable, Mapping

import libcst as cst
from libcst.helpers import get_full_name_for_node
from libcst.metadata import CodeRange

from dbpoollint.analysis.leaks import LeakFinder
from dbpoollint.analysis.model import (
    NO_SPAN,
    AcquireFact,
    AttributeAcquireFact,
    CloseCall,
    HookFact,
    ModuleSummary,
    span_of,
)
from dbpoollint.analysis.scoped import ScopedVisitor
from dbpoollint.packs import PackSet

CLOSE_METHODS = frozenset(
    {
        "dispose",
        "close",
        "aclose",
        "wait_closed",
        "closeall",
        "disconnect",
        "terminate",
        "close_all",
        "close_connections",
    }
)
SHUTDOWN_DECORATOR_METHODS = frozenset({"after_serving", "while_serving_end"})
PER_REQUEST_METHODS = frozenset(
    {
        "teardown_appcontext",
        "teardown_request",
        "after_request",
        "teardown_app_request",
        "after_app_request",
    }
)
SHUTDOWN_SIGNALS = frozenset({"worker_process_shutdown", "worker_shutdown"})
PER_REQUEST_SIGNALS = frozenset({"request_finished"})
SHUTDOWN_LISTS = frozenset({"on_cleanup", "on_shutdown"})
GUNICORN_HOOKS = frozenset({"worker_exit", "on_exit", "worker_int"})


class LifecycleVisitor(ScopedVisitor):
    def __init__(
        self,
        summary: ModuleSummary,
        packs: PackSet,
        package: str,
        function_keys: Collection[str] = (),
    ) -> None:
        super().__init__(package)
        self.summary = summary
        # Every function of the module, also those defined below the hook that names them:
        # this visitor runs in the same walk as the indexer that fills `summary.functions`.
        self.function_keys = function_keys
        self.facts = summary.lifecycle
        self.packs = packs
        self.pending: list[tuple[cst.CSTNode, object]] = []
        self.scopes: list[tuple[str, str]] = []
        self.yielded: set[str] = set()
        self.leaks = LeakFinder(self)

    # --- helpers ---------------------------------------------------------------------------------

    def target_name(self, node: cst.BaseExpression) -> str | None:
        """The qualified name of a closed object: `engine` here, `app.db.engine` imported."""
        if isinstance(node, cst.Await):
            node = node.expression
        if not isinstance(node, cst.Name | cst.Attribute):
            return None
        names = sorted(self.qualnames(node))
        if names:
            return names[0]
        return get_full_name_for_node(node)

    @property
    def function(self) -> str | None:
        for kind, key in reversed(self.scopes):
            if kind == "function":
                return key
            return None
        return None

    def _child_key(self, name: str) -> str:
        if not self.scopes:
            return name
        kind, key = self.scopes[-1]
        return f"{key}.{name}" if kind == "class" else f"{key}.<locals>.{name}"

    def _function_key(self, node: cst.BaseExpression) -> str | None:
        """A reference to a function of this module (`shutdown`, `Hooks.close`)."""
        name = get_full_name_for_node(node)
        if name and (name in self.summary.functions or name in self.function_keys):
            return name
        return None

    def _hook(
        self, node: cst.BaseExpression, hook: str, label: str, after_yield: bool = False
    ) -> None:
        key = self._function_key(node)
        if key is not None:
            self.facts.hooks.append(HookFact(key, hook, label, after_yield))
            return
        # `atexit.register(engine.dispose)`: the callback closes the client itself.
        if isinstance(node, cst.Attribute) and node.attr.value in CLOSE_METHODS:
            target = self.target_name(node.value)
            if target is not None:
                close = CloseCall(NO_SPAN, target, node.attr.value, self.function, True, hook=hook)
                self.pending.append((node, close))
                return
        if isinstance(node, cst.Name | cst.Attribute):
            imported = sorted(n for n in self.qualnames(node) if "." in n)
            if imported:
                self.facts.hooks.append(HookFact("", hook, label, after_yield, imported[0]))

    def finish(self, positions: Mapping[cst.CSTNode, CodeRange]) -> None:
        for node, fact in self.pending:
            span = span_of(positions[node])
            if isinstance(fact, CloseCall):
                self.facts.closes.append(dataclasses.replace(fact, span=span))
            elif isinstance(fact, AcquireFact):
                self.facts.acquisitions.append(dataclasses.replace(fact, span=span))
            elif isinstance(fact, AttributeAcquireFact):
                self.facts.attribute_acquisitions.append(dataclasses.replace(fact, span=span))

    # --- scopes ----------------------------------------------------------------------------------

    def visit_ClassDef(self, node: cst.ClassDef) -> None:
        self.scopes.append(("class", self._child_key(node.name.value)))

    def leave_ClassDef(self, original_node: cst.ClassDef) -> None:
        self.scopes.pop()

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        key = self._child_key(node.name.value)
        module_level = not self.scopes
        self.scopes.append(("function", key))
        for decorator in node.decorators:
            self._decorator_hook(decorator.decorator, key)
        if module_level and node.name.value in GUNICORN_HOOKS:
            self.facts.hooks.append(HookFact(key, "shutdown", f"gunicorn `{node.name.value}`"))
        self.leaks.enter_function(node, key)

    def leave_FunctionDef(self, original_node: cst.FunctionDef) -> None:
        self.leaks.leave_function(original_node)
        self.scopes.pop()

    def visit_Global(self, node: cst.Global) -> None:
        function = self.function
        if function is not None:
            self.facts.globals_declared.setdefault(function, set()).update(
                n.name.value for n in node.names
            )

    def visit_Assign(self, node: cst.Assign) -> None:
        if not self.scopes:
            for target in node.targets:
                if isinstance(target.target, cst.Name):
                    self.leaks.module_assign(target.target.value, node.value)

    def visit_Yield(self, node: cst.Yield) -> None:
        if self.function is not None:
            self.yielded.add(self.function)

    # --- hooks -----------------------------------------------------------------------------------

    def _decorator_hook(self, expression: cst.BaseExpression, key: str) -> None:
        arguments: list[cst.Arg] = []
        if isinstance(expression, cst.Call):
            arguments = list(expression.args)
            expression = expression.func
        names = self.qualnames(expression)
        method = expression.attr.value if isinstance(expression, cst.Attribute) else ""
        receiver = (
            get_full_name_for_node(expression.value) or ""
            if isinstance(expression, cst.Attribute)
            else ""
        )
        first = _string(arguments[0].value) if arguments else None
        if "atexit.register" in names:
            self.facts.hooks.append(HookFact(key, "shutdown", "`atexit.register`"))
        elif method == "on_event" and first == "shutdown":
            self.facts.hooks.append(HookFact(key, "shutdown", "`on_event('shutdown')`"))
        elif method in SHUTDOWN_DECORATOR_METHODS:
            self.facts.hooks.append(HookFact(key, "shutdown", f"`{method}`"))
        elif method in PER_REQUEST_METHODS:
            self.facts.hooks.append(HookFact(key, "per-request", f"`{method}`"))
        elif method == "connect" and receiver.rsplit(".", 1)[-1] in SHUTDOWN_SIGNALS:
            self.facts.hooks.append(HookFact(key, "shutdown", f"Celery `{receiver}`"))
        elif method == "connect" and receiver.rsplit(".", 1)[-1] in PER_REQUEST_SIGNALS:
            self.facts.hooks.append(HookFact(key, "per-request", "Django `request_finished`"))
        elif names & {"django.dispatch.receiver"} and arguments:
            signal = get_full_name_for_node(arguments[0].value) or ""
            if signal.rsplit(".", 1)[-1] in PER_REQUEST_SIGNALS:
                self.facts.hooks.append(HookFact(key, "per-request", "Django `request_finished`"))

    def visit_Call(self, node: cst.Call) -> None:
        func = node.func
        method = func.attr.value if isinstance(func, cst.Attribute) else ""
        receiver = (
            get_full_name_for_node(func.value) or "" if isinstance(func, cst.Attribute) else ""
        )
        positional = [a.value for a in node.args if a.keyword is None and not a.star]
        names = self.qualnames(func)
        if "atexit.register" in names and positional:
            self._hook(positional[0], "shutdown", "`atexit.register`")
        elif "signal.signal" in names and len(positional) > 1:
            self._hook(positional[1], "shutdown", "a signal handler")
        elif method == "add_event_handler" and len(positional) > 1:
            if _string(positional[0]) == "shutdown":
                self._hook(positional[1], "shutdown", "`add_event_handler('shutdown')`")
        elif method == "append" and positional:
            last = receiver.rsplit(".", 1)[-1]
            if last in SHUTDOWN_LISTS:
                self._hook(positional[0], "shutdown", f"aiohttp `{last}`")
            elif last == "cleanup_ctx":
                self._hook(positional[0], "shutdown", "aiohttp `cleanup_ctx`", after_yield=True)
        elif method in PER_REQUEST_METHODS and positional:
            self._hook(positional[0], "per-request", f"`{method}`")
        elif method == "connect" and positional:
            last = receiver.rsplit(".", 1)[-1]
            if last in SHUTDOWN_SIGNALS:
                self._hook(positional[0], "shutdown", f"Celery `{last}`")
            elif last in PER_REQUEST_SIGNALS:
                self._hook(positional[0], "per-request", "Django `request_finished`")
        for arg in node.args:
            if arg.keyword is None:
                continue
            if arg.keyword.value == "lifespan":
                self._hook(arg.value, "shutdown", "the `lifespan`", after_yield=True)
            elif arg.keyword.value == "on_shutdown" and isinstance(arg.value, cst.List | cst.Tuple):
                for element in arg.value.elements:
                    self._hook(element.value, "shutdown", "`on_shutdown`")
        self._close(node, method)
        self.leaks.visit_call(node)

    def _close(self, node: cst.Call, method: str) -> None:
        if method not in CLOSE_METHODS or not isinstance(node.func, cst.Attribute):
            return
        target = self.target_name(node.func.value)
        if target is None:
            return
        function = self.function
        if function is None:
            self.facts.module_level_calls.add(target)
        after_yield = function is not None and function in self.yielded
        self.pending.append(
            (node, CloseCall(NO_SPAN, target, method, function, after_yield=after_yield))
        )


def _string(node: cst.BaseExpression) -> str | None:
    if isinstance(node, cst.SimpleString):
        value = node.evaluated_value
        return value if isinstance(value, str) else None
    return None


def function_keys(module: cst.Module) -> set[str]:
    """The key of every function in the module (`f`, `C.m`, `f.<locals>.g`), from its statements
    alone: far cheaper than a walk over every expression."""
    keys: set[str] = set()

    def walk(statements: Iterable[cst.CSTNode], kind: str, prefix: str) -> None:
        for statement in statements:
            if isinstance(statement, cst.FunctionDef | cst.ClassDef):
                name = statement.name.value
                if not prefix:
                    key = name
                else:
                    key = f"{prefix}.{name}" if kind == "class" else f"{prefix}.<locals>.{name}"
                is_function = isinstance(statement, cst.FunctionDef)
                if is_function:
                    keys.add(key)
                walk(_blocks(statement), "function" if is_function else "class", key)
            else:
                walk(_blocks(statement), kind, prefix)

    walk(module.body, "", "")
    return keys


def _blocks(statement: cst.CSTNode) -> list[cst.CSTNode]:
    """The statements directly inside a compound statement's blocks."""
    found: list[cst.CSTNode] = []
    parts: list[cst.CSTNode | None] = []
    if isinstance(statement, cst.FunctionDef | cst.ClassDef | cst.With | cst.For | cst.While):
        parts.append(statement.body)
        if isinstance(statement, cst.For | cst.While):
            parts.append(statement.orelse)
    elif isinstance(statement, cst.If):
        parts += [statement.body, statement.orelse]
    elif isinstance(statement, cst.Else | cst.Finally | cst.ExceptHandler | cst.ExceptStarHandler):
        parts.append(statement.body)
    elif isinstance(statement, cst.Try | cst.TryStar):
        parts += [statement.body, *statement.handlers, statement.orelse, statement.finalbody]
    elif isinstance(statement, cst.Match):
        parts += [case.body for case in statement.cases]
    for part in parts:
        if isinstance(part, cst.IndentedBlock):
            found.extend(part.body)
        elif part is not None:
            found.append(part)  # `elif`, `else`, `except` and `finally` clauses
    return found
