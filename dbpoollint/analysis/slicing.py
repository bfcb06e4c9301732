"""Cut a very large module into slices of whole top-level statements, each parsed on its own.

libcst's tree costs far more memory per line than the source, and a tree of 200,000 lines does
not fit in a worker. Above `SLICE_ABOVE_LINES` a module is analysed as slices of about
`SLICE_LINES` lines of its own top-level statements. Each slice's source also carries a
*prelude*: verbatim copies of the other top-level statements that bind or change a name the
slice reads (and, transitively, the names those read), in their original order. Every name a
slice reads then resolves as in the whole module, while the prelude stays as small as the
slice's real dependencies, not the module (see `_prelude`).

Every piece of a slice's source is a run of whole original lines, so a position in it maps back
to the original by a line offset per piece; columns never change.

Top-level statements come from CPython's `ast`, one chunk of the file at a time (the whole
module's tree would cost as much memory as the problem it solves). A chunk ends before a line
that starts a top-level `def`, `class`, decorator or import; if that line is really inside a
string or a bracket, the chunk before it is not valid Python and the next candidate is tried.
"""

from __future__ import annotations

import ast
import dataclasses
import re
from collections.abc import Iterator
from dataclasses import dataclass

# Modules with more lines than this are sliced; tests lower both.
SLICE_ABOVE_LINES = 20_000
SLICE_LINES = 4_000
# Failed chunk boundaries tried before giving up and analysing the module whole.
_MAX_RETRIES = 16
_ENVIRON = frozenset({"os", "environ"})
_CANDIDATE = re.compile(r"(?:@|def |async def |class |import |from )")


@dataclass(frozen=True)
class TopStatement:
    """One top-level statement (`a = 1; b = 2` on one line counts as one, as in libcst)."""

    start: int  # first line, decorators included (1-based)
    end: int  # last line
    binds: frozenset[str]  # module-level names it binds
    # Names whose object it changes at module level: `DATABASES["default"]["X"] = 1`,
    # `os.environ["URL"] = ...`, `app.register_blueprint(bp)`.
    mutates: frozenset[str]
    uses: frozenset[str]  # names it reads anywhere inside, nested scopes included
    function_keys: frozenset[str]  # as `lifecycle.function_keys` spells them
    always: bool = False  # every slice keeps it (see `_describe`)
    # CPython's start line of each statement in it, as `source.statement_lines` reads them;
    # None where those are not plain.
    starts: tuple[int, ...] | None = None


@dataclass(frozen=True)
class Slice:
    """A slice's source: `pieces` are (first original line, line count) runs, in order."""

    text: str
    pieces: tuple[tuple[int, int], ...]
    own_first: int  # the slice's own lines: facts outside them come from its prelude
    own_last: int
    own_names: frozenset[str]  # what its own statements bind
    before: int  # top-level statements of the prelude before the slice's own, and after
    after: int
    statement_lines: tuple[int, ...] | None  # `source.statement_lines` of `text`

    def original_line(self, line: int) -> int:
        """The original line of line `line` of `text`."""
        offset = 0
        for first, count in self.pieces:
            if line <= offset + count:
                return first + line - offset - 1
            offset += count
        return self.pieces[-1][0] + self.pieces[-1][1] - 1


_LINE = re.compile(r"[^\n]*\n|[^\n]+\Z")


def plan(text: str) -> tuple[list[Slice], frozenset[str]] | None:
    """The slices of `text` and the module's function keys; None if the module is small, not
    valid Python, or cut where a slice cannot stand alone: then it is analysed whole."""
    if text.count("\n") <= SLICE_ABOVE_LINES or "\r" in text:
        return None  # (old Mac newlines: one line-ending convention keeps the mapping plain)
    lines = _LINE.findall(text)
    statements = _statements(lines)
    if statements is None:
        return None
    keys = frozenset(key for statement in statements for key in statement.function_keys)
    return list(_slices(lines, statements)), keys


