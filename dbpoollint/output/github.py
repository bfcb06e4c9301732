"""GitHub Actions workflow commands: findings appear as annotations on the pull request."""

from __future__ import annotations

from collections.abc import Sequence

from dbpoollint.checks.base import Finding
from dbpoollint.output import rule_meta


def _escape(value: str) -> str:
    return value.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(value: str) -> str:
    return _escape(value).replace(":", "%3A").replace(",", "%2C")


def format_github(findings: Sequence[Finding]) -> str:
    lines = []
    for f in findings:
        span = f.span
        properties = (
            f"title={_escape_property('dbpoollint (' + f.code + ')')},"
            f"file={_escape_property(f.path)},line={span.line},col={span.column},"
            f"endLine={span.end_line},endColumn={span.end_column}"
        )
        message = _escape(f"{f.path}:{span.line}:{span.column}: {f.code} {f.message}")
        lines.append(f"::{rule_meta.severity(f.code)} {properties}::{message}\n")
    return "".join(lines)
