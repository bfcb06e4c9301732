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
  attribute/subscript/global, put into a container, passed to a call other than a release
  or a logging call). When the calls it is passed to are calls of functions by name
  (`close_conn(conn)`), the fact also keeps those calls and the verdicts if they release
  it and if they only use it; each function's parameter facts (`param_uses`) say which,
  and the rule joins the two across modules;
- "finally": a release (`v.close()`, `pool.putconn(v)`, `pool.release(v)`, ...) sits in a
  `finally:` block;
- "returned": returned (only reported for FastAPI dependencies, which should `yield`);
- "released-unprotected": released, but not in a `finally`, and a statement between the
  acquisition and the release can raise or return (any call, await, `return`, `raise`, ...),
  or the release follows a `yield` outside `try`/`finally`;
- "unreleased": nothing releases it.

Each fact also records what DPL302's holder-class check needs: the attributes read on the
variable, whether it is yielded, and whether a nested scope mentions it. In methods, acquisitions
stored on `self` (`self.conn = pool.getconn()`) become AttributeAcquireFacts, and the `self`
attributes a method releases (`self.conn.close()`, `pool.putconn(self.conn)`, `with self.conn:`,
through a local alias too) are recorded per method.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import libcst as cst
from libcst.helpers import get_full_name_for_node

from dbpoollint.analysis.model import (
    NO_SPAN,
    AcquireFact,
    AttributeAcquireFact,
    LifecycleFacts,
    ParamUse,
)
from dbpoollint.analysis.vocabulary import (
    ACQUIRE_METHODS,
    RELEASE_METHODS,
    RETURN_TO_POOL,
    SESSION_CLASSES,
    SESSION_MAKERS,
)
from dbpoollint.analysis.walk import children
from dbpoollint.packs import PackSet


class Walker(Protocol):
    """What the leak finder asks of the visitor that drives it (the lifecycle visitor): its
    position in the module and how it names things. Declared here so that the arrows point one
    way, lifecycle -> leaks."""

    facts: LifecycleFacts
    packs: PackSet
    pending: list[tuple[cst.CSTNode, object]]
    scopes: list[tuple[str, str]]

    @property
    def function(self) -> str | None: ...

    def qualnames(self, node: cst.CSTNode) -> frozenset[str]: ...

    def target_name(self, node: cst.BaseExpression) -> str | None: ...


# Calls that look at an object without taking it: `log.info("got %s", conn)`, `print(conn)`.
LOG_METHODS = frozenset({"debug", "info", "warning", "warn", "error", "exception", "critical"})
INERT_BUILTINS = frozenset({"print", "repr", "str", "id", "type", "isinstance", "bool", "hash"})
_SCOPES = (cst.FunctionDef, cst.ClassDef, cst.Lambda)
_SCOPE_KINDS = frozenset(_SCOPES)

# The node kinds each scan of a function's nodes looks at. Filtering by exact type first keeps
# the scans' order and meaning, and `type(n) in kinds` is several times cheaper than a chain of
# `isinstance` tests against libcst's ABC-based classes (scans cross every node of a function).
_USE_KINDS = frozenset({cst.Attribute, cst.WithItem, cst.Call, *_SCOPES})
_VERDICT_KINDS = frozenset(
    {cst.WithItem, cst.Global, cst.Nonlocal, cst.Return, cst.Yield, cst.Call}
    | {cst.Assign, cst.AnnAssign, cst.AugAssign}
)
_HOLDER_KINDS = frozenset({cst.SimpleStatementLine, cst.WithItem, cst.Attribute, cst.Call})
_BORROW_KINDS = frozenset({cst.WithItem, cst.Assign})


def _of(nodes: list[cst.CSTNode], kinds: frozenset[type]) -> list[cst.CSTNode]:
    """The nodes of exactly these kinds, in order."""
    return [n for n in nodes if type(n) in kinds]


