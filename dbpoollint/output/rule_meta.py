"""What every output format says about a rule besides the finding: its name, severity and URL."""

from __future__ import annotations

import functools
from importlib import metadata

from dbpoollint.checks import RULES_BY_CODE

# The `[project.urls]` label whose URL is the base of the rule pages (docs/rules/DPLxxx.md).
DOCS_URL_LABEL = "Rules"

# Pool-limit knobs (2xx) are tuning advice and opt-in/opinionated codes (9xx, DPL009) are
# hygiene: warnings. Everything else is a mistake that breaks a service: errors.
WARNING_FAMILIES = ("DPL2", "DPL9", "DPL009")


def severity(code: str) -> str:
    """ "error" or "warning": SARIF's `level`, GitHub's annotation kind, JSON's `severity`.

    A rule states its own (`Rule.severity`, with the reason in its docs); the families decide
    for codes without a rule class."""
    rule = RULES_BY_CODE.get(code)
    if rule is not None:
        return rule.severity
    return "warning" if code.startswith(WARNING_FAMILIES) else "error"


def name(code: str) -> str | None:
    rule = RULES_BY_CODE.get(code)
    return rule.name if rule is not None else None


@functools.cache
def docs_base_url() -> str | None:
    """From the installed package's metadata, so one setting in pyproject.toml moves them all."""
    try:
        entries: list[str] = metadata.metadata("dbpoollint").get_all("Project-URL") or []
    except metadata.PackageNotFoundError:
        return None
    for entry in entries:
        label, _, url = entry.partition(",")
        if label.strip() == DOCS_URL_LABEL and url.strip():
            base = url.strip()
            return base if base.endswith("/") else base + "/"
    return None


def url(code: str) -> str | None:
    base = docs_base_url()
    return f"{base}{code}.md" if base is not None and code in RULES_BY_CODE else None
