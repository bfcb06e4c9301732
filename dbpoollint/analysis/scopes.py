"""libcst's scopes, built in one read-only walk instead of through `ScopeProvider`.

`ScopeProvider` costs each file two more full traversals through libcst's rebuilding visitor
(its `ExpressionContextProvider`, then its `ScopeVisitor`): about half of the analysis time. This
module builds the very same objects — libcst's `GlobalScope`, `FunctionScope`, `ClassScope`, ...
with their assignments and accesses — in one pass over `walk.children`, so `scope[name]`,
`get_qualified_names_for` and everything built on them keep libcst's exact meaning.

`_Binder` follows libcst's `ScopeVisitor` step by step: which scope is current for each node, when
a scope's assignment counter moves (it orders assignments against accesses), which names are
stores (libcst's `ExpressionContext.STORE`), and which attribute chain encloses an access. Two
things it leaves out, because no fact here depends on them: names inside string annotations
(libcst parses the string and records accesses on the string node) and the type-hint flags of
accesses. tests/test_scopes.py checks the qualified names against libcst's on whole corpora.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Collection, Iterator, Sequence
from typing import Any

import libcst as cst
from libcst.metadata import (
    Access,
    ClassScope,
    ComprehensionScope,
    FunctionScope,
    GlobalScope,
    QualifiedName,
    Scope,
)
from libcst.metadata.base_provider import BaseMetadataProvider
from libcst.metadata.scope_provider import AnnotationScope

from dbpoollint.analysis.walk import children

# The nodes after which libcst's ScopeVisitor moves the current scope's assignment counter.
# Exact types in a set: `isinstance` against libcst's ABC-based classes costs far more.
_ASSIGNMENT_LIKE = frozenset(
    {
        cst.AnnAssign,
        cst.AsName,
        cst.Assign,
        cst.AugAssign,
        cst.ClassDef,
        cst.CompFor,
        cst.FunctionDef,
        cst.Global,
        cst.Import,
        cst.ImportFrom,
        cst.NamedExpr,
        cst.Nonlocal,
        cst.Parameters,
        cst.WithItem,
        cst.TypeVar,
        cst.TypeAlias,
        cst.TypeVarTuple,
        cst.ParamSpec,
    }
)
_COMPREHENSIONS = (cst.ListComp, cst.SetComp, cst.DictComp, cst.GeneratorExp)


def scopes_of(module: cst.Module) -> dict[cst.CSTNode, Scope]:
    """The scope of every syntax node of `module`, as libcst's ScopeProvider gives it."""
    binder = _Binder()
    binder.visit(module)
    binder.infer_accesses()
    return binder.scopes


class ScopesProvider(BaseMetadataProvider[Scope | None]):
    """Drop-in for `libcst.metadata.ScopeProvider`, for code that resolves metadata through a
    `MetadataWrapper` (the fixes); the analysis hands `scopes_of` to its collectors itself."""

    def _gen_impl(self, module: cst.Module) -> None:
        self._computed.update(scopes_of(module))


def absolute_name(name: str, package: str) -> str:
    """Turn libcst's relative qualified names (``.views.index``) into absolute ones."""
    if not name.startswith("."):
        return name
    stripped = name.lstrip(".")
    levels = len(name) - len(stripped)
    parts = package.split(".") if package else []
    if levels > 1:
        parts = parts[: len(parts) - (levels - 1)] if levels - 1 <= len(parts) else []
    return ".".join([*parts, stripped]) if parts else stripped


# A node's qualified names made absolute, and libcst's own (with their sources).
Names = tuple[frozenset[str], Collection[QualifiedName]]
_NO_NAMES: Names = (frozenset(), frozenset())