def _statements(lines: list[str]) -> list[TopStatement] | None:
    statements: list[TopStatement] = []
    start = 0
    while start < len(lines):
        end = _next_candidate(lines, start + SLICE_LINES)
        for _ in range(_MAX_RETRIES):
            chunk = "\n" * start + "".join(lines[start:end])
            try:
                tree = ast.parse(chunk)
                break
            except SyntaxError:
                if end >= len(lines):
                    return None
                end = _next_candidate(lines, end + 1)
            except (RecursionError, MemoryError, ValueError):
                return None
        else:
            return None
        for node in tree.body:
            start_line = _plain_start(node, lines, statements[-1].end if statements else 0)
            starts = None if start_line is None else (start_line,)
            statements.append(dataclasses.replace(_describe(node), starts=starts))
        del tree
        start = end
    return _merge_shared_lines(statements)


def _plain_start(node: ast.stmt, lines: list[str], previous_end: int) -> int | None:
    """`source.statement_lines` for one statement: its first line, if CPython's is exact."""
    decorators = getattr(node, "decorator_list", None)
    first = decorators[0] if decorators else node
    line = first.lineno
    code = lines[line - 1] if 0 < line <= len(lines) else ""
    if decorators:
        plain = code.startswith("@")
    elif line == previous_end:
        plain = True  # after a `;`
    else:
        plain = first.col_offset == 0 and code[:1] not in ("", " ", "\t", "#", "\x0c", "\n")
    if not plain or (line > 1 and lines[line - 2].rstrip("\n").endswith("\\")):
        return None
    return line


def _next_candidate(lines: list[str], index: int) -> int:
    while index < len(lines) and not _CANDIDATE.match(lines[index]):
        index += 1
    return min(index, len(lines))


def _merge_shared_lines(statements: list[TopStatement]) -> list[TopStatement]:
    """`a = 1; b = 2` is two statements for `ast`, one line (one statement) for libcst."""
    merged: list[TopStatement] = []
    for statement in statements:
        if merged and merged[-1].end >= statement.start:
            last = merged.pop()
            statement = TopStatement(
                last.start,
                max(last.end, statement.end),
                last.binds | statement.binds,
                last.mutates | statement.mutates,
                last.uses | statement.uses,
                last.function_keys | statement.function_keys,
                last.always or statement.always,
                None
                if last.starts is None or statement.starts is None
                else (last.starts + statement.starts),
            )
        merged.append(statement)
    return merged


def _describe(node: ast.stmt) -> TopStatement:
    decorators = getattr(node, "decorator_list", [])
    start = min([node.lineno, *(d.lineno for d in decorators)])
    end = node.end_lineno or node.lineno
    mutates = frozenset(_mutates(node))
    # Star imports bind what nobody can list; the process environment (`os.environ[...] = `)
    # is read by every migration runner below it, whatever names that code reads.
    always = bool(mutates & _ENVIRON) or (
        isinstance(node, ast.ImportFrom)
        and (node.module == "__future__" or any(a.name == "*" for a in node.names))
    )
    keys: set[str] = set()
    _function_keys([node], "", "", keys)
    return TopStatement(
        start,
        end,
        frozenset(_binds(node)),
        mutates,
        frozenset(_uses(node)),
        frozenset(keys),
        always,
    )


def _binds(node: ast.AST) -> Iterator[str]:
    """Module-level names bound by a top-level statement: nested scopes bind their own names,
    except the ones they declare `global`."""
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
        yield node.name
        for inner in ast.walk(node):
            if isinstance(inner, ast.Global):
                yield from inner.names
        return
    if isinstance(node, ast.Lambda):
        return
    if isinstance(node, ast.Import):
        for alias in node.names:
            yield alias.asname or alias.name.partition(".")[0]
        return
    if isinstance(node, ast.ImportFrom):
        for alias in node.names:
            yield alias.asname or alias.name
        return
    if isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Load):
        yield node.id
    elif isinstance(node, ast.ExceptHandler | ast.MatchAs | ast.MatchStar) and node.name:
        yield node.name
    elif isinstance(node, ast.MatchMapping) and node.rest:
        yield node.rest
    for child in ast.iter_child_nodes(node):
        yield from _binds(child)