class LeakFinder:
    def __init__(self, visitor: Walker) -> None:
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
        attributes, nested = _name_uses(nodes)
        yields = [n for n in nodes if type(n) is cst.Yield]
        yielded_names = {n.value.value for n in yields if isinstance(n.value, cst.Name)}
        relevant = _of(nodes, _VERDICT_KINDS)
        local_calls: dict[str, cst.Call] = {}
        borrowed = _borrowed_connections(node, nodes)
        for statement, target, call in _acquisitions(nodes):
            if _session_on_borrowed(call, borrowed, self.visitor):
                continue
            callee = self._callee(call)
            if callee is None:
                continue
            local_calls[target] = call
            asynchronous = self._asynchronous(statement, call)
            verdict, fixable = _verdict(node, target, statement, relevant, parents, asynchronous)
            if verdict == "returned":
                self.visitor.facts.returned_acquisitions.setdefault(key, callee)
            helpers: list[tuple[str, str]] = []
            if_released = if_kept = ("", False)
            if verdict == "escapes":
                # Handed to a function: what it does with its argument decides, in the rule.
                name_of = self.visitor.target_name
                if_released = _verdict(
                    node, target, statement, relevant, parents, asynchronous, name_of, helpers
                )
                if_kept = _verdict(
                    node, target, statement, relevant, parents, asynchronous, name_of
                )
                if if_released[0] == "escapes" or not helpers:
                    helpers, if_released, if_kept = [], ("", False), ("", False)
            fact = AcquireFact(
                NO_SPAN,
                key,
                target,
                callee,
                verdict,
                fixable,
                attributes=frozenset(attributes.get(target, ())),
                yielded=target in yielded_names,
                nested=target in nested,
                helpers=tuple(helpers),
                if_released=if_released,
                if_kept=if_kept,
            )
            self.visitor.pending.append((call, fact))
        self._holder_method(node, key, nodes, local_calls)
        scopes = self.visitor.scopes
        if len(scopes) < 2 or scopes[-2][0] != "class":
            uses = _param_uses(node, nodes, parents, nested, self.visitor.target_name)
            if uses:
                self.visitor.facts.param_uses[key] = uses
        if not yields:
            for item in relevant:  # `return pool.getconn()`, `return await asyncpg.connect(dsn)`
                if isinstance(item, cst.Return) and item.value is not None:
                    value = item.value
                    value = value.expression if isinstance(value, cst.Await) else value
                    if isinstance(value, cst.Call):
                        callee = self._callee(value)
                        if callee is not None:
                            self.visitor.facts.returned_acquisitions.setdefault(key, callee)

    def _asynchronous(self, statement: cst.SimpleStatementLine, call: cst.Call) -> bool:
        """An awaited acquisition or an async session: its close must be awaited too."""
        small = statement.body[0]
        if isinstance(small, cst.Assign | cst.AnnAssign) and isinstance(small.value, cst.Await):
            return True
        names = self.visitor.qualnames(call.func)
        if isinstance(call.func, cst.Call):
            names = names | self.visitor.qualnames(call.func.func)
        return any("async" in name.lower() for name in names & (SESSION_CLASSES | SESSION_MAKERS))

    def _holder_method(
        self,
        node: cst.FunctionDef,
        key: str,
        nodes: list[cst.CSTNode],
        local_calls: dict[str, cst.Call],
    ) -> None:
        """In a method: acquisitions stored on `self`, and the `self` attributes released."""
        scopes = self.visitor.scopes
        if len(scopes) < 2 or scopes[-2][0] != "class":
            return
        class_key = scopes[-2][1]
        params = [*node.params.posonly_params, *node.params.params]
        if not params or any(
            get_full_name_for_node(d.decorator) in ("staticmethod", "classmethod")
            for d in node.decorators
        ):
            return
        me = params[0].name.value
        aliases: dict[str, str] = {}  # `conn = self.conn` -> {"conn": "conn"}
        released: set[str] = set()
        for item in _of(nodes, _HOLDER_KINDS):
            if isinstance(item, cst.SimpleStatementLine) and len(item.body) == 1:
                small = item.body[0]
                if isinstance(small, cst.Assign) and len(small.targets) == 1:
                    target = small.targets[0].target
                    value = (
                        small.value.expression
                        if isinstance(small.value, cst.Await)
                        else small.value
                    )
                    attribute = _self_attribute(target, me)
                    if attribute is not None:
                        call = value if isinstance(value, cst.Call) else None
                        if isinstance(value, cst.Name) and value.value in local_calls:
                            call = local_calls[value.value]
                        callee = self._callee(call) if call is not None else None
                        if call is not None and callee is not None:
                            fact = AttributeAcquireFact(NO_SPAN, key, class_key, attribute, callee)
                            self.visitor.pending.append((call, fact))
                    source = _self_attribute(small.value, me)
                    if isinstance(target, cst.Name) and source is not None:
                        aliases[target.value] = source
            elif isinstance(item, cst.WithItem):
                expression = item.item.expression if isinstance(item.item, cst.Await) else item.item
                if isinstance(expression, cst.Call) and expression.args:
                    expression = expression.args[0].value  # `closing(self.conn)`
                attribute = _self_attribute(expression, me)
                if attribute is not None:
                    released.add(attribute)
            elif isinstance(item, cst.Attribute) and item.attr.value in RELEASE_METHODS:
                # `self.conn.close()`, or `self.conn.close` handed to a callback
                attribute = _self_attribute(item.value, me)
                if attribute is None and isinstance(item.value, cst.Name):
                    attribute = aliases.get(item.value.value)
                if attribute is not None:
                    released.add(attribute)
            elif isinstance(item, cst.Call):
                func = item.func
                method = func.attr.value if isinstance(func, cst.Attribute) else ""
                if method in RETURN_TO_POOL:
                    for arg in item.args:
                        attribute = _self_attribute(arg.value, me)
                        if attribute is None and isinstance(arg.value, cst.Name):
                            attribute = aliases.get(arg.value.value)
                        if attribute is not None:
                            released.add(attribute)
        if released:
            self.visitor.facts.attribute_releases.setdefault(key, set()).update(released)

    def _callee(self, call: cst.Call) -> str | None:
        """`psycopg2.connect`, `app.db.engine.connect`, `app.db.SessionLocal()`."""
        names = self.visitor.qualnames(call.func)
        opener = self.visitor.packs.client_call(sorted(names))
        if opener is not None:
            return sorted(n for n in names if self.visitor.packs.client_call([n]) is opener)[0]
        func = call.func
        if isinstance(func, cst.Attribute) and func.attr.value in ACQUIRE_METHODS:
            if isinstance(func.value, cst.Call):  # `get_pool().getconn()`
                maker = self.visitor.target_name(func.value.func)
                return f"{maker}().{func.attr.value}" if maker else None
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