class NamesMemo:
    """Each node's qualified names, resolved once per module for every collector that asks
    (each asks about every call): `get_qualified_names_for` walks the scope's assignments
    every time. Keyed by id: the tree outlives the walk that fills this, and a node's own
    `__hash__` is a Python call."""

    def __init__(self, package: str) -> None:
        self.package = package
        self._known: dict[int, Names] = {}

    def names(self, visitor: cst.MetadataDependent, node: cst.CSTNode) -> Names:
        found = self._known.get(id(node))
        if found is None:
            scope = visitor.get_metadata(ScopesProvider, node, None)
            if scope is None:
                found = _NO_NAMES
            else:
                raw = scope.get_qualified_names_for(node)
                found = (frozenset(absolute_name(n.name, self.package) for n in raw), raw)
            self._known[id(node)] = found
        return found


class _Binder:
    """One walk that records assignments and accesses the way libcst's ScopeVisitor does."""

    def __init__(self) -> None:
        self.scope: Scope = GlobalScope()
        self.scopes: dict[cst.CSTNode, Scope] = {}
        self.deferred: list[tuple[Access, cst.Attribute | None]] = []
        # The outermost attribute of the chain being walked (`a.b.c` for `a`), per call level.
        self.attribute: list[cst.Attribute | None] = [None]

    def visit(self, node: cst.CSTNode, store: bool = False) -> None:
        handler = _HANDLERS.get(type(node))
        if handler is not None:
            handler(self, node, store)
        else:
            for child in children(node):
                self.visit(child, store)
        # libcst records a node's scope, and counts its assignment, when it leaves the node.
        self.scopes[node] = self.scope
        if type(node) in _ASSIGNMENT_LIKE:
            self.scope._assignment_count += 1

    def visit_all(self, nodes: Sequence[cst.CSTNode]) -> None:
        for node in nodes:
            self.visit(node)

    def enter(self, scope: Scope) -> Scope:
        outer, self.scope = self.scope, scope
        return outer

    def infer_accesses(self) -> None:
        """Bind every access to its assignments, once the whole module is known (libcst's
        `ScopeVisitor.infer_accesses`)."""
        by_scope_and_name: dict[tuple[Scope, str], set[Access]] = {}
        for access, enclosing in self.deferred:
            assert isinstance(access.node, cst.Name)
            name = access.node.value
            if enclosing is not None:
                # `import a.b` binds `a.b`: the access is the longest dotted prefix in scope.
                for dotted, node in _dotted_names(enclosing):
                    if dotted in access.scope:
                        access.node, name = node, dotted
                        break
            by_scope_and_name.setdefault((access.scope, name), set()).add(access)
            access.record_assignments(name)
            access.scope.record_access(name, access)
        for (scope, name), accesses in by_scope_and_name.items():
            for assignment in scope._resolve_scope_for_access(name, scope):
                assignment.record_accesses(accesses)
        self.deferred = []


# --- the node kinds that change scopes, bind names or are walked in a special order -----------


def _name(binder: _Binder, node: cst.Name, store: bool) -> None:
    if store:
        binder.scope.record_assignment(node.value, node)
    else:
        access = Access(node, binder.scope, is_annotation=False, is_type_hint=False)
        binder.deferred.append((access, binder.attribute[-1]))


def _attribute(binder: _Binder, node: cst.Attribute, store: bool) -> None:
    # The attribute name is not an access; the value is loaded even in `a.b = 1`.
    if binder.attribute[-1] is None:
        binder.attribute[-1] = node
    binder.visit(node.value)
    if binder.attribute[-1] is node:
        binder.attribute[-1] = None


def _call(binder: _Binder, node: cst.Call, store: bool) -> None:
    binder.attribute.append(None)
    for child in children(node):
        binder.visit(child, store)
    binder.attribute.pop()


def _arg(binder: _Binder, node: cst.Arg, store: bool) -> None:
    binder.visit(node.value, store)  # a keyword is neither an assignment nor an access


def _subscript(binder: _Binder, node: cst.Subscript, store: bool) -> None:
    for child in children(node):
        binder.visit(child)


