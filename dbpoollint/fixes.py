"""Shared codemod helpers: names free in a module, where new statements go, imports, edits."""

from __future__ import annotations

import difflib
from collections.abc import Sequence

import libcst as cst

from dbpoollint.checks.base import Edit


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


def imports_module(module: cst.Module, name: str) -> bool:
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
    if imports_module(module, name):
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


def strip_blank(lines: Sequence[cst.EmptyLine]) -> list[cst.EmptyLine]:
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
    """The smallest edits that turn `before` into `after`, in ruff's 1-based (row, column) terms.

    Lines are matched first; within each changed block of lines the text both versions share
    at its start and end is left out, so adding a keyword is an insertion of `, x=1`, not a
    replaced line.
    """
    old = before.splitlines(keepends=True)
    new = after.splitlines(keepends=True)
    starts = [0]
    for line in old:
        starts.append(starts[-1] + len(line))
    edits = []
    matcher = difflib.SequenceMatcher(a=old, b=new, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            continue
        removed, added = "".join(old[i1:i2]), "".join(new[j1:j2])
        prefix = len(_common_prefix(removed, added))
        suffix = len(_common_prefix(removed[prefix:][::-1], added[prefix:][::-1]))
        start = starts[i1] + prefix
        end = starts[i1] + len(removed) - suffix
        content = added[prefix : len(added) - suffix]
        edits.append(Edit(content, _row_column(before, start), _row_column(before, end)))
    return tuple(edits)


def _common_prefix(a: str, b: str) -> str:
    length = min(len(a), len(b))
    return a[: next((i for i in range(length) if a[i] != b[i]), length)]


def _row_column(text: str, offset: int) -> tuple[int, int]:
    row = text.count("\n", 0, offset) + 1
    line_start = text.rfind("\n", 0, offset) + 1
    return row, offset - line_start + 1