# Calls that hand out a connection someone else owns and closes: a session bound to one
# (`Session(bind=op.get_bind())`, `Session(bind=conn)` inside `with engine.begin() as conn:`)
# borrows it and acquires nothing.
BORROWING_METHODS = frozenset({"get_bind", "connection"})


def _borrowed_connections(function: cst.FunctionDef, nodes: list[cst.CSTNode]) -> set[str]:
    """Names holding a connection the function did not open for itself: its parameters,
    `with ... as conn` targets, and locals set from `x.connection()` / `op.get_bind()`."""
    names = {p.name.value for p in (*function.params.posonly_params, *function.params.params)}
    for node in _of(nodes, _BORROW_KINDS):
        if isinstance(node, cst.WithItem) and node.asname is not None:
            if isinstance(node.asname.name, cst.Name):
                names.add(node.asname.name.value)
        elif isinstance(node, cst.Assign) and len(node.targets) == 1:
            target = node.targets[0].target
            value = node.value.expression if isinstance(node.value, cst.Await) else node.value
            if (
                isinstance(target, cst.Name)
                and isinstance(value, cst.Call)
                and isinstance(value.func, cst.Attribute)
                and value.func.attr.value in BORROWING_METHODS
            ):
                names.add(target.value)
    return names


def _session_on_borrowed(call: cst.Call, borrowed: set[str], visitor: Walker) -> bool:
    """`Session(bind=conn)` / `Session(conn)` / `Session(bind=op.get_bind())`; with `bind=`
    also a session factory's call (`Session = sessionmaker()` then `Session(bind=bind)`, as
    Alembic migrations write it) and `sessionmaker(bind=conn)()`."""
    bind = next((a.value for a in call.args if a.keyword and a.keyword.value == "bind"), None)
    if bind is None and isinstance(call.func, cst.Call):
        maker = call.func
        bind = next((a.value for a in maker.args if a.keyword and a.keyword.value == "bind"), None)
    if bind is None:
        if not visitor.qualnames(call.func) & SESSION_CLASSES:
            return False
        positional = [a.value for a in call.args if a.keyword is None and not a.star]
        bind = positional[0] if positional else None
    if isinstance(bind, cst.Name):
        return bind.value in borrowed
    return (
        isinstance(bind, cst.Call)
        and isinstance(bind.func, cst.Attribute)
        and bind.func.attr.value in BORROWING_METHODS
    )


