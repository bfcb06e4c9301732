"""Reading a user's file: bytes, encoding, and the one-line errors for what can go wrong."""

from __future__ import annotations

import ast
import codecs
import io
import re
import tokenize
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path


class SourceError(Exception):
    """The file cannot be read or decoded; the message is one line for the user."""


@dataclass(frozen=True)
class Source:
    path: str
    data: bytes
    text: str
    encoding: str


def decode(path: str, data: bytes) -> Source:
    """Decode like the interpreter does: BOM, then a PEP 263 coding cookie, then UTF-8."""
    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
    except SyntaxError as error:
        raise SourceError(f"cannot detect the encoding: {error.msg}") from error
    try:
        text = data.decode(encoding)
    except (UnicodeDecodeError, LookupError) as error:
        raise SourceError(
            f"not valid {encoding}: {error.reason if hasattr(error, 'reason') else error}"
        ) from error
    if text.startswith("\ufeff"):
        text = text[1:]
    return Source(path=path, data=data, text=text, encoding=encoding)


def read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except PermissionError as error:
        raise SourceError("permission denied") from error
    except IsADirectoryError as error:
        raise SourceError("is a directory") from error
    except OSError as error:
        raise SourceError(error.strerror or str(error)) from error


def has_bom(data: bytes) -> bool:
    return data.startswith(codecs.BOM_UTF8)


# CPython's tokenizer refuses deeper bracket nesting with "too many nested parentheses";
# libcst's native parser overflows its stack (a segfault) a few thousand levels down.
MAX_BRACKET_DEPTH = 200
_OPENING, _CLOSING = frozenset("([{"), frozenset(")]}")
_NESTING_MESSAGES = ("too many nested parentheses", "too many levels of indentation")


@dataclass(frozen=True)
class PythonVerdict:
    """What CPython's own parser says about a file, before libcst is given it."""

    ok: bool
    # A syntax error CPython reports; libcst may still parse newer syntax, unless `fatal`.
    error: SyntaxError | None = None
    # Nesting no parser here can take (libcst would crash): report it, never parse it.
    fatal: bool = False
    reason: str = ""
    # Per top-level statement of CPython's tree, the line its first token is on, when every
    # one starts plainly at column 0 (see `statement_lines`); None when any does not.
    statement_lines: tuple[int, ...] | None = None
    # The same for every statement inside a compound statement, at any depth, in the order
    # `nested_lines` reads them; 0 where a block's statements do not start plainly.
    nested_lines: tuple[int, ...] = ()


def python_verdict(path: str, text: str) -> PythonVerdict:
    """Ask CPython's C parser first: it is ~10x faster than libcst and bounds its own nesting."""
    try:
        tree = compile(text, path, "exec", flags=ast.PyCF_ONLY_AST, dont_inherit=True)
    except SyntaxError as error:
        if any(m in (error.msg or "") for m in _NESTING_MESSAGES):
            return PythonVerdict(False, error, fatal=True)
        # An earlier mistake hides the nesting from CPython: measure it ourselves.
        if bracket_depth_exceeds(text, MAX_BRACKET_DEPTH):
            return PythonVerdict(False, error, fatal=True)
        return PythonVerdict(False, error)
    except (RecursionError, MemoryError):
        return PythonVerdict(False, fatal=True, reason="too deeply nested for Python's parser")
    except ValueError as error:  # null bytes
        if bracket_depth_exceeds(text, MAX_BRACKET_DEPTH):
            return PythonVerdict(False, fatal=True, reason=str(error))
        return PythonVerdict(False, reason=str(error))
    assert isinstance(tree, ast.Module)
    lines = _LINE_BREAK.split(text)
    return PythonVerdict(
        True,
        statement_lines=_block_lines(tree.body, lines),
        nested_lines=nested_lines(tree, lines),
    )


_BLOCK_OWNERS = (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)
_LINE_BREAK = re.compile(r"\r\n?|\n")


def statement_lines(tree: ast.Module, text: str) -> tuple[int, ...] | None:
    """The line each top-level statement (its first decorator, if any) starts on."""
    return _block_lines(tree.body, _LINE_BREAK.split(text))


def _block_lines(statements: Sequence[ast.stmt], lines: Sequence[str]) -> tuple[int, ...] | None:
    """The line each statement of one block (its first decorator, if any) starts on.

    CPython's positions are exact for a statement that starts its line after the block's
    indentation, the line before it not continued by a backslash; anything else (`@` and its
    expression on different lines, say) gives None, and the caller counts the lines itself.
    """
    starts = []
    previous_end = 0
    indent: str | None = None
    for statement in statements:
        decorators = getattr(statement, "decorator_list", None)
        first = decorators[0] if decorators else statement
        line = first.lineno
        code = lines[line - 1] if 0 < line <= len(lines) else ""
        if line == previous_end and not decorators:
            starts.append(line)  # after a `;`: the same line, the same libcst statement
            previous_end = statement.end_lineno or line
            continue
        body = code.lstrip(" \t")
        here = code[: len(code) - len(body)]
        if indent is None:
            indent = here
        plain = here == indent and body[:1] not in ("", "#", "\x0c")
        if decorators:
            plain = plain and body.startswith("@")
        else:
            plain = plain and first.col_offset == len(indent)
        if not plain or (line > 1 and lines[line - 2].endswith("\\")):
            return None
        starts.append(line)
        previous_end = statement.end_lineno or line
    return tuple(starts)


def nested_lines(tree: ast.Module, lines: Sequence[str]) -> tuple[int, ...]:
    """`_block_lines` of every block inside the module's statements, flattened: each top-level
    statement's blocks in source order (`if` before `else`, `try` before its handlers), each
    statement of a block followed by its own blocks' statements; 0 for a block's statements
    where `_block_lines` gives None. `positions.nested_starts` reads libcst's tree in this order.
    """
    found: list[int] = []

    def blocks_of(statement: ast.stmt) -> None:
        for block in _blocks(statement):
            if not block:
                continue
            starts = _block_lines(block, lines)
            for index, inner in enumerate(block):
                found.append(starts[index] if starts is not None else 0)
                blocks_of(inner)

    for statement in tree.body:
        blocks_of(statement)
    return tuple(found)


def _blocks(statement: ast.stmt) -> list[list[ast.stmt]]:
    if isinstance(statement, ast.Try | ast.TryStar):
        handlers = [handler.body for handler in statement.handlers]
        return [statement.body, *handlers, statement.orelse, statement.finalbody]
    if isinstance(statement, ast.Match):
        return [case.body for case in statement.cases]
    if isinstance(statement, ast.If | ast.For | ast.AsyncFor | ast.While):
        return [statement.body, statement.orelse]
    if isinstance(statement, (*_BLOCK_OWNERS, ast.With, ast.AsyncWith)):
        return [statement.body]
    return []


def bracket_depth_exceeds(text: str, limit: int) -> bool:
    """Whether brackets nest deeper than `limit`, strings and comments aside (tokenize)."""
    depth = 0
    try:
        for token in tokenize.generate_tokens(io.StringIO(text).readline):
            if token.type == tokenize.OP:
                if token.string in _OPENING:
                    depth += 1
                    if depth > limit:
                        return True
                elif token.string in _CLOSING:
                    depth = max(depth - 1, 0)
    except (tokenize.TokenError, SyntaxError, RecursionError, MemoryError):
        return depth > limit
    return False
