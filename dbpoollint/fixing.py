"""Turn fixable findings into fixes: edits for reports, rewritten files for `--fix`."""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import libcst as cst

from dbpoollint.checks.base import Finding
from dbpoollint.fixes import HoistRequest, hoist, hoist_fix
from dbpoollint.packs import PackSet
from dbpoollint.source import SourceError, decode
from dbpoollint.writer import encode_like


@dataclass
class FixOutcome:
    # path -> (original bytes, fixed bytes)
    changed: dict[str, tuple[bytes, bytes]] = field(default_factory=dict)
    fixed: int = 0
    skipped_unsafe: int = 0


def _request(finding: Finding, packs: PackSet) -> HoistRequest | None:
    if finding.hoist is None:
        return None
    callee, in_handler = finding.hoist
    call = packs.client_call([callee])
    if call is None:
        return None
    return HoistRequest(finding.span.line, finding.span.column, call, in_handler)


def attach_fixes(
    findings: Sequence[Finding], sources: Mapping[str, bytes], packs: PackSet
) -> list[Finding]:
    """Give each fixable finding its Fix (edits and applicability), for output and `[*]`."""
    result = []
    texts: dict[str, str | None] = {}
    for finding in findings:
        request = _request(finding, packs)
        if request is None or finding.path not in sources:
            result.append(finding)
            continue
        if finding.path not in texts:
            try:
                texts[finding.path] = decode(finding.path, sources[finding.path]).text
            except SourceError:
                texts[finding.path] = None
        text = texts[finding.path]
        fix = hoist_fix(text, request) if text is not None else None
        result.append(dataclasses.replace(finding, fix=fix) if fix else finding)
    return result


def apply_fixes(
    findings: Sequence[Finding],
    sources: Mapping[str, bytes],
    packs: PackSet,
    allow_unsafe: bool,
) -> FixOutcome:
    outcome = FixOutcome()
    by_path: dict[str, list[HoistRequest]] = defaultdict(list)
    for finding in findings:
        request = _request(finding, packs)
        if request is not None and finding.path in sources:
            by_path[finding.path].append(request)
    for path, requests in sorted(by_path.items()):
        original = sources[path]
        try:
            source = decode(path, original)
            fixed_text, plans = hoist(source.text, requests, allow_unsafe)
            cst.parse_module(fixed_text)  # never write code that does not parse
        except (SourceError, cst.ParserSyntaxError, RecursionError):
            continue
        outcome.fixed += sum(
            1
            for p in plans
            if p.applicability == "safe" or (allow_unsafe and p.applicability == "unsafe")
        )
        outcome.skipped_unsafe += sum(
            1 for p in plans if p.applicability == "unsafe" and not allow_unsafe
        )
        if fixed_text != source.text:
            outcome.changed[path] = (original, encode_like(original, fixed_text, source.encoding))
    return outcome
