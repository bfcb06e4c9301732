"""Turn fixable findings into fixes: edits for reports, rewritten sources for `--fix`.

Each fixer takes a file's text and the requests of its findings and returns the new text plus,
per request, the applicability it achieved ("safe", "unsafe") or None when it cannot fix it.
A fixer only applies unsafe edits when asked to. Rules name their fixer in `FixRequest.fixer`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace

import libcst as cst

from dbpoollint.checks.base import Edit, Finding, Fix, FixRequest
from dbpoollint.factory_fix import cache_factories
from dbpoollint.fixes import HoistRequest, edits_between, hoist
from dbpoollint.packs import PackSet
from dbpoollint.source import SourceError, decode
from dbpoollint.writer import encode_like

FixerResult = tuple[str, list[str | None]]
Fixer = Callable[[str, Sequence[tuple[Finding, FixRequest]], bool, PackSet], FixerResult]


def _hoist_fixer(
    text: str, requests: Sequence[tuple[Finding, FixRequest]], allow_unsafe: bool, packs: PackSet
) -> FixerResult:
    hoists: list[HoistRequest] = []
    indexes: list[int] = []
    for index, (finding, request) in enumerate(requests):
        call = packs.client_call([str(request.param("callee"))])
        if call is not None:
            in_handler = bool(request.param("in_handler"))
            hoists.append(HoistRequest(finding.span.line, finding.span.column, call, in_handler))
            indexes.append(index)
    fixed, plans = hoist(text, hoists, allow_unsafe)
    applicability: list[str | None] = [None] * len(requests)
    for index, plan in zip(indexes, plans, strict=True):
        applicability[index] = plan.applicability
    return fixed, applicability


def _cache_factory_fixer(
    text: str, requests: Sequence[tuple[Finding, FixRequest]], allow_unsafe: bool, packs: PackSet
) -> FixerResult:
    positions = [(finding.span.line, finding.span.column) for finding, _ in requests]
    return cache_factories(text, positions)


FIXERS: dict[str, Fixer] = {
    "hoist": _hoist_fixer,
    "cache-factory": _cache_factory_fixer,
}
FIX_TITLES: dict[str, str] = {
    "hoist": "Hoist into a module-level lazy singleton",
    "cache-factory": "Cache the factory (functools.cache, or an asyncio.Lock-guarded singleton)",
}


@dataclass
class FixOutcome:
    # path -> fixed bytes
    changed: dict[str, bytes] = field(default_factory=dict)
    fixed: int = 0
    skipped_unsafe: int = 0


def _grouped(findings: Sequence[Finding]) -> dict[str, dict[str, list[tuple[Finding, FixRequest]]]]:
    groups: dict[str, dict[str, list[tuple[Finding, FixRequest]]]] = defaultdict(
        lambda: defaultdict(list)
    )
    for finding in findings:
        request = finding.fix_request
        if request is not None and request.fixer in FIXERS:
            groups[finding.path][request.fixer].append((finding, request))
    return groups


def _text(path: str, sources: Mapping[str, bytes]) -> str | None:
    try:
        return decode(path, sources[path]).text
    except SourceError:
        return None


def attach_fixes(
    findings: Sequence[Finding],
    sources: Mapping[str, bytes],
    packs: PackSet,
    with_edits: bool,
) -> list[Finding]:
    """Give fixable findings their Fix: applicability always, edits when the output shows them.

    Applicability needs one fixer pass per file; edits need one pass per finding.
    """
    fixes: dict[int, Fix] = {}
    for path, by_fixer in _grouped(findings).items():
        text = _text(path, sources) if path in sources else None
        if text is None:
            continue
        for name, requests in by_fixer.items():
            fixer = FIXERS[name]
            try:
                _, applicability = fixer(text, requests, True, packs)
            except (cst.ParserSyntaxError, RecursionError):
                continue
            for (finding, request), level in zip(requests, applicability, strict=True):
                if level is None:
                    continue
                edits: tuple[Edit, ...] = ()
                if with_edits:
                    fixed, _ = fixer(text, [(finding, request)], True, packs)
                    edits = edits_between(text, fixed)
                fixes[id(finding)] = Fix(level, FIX_TITLES.get(name, name), edits)
    return [replace(f, fix=fixes[id(f)]) if id(f) in fixes else f for f in findings]


def apply_fixes(
    findings: Sequence[Finding],
    sources: Mapping[str, bytes],
    packs: PackSet,
    allow_unsafe: bool,
) -> FixOutcome:
    """One fixer per file per round: positions of other findings are stale after an edit, so
    the caller re-checks the changed files and calls again until nothing changes."""
    outcome = FixOutcome()
    for path, by_fixer in sorted(_grouped(findings).items()):
        source_text = _text(path, sources) if path in sources else None
        if source_text is None:
            continue
        for name in sorted(by_fixer):
            requests = by_fixer[name]
            try:
                fixed_text, applicability = FIXERS[name](source_text, requests, allow_unsafe, packs)
                cst.parse_module(fixed_text)  # never write code that does not parse
            except (cst.ParserSyntaxError, RecursionError):
                continue
            applied = [a for a in applicability if a == "safe" or (allow_unsafe and a == "unsafe")]
            outcome.skipped_unsafe += sum(
                1 for a in applicability if a == "unsafe" and not allow_unsafe
            )
            if fixed_text != source_text:
                outcome.fixed += len(applied)
                encoding = decode(path, sources[path]).encoding
                outcome.changed[path] = encode_like(sources[path], fixed_text, encoding)
                break
    return outcome
