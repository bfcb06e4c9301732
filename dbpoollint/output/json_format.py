"""ruff's JSON schema (0.17: `name`, `severity`, `url` included), so tooling that reads ruff's
output reads ours. Fix edits are the smallest changed spans, as ruff's are."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from typing import Any

from dbpoollint.checks.base import Finding
from dbpoollint.output import rule_meta


def _location(line: int, column: int) -> dict[str, int]:
    return {"column": column, "row": line}


def as_dict(finding: Finding) -> dict[str, Any]:
    fix = None
    if finding.fix is not None:
        fix = {
            "applicability": finding.fix.applicability,
            "edits": [
                {
                    "content": edit.content,
                    "end_location": _location(*edit.end),
                    "location": _location(*edit.start),
                }
                for edit in finding.fix.edits
            ],
            "message": finding.fix.message,
        }
    filename = finding.path if finding.path == "-" else os.path.abspath(finding.path)
    return {
        "cell": None,
        "code": finding.code,
        "end_location": _location(finding.span.end_line, finding.span.end_column),
        "filename": filename,
        "fix": fix,
        "location": _location(finding.span.line, finding.span.column),
        "message": finding.message,
        "name": rule_meta.name(finding.code),
        "noqa_row": finding.span.line,
        "severity": rule_meta.severity(finding.code),
        "url": rule_meta.url(finding.code),
    }


def format_json(findings: Sequence[Finding]) -> str:
    return json.dumps([as_dict(f) for f in findings], indent=2, sort_keys=True) + "\n"
