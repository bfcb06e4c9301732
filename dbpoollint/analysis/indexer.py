"""One libcst pass over a module that records the facts in :mod:`dbpoollint.analysis.model`.

Names are resolved with libcst's ``QualifiedNameProvider``: ``import sqlalchemy as sa;
sa.create_engine`` and ``from sqlalchemy import create_engine as ce; ce`` both resolve to
``sqlalchemy.create_engine``, and a local ``def connect()`` resolves to ``connect``, which no
pack names.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import re
import sys
from collections.abc import Iterator, Mapping, Sequence

import libcst as cst
from libcst.helpers import get_full_name_for_node
from libcst.metadata import CodeRange, QualifiedNameSource

from dbpoollint.analysis.code_text import code_of
from dbpoollint.analysis.model import (
    NO_SPAN,
    ClassFact,
    ClientCallFact,
    CreationSite,
    DecoratorFact,
    FunctionFact,
    ModuleSummary,
    span_of,
)
from dbpoollint.analysis.multiplex import AncestorsVisitor, visit_subtree
from dbpoollint.analysis.scopes import NamesMemo, ScopesProvider, absolute_name
from dbpoollint.analysis.value_reader import read_value
from dbpoollint.analysis.vocabulary import CONSTRUCTORS
from dbpoollint.packs import ClientCall, PackSet, qualname_matches

# Decorators that make a function build its result once: the client inside is a singleton.
CACHING_DECORATORS = (
    "functools.cache",
    "functools.lru_cache",
    "functools.cached_property",
    "async_lru.alru_cache",
    "cachetools.cached",
    "cachetools.func.*",
    "aiocache.cached",
    "asyncstdlib.cache",
    "asyncstdlib.lru_cache",
    "django.utils.functional.cached_property",
)
# Calling a class runs these: `Reporter()` per request runs `Reporter.__init__` per request.
REQUEST_GLOBALS = ("flask.g", "quart.g", "flask.globals.g")
_SCOPE_BOUNDARIES = (cst.FunctionDef, cst.ClassDef, cst.Lambda)


class ModuleIndexer(AncestorsVisitor):
    # Only scopes: qualified names are asked for the few nodes that matter, and positions are
    # resolved afterwards for the creation sites alone. Both are whole-tree passes otherwise.
    METADATA_DEPENDENCIES = (ScopesProvider,)

    def __init__(self, summary: ModuleSummary, packs: PackSet, package: str) -> None:
        super().__init__()
        self.summary = summary
        self.packs = packs
        self.package = package
        self.names_memo = NamesMemo(package)
        self.scopes: list[tuple[str, str]] = []
        self.instances: dict[str, set[str]] = {}
        self.imported_names: set[str] = set()
        self.imported_modules: set[str] = set()
        self.declared_global: dict[str, set[str]] = {}
        self.site_nodes: list[tuple[cst.Call, CreationSite]] = []
        self.call_nodes: list[tuple[cst.Call, ClientCallFact]] = []
        # Code of every `if`/`while` test seen so far, per function: the lazy-init guards.
        self.tests_seen: dict[str, list[str]] = {}
        self.registrations: list[tuple[frozenset[str], str, bool]] = []
        self.raw_references: dict[str, set[str]] = {}
        self.defined_names: set[str] = set()
        # Local names a creation site's result is bound to, and the names each function returns.
        self.site_locals: dict[cst.Call, frozenset[str]] = {}
        self.returned_names: dict[str, set[str]] = {}
        # Per function: local name -> qualified names of the call whose result it holds.
        self.bound_calls: dict[str, dict[str, frozenset[str]]] = {}
        # Per function: container -> locals read from it (`entry = _clients.get(key)`).
        self.read_from: dict[str, dict[str, set[str]]] = {}
        # Per function: locals stored on `flask.g` (`g.db = pool`).
        self.request_stored: dict[str, set[str]] = {}
        # Per function: parameters with a default, and their positions (-1: keyword-only).
        self.defaulted: dict[str, dict[str, int]] = {}
        self.close_methods = frozenset(
            method for pack in packs.packs for call in pack.calls for method in call.close
        )

    # --- bookkeeping -------------------------------------------------------------------------

    def qualnames(self, node: cst.CSTNode) -> frozenset[str]:
        return self._qualified(node)[0]

    def _qualified(self, node: cst.CSTNode) -> tuple[frozenset[str], frozenset[str]]:
        """Every qualified name of the node, and those that come from an import."""
        every, names = self.names_memo.names(self, node)
        if not any(n.source is QualifiedNameSource.IMPORT for n in names):
            return every, frozenset()
        imported = frozenset(
            absolute_name(n.name, self.package)
            for n in names
            if n.source is QualifiedNameSource.IMPORT
        )
        return every, imported

    def finish(self, positions: Mapping[cst.CSTNode, CodeRange]) -> None:
        """Give every creation site and client call its position, once positions are known."""
        for node, fact in self.call_nodes:
            self.summary.client_calls.append(
                dataclasses.replace(fact, span=span_of(positions[node]))
            )
        for node, site in self.site_nodes:
            span = span_of(positions[node])
            local_names = self.site_locals.get(node, frozenset())
            handed = local_names & self.returned_names.get(site.function, set())
            returned = site.returned or bool(handed)
            on_object = bool(handed) and all(name.startswith(".") for name in handed)
            storage = site.storage
            if local_names & self.request_stored.get(site.function, set()):
                storage = "flask-g"  # `pool = ConnectionPool(...); g.db = pool`
            self.summary.sites.append(
                dataclasses.replace(
                    site, span=span, returned=returned, storage=storage, on_object=on_object
                )
            )

    @property
    def current_function(self) -> str | None:
        for kind, key in reversed(self.scopes):
            if kind == "function":
                return key
            if kind == "class":
                return None
        return None

    def _child_key(self, name: str) -> str:
        if not self.scopes:
            return name
        kind, key = self.scopes[-1]
        return f"{key}.{name}" if kind == "class" else f"{key}.<locals>.{name}"

    # --- imports -----------------------------------------------------------------------------

    def visit_Import(self, node: cst.Import) -> None:
        for alias in node.names:
            module = get_full_name_for_node(alias.name) or ""
            self.imported_modules.add(module)
            bound = alias.asname.name if alias.asname else alias.name
            local = get_full_name_for_node(bound) or module
            self.imported_names.add(local.split(".", 1)[0])
            if not self.scopes and module:
                # `import a.b` binds `a`; `import a.b as m` binds `m` to `a.b`.
                if alias.asname is not None:
                    self.summary.imports[local] = module
                else:
                    top = module.split(".", 1)[0]
                    self.summary.imports.setdefault(top, top)

    def visit_ImportFrom(self, node: cst.ImportFrom) -> None:
        dots = "." * len(node.relative)
        module = dots + (get_full_name_for_node(node.module) or "" if node.module else "")
        module = absolute_name(module, self.package) if dots else module
        self.imported_modules.add(module)
        if isinstance(node.names, cst.ImportStar):
            if not self.scopes and module:
                self.summary.star_imports.append(module)
            return
        for alias in node.names:
            bound = alias.asname.name if alias.asname else alias.name
            name = get_full_name_for_node(alias.name)
            if isinstance(bound, cst.Name):
                self.imported_names.add(bound.value)
                if not self.scopes and name:
                    target = f"{module}.{name}" if module else name
                    self.summary.imports[bound.value] = target
            self.imported_modules.add(f"{module}.{name}")

    # --- definitions -------------------------------------------------------------------------

    def visit_ClassDef(self, node: cst.ClassDef) -> None:
        key = self._child_key(node.name.value)
        bases = frozenset(q for arg in node.bases for q in self._names_or_text(arg.value))
        self.summary.classes[key] = ClassFact(key=key, name=node.name.value, base_qualnames=bases)
        self.scopes.append(("class", key))

    def leave_ClassDef(self, original_node: cst.ClassDef) -> None:
        self.scopes.pop()

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        key = self._child_key(node.name.value)
        class_key = self.scopes[-1][1] if self.scopes and self.scopes[-1][0] == "class" else None
        decorators = tuple(self._decorator_fact(d) for d in node.decorators)
        params = tuple(p.name.value for p in (*node.params.posonly_params, *node.params.params))
        fact = FunctionFact(
            key=key,
            name=node.name.value,
            class_key=class_key,
            is_module_level=not self.scopes,
            params=params,
            decorators=decorators,
            barrier=any(qualname_matches(CACHING_DECORATORS, d.qualnames) for d in decorators),
            is_async=node.asynchronous is not None,
        )
        self.summary.functions[key] = fact
        if class_key is not None:
            self.summary.classes[class_key].methods.append(key)
        self.scopes.append(("function", key))
        self.declared_global[key] = set()
        self.raw_references[key] = set()
        self.tests_seen[key] = []
        self.returned_names[key] = set()
        self.bound_calls[key] = {}
        positional = (*node.params.posonly_params, *node.params.params)
        self.defaulted[key] = {
            p.name.value: (i if p in positional else -1)
            for i, p in enumerate((*positional, *node.params.kwonly_params))
            if p.default is not None
        }
        self.read_from[key] = {}

    def leave_FunctionDef(self, original_node: cst.FunctionDef) -> None:
        self.scopes.pop()

    def visit_If(self, node: cst.If) -> None:
        self._remember_test(node.test)

    def visit_While(self, node: cst.While) -> None:
        self._remember_test(node.test)

    def visit_IfExp(self, node: cst.IfExp) -> None:
        self._remember_test(node.test)

    def _remember_test(self, test: cst.BaseExpression) -> None:
        function = self.current_function
        if function is not None:
            self.tests_seen[function].append(code_of(test))

    def visit_Global(self, node: cst.Global) -> None:
        function = self.current_function
        if function is not None:
            self.declared_global[function].update(n.name.value for n in node.names)

    def visit_Nonlocal(self, node: cst.Nonlocal) -> None:
        function = self.current_function
        if function is not None:
            self.declared_global[function].update(n.name.value for n in node.names)

    def _decorator_fact(self, decorator: cst.Decorator) -> DecoratorFact:
        expression = decorator.decorator
        first_argument: str | None = None
        if isinstance(expression, cst.Call):
            positional = [a for a in expression.args if a.keyword is None]
            if positional and isinstance(positional[0].value, cst.SimpleString):
                value = positional[0].value.evaluated_value
                first_argument = value if isinstance(value, str) else None
            expression = expression.func
        qualnames = self.qualnames(expression)
        if isinstance(expression, cst.Attribute):
            receiver = get_full_name_for_node(expression.value) or ""
            return DecoratorFact(
                qualnames=qualnames,
                method=expression.attr.value,
                receiver=receiver,
                receiver_classes=frozenset(self.instances.get(receiver, ())),
                receiver_is_import=receiver.split(".", 1)[0] in self.imported_names,
                first_argument=first_argument,
            )
        return DecoratorFact(qualnames=qualnames, first_argument=first_argument)

    def _names_or_text(self, node: cst.BaseExpression) -> frozenset[str]:
        names = self.qualnames(node)
        if names:
            return names
        text = get_full_name_for_node(node)
        return frozenset({text}) if text else frozenset()

    # --- what instances are, for `@app.route` ------------------------------------------------

    def _record_constant(self, target: cst.BaseExpression, value: cst.BaseExpression) -> None:
        if self.scopes or not isinstance(target, cst.Name):
            return
        self.summary.constants[target.value] = read_value(value, self.qualnames)

    def visit_Assign(self, node: cst.Assign) -> None:
        if self.scopes and self.scopes[-1][0] == "class":
            self._class_attribute_registration(node)
        for assign_target in node.targets:
            self._record_constant(assign_target.target, node.value)
            if not self.scopes and _is_name(assign_target.target, "__all__"):
                self.summary.exports = _string_list(node.value)
        if isinstance(node.value, cst.Call):
            classes = self.qualnames(node.value.func)
            for target in node.targets:
                name = get_full_name_for_node(target.target)
                if name and classes:
                    self.instances.setdefault(name, set()).update(classes)
        self._bind_call(node.value, [t.target for t in node.targets])
        self._remember_request_global(node.value, [t.target for t in node.targets])
        self._remember_read(node.value, [t.target for t in node.targets])
        self._remember_cached_results(node.value, [t.target for t in node.targets])

    def _remember_read(self, value: cst.BaseExpression, targets: list[cst.BaseExpression]) -> None:
        """`entry = _clients.get(key)` / `entry = _clients[key]`: a test of `entry` guards
        `_clients` (`if entry is None: _clients[key] = ...`)."""
        function = self.current_function
        if function is None:
            return
        if isinstance(value, cst.Call) and isinstance(value.func, cst.Attribute):
            container = value.func.value if value.func.attr.value == "get" else None
        else:
            container = value.value if isinstance(value, cst.Subscript) else None
        name = get_full_name_for_node(container) if container is not None else None
        if not name:
            return
        for target in targets:
            if isinstance(target, cst.Name):
                self.read_from[function].setdefault(name, set()).add(target.value)

    def _remember_cached_results(
        self, value: cst.BaseExpression, targets: list[cst.BaseExpression]
    ) -> None:
        """A guarded cache keeps the results of calls stored in it, also inside a tuple, list or
        dict literal, or through a local (`client = make_client(url)`, then
        `_clients[key] = (client, time.time())`): those calls are not made per call."""
        function = self.current_function
        if function is None:
            return
        held: set[str] = set()
        for part in _returned_parts(value):
            if isinstance(part, cst.Await):
                part = part.expression
            if isinstance(part, cst.Call) and part is not value:
                held.update(self.qualnames(part.func))
            elif isinstance(part, cst.Name):
                held.update(self.bound_calls[function].get(part.value, ()))
        if not held:
            return
        guards = list(self.tests_seen[function])
        if any(self._target_storage(t, guards, function) == "cached" for t in targets):
            self.summary.functions[function].cached_calls.update(held)

    def _remember_request_global(
        self, value: cst.BaseExpression, targets: list[cst.BaseExpression]
    ) -> None:
        """`g.db = pool`: a local stored on `flask.g` lives for one request context."""
        function = self.current_function
        if function is None or not isinstance(value, cst.Name):
            return
        for target in targets:
            root: cst.BaseExpression = target
            while isinstance(root, cst.Attribute | cst.Subscript):
                root = root.value
            if root is not target and qualname_matches(REQUEST_GLOBALS, self.qualnames(root)):
                self.request_stored.setdefault(function, set()).add(value.value)

    def _bind_call(self, value: cst.BaseExpression, targets: list[cst.BaseExpression]) -> None:
        """Remember `client = make_client()` so that a later `client.close()` is understood."""
        function = self.current_function
        # `engine = engine or make()`, `engine = make() if engine is None else engine`
        if isinstance(value, cst.BooleanOperation):
            value = value.right
        elif isinstance(value, cst.IfExp):
            value = value.body if isinstance(value.body, cst.Call | cst.Await) else value.orelse
        if isinstance(value, cst.Await):
            value = value.expression
        if function is None or not isinstance(value, cst.Call):
            return
        qualnames = self.qualnames(value.func)
        for target in targets:
            if isinstance(target, cst.Name) and qualnames:
                self.bound_calls[function][target.value] = qualnames

    def visit_WithItem(self, node: cst.WithItem) -> None:
        function = self.current_function
        item = node.item.expression if isinstance(node.item, cst.Await) else node.item
        if function is not None and isinstance(item, cst.Call):
            self.summary.functions[function].closes_results_of.update(self.qualnames(item.func))

    def visit_AnnAssign(self, node: cst.AnnAssign) -> None:
        if node.value is not None:
            self._record_constant(node.target, node.value)
        name = get_full_name_for_node(node.target)
        if name and isinstance(node.value, cst.Call):
            self.instances.setdefault(name, set()).update(self.qualnames(node.value.func))
        if node.value is not None:
            self._bind_call(node.value, [node.target])

    # --- references and calls ----------------------------------------------------------------

    def visit_Module(self, node: cst.Module) -> None:
        self.defined_names = _defined_names(node.body)

    def visit_Name(self, node: cst.Name) -> None:
        function = self.current_function
        if function is not None and node.value in self.defined_names:
            self.raw_references[function].update(self.qualnames(node))

    def visit_Attribute(self, node: cst.Attribute) -> None:
        function = self.current_function
        if function is None:
            return
        if isinstance(node.value, cst.Name) and node.value.value in ("self", "cls"):
            self.summary.functions[function].self_references.add(node.attr.value)
            return
        if node.attr.value not in self.defined_names:
            return
        self.raw_references[function].update(self.qualnames(node))
        # `repository.find(...)` on `repository = Repository(...)` reaches `Repository.find`.
        receiver = get_full_name_for_node(node.value)
        for class_name in self.instances.get(receiver or "", ()):
            self.raw_references[function].add(f"{class_name}.{node.attr.value}")

    def visit_Return(self, node: cst.Return) -> None:
        function = self.current_function
        if function is None or node.value is None:
            return
        # `return client`, `return client[name]`, `return client.shop`: the caller gets it;
        # also inside a tuple, list or dict (`return engine, sessionmaker(engine)`).
        for element in _returned_parts(node.value):
            value = _unwrap_access(element)
            if isinstance(value, cst.Name):
                self.returned_names[function].add(value.value)
            if isinstance(element, cst.Name):  # the object itself, holding what was set on it
                self.returned_names[function].add(f".{element.value}")
        self.summary.functions[function].returned_names.update(
            name for name in self.returned_names[function] if not name.startswith(".")
        )

    def visit_Call(self, node: cst.Call) -> None:
        qualnames, imported = self._qualified(node.func)
        self._record_registration(node, qualnames)
        function = self.current_function
        if function is not None and imported:
            self.summary.functions[function].external_calls.update(
                name for name in imported if "." in name and not _is_stdlib(name)
            )
        if function is not None and qualnames:
            self._record_call_shape(node, function, qualnames, imported)
        if function is not None and isinstance(node.func, cst.Name) and qualnames:
            # Kept only if it names a class of this module (see `_resolve_references`).
            self.raw_references[function].update(qualnames)
        if function is not None and not qualnames and isinstance(node.func, cst.Name):
            # A name no binding explains may come from `from .helpers import *`.
            self.summary.functions[function].external_calls.update(
                f"{module}.{node.func.value}" for module in self.summary.star_imports
            )
        if function is not None:
            self._record_close(node, function)
        call = self.packs.client_call(qualnames)
        if call is None:
            if (
                function is not None
                and qualnames
                and self._assigned_value(node)
                and self._storage(node, function) == "cached"
            ):
                self.summary.functions[function].cached_calls.update(qualnames)
            return
        self._record_client_call(node, qualnames, call, function)
        if function is None:
            return
        keywords = {a.keyword.value for a in node.args if a.keyword is not None}
        if keywords & set(call.reuses_pool_keywords) or keywords & set(call.pool_keywords):
            return
        callee = next(q for q in sorted(qualnames) if self.packs.client_call([q]) is call)
        storage = self._storage(node, function)
        if storage == "cached":
            return
        returned = False
        if storage == "local":
            returned, local_names = self._handed_out(node, function)
            if local_names:
                self.site_locals[node] = local_names
        default_for, position = (
            self._default_for(node, function) if storage == "local" else ("", -1)
        )
        site = CreationSite(
            function=function,
            span=NO_SPAN,
            callee=callee,
            kind=call.kind,
            library=call.library,
            what=call.what,
            pool_hint=call.pool_hint,
            storage=storage,
            returned=returned,
            default_for=default_for,
            default_position=position,
        )
        self.site_nodes.append((node, site))

    def _record_call_shape(
        self, node: cst.Call, function: str, qualnames: frozenset[str], imported: frozenset[str]
    ) -> None:
        """`run(sql)` / `db.run(sql, conn=c)`: what a call of a project function passes, for
        helpers that build a client only when an argument is left out."""
        names = {n for n in imported if "." in n and not _is_stdlib(n)}
        if isinstance(node.func, cst.Name) and node.func.value in self.defined_names:
            names.update(qualnames)
        if not names:
            return
        # An explicit `None` passes nothing: `run(sql, None)`, `run(sql, conn=None)`.
        given = [a for a in node.args if not _is_name(a.value, "None")]
        positional = sum(1 for a in given if a.keyword is None)
        if any(a.star for a in node.args):
            positional = -1
        elif positional < sum(1 for a in node.args if a.keyword is None):
            positional = next(
                i
                for i, a in enumerate(a for a in node.args if a.keyword is None)
                if _is_name(a.value, "None")
            )
        keywords = tuple(sorted(a.keyword.value for a in given if a.keyword is not None))
        shapes = self.summary.functions[function].call_shapes
        for name in names:
            shapes.setdefault(name, set()).add((positional, keywords))

    def _default_for(self, call: cst.Call, function: str) -> tuple[str, int]:
        """The parameter a guarded construction stands in for: `if conn is None: conn = C()`,
        `conn = conn or C()`, `conn = C() if conn is None else conn`."""
        defaulted = self.defaulted.get(function, {})
        if not defaulted:
            return "", -1
        guards = list(self.tests_seen[function])
        child: cst.CSTNode = call
        for parent in self._enclosing():
            if isinstance(parent, cst.Await) or (
                isinstance(parent, cst.IfExp) and child in (parent.body, parent.orelse)
            ):
                child = parent
            elif isinstance(parent, cst.BooleanOperation) and parent.right is child:
                guards.append(code_of(parent.left))
                child = parent
            elif isinstance(parent, cst.Assign) and parent.value is child:
                if len(parent.targets) != 1 or not isinstance(parent.targets[0].target, cst.Name):
                    break
                name = parent.targets[0].target.value
                if name in defaulted and _mentioned(name, guards):
                    return name, defaulted[name]
                break
            else:
                break
        return "", -1

    def _retried_without_options(self, qualnames: frozenset[str]) -> bool:
        """The call sits in an `except` handler of a `try:` that makes the same call with
        keyword arguments (the pool options the handler's retry leaves out)."""
        for index in range(len(self.ancestors) - 1, 0, -1):
            handler, statement = self.ancestors[index], self.ancestors[index - 1]
            if isinstance(handler, cst.ExceptHandler) and isinstance(statement, cst.Try):
                finder = _CallsWithKeywords(self, qualnames)
                visit_subtree(statement.body, finder)
                return finder.found
        return False

    def _assigned_value(self, node: cst.Call) -> bool:
        """Is the call (awaited or not) the value assigned by its statement?"""
        parent = self.ancestors[-2] if len(self.ancestors) > 1 else None
        if isinstance(parent, cst.Await) and len(self.ancestors) > 2:
            node, parent = parent, self.ancestors[-3]  # type: ignore[assignment]
        return isinstance(parent, cst.Assign | cst.AnnAssign) and parent.value is node

    def _record_client_call(
        self, node: cst.Call, qualnames: frozenset[str], call: ClientCall, function: str | None
    ) -> None:
        callee = next(q for q in sorted(qualnames) if self.packs.client_call([q]) is call)
        positional = tuple(
            read_value(a.value, self.qualnames)
            for a in node.args
            if a.keyword is None and not a.star
        )
        keywords = tuple(
            (a.keyword.value, read_value(a.value, self.qualnames))
            for a in node.args
            if a.keyword is not None
        )
        star = tuple(read_value(a.value, self.qualnames) for a in node.args if a.star == "**")
        target = None
        parent = self.ancestors[-2] if len(self.ancestors) > 1 else None
        if isinstance(parent, cst.Await) and len(self.ancestors) > 2:
            parent = self.ancestors[-3]
        if isinstance(parent, cst.Assign) and len(parent.targets) == 1:
            target = get_full_name_for_node(parent.targets[0].target)
        elif isinstance(parent, cst.AnnAssign):
            target = get_full_name_for_node(parent.target)
        fact = ClientCallFact(
            NO_SPAN,
            callee,
            call.kind,
            function,
            positional,
            keywords,
            star,
            target,
            discarded=isinstance(parent, cst.Expr),
            fallback=self._retried_without_options(qualnames),
        )
        self.call_nodes.append((node, fact))

    def _record_close(self, node: cst.Call, function: str) -> None:
        func = node.func
        if (
            isinstance(func, cst.Attribute)
            and func.attr.value in self.close_methods
            and isinstance(func.value, cst.Name)
        ):
            made_by = self.bound_calls[function].get(func.value.value)
            if made_by:
                self.summary.functions[function].closes_results_of.update(made_by)

    def _handed_out(self, call: cst.Call, function: str) -> tuple[bool, frozenset[str]]:
        """Is the new client returned directly, or else which plain locals is it bound to?

        Only the client itself (awaited, or a database/attribute of it: `MongoClient()[name]`)
        counts; `create_engine(url).connect()` or `sessionmaker(bind=create_engine(url))` hand
        out something else, and caching their function would be wrong.
        """
        child: cst.CSTNode = call
        for parent in self._enclosing():
            if _wraps(parent, child) or _holds(parent, child):
                child = parent
            elif isinstance(parent, cst.Return):
                return parent.value is child, frozenset()
            elif isinstance(parent, cst.Assign | cst.AnnAssign) and parent.value is child:
                targets = (
                    [t.target for t in parent.targets]
                    if isinstance(parent, cst.Assign)
                    else [parent.target]
                )
                names = frozenset(
                    t.value
                    for t in targets
                    if isinstance(t, cst.Name) and t.value not in self.declared_global[function]
                )
                # `r.client = Redis()` / `self.client = Redis()`: on an object, which the
                # function may return (`return r`, `return self`); marked with a dot.
                holders = frozenset(
                    f".{root.value}"
                    for t in targets
                    if isinstance(t, cst.Attribute)
                    and isinstance(root := _unwrap_access(t), cst.Name)
                    and root.value not in self.declared_global[function]
                )
                return False, names | holders
            else:
                break
        return False, frozenset()

    def _class_attribute_registration(self, node: cst.Assign) -> None:
        """`class WorkerSettings: functions = [send_email, func(resize, timeout=5)]`."""
        if not isinstance(node.value, cst.List | cst.Tuple):
            return
        class_name = self.summary.classes[self.scopes[-1][1]].name
        names = {t.target.value for t in node.targets if isinstance(t.target, cst.Name)}
        for shape in self.packs.shapes("class-attribute"):
            if shape.keyword not in names or not any(
                fnmatch.fnmatchcase(class_name, pattern) for pattern in shape.classes
            ):
                continue
            for element in node.value.elements:
                value = element.value
                if isinstance(value, cst.Call) and value.args:  # `func(resize, ...)`
                    value = value.args[0].value
                found = self.qualnames(value)
                if found:
                    self.registrations.append((found, shape.label, False))

    def _record_registration(self, node: cst.Call, qualnames: frozenset[str]) -> None:
        method = node.func.attr.value if isinstance(node.func, cst.Attribute) else None
        for shape in self.packs.shapes("registration"):
            by_function = qualname_matches(shape.functions, qualnames)
            if not by_function and not (method and method in shape.methods):
                continue
            target = _argument(node, shape.argument, shape.keyword)
            if target is None:
                continue
            as_class = False
            if (
                isinstance(target, cst.Call)
                and isinstance(target.func, cst.Attribute)
                and target.func.attr.value == "as_view"
            ):
                target, as_class = target.func.value, True
            names = self.qualnames(target)
            if names:
                self.registrations.append((names, shape.label, as_class))

    # --- how a created client is kept ----------------------------------------------------------

    def _enclosing(self) -> Iterator[cst.CSTNode]:
        """Ancestors of the current node, innermost first, up to the enclosing scope."""
        for node in reversed(self.ancestors[:-1]):
            if isinstance(node, _SCOPE_BOUNDARIES):
                return
            yield node

    def _storage(self, call: cst.Call, function: str) -> str:
        """Where the result goes: "local", "flask-g", "instance-cached" or "cached"."""
        targets: list[cst.BaseExpression] = []
        guards = list(self.tests_seen[function])
        for node in self._enclosing():
            if not targets and isinstance(node, cst.Assign):
                targets = [t.target for t in node.targets]
            elif not targets and isinstance(node, cst.AnnAssign | cst.AugAssign):
                targets = [node.target]
            elif isinstance(node, cst.BooleanOperation):
                # `_engine = _engine or create_engine(...)`
                guards.append(code_of(node.left))
        verdicts = {self._target_storage(target, guards, function) for target in targets}
        # `db = g._database = MongoClient(...)`: the shared target decides, not the local alias.
        for storage in ("flask-g", "cached", "instance-cached"):
            if storage in verdicts:
                return storage
        return "local"

    def _target_storage(self, target: cst.BaseExpression, guards: list[str], function: str) -> str:
        """A shared target caches the client only when a test guards it (lazy initialisation);
        assigned unconditionally, it is rebuilt on every call."""
        if isinstance(target, cst.Name):
            if target.value not in self.declared_global[function]:
                return "local"
            return "cached" if _mentioned(target.value, guards) else "local"
        root: cst.BaseExpression = target
        while isinstance(root, cst.Attribute | cst.Subscript):
            root = root.value
        if not isinstance(root, cst.Name):
            return "local"
        if qualname_matches(REQUEST_GLOBALS, self.qualnames(root)):
            return "flask-g"
        if root.value in self.declared_global[function] and _mentioned(root.value, guards):
            guarded = True  # `if _repo is None: _repo = Repo(); _repo.client = Redis()`
        elif isinstance(target, cst.Attribute):
            guarded = _mentioned(target.attr.value, guards)
        else:  # keyed cache: `if key not in _clients: _clients[key] = ...`
            container = target.value if isinstance(target, cst.Subscript) else target
            name = get_full_name_for_node(container) or root.value
            read = self.read_from[function].get(name, set())
            guarded = any(_mentioned(n, guards) for n in {name, *read})
        if not guarded:
            return "local"
        # `self` may be a view instance built per request; the join decides.
        return "instance-cached" if root.value == "self" else "cached"

    def leave_Module(self, original_node: cst.Module) -> None:
        self._resolve_references()

    def _resolve_references(self) -> None:
        functions = self.summary.functions
        classes = self.summary.classes
        for key, raw in self.raw_references.items():
            references = {name for name in raw if name in functions and name != key}
            # `Reporter(...)` runs `Reporter.__init__` (or a base's, defined here).
            for name in raw:
                if name in classes:
                    references.update(
                        method for method in _constructors(self.summary, name) if method != key
                    )
            functions[key].references = references


_STDLIB = frozenset(sys.stdlib_module_names)


def _is_stdlib(name: str) -> bool:
    return name.split(".", 1)[0] in _STDLIB


def _holds(parent: cst.CSTNode, child: cst.CSTNode) -> bool:
    """`(child, other)`, `[child]`, `{"engine": child}`: a literal handing the client on."""
    if isinstance(parent, cst.Element | cst.DictElement):
        return parent.value is child
    if isinstance(parent, cst.Tuple | cst.List):
        return any(e is child for e in parent.elements)
    if isinstance(parent, cst.Dict):
        return any(e is child for e in parent.elements)
    return False


def _wraps(parent: cst.CSTNode, child: cst.CSTNode) -> bool:
    """`await child`, `child[...]` or `child.name`: still the client (or a part of it)."""
    if isinstance(parent, cst.Await):
        return parent.expression is child
    return isinstance(parent, cst.Subscript | cst.Attribute) and parent.value is child


def _returned_parts(node: cst.BaseExpression) -> list[cst.BaseExpression]:
    """The value, or the elements of a returned tuple, list or dict literal."""
    if isinstance(node, cst.Tuple | cst.List):
        return [e.value for e in node.elements]
    if isinstance(node, cst.Dict):
        return [e.value for e in node.elements if isinstance(e, cst.DictElement)]
    return [node]


def _unwrap_access(node: cst.BaseExpression) -> cst.BaseExpression:
    """`client["shop"].orders` -> `client`: subscripts and attribute reads, not calls."""
    while isinstance(node, cst.Subscript | cst.Attribute):
        node = node.value
    return node


def _constructors(summary: ModuleSummary, class_key: str) -> list[str]:
    """`__init__` / `__post_init__` of the class, or of its first base defined here having one."""
    pending = [class_key]
    seen: set[str] = set()
    found: list[str] = []
    while pending and not found:
        key = pending.pop(0)
        if key in seen or key not in summary.classes:
            continue
        seen.add(key)
        found = [f"{key}.{name}" for name in CONSTRUCTORS if f"{key}.{name}" in summary.functions]
        for base in sorted(summary.classes[key].base_qualnames):
            pending.append(base.removeprefix(summary.module + "."))
    return found


def _is_name(node: cst.BaseExpression, name: str) -> bool:
    return isinstance(node, cst.Name) and node.value == name


def _string_list(node: cst.BaseExpression) -> tuple[str, ...] | None:
    """`["a", "b"]` / `("a", "b")` -> ("a", "b"); anything computed -> None."""
    if not isinstance(node, cst.List | cst.Tuple):
        return None
    names: list[str] = []
    for element in node.elements:
        value = element.value
        if not isinstance(value, cst.SimpleString) or not isinstance(value.evaluated_value, str):
            return None
        names.append(value.evaluated_value)
    return tuple(names)


class _CallsWithKeywords(cst.CSTVisitor):
    """Is there a call to one of `qualnames`, with keyword arguments, in the visited code?"""

    def __init__(self, indexer: ModuleIndexer, qualnames: frozenset[str]) -> None:
        super().__init__()
        self.indexer = indexer
        self.qualnames = qualnames
        self.found = False

    def visit_Call(self, node: cst.Call) -> None:
        if any(a.keyword is not None for a in node.args) and (
            self.indexer.qualnames(node.func) & self.qualnames
        ):
            self.found = True


def _mentioned(name: str, guards: list[str]) -> bool:
    pattern = re.compile(rf"\b{re.escape(name)}\b")
    return any(pattern.search(guard) for guard in guards)


def _defined_names(statements: Sequence[cst.CSTNode]) -> set[str]:
    """Names of every function defined in the module, at any depth, from statements only."""
    names: set[str] = set()
    pending = list(statements)
    while pending:
        statement = pending.pop()
        if isinstance(statement, cst.FunctionDef):
            names.add(statement.name.value)
        body = getattr(statement, "body", None)
        if isinstance(body, cst.BaseSuite) and isinstance(body, cst.IndentedBlock):
            pending.extend(body.body)
        for attribute in ("orelse", "finalbody"):
            extra = getattr(statement, attribute, None)
            if extra is not None and isinstance(getattr(extra, "body", None), cst.IndentedBlock):
                pending.extend(extra.body.body)
        for handler in getattr(statement, "handlers", ()):
            if isinstance(handler.body, cst.IndentedBlock):
                pending.extend(handler.body.body)
    return names


def _argument(call: cst.Call, position: int | None, keyword: str) -> cst.BaseExpression | None:
    for arg in call.args:
        if keyword and arg.keyword is not None and arg.keyword.value == keyword:
            return arg.value
    if position is None:
        return None
    positional = [a for a in call.args if a.keyword is None and not a.star]
    return positional[position].value if position < len(positional) else None


def client_call_of(packs: PackSet, qualnames: frozenset[str]) -> ClientCall | None:
    return packs.client_call(sorted(qualnames))
