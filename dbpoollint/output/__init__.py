"""One formatter per output format; each turns sorted findings into text.

The formatters are imported on first use: a run printing text never loads SARIF's, JUnit's
(xml.etree) or the rule metadata's (importlib.metadata) modules, which cost start-up time on
every pre-commit run.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dbpoollint.checks.base import Finding

Formatter = Callable[[Sequence["Finding"]], str]

# format name -> (module under dbpoollint.output, function name)
_FORMATTER_FUNCTIONS: dict[str, tuple[str, str]] = {
    "text": ("text", "format_concise"),
    "full": ("text", "format_full"),
    "json": ("json_format", "format_json"),
    "github": ("github", "format_github"),
    "sarif": ("sarif", "format_sarif"),
    "junit": ("junit", "format_junit"),
}
FORMAT_NAMES: tuple[str, ...] = tuple(sorted(_FORMATTER_FUNCTIONS))


def formatter(name: str) -> Formatter:
    """The formatter of one output format, its module imported now."""
    module_name, function = _FORMATTER_FUNCTIONS[name]
    module = importlib.import_module(f"dbpoollint.output.{module_name}")
    found: Formatter = getattr(module, function)
    return found


def __getattr__(name: str) -> object:
    # `FORMATTERS`, every formatter at once, for callers that want them all (the tests).
    if name == "FORMATTERS":
        return {format_name: formatter(format_name) for format_name in _FORMATTER_FUNCTIONS}
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
