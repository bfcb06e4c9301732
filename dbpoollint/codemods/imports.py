"""Add a standard-library import where isort / ruff's `I001` would put it.

The fixes only ever import standard-library modules (`atexit`, `functools`, `asyncio`,
`threading`). The new line joins the module's stdlib group, in sorted position (plain
`import x` lines before `from x import y` lines, as isort's default does). When the module has
no stdlib group yet, one is opened before the first third-party or local import, separated by
a blank line. Comments stay with the import they sit above.
"""

from __future__ import annotations

import sys

import libcst as cst

STDLIB = frozenset(sys.stdlib_module_names)


def _import_line(statement: cst.BaseStatement) -> cst.Import | cst.ImportFrom | None:
    if (
        isinstance(statement, cst.SimpleStatementLine)
        and len(statement.body) == 1
        and isinstance(statement.body[0], cst.Import | cst.ImportFrom)
    ):
        return statement.body[0]
    return None


def _module_of(node: cst.Import | cst.ImportFrom) -> str:
    if isinstance(node, cst.Import):
        return cst.Module([]).code_for_node(node.names[0].name)
    if node.relative:
        return "." * len(node.relative)
    return cst.Module([]).code_for_node(node.module) if node.module else ""


def _section(node: cst.Import | cst.ImportFrom) -> str:
    module = _module_of(node)
    if module == "__future__":
        return "future"
    if module.split(".", 1)[0] in STDLIB:
        return "stdlib"
    return "other"


def _sort_key(node: cst.Import | cst.ImportFrom) -> tuple[int, str, str]:
    # isort's default (`force-sort-within-sections = false`): `import x` before `from x ...`.
    module = _module_of(node)
    return (0 if isinstance(node, cst.Import) else 1, module.lower(), module)


def _leading_block(module: cst.Module) -> list[int]:
    """Indexes of the top-level import lines before the first other statement (a docstring
    first is allowed)."""
    indexes = []
    for index, statement in enumerate(module.body):
        if _import_line(statement) is not None:
            indexes.append(index)
            continue
        if index == 0 and is_docstring(statement):
            continue
        break
    return indexes


def is_docstring(statement: cst.BaseStatement) -> bool:
    """A string expression statement: a module's or function's docstring when it comes first."""
    return (
        isinstance(statement, cst.SimpleStatementLine)
        and isinstance(statement.body[0], cst.Expr)
        and isinstance(statement.body[0].value, cst.SimpleString | cst.ConcatenatedString)
    )


def _imported(module: cst.Module, code: str) -> bool:
    wanted = cst.parse_statement(code)
    rendered = cst.Module([]).code_for_node(wanted).strip()
    return any(
        cst.Module([]).code_for_node(s.with_changes(leading_lines=())).strip() == rendered
        for s in module.body
        if _import_line(s) is not None
    )


def add_stdlib_import(module: cst.Module, code: str) -> cst.Module:
    """Insert `code` (`import atexit`, `from functools import cache`) unless already there."""
    if _imported(module, code):
        return module
    new = cst.parse_statement(code)
    assert isinstance(new, cst.SimpleStatementLine)
    new_node = _import_line(new)
    assert new_node is not None
    body = list(module.body)
    block = _leading_block(module)
    stdlib = [i for i in block if _section(_import_line(body[i]) or new_node) == "stdlib"]
    if stdlib:
        # Within the group, before the first line that sorts after the new one.
        group = _contiguous(stdlib)
        after = [
            i for i in group if _sort_key(_import_line(body[i]) or new_node) > _sort_key(new_node)
        ]
        if after:
            at = after[0]
            moved = body[at]
            body[at] = moved.with_changes(leading_lines=())
            body.insert(at, new.with_changes(leading_lines=moved.leading_lines))
        else:
            body.insert(group[-1] + 1, new)
        return module.with_changes(body=body)
    others = [i for i in block if _section(_import_line(body[i]) or new_node) == "other"]
    if others:
        # A new stdlib group before the first third-party/local import; its comment stays.
        at = others[0]
        moved = body[at]
        blanks, rest = _split_comments(list(moved.leading_lines))
        body[at] = moved.with_changes(leading_lines=[cst.EmptyLine(), *rest])
        body.insert(at, new.with_changes(leading_lines=blanks))
        return module.with_changes(body=body)
    at = block[-1] + 1 if block else (1 if body and is_docstring(body[0]) else 0)
    if block:
        # Only `from __future__` imports so far: a new section, after a blank line.
        body.insert(at, new.with_changes(leading_lines=[cst.EmptyLine()]))
    else:
        lines = [cst.EmptyLine()] if at else []
        body.insert(at, new.with_changes(leading_lines=lines))
        if at < len(body) - 1:
            following = body[at + 1]
            if not following.leading_lines:
                body[at + 1] = following.with_changes(leading_lines=[cst.EmptyLine()])
    return module.with_changes(body=body)


def _contiguous(indexes: list[int]) -> list[int]:
    """The first run of stdlib lines (a group ends where another section starts)."""
    group = [indexes[0]]
    for index in indexes[1:]:
        if index != group[-1] + 1:
            break
        group.append(index)
    return group


def _split_comments(
    lines: list[cst.EmptyLine],
) -> tuple[list[cst.EmptyLine], list[cst.EmptyLine]]:
    """Blank lines before the first comment, and the comment block (with what follows)."""
    for position, line in enumerate(lines):
        if line.comment is not None:
            return lines[:position], lines[position:]
    return lines, []
