"""Lifecycle codemods: close at exit, release in `finally`, yield a session, not return it."""

from __future__ import annotations

from collections.abc import Sequence

import libcst as cst
from libcst.metadata import (
    MetadataWrapper,
    PositionProvider,
)

from dbpoollint.codemods.imports import add_stdlib_import

# --- DPL301: close a module-level client at interpreter exit ----------------------------------


def register_atexit_closes(
    source: str, requests: Sequence[tuple[int, str, str]]
) -> tuple[str, list[bool]]:
    """For each (line, variable, method): `atexit.register(variable.method)` after the
    module-level statement on that line, plus `import atexit`. Per request, whether it was made."""
    module = cst.parse_module(source)
    wrapper = MetadataWrapper(module, unsafe_skip_copy=True)
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
    fixed = add_stdlib_import(fixed, "import atexit")
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


def _assigned_call(
    visitor: cst.MetadataDependent, statement: cst.CSTNode, positions: set[tuple[int, int]]
) -> tuple[tuple[int, int], str] | None:
    """`name = <call>` (or `= await <call>`) whose call starts at one of `positions`."""
    if not isinstance(statement, cst.SimpleStatementLine) or len(statement.body) != 1:
        return None
    small = statement.body[0]
    if not isinstance(small, cst.Assign) or len(small.targets) != 1:
        return None
    target = small.targets[0].target
    value = small.value.expression if isinstance(small.value, cst.Await) else small.value
    if not isinstance(target, cst.Name) or not isinstance(value, cst.Call):
        return None
    where = visitor.get_metadata(PositionProvider, value)
    key = (where.start.line, where.start.column + 1)
    return (key, target.value) if key in positions else None


class _ReleaseInFinally(cst.CSTTransformer):
    METADATA_DEPENDENCIES = (PositionProvider,)

    def __init__(self, positions: set[tuple[int, int]]) -> None:
        super().__init__()
        self.positions = positions
        self.done: set[tuple[int, int]] = set()

    def _acquired(self, statement: cst.CSTNode) -> tuple[tuple[int, int], str] | None:
        return _assigned_call(self, statement, self.positions)

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
    wrapper = MetadataWrapper(cst.parse_module(source), unsafe_skip_copy=True)
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
        return _assigned_call(self, statement, self.positions)


def yield_session(source: str, positions: Sequence[tuple[int, int]]) -> tuple[str, list[bool]]:
    """`db = SessionLocal(); return db` -> `try: yield db` / `finally: db.close()`."""
    wrapper = MetadataWrapper(cst.parse_module(source), unsafe_skip_copy=True)
    transformer = _YieldInsteadOfReturn(set(positions))
    fixed = wrapper.visit(transformer)
    return fixed.code, [p in transformer.done for p in positions]