def _import(binder: _Binder, node: cst.Import | cst.ImportFrom, store: bool) -> None:
    if isinstance(node.names, cst.ImportStar):
        return
    for alias in node.names:
        binder.scopes[alias] = binder.scope
        bound = alias.asname.name if alias.asname is not None else alias.name
        if isinstance(bound, cst.Name | cst.Attribute):
            for dotted, _ in _dotted_names(bound):
                binder.scope.record_import_assignment(dotted, node, bound)


def _assign_target(binder: _Binder, node: cst.AssignTarget, store: bool) -> None:
    binder.visit(node.target, True)


def _ann_assign(binder: _Binder, node: cst.AnnAssign, store: bool) -> None:
    binder.visit(node.target, True)
    binder.visit(node.annotation)
    if node.value is not None:
        binder.visit(node.value)


def _aug_assign(binder: _Binder, node: cst.AugAssign | cst.NamedExpr, store: bool) -> None:
    binder.visit(node.target, True)
    binder.visit(node.value)


def _as_name(binder: _Binder, node: cst.AsName, store: bool) -> None:
    binder.visit(node.name, True)


def _comp_for(binder: _Binder, node: cst.CompFor, store: bool) -> None:
    # An inner `for` of a comprehension: walked whole, its counter moves only when it ends.
    binder.visit(node.target, True)
    binder.visit(node.iter)
    binder.visit_all(node.ifs)
    if node.inner_for_in is not None:
        binder.visit(node.inner_for_in)


def _function(binder: _Binder, node: cst.FunctionDef, store: bool) -> None:
    binder.scope.record_assignment(node.name.value, node)
    binder.scopes[node.name] = binder.scope
    outer = binder.scope
    if node.type_parameters is not None:
        binder.enter(AnnotationScope(outer, node, None))
        binder.visit(node.type_parameters)
    around = binder.enter(FunctionScope(binder.scope, node, node.name.value))
    binder.visit(node.params)
    binder.visit(node.body)
    # Decorators and the return annotation: outside the function (inside its type parameters).
    binder.scope = around
    binder.visit_all(node.decorators)
    if node.returns is not None:
        binder.visit(node.returns)
    binder.scope = outer


def _lambda(binder: _Binder, node: cst.Lambda, store: bool) -> None:
    outer = binder.enter(FunctionScope(binder.scope, node))
    binder.visit(node.params)
    binder.visit(node.body)
    binder.scope = outer


def _param(binder: _Binder, node: cst.Param, store: bool) -> None:
    binder.scope.record_assignment(node.name.value, node)
    binder.scopes[node.name] = binder.scope
    # Defaults and annotations are evaluated where the function is defined.
    inner = binder.enter(binder.scope.parent)
    for value in (node.default, node.annotation):
        if value is not None:
            binder.visit(value)
    binder.scope = inner


def _class(binder: _Binder, node: cst.ClassDef, store: bool) -> None:
    binder.scope.record_assignment(node.name.value, node)
    binder.scopes[node.name] = binder.scope
    outer = binder.scope
    binder.visit_all(node.decorators)
    if node.type_parameters is not None:
        binder.enter(AnnotationScope(outer, node, None))
        binder.visit(node.type_parameters)
    binder.visit_all(node.bases)
    binder.visit_all(node.keywords)
    binder.enter(ClassScope(binder.scope, node, node.name.value))
    # libcst walks the class body's statements, not the block that holds them.
    binder.visit_all(node.body.body)
    binder.scope = outer


def _global(binder: _Binder, node: cst.Global, store: bool) -> None:
    for item in node.names:
        binder.scope.record_global_overwrite(item.name.value)


def _nonlocal(binder: _Binder, node: cst.Nonlocal, store: bool) -> None:
    # `nonlocal` at module level: libcst refuses it, and CPython rejects the file anyway.
    with contextlib.suppress(NotImplementedError):
        for item in node.names:
            binder.scope.record_nonlocal_overwrite(item.name.value)


