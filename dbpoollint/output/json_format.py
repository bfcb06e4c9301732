"""ruff's JSON schema, key for key, so tooling that reads ruff's output reads ours."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from typing import Any

from dbpoollint.checks.base import Finding


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
        "noqa_row": finding.span.line,
        "url": None,
    }


def format_json(findings: Sequence[Finding]) -> str:
    return json.dumps([as_dict(f) for f in findings], indent=2, sort_keys=True) + "\n"
