"""DPL302's facts: connection acquisitions and whether the function releases them on every path.

Run at the end of each function, on its whole body (nested functions and classes are their
own scopes). An *acquisition* is `v = <call>` or `v = await <call>` where the call is a pack's
connection opener (`psycopg2.connect`, `asyncpg.connect`, ...), a method that checks a
connection out (`x.connect()`, `x.raw_connection()`, `x.getconn()`, `x.acquire()`), or a call
of a name (`SessionLocal()`, a session factory); the rule decides later, with every module
known, whether the receiver is really a pool/engine/session factory.

The verdict is conservative; the variable is followed by name only:

- "with": it is used as a context manager (`with v`, `async with v`, `closing(v)`);
- "escapes": it leaves the function's hands (returned from a non-dependency, stored on an
  attribute/subscript/global, put into a container, passed to a call other than a release);
- "finally": a release (`v.close()`, `pool.putconn(v)`, `pool.release(v)`, ...) sits in a
  `finally:` block;
- "returned": returned (only reported for FastAPI dependencies, which should `yield`);
- "released-unprotected": released, but not in a `finally`, and a statement between the
  acquisition and the release can raise or return (any call, await, `return`, `raise`, ...),
  or the release follows a `yield` outside `try`/`finally`;
- "unreleased": nothing releases it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import libcst as cst

from dbpoollint.analysis.model import AcquireFact, Span

if TYPE_CHECKING:
    from dbpoollint.analysis.lifecycle import LifecycleVisitor

ACQUIRE_METHODS = frozenset({"connect", "raw_connection", "getconn", "acquire"})
RELEASE_METHODS = frozenset({"close", "aclose", "release", "dispose", "terminate"})
RETURN_TO_POOL = frozenset({"putconn", "release"})
# Calls that make a session factory, and classes whose call opens a session directly.
SESSION_MAKERS = frozenset(
    {
        "sqlalchemy.orm.sessionmaker",
        "sqlalchemy.orm.session.sessionmaker",
        "sqlalchemy.ext.asyncio.async_sessionmaker",
        "sqlalchemy.ext.asyncio.session.async_sessionmaker",
    }
)
SESSION_CLASSES = frozenset(
    {
        "sqlalchemy.orm.Session",
        "sqlalchemy.orm.session.Session",
        "sqlalchemy.ext.asyncio.AsyncSession",
        "sqlalchemy.ext.asyncio.session.AsyncSession",
        "sqlmodel.Session",
        "sqlmodel.ext.asyncio.session.AsyncSession",
    }
)
_NO_SPAN = Span(0, 0, 0, 0)
_SCOPES = (cst.FunctionDef, cst.ClassDef, cst.Lambda)


class LeakFinder:
    def __init__(self, visitor: LifecycleVisitor) -> None:
        self.visitor = visitor

    def enter_function(self, node: cst.FunctionDef, key: str) -> None:
        pass

    def visit_call(self, node: cst.Call) -> None:
        pass

    def module_assign(self, name: str, value: cst.BaseExpression) -> None:
        """`SessionLocal = sessionmaker(...)` at module level: a session factory."""
        if isinstance(value, cst.Call) and self.visitor.qualnames(value.func) & SESSION_MAKERS:
            self.visitor.facts.session_factories.add(name)

    def leave_function(self, node: cst.FunctionDef) -> None:
        key = self.visitor.function
        if key is None:
            return
        parents: dict[int, cst.CSTNode] = {}
        nodes: list[cst.CSTNode] = []
        _walk(node.body, node, parents, nodes)
        for statement, target, call in _acquisitions(nodes):
            callee = self._callee(call)
            if callee is None:
                continue
            verdict, fixable = _verdict(node, target, statement, nodes, parents)
            fact = AcquireFact(_NO_SPAN, key, target, callee, verdict, fixable)
            self.visitor.pending.append((call, fact))

    def _callee(self, call: cst.Call) -> str | None:
        """`psycopg2.connect`, `app.db.engine.connect`, `app.db.SessionLocal()`."""
        names = self.visitor.qualnames(call.func)
        opener = self.visitor.packs.client_call(sorted(names))
        if opener is not None:
            return sorted(n for n in names if self.visitor.packs.client_call([n]) is opener)[0]
        func = call.func
        if isinstance(func, cst.Attribute) and func.attr.value in ACQUIRE_METHODS:
            receiver = self.visitor.target_name(func.value)
            return f"{receiver}.{func.attr.value}" if receiver else None
        if isinstance(func, cst.Name | cst.Attribute):
            if names & SESSION_CLASSES:
                return sorted(names & SESSION_CLASSES)[0] + "()"
            if names & SESSION_MAKERS:
                return None  # a factory, not a session
            receiver = self.visitor.target_name(func)
            return f"{receiver}()" if receiver else None
        if isinstance(func, cst.Call):  # `sessionmaker(bind=engine)()`
            inner = self.visitor.qualnames(func.func)
            if inner & SESSION_MAKERS:
                return sorted(inner & SESSION_MAKERS)[0] + "()()"
        return None


def _walk(
    node: cst.CSTNode, parent: cst.CSTNode, parents: dict[int, cst.CSTNode], out: list[cst.CSTNode]
) -> None:
    parents[id(node)] = parent
    out.append(node)
    if isinstance(node, _SCOPES):
        return
    for child in node.children:
        _walk(child, node, parents, out)


def _acquisitions(
    nodes: list[cst.CSTNode],
) -> list[tuple[cst.SimpleStatementLine, str, cst.Call]]:
    found = []
    for node in nodes:
        if not isinstance(node, cst.SimpleStatementLine) or len(node.body) != 1:
            continue
        small = node.body[0]
        if not isinstance(small, cst.Assign | cst.AnnAssign) or small.value is None:
            continue
        targets = (
            [t.target for t in small.targets] if isinstance(small, cst.Assign) else [small.target]
        )
        if len(targets) != 1 or not isinstance(targets[0], cst.Name):
            continue
        value = small.value.expression if isinstance(small.value, cst.Await) else small.value
        if isinstance(value, cst.Call):
            found.append((node, targets[0].value, value))
    return found


def _is_name(node: cst.CSTNode, name: str) -> bool:
    return isinstance(node, cst.Name) and node.value == name


def _inside(
    node: cst.CSTNode, kind: type, parents: dict[int, cst.CSTNode], stop: cst.CSTNode
) -> cst.CSTNode | None:
    current = parents.get(id(node))
    while current is not None and current is not stop:
        if isinstance(current, kind):
            return current
        current = parents.get(id(current))
    return None


def _verdict(
    function: cst.FunctionDef,
    name: str,
    acquisition: cst.SimpleStatementLine,
    nodes: list[cst.CSTNode],
    parents: dict[int, cst.CSTNode],
) -> tuple[str, bool]:
    releases: list[cst.Call] = []
    returned = yielded = False
    for node in nodes:
        if isinstance(node, cst.WithItem):
            item = node.item.expression if isinstance(node.item, cst.Await) else node.item
            if _is_name(item, name) or (
                isinstance(item, cst.Call) and any(_is_name(a.value, name) for a in item.args)
            ):
                return "with", False
        elif isinstance(node, cst.Global | cst.Nonlocal):
            if any(n.name.value == name for n in node.names):
                return "escapes", False
        elif isinstance(node, cst.Return) and node.value is not None:
            if _is_name(node.value, name) or (
                isinstance(node.value, cst.Tuple)
                and any(_is_name(e.value, name) for e in node.value.elements)
            ):
                returned = True
        elif isinstance(node, cst.Yield) and node.value is not None and _is_name(node.value, name):
            yielded = True
        elif isinstance(node, cst.Call):
            func = node.func
            method = func.attr.value if isinstance(func, cst.Attribute) else ""
            if (
                isinstance(func, cst.Attribute)
                and _is_name(func.value, name)
                and method in RELEASE_METHODS
            ) or (method in RETURN_TO_POOL and any(_is_name(a.value, name) for a in node.args)):
                releases.append(node)
            elif any(_is_name(a.value, name) for a in node.args):
                return "escapes", False
        elif (
            isinstance(node, cst.Assign | cst.AnnAssign | cst.AugAssign)
            and node.value is not None
            and (_is_name(node.value, name) or _mentions(node.value, name, containers_only=True))
        ):
            targets = (
                [t.target for t in node.targets] if isinstance(node, cst.Assign) else [node.target]
            )
            if any(not isinstance(t, cst.Name) for t in targets) or _mentions(
                node.value, name, containers_only=True
            ):
                return "escapes", False
    if returned and not yielded:
        return "returned", False
    protected = [r for r in releases if _inside(r, cst.Finally, parents, function) is not None]
    if protected:
        return "finally", False
    if not releases:
        return (
            ("escapes", False)
            if returned
            else ("unreleased", _fixable_unreleased(function, acquisition, name))
        )
    if yielded:
        return "released-unprotected", False
    # Released, but not in a finally: does anything between acquisition and release raise?
    block = parents.get(id(acquisition))
    if isinstance(block, cst.IndentedBlock | cst.Module):
        statements: list[cst.CSTNode] = list(block.body)
        start = statements.index(acquisition)
        for release in releases:
            line = _statement_of(release, parents, block)
            if line is None:
                continue
            between = statements[start + 1 : statements.index(line)]
            if not any(_can_raise(s) for s in between):
                return "finally", False
        return "released-unprotected", _fixable_release(block, acquisition, releases, parents)
    return "released-unprotected", False


def _mentions(node: cst.CSTNode, name: str, containers_only: bool) -> bool:
    """Does a list/tuple/dict/set literal inside `node` hold `name`?"""
    if isinstance(node, cst.List | cst.Tuple | cst.Set):
        return any(_is_name(e.value, name) for e in node.elements)
    if isinstance(node, cst.Dict):
        return any(
            isinstance(e, cst.DictElement) and _is_name(e.value, name) for e in node.elements
        )
    return False


def _statement_of(
    node: cst.CSTNode, parents: dict[int, cst.CSTNode], block: cst.CSTNode
) -> cst.CSTNode | None:
    current: cst.CSTNode | None = node
    while current is not None:
        parent = parents.get(id(current))
        if parent is block:
            return current
        current = parent
    return None


def _can_raise(statement: cst.CSTNode) -> bool:
    """Anything but plain assignments of literals and names can raise or leave early."""
    if isinstance(statement, cst.SimpleStatementLine):
        for small in statement.body:
            if isinstance(small, cst.Pass):
                continue
            if isinstance(small, cst.Assign | cst.AnnAssign) and isinstance(
                small.value, cst.SimpleString | cst.Integer | cst.Float | cst.Name
            ):
                continue
            return True
        return False
    return True


def _fixable_release(
    block: cst.CSTNode,
    acquisition: cst.CSTNode,
    releases: list[cst.Call],
    parents: dict[int, cst.CSTNode],
) -> bool:
    """One release, a statement of its own in the acquisition's block: wrap what is between in
    `try:` and move the release into `finally:`."""
    if len(releases) != 1:
        return False
    statement = _statement_of(releases[0], parents, block)
    return (
        isinstance(statement, cst.SimpleStatementLine)
        and len(statement.body) == 1
        and isinstance(statement.body[0], cst.Expr)
    )


def _fixable_unreleased(function: cst.FunctionDef, acquisition: cst.CSTNode, name: str) -> bool:
    """Acquired at the top of the function body: the rest of the body is its whole scope."""
    body = function.body
    return isinstance(body, cst.IndentedBlock) and acquisition in body.body