def _comprehension(
    binder: _Binder, node: cst.ListComp | cst.SetComp | cst.DictComp | cst.GeneratorExp, store: bool
) -> None:
    for_in = node.for_in
    # The first iterable is evaluated outside the comprehension's scope.
    binder.visit(for_in.iter)
    binder.scopes[for_in] = binder.scope
    outer = binder.enter(ComprehensionScope(binder.scope, node))
    binder.visit(for_in.target, True)
    binder.scope._assignment_count += 1
    binder.visit_all(for_in.ifs)
    if for_in.inner_for_in is not None:
        binder.visit(for_in.inner_for_in)
    if isinstance(node, cst.DictComp):
        binder.visit(node.key)
        binder.visit(node.value)
    else:
        binder.visit(node.elt)
    binder.scope = outer


def _for(binder: _Binder, node: cst.For, store: bool) -> None:
    binder.visit(node.target, True)
    binder.scope._assignment_count += 1
    binder.visit(node.iter)
    binder.visit(node.body)
    if node.orelse is not None:
        binder.visit(node.orelse)


def _type_alias(binder: _Binder, node: cst.TypeAlias, store: bool) -> None:
    binder.scope.record_assignment(node.name.value, node)
    outer = binder.enter(AnnotationScope(binder.scope, node, None))
    if node.type_parameters is not None:
        binder.visit(node.type_parameters)
    binder.visit(node.value)
    binder.scope = outer


def _type_variable(
    binder: _Binder, node: cst.TypeVar | cst.TypeVarTuple | cst.ParamSpec, store: bool
) -> None:
    binder.scope.record_assignment(node.name.value, node)
    if isinstance(node, cst.TypeVar) and node.bound is not None:
        binder.visit(node.bound)


_HANDLERS: dict[type[cst.CSTNode], Callable[[_Binder, Any, bool], None]] = {
    cst.Name: _name,
    cst.Attribute: _attribute,
    cst.Call: _call,
    cst.Arg: _arg,
    cst.Subscript: _subscript,
    cst.Import: _import,
    cst.ImportFrom: _import,
    cst.FunctionDef: _function,
    cst.Lambda: _lambda,
    cst.Param: _param,
    cst.ClassDef: _class,
    cst.Global: _global,
    cst.Nonlocal: _nonlocal,
    cst.For: _for,
    cst.TypeAlias: _type_alias,
    cst.TypeVar: _type_variable,
    cst.TypeVarTuple: _type_variable,
    cst.ParamSpec: _type_variable,
    # Stores, where libcst's ExpressionContextProvider marks them.
    cst.AssignTarget: _assign_target,
    cst.AnnAssign: _ann_assign,
    cst.AugAssign: _aug_assign,
    cst.NamedExpr: _aug_assign,
    cst.AsName: _as_name,
    cst.CompFor: _comp_for,
    **dict.fromkeys(_COMPREHENSIONS, _comprehension),
}


def _dotted_names(node: cst.BaseExpression) -> Iterator[tuple[str, cst.Attribute | cst.Name]]:
    """`a.b.c` -> ("a.b.c", node), ("a.b", ...), ("a", ...); a call in the chain ends the
    dotted part (`a.b().c` -> "a.b", "a"), as libcst's `_gen_dotted_names` reads it."""
    if isinstance(node, cst.Name):
        yield node.value, node
        return
    if not isinstance(node, cst.Attribute):
        return
    value = node.value
    if isinstance(value, cst.Call):
        if isinstance(value.func, cst.Name | cst.Attribute):
            yield from _dotted_names(value.func)
        return
    if isinstance(value, cst.Name | cst.Attribute):
        inner = _dotted_names(value)
        first = next(inner, None)
        if first is None:
            return
        yield f"{first[0]}.{node.attr.value}", node
        yield first
        yield from inner