def _mutates(node: ast.AST) -> Iterator[str]:
    """Names whose objects module-level code changes: attribute and item stores, and method
    calls made for their effect. Nested scopes run later, when called: they are not here."""
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef | ast.Lambda):
        return
    target: ast.AST | None = None
    if isinstance(node, ast.Attribute | ast.Subscript) and not isinstance(node.ctx, ast.Load):
        target = node.value
    elif isinstance(node, ast.Expr) and isinstance(node.value, ast.Call):
        target = node.value.func
    while isinstance(target, ast.Attribute | ast.Subscript | ast.Call):
        target = target.func if isinstance(target, ast.Call) else target.value
    if isinstance(target, ast.Name):
        yield target.id
    for child in ast.iter_child_nodes(node):
        yield from _mutates(child)


_IDENTIFIER = re.compile(r"[A-Za-z_]\w*")
_TYPE_TEXT = re.compile(r"[\w.\[\],|]+")


def _uses(node: ast.AST) -> Iterator[str]:
    """Every name read inside the statement, string annotations included (libcst reads them)."""
    for inner in ast.walk(node):
        if isinstance(inner, ast.Name):
            yield inner.id
        elif isinstance(inner, ast.Global | ast.Nonlocal):
            yield from inner.names
        elif isinstance(inner, ast.Constant) and isinstance(inner.value, str):
            if _TYPE_TEXT.fullmatch(inner.value):  # `cast("Engine", x)`, `"list[Engine]"`
                yield from _IDENTIFIER.findall(inner.value)
        elif isinstance(inner, ast.arg | ast.AnnAssign | ast.FunctionDef | ast.AsyncFunctionDef):
            # libcst reads string annotations as code, spaces and all.
            annotation = (
                inner.returns
                if not isinstance(inner, ast.arg | ast.AnnAssign)
                else (inner.annotation)
            )
            for part in ast.walk(annotation) if annotation is not None else ():
                if isinstance(part, ast.Constant) and isinstance(part.value, str):
                    yield from _IDENTIFIER.findall(part.value)


