"""`# noqa`, `# noqa: DPL101, DPL102` on a line, and `# dbpoollint: noqa` for a whole file.

Directives are read from comment tokens (tokenize), so `"# noqa"` inside a string is text, not
a suppression. A finding on a line where no comment can go (inside a multi-line string, or a
backslash-continued line) is suppressed by the comment where that construct ends, as in ruff.
"""

from __future__ import annotations

import io
import re
import tokenize
from collections.abc import Callable, Container, Iterable, Iterator, Mapping
from dataclasses import dataclass, field

from dbpoollint.analysis.model import Span
from dbpoollint.checks.base import Finding, FixRequest

# As ruff reads it: bare `noqa`, `noqa: A1, B2`, `NOQA:A1 B2`; codes are letters then digits.
_DIRECTIVE = re.compile(
    r"#\s*noqa(?::\s*(?P<codes>[A-Z]+[0-9]+(?:[\s,]+[A-Z]+[0-9]+)*))?", re.IGNORECASE
)
_FILE = re.compile(r"^#\s*dbpoollint:\s*noqa\s*$", re.IGNORECASE)
OUR_PREFIX = "DPL"


@dataclass(frozen=True)
class Directive:
    line: int
    column: int  # 1-based column of the directive's `#`
    end_column: int  # 1-based column just past it
    codes: tuple[str, ...] | None  # None: a bare directive silences everything on the line


@dataclass
class Suppressions:
    whole_file: bool = False
    directives: dict[int, Directive] = field(default_factory=dict)
    # Lines where no comment can go -> the line whose comment covers them.
    anchors: dict[int, int] = field(default_factory=dict)

    def noqa_line(self, line: int) -> int:
        return self.anchors.get(line, line)

    def suppresses(self, code: str, line: int) -> bool:
        if self.whole_file and code not in ("DPL001", "DPL002"):
            return True
        directive = self.directives.get(self.noqa_line(line))
        if directive is None:
            return False
        return directive.codes is None or code in directive.codes


def _comments(text: str) -> tuple[list[tokenize.TokenInfo], set[int], int]:
    """Comment tokens, the lines that end outside a string/continuation, and the line count."""
    comments: list[tokenize.TokenInfo] = []
    open_lines: set[int] = set()
    last = 0
    try:
        for token in tokenize.generate_tokens(io.StringIO(text).readline):
            last = max(last, token.end[0])
            if token.type == tokenize.COMMENT:
                comments.append(token)
                open_lines.add(token.start[0])
            elif token.type in (tokenize.NEWLINE, tokenize.NL):
                open_lines.add(token.start[0])
    except (tokenize.TokenError, SyntaxError):
        pass  # a file that does not tokenize is reported as DPL001; keep what was read
    return comments, open_lines, last


def parse_suppressions(text: str) -> Suppressions:
    if "noqa" not in text.lower():
        return Suppressions()
    return read_directives(text)


def read_directives(text: str) -> Suppressions:
    """The full pass: every directive, and where a comment can go on each line."""
    result = Suppressions()
    comments, open_lines, last = _comments(text)
    for token in comments:
        if _FILE.match(token.string) and token.line.strip() == token.string.strip():
            result.whole_file = True
            continue
        match = _DIRECTIVE.search(token.string)
        if match is None:
            continue
        line, start = token.start[0], token.start[1] + match.start()
        codes = match.group("codes")
        result.directives[line] = Directive(
            line,
            start + 1,
            token.start[1] + match.end() + 1,
            tuple(c.upper() for c in re.split(r"[\s,]+", codes) if c) if codes else None,
        )
    result.anchors = _anchors(open_lines, last)
    return result


def _anchors(open_lines: set[int], last: int) -> dict[int, int]:
    anchors: dict[int, int] = {}
    pending: list[int] = []
    for line in range(1, last + 1):
        if line in open_lines:
            anchors.update(dict.fromkeys(pending, line))
            pending = []
        else:
            pending.append(line)
    return anchors


# --- rewriting: --add-noqa and the DPL009 fix ------------------------------------------------


def _split_ending(line: str) -> tuple[str, str]:
    body = line.rstrip("\r\n")
    return body, line[len(body) :]


def _format(codes: Iterable[str]) -> str:
    return "# noqa: " + ", ".join(codes)


