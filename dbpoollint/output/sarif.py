"""SARIF 2.1.0, for GitHub code scanning and other SARIF viewers.

Paths are relative to `%SRCROOT%` (the working directory, given in `originalUriBaseIds`), so an
upload resolves them wherever it runs. `partialFingerprints` hash the rule, the file and the
text of the reported line (not its number), so an alert keeps its identity when lines move.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from dbpoollint import __version__
from dbpoollint.checks import ALL_RULES
from dbpoollint.checks.base import Edit, Finding
from dbpoollint.output import rule_meta

SCHEMA = (
    "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
)
SRCROOT = "%SRCROOT%"
FINGERPRINT = "dbpoollint/v1"


def _artifact(path: str, root: Path) -> dict[str, str]:
    absolute = Path(path).resolve()
    try:
        relative = absolute.relative_to(root)
    except ValueError:
        return {"uri": absolute.as_uri()}
    return {"uri": relative.as_posix(), "uriBaseId": SRCROOT}


def _rule(rule_class: Any) -> dict[str, Any]:
    rule: dict[str, Any] = {
        "id": rule_class.code,
        "name": rule_class.name,
        "shortDescription": {"text": " ".join(rule_class.summary().split())},
        "fullDescription": {"text": rule_class.docs()},
        "help": {"text": rule_class.docs(), "markdown": rule_class.docs()},
        "defaultConfiguration": {"level": rule_meta.severity(rule_class.code)},
        "properties": {"tags": [rule_class.name]},
    }
    url = rule_meta.url(rule_class.code)
    if url is not None:
        rule["helpUri"] = url
    return rule


def _region(start: tuple[int, int], end: tuple[int, int]) -> dict[str, int]:
    return {"startLine": start[0], "startColumn": start[1], "endLine": end[0], "endColumn": end[1]}


def _replacement(edit: Edit) -> dict[str, Any]:
    return {
        "deletedRegion": _region(edit.start, edit.end),
        "insertedContent": {"text": edit.content},
    }


class _Lines:
    """The text of reported lines, read once per file, for the fingerprints."""

    def __init__(self) -> None:
        self.files: dict[str, list[str]] = {}

    def line(self, path: str, number: int) -> str:
        if path not in self.files:
            try:
                text = Path(path).read_text(encoding="utf-8", errors="replace")
            except OSError:
                text = ""
            self.files[path] = text.splitlines()
        lines = self.files[path]
        return lines[number - 1] if 0 < number <= len(lines) else ""


def _fingerprints(findings: Sequence[Finding], root: Path) -> list[str]:
    lines = _Lines()
    seen: Counter[str] = Counter()
    prints = []
    for f in findings:
        uri = _artifact(f.path, root)["uri"]
        content = " ".join(lines.line(f.path, f.span.line).split()) or f.message
        key = f"{f.code}\0{uri}\0{content}"
        seen[key] += 1  # the same line twice in a file: the second is another alert
        digest = hashlib.sha256(f"{key}\0{seen[key]}".encode()).hexdigest()[:32]
        prints.append(digest)
    return prints


def format_sarif(findings: Sequence[Finding]) -> str:
    root = Path(os.getcwd()).resolve()
    index = {rule.code: position for position, rule in enumerate(ALL_RULES)}
    results = []
    for finding, fingerprint in zip(findings, _fingerprints(findings, root), strict=True):
        artifact = _artifact(finding.path, root)
        result: dict[str, Any] = {
            "ruleId": finding.code,
            "level": rule_meta.severity(finding.code),
            "message": {"text": finding.message},
            "locations": [
                {
                    "physicalLocation": {
                        "artifactLocation": artifact,
                        "region": _region(
                            (finding.span.line, finding.span.column),
                            (finding.span.end_line, finding.span.end_column),
                        ),
                    }
                }
            ],
            "partialFingerprints": {FINGERPRINT: fingerprint},
        }
        if finding.code in index:
            result["ruleIndex"] = index[finding.code]
        if finding.fix is not None and finding.fix.edits:
            result["fixes"] = [
                {
                    "description": {"text": f"{finding.fix.message} ({finding.fix.applicability})"},
                    "artifactChanges": [
                        {
                            "artifactLocation": artifact,
                            "replacements": [_replacement(e) for e in finding.fix.edits],
                        }
                    ],
                }
            ]
        results.append(result)
    document = {
        "$schema": SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "dbpoollint",
                        "version": __version__,
                        "informationUri": "https://github.com/dbpoollint/dbpoollint",
                        "rules": [_rule(rule) for rule in ALL_RULES],
                    }
                },
                "originalUriBaseIds": {SRCROOT: {"uri": root.as_uri() + "/"}},
                "columnKind": "unicodeCodePoints",
                "results": results,
            }
        ],
    }
    return json.dumps(document, indent=2) + "\n"
