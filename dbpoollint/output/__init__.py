"""One formatter per output format; each turns sorted findings into text."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from dbpoollint.checks.base import Finding
from dbpoollint.output import github, json_format, junit, sarif, text

Formatter = Callable[[Sequence[Finding]], str]

FORMATTERS: dict[str, Formatter] = {
    "text": text.format_concise,
    "full": text.format_full,
    "json": json_format.format_json,
    "github": github.format_github,
    "sarif": sarif.format_sarif,
    "junit": junit.format_junit,
}