def _function_keys(statements: list[ast.stmt], kind: str, prefix: str, keys: set[str]) -> None:
    """`lifecycle.function_keys` on `ast`: the keys of the functions among `statements`."""
    for statement in statements:
        if isinstance(statement, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            name = statement.name
            if not prefix:
                key = name
            else:
                key = f"{prefix}.{name}" if kind == "class" else f"{prefix}.<locals>.{name}"
            is_function = not isinstance(statement, ast.ClassDef)
            if is_function:
                keys.add(key)
            _function_keys(statement.body, "function" if is_function else "class", key, keys)
        else:
            _function_keys(_blocks(statement), kind, prefix, keys)


def _blocks(statement: ast.stmt) -> list[ast.stmt]:
    if isinstance(statement, ast.With | ast.AsyncWith):
        return statement.body
    if isinstance(statement, ast.For | ast.AsyncFor | ast.While | ast.If):
        return [*statement.body, *statement.orelse]
    if isinstance(statement, ast.Try | ast.TryStar):
        handlers = [s for handler in statement.handlers for s in handler.body]
        return [*statement.body, *handlers, *statement.orelse, *statement.finalbody]
    if isinstance(statement, ast.Match):
        return [s for case in statement.cases for s in case.body]
    return []


def _slices(lines: list[str], statements: list[TopStatement]) -> Iterator[Slice]:
    binders: dict[str, list[int]] = {}  # name -> the statements binding or changing it
    mutators: dict[str, list[int]] = {}  # name -> the statements changing it
    for index, statement in enumerate(statements):
        for name in statement.binds | statement.mutates:
            binders.setdefault(name, []).append(index)
        for name in statement.mutates:
            mutators.setdefault(name, []).append(index)
    always = [i for i, s in enumerate(statements) if s.always]
    texts = _Texts(lines, statements)
    groups: list[list[int]] = [[]]
    for index, statement in enumerate(statements):
        if groups[-1] and statement.end - statements[groups[-1][0]].start >= SLICE_LINES:
            groups.append([])
        groups[-1].append(index)
    own_first = 1
    for number, group in enumerate(groups):
        last = number == len(groups) - 1
        own_last = len(lines) if last else statements[group[-1]].end
        prelude = _prelude(statements, group, binders, mutators, always, texts)
        pieces: list[tuple[int, int]] = []
        for index in sorted({*prelude, group[0]}):
            if index == group[0]:
                pieces.append((own_first, own_last - own_first + 1))
            elif not group[0] < index <= group[-1]:
                statement = statements[index]
                pieces.append((statement.start, statement.end - statement.start + 1))
        text = "".join(_piece(lines, first, count) for first, count in pieces)
        own_names = frozenset(name for i in group for name in statements[i].binds)
        before = sum(1 for i in prelude if i < group[0])
        after = len(prelude) - before
        order = [*sorted(i for i in prelude if i < group[0]), *group]
        order += sorted(i for i in prelude if i > group[-1])
        yield Slice(
            text,
            tuple(pieces),
            own_first,
            own_last,
            own_names,
            before,
            after,
            _local_starts([statements[i] for i in order], pieces),
        )
        own_first = own_last + 1


def _local_starts(
    statements: list[TopStatement], pieces: list[tuple[int, int]]
) -> tuple[int, ...] | None:
    """The statements' CPython start lines, counted in the slice's text."""
    found: list[int] = []
    offset, index = 0, 0
    for first, count in pieces:
        while index < len(statements) and statements[index].start < first + count:
            starts = statements[index].starts
            if starts is None:
                return None
            found += [offset + line - first + 1 for line in starts]
            index += 1
        offset += count
    return tuple(found)


def _piece(lines: list[str], first: int, count: int) -> str:
    text = "".join(lines[first - 1 : first - 1 + count])
    return text if text.endswith("\n") else text + "\n"  # the file's last line, moved


def _prelude(
    statements: list[TopStatement],
    group: list[int],
    binders: dict[str, list[int]],
    mutators: dict[str, list[int]],
    always: list[int],
    texts: _Texts,
) -> set[int]:
    """The other statements binding or changing what the slice reads, and changing what it
        binds, closed over what they read.

    What the slice only binds needs no other binding: a name bound in several slices is keyed by
    its last binding in the whole module, and slices merge in order (`merge`).

        Of statements with the same text (a module repeating `log = logging.getLogger(__name__)`
        or its imports) one copy tells the names' resolution all the others would: the last one
        before the slice (libcst resolves a module-level read to the bindings above it), else one
        in the slice or the first after it. Without that, a module that repeats its imports would
        give every slice a prelude as long as the module's repetitions."""
    own = set(group)
    included: set[int] = set(always) - own
    pending = [name for i in (*group, *included) for name in statements[i].uses]
    # What changes an object the slice binds tells its facts: `DATABASES[...][...] = ...`.
    for name in {name for i in group for name in statements[i].binds}:
        for index in mutators.get(name, ()):
            if index not in own and index not in included:
                included.add(index)
                pending.extend(statements[index].uses)
    seen: set[str] = set()
    while pending:
        name = pending.pop()
        if name in seen:
            continue
        seen.add(name)
        before: dict[str, int] = {}  # text -> its last copy before the slice
        after: dict[str, int] = {}  # text -> its first copy after, or -1: the slice has one
        for index in binders.get(name, ()):
            text = texts[index]
            if index < group[0]:
                before[text] = index
            elif index in own:
                after[text] = -1
            else:
                after.setdefault(text, index)
        for index in [*before.values(), *(i for t, i in after.items() if t not in before)]:
            if index >= 0 and index not in included:
                included.add(index)
                pending.extend(statements[index].uses)
    return included


class _Texts(dict[int, str]):
    """A statement's source text by index, read from the lines when first asked."""

    def __init__(self, lines: list[str], statements: list[TopStatement]) -> None:
        super().__init__()
        self._lines = lines
        self._statements = statements

    def __missing__(self, index: int) -> str:
        statement = self._statements[index]
        text = self[index] = "".join(self._lines[statement.start - 1 : statement.end])
        return text