def _self_attribute(node: cst.BaseExpression, me: str) -> str | None:
    """`conn` for `self.conn`."""
    if isinstance(node, cst.Attribute) and _is_name(node.value, me):
        return node.attr.value
    return None


def _name_uses(nodes: list[cst.CSTNode]) -> tuple[dict[str, set[str]], set[str]]:
    """Attributes read on each plain name (`db.close` -> {"db": {"close"}}, `db.conn.close` ->
    "conn.close", `pool.putconn(db.conn)` -> "conn.putconn", `with db.conn:` ->
    "conn.__with__") in the function's own scope, and the names that a nested function,
    class or lambda mentions."""
    attributes: dict[str, set[str]] = {}
    nested: set[str] = set()
    for node in _of(nodes, _USE_KINDS):
        if isinstance(node, cst.Attribute) and isinstance(node.value, cst.Name):
            attributes.setdefault(node.value.value, set()).add(node.attr.value)
        elif isinstance(node, cst.Attribute) and isinstance(node.value, cst.Attribute):
            inner_value = node.value.value
            if isinstance(inner_value, cst.Name):
                chain = f"{node.value.attr.value}.{node.attr.value}"
                attributes.setdefault(inner_value.value, set()).add(chain)
        elif isinstance(node, cst.WithItem):
            item = node.item.expression if isinstance(node.item, cst.Await) else node.item
            if isinstance(item, cst.Call) and item.args:
                item = item.args[0].value
            if isinstance(item, cst.Attribute) and isinstance(item.value, cst.Name):
                chain = f"{item.attr.value}.__with__"
                attributes.setdefault(item.value.value, set()).add(chain)
        elif isinstance(node, cst.Call) and isinstance(node.func, cst.Attribute):
            if node.func.attr.value in RETURN_TO_POOL:
                for arg in node.args:
                    value = arg.value
                    if isinstance(value, cst.Attribute) and isinstance(value.value, cst.Name):
                        chain = f"{value.attr.value}.{node.func.attr.value}"
                        attributes.setdefault(value.value.value, set()).add(chain)
        elif isinstance(node, _SCOPES):
            pending: list[cst.CSTNode] = [node]
            while pending:
                current = pending.pop()
                if isinstance(current, cst.Name):
                    nested.add(current.value)
                pending.extend(children(current))
    return attributes, nested


def _walk(
    node: cst.CSTNode, parent: cst.CSTNode, parents: dict[int, cst.CSTNode], out: list[cst.CSTNode]
) -> None:
    parents[id(node)] = parent
    out.append(node)
    if type(node) in _SCOPE_KINDS:
        return
    for child in children(node):
        _walk(child, node, parents, out)


def _acquisitions(
    nodes: list[cst.CSTNode],
) -> list[tuple[cst.SimpleStatementLine, str, cst.Call]]:
    found = []
    for node in nodes:
        if type(node) is not cst.SimpleStatementLine or len(node.body) != 1:
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
    asynchronous: bool = False,
    name_of: Callable[[cst.BaseExpression], str | None] | None = None,
    handed: list[tuple[str, str]] | None = None,
) -> tuple[str, bool]:
    """How `name` is released. Passed to a call, it escapes; with `name_of`, a call of a
    function by name instead counts as a release when `handed` collects those calls, and as
    a mere use when it does not (the rule learns later which of the two the function does)."""
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
                # `await conn.close()`: without the await an async close only makes a coroutine.
                if not asynchronous or isinstance(parents.get(id(node)), cst.Await):
                    releases.append(node)
            elif any(_is_name(a.value, name) for a in node.args) and not _inert_call(node):
                callee = name_of(func) if name_of is not None else None
                slot = _slot(node, name)
                if callee is None or slot is None:
                    return "escapes", False
                if handed is not None:
                    handed.append((callee, slot))
                    if not asynchronous or isinstance(parents.get(id(node)), cst.Await):
                        releases.append(node)
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


