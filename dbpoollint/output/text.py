from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import click

from dbpoollint.checks import RULES_BY_CODE
from dbpoollint.checks.base import Finding
from dbpoollint.output.masking import mask_line


def _line(finding: Finding) -> str:
    location = click.style(f"{finding.path}:{finding.span.line}:{finding.span.column}:", bold=True)
    code = click.style(finding.code, fg="red", bold=True)
    marker = " [*]" if finding.fix is not None and finding.fix.applicability == "safe" else ""
    return f"{location} {code}{marker} {finding.message}"


def format_concise(findings: Sequence[Finding]) -> str:
    return "".join(_line(f) + "\n" for f in findings)


def format_full(findings: Sequence[Finding]) -> str:
    """Each finding followed by the source line it points at, with a caret."""
    out: list[str] = []
    cache: dict[str, list[str]] = {}
    for finding in findings:
        out.append(_line(finding))
        if finding.path not in cache:
            try:
                cache[finding.path] = Path(finding.path).read_text(errors="replace").splitlines()
            except OSError:
                cache[finding.path] = []
        lines = cache[finding.path]
        if 0 < finding.span.line <= len(lines):
            source = lines[finding.span.line - 1]
            out.append(f"  {finding.span.line:>4} | {mask_line(source)}")
            width = (
                finding.span.end_column - finding.span.column
                if finding.span.end_line == finding.span.line
                else len(source) - finding.span.column + 1
            )
            out.append("       | " + " " * (finding.span.column - 1) + "^" * max(1, width))
        out.append("")
    return "\n".join(out) + ("\n" if out else "")


def summary_line(findings: Sequence[Finding]) -> str:
    if not findings:
        return "All checks passed!"
    fixable = sum(1 for f in findings if f.fix is not None and f.fix.applicability == "safe")
    unsafe = sum(1 for f in findings if f.fix is not None and f.fix.applicability == "unsafe")
    noun = "error" if len(findings) == 1 else "errors"
    tail = f"\n[*] {fixable} fixable with the `--fix` option." if fixable else ""
    if unsafe:
        tail += f"\n({unsafe} more fixable with `--fix --unsafe-fixes`.)"
    return f"Found {len(findings)} {noun}.{tail}"


def statistics(findings: Sequence[Finding], as_json: bool = False) -> str:
    """ruff's `--statistics`: count, code, `[*]` when fixable, name; most frequent first."""
    counts = Counter(f.code for f in findings)
    fixable = Counter(
        f.code for f in findings if f.fix is not None and f.fix.applicability == "safe"
    )
    ordered = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    if as_json:
        rows = [
            {
                "code": code,
                "name": RULES_BY_CODE[code].name if code in RULES_BY_CODE else None,
                "count": count,
                "fixable": fixable[code] > 0,
                "fixable_count": fixable[code],
            }
            for code, count in ordered
        ]
        return json.dumps(rows, indent=2) + "\n"
    width = max((len(str(count)) for _, count in ordered), default=1)
    lines = []
    for code, count in ordered:
        rule = RULES_BY_CODE.get(code)
        marker = "[*] " if fixable[code] else ""
        lines.append(f"{count:>{width}}\t{code}\t{marker}{rule.name if rule else ''}")
    return "\n".join(lines) + ("\n" if lines else "")