def _merged(existing: tuple[str, ...], new: Iterable[str]) -> list[str]:
    """Existing codes keep their order (other tools' too); ours are added, sorted."""
    result = list(dict.fromkeys(existing))
    result += sorted(set(new) - set(result))
    return result


def add_noqa(text: str, codes_by_line: Mapping[int, Iterable[str]]) -> tuple[str, int]:
    """Append or merge `# noqa: CODES` on each line; returns the text and the lines changed."""
    suppressions = read_directives(text)
    wanted: dict[int, set[str]] = {}
    for line, codes in codes_by_line.items():
        wanted.setdefault(suppressions.noqa_line(line), set()).update(codes)
    lines = text.splitlines(keepends=True)
    changed = 0
    for line, codes in sorted(wanted.items()):
        if not 0 < line <= len(lines):
            continue
        body, ending = _split_ending(lines[line - 1])
        directive = suppressions.directives.get(line)
        if directive is not None and directive.codes is None:
            continue  # a bare directive already silences the line
        if directive is not None and directive.codes is not None:
            merged = _merged(directive.codes, codes)
            if merged == list(directive.codes):
                continue
            start, end = directive.column - 1, directive.end_column - 1
            body = body[:start] + _format(merged) + body[end:]
        else:
            body = body.rstrip() + "  " + _format(sorted(codes))
        lines[line - 1] = body + ending
        changed += 1
    return "".join(lines), changed


def remove_codes(text: str, removals: Mapping[int, Iterable[str]]) -> tuple[str, set[int]]:
    """Drop codes from the directives on the given lines; a directive left without codes goes,
    with the whitespace before it. Returns the text and the lines it changed."""
    suppressions = parse_suppressions(text)
    lines = text.splitlines(keepends=True)
    done: set[int] = set()
    for line, codes in removals.items():
        directive = suppressions.directives.get(line)
        if directive is None or directive.codes is None or not 0 < line <= len(lines):
            continue
        drop = {c.upper() for c in codes}
        kept = [c for c in directive.codes if c not in drop]
        if len(kept) == len(directive.codes):
            continue
        body, ending = _split_ending(lines[line - 1])
        start, end = directive.column - 1, directive.end_column - 1
        if kept:
            body = body[:start] + _format(kept) + body[end:]
        else:
            rest = body[end:].lstrip()
            if rest and not rest.startswith("#"):
                rest = "# " + rest  # the explanation after the codes stays a comment
            head = body[:start].rstrip()
            body = f"{head}  {rest}" if rest and head else head or rest
        lines[line - 1] = body + ending
        done.add(line)
    return "".join(lines), done


# --- DPL009: directives that suppress nothing -------------------------------------------------

UNUSED_NOQA = "DPL009"


def unused_directives(
    path: str,
    suppressions: Suppressions,
    findings: Iterable[Finding],
    known: Container[str],
    enabled: Callable[[str], bool],
) -> Iterator[Finding]:
    """Our codes in `# noqa: ...` that silenced none of `findings` (this file's, before
    suppression). Other tools' codes and bare `# noqa` are not ours to judge."""
    used: set[tuple[int, str]] = set()
    for finding in findings:
        line = suppressions.noqa_line(finding.span.line)
        directive = suppressions.directives.get(line)
        if directive is not None and directive.codes is not None:
            used.add((line, finding.code))
    for line, directive in sorted(suppressions.directives.items()):
        if directive.codes is None:
            continue
        kinds: dict[str, list[str]] = {"unused": [], "non-enabled": [], "unknown": []}
        for code in directive.codes:
            if not code.startswith(OUR_PREFIX) or code == UNUSED_NOQA or (line, code) in used:
                continue
            if code not in known:
                kinds["unknown"].append(code)
            elif not enabled(code):
                kinds["non-enabled"].append(code)
            else:
                kinds["unused"].append(code)
        stale = [code for codes in kinds.values() for code in codes]
        if not stale:
            continue
        detail = "; ".join(
            f"{kind}: {', '.join(f'`{c}`' for c in codes)}"
            for kind, codes in kinds.items()
            if codes
        )
        span = Span(line, directive.column, line, directive.end_column)
        request = FixRequest("unused-noqa", (("codes", ",".join(stale)),))
        yield Finding(
            path,
            span,
            UNUSED_NOQA,
            f"Unused `noqa` directive ({detail}): remove it, or the codes it lists",
            fix_request=request,
        )