def _inert_call(call: cst.Call) -> bool:
    """`log.info("got %s", conn)`, `print(conn)`: the call looks at its argument, no more."""
    func = call.func
    if isinstance(func, cst.Name):
        return func.value in INERT_BUILTINS
    return isinstance(func, cst.Attribute) and func.attr.value in LOG_METHODS


def _slot(call: cst.Call, name: str) -> str | None:
    """Where `name` is passed: its position ("0") or its keyword; None after a `*args`."""
    position = 0
    for arg in call.args:
        if arg.star:
            return None
        if arg.keyword is not None:
            if _is_name(arg.value, name):
                return arg.keyword.value
            continue
        if _is_name(arg.value, name):
            return str(position)
        position += 1
    return None


def _param_uses(
    function: cst.FunctionDef,
    nodes: list[cst.CSTNode],
    parents: dict[int, cst.CSTNode],
    nested: set[str],
    name_of: Callable[[cst.BaseExpression], str | None],
) -> dict[str, ParamUse]:
    """What the function does with each parameter, from every place its name appears.

    One pass over the names: `c.close()` / `pool.putconn(c)` / `with c:` release it;
    attribute reads, method calls, comparisons and logging only use it; a call of a function
    by name hands it on; anything else (returned, stored, rebound, put in a container,
    mentioned by a nested function) lets it escape.
    """
    params = function.params
    names = [p.name.value for p in (*params.posonly_params, *params.params, *params.kwonly_params)]
    if not names:
        return {}
    seen: dict[str, list[str]] = {n: [] for n in names}
    helpers: dict[str, list[tuple[str, str]]] = {n: [] for n in names}
    for node in nodes:
        if type(node) is not cst.Name or node.value not in seen:
            continue
        use, helper = _name_use(node, parents, name_of)
        seen[node.value].append(use)
        if helper is not None:
            helpers[node.value].append(helper)
    result: dict[str, ParamUse] = {}
    for name, uses in seen.items():
        if "escape" in uses or name in nested:
            result[name] = ParamUse("escape")
        elif "release" in uses:
            result[name] = ParamUse("release")
        elif "handed" in uses:
            result[name] = ParamUse("handed", tuple(helpers[name]))
        else:
            result[name] = ParamUse("keep")
    return result


def _name_use(
    node: cst.Name,
    parents: dict[int, cst.CSTNode],
    name_of: Callable[[cst.BaseExpression], str | None],
) -> tuple[str, tuple[str, str] | None]:
    parent = parents.get(id(node))
    grand = parents.get(id(parent)) if parent is not None else None
    if isinstance(parent, cst.Attribute) and parent.value is node:
        if parent.attr.value in RELEASE_METHODS:
            called = isinstance(grand, cst.Call) and grand.func is parent
            return ("release" if called else "escape"), None  # `c.close` as a callback
        return "keep", None
    if isinstance(parent, cst.WithItem):
        return "release", None
    if isinstance(parent, cst.Arg) and parent.value is node and isinstance(grand, cst.Call):
        func = grand.func
        if isinstance(func, cst.Attribute) and func.attr.value in RETURN_TO_POOL:
            return "release", None
        if isinstance(parents.get(id(grand)), cst.WithItem):
            return "release", None  # `with closing(c):`
        if _inert_call(grand):
            return "keep", None
        callee = name_of(func) if isinstance(func, cst.Name | cst.Attribute) else None
        slot = _slot(grand, node.value)
        if callee is None or slot is None:
            return "escape", None
        return "handed", (callee, slot)
    if isinstance(parent, cst.Subscript | cst.Comparison | cst.ComparisonTarget):
        return "keep", None
    if isinstance(parent, cst.UnaryOperation | cst.If | cst.While):
        return "keep", None
    if isinstance(parent, cst.FormattedStringExpression):
        return "keep", None
    return "escape", None
