"""Turn fixable findings into fixes: edits for reports, rewritten sources for `--fix`.

The fixers themselves (`dbpoollint.fixers`, libcst codemods) are imported only when a fix is
planned or applied: a warm run takes every fix from the cache and never loads libcst.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path

from dbpoollint.cache import ResultCache
from dbpoollint.checks.base import Edit, Finding, Fix, FixRequest
from dbpoollint.packs import PackSet
from dbpoollint.source import SourceError, decode
from dbpoollint.workers import parallel_map, worker_packs
from dbpoollint.writer import encode_like

FIX_TITLES: dict[str, str] = {
    "add-argument": "Add the missing argument",
    "hoist": "Hoist into a module-level lazy singleton",
    "cache-factory": "Cache the factory (functools.cache, or an asyncio.Lock-guarded singleton)",
    "add-driver-options": "Turn statement preparation off for this connection",
    "strip-url-params": "Remove the Prisma-only parameters from the URL",
    "atexit-close": "Close it at interpreter exit with atexit.register",
    "release-in-finally": "Move the release into try/finally",
    "yield-session": "Yield the session and close it in finally",
    "unused-noqa": "Remove the unused `noqa` codes",
    "hoist-loop": "Move the client above the loop",
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
        if request is not None and request.fixer in FIX_TITLES:
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
    cache: ResultCache | None = None,
    jobs: int | None = None,
    extra_packs: Sequence[Path] = (),
) -> list[Finding]:
    """Give fixable findings their Fix: applicability always, edits when the output shows them.

    Fixes are planned per file in worker processes, never for a file whose fixes the cache
    holds: an unchanged file with unchanged findings costs no codemod at all.
    """
    planned: dict[int, Fix] = {}
    pending: list[_FileJob] = []
    keys: dict[str, str] = {}
    for path, by_fixer in _grouped(findings).items():
        if path not in sources:
            continue
        ordered = [finding for requests in by_fixer.values() for finding, _ in requests]
        if cache is not None:
            keys[path] = cache.fix_key(path, sources[path], _describe(by_fixer, with_edits))
            stored = cache.get_fixes(keys[path])
            if stored is not None and len(stored) == len(ordered):
                planned.update((id(f), x) for f, x in zip(ordered, stored, strict=True) if x)
                continue
        pending.append((path, sources[path], dict(by_fixer), with_edits))
    results = parallel_map(_plan_in_worker, pending, extra_packs, jobs, partial(_plan, packs=packs))
    for (path, _, by_fixer, _), fixes in zip(pending, results, strict=True):
        if cache is not None:
            cache.put_fixes(keys[path], fixes)
        ordered = [finding for requests in by_fixer.values() for finding, _ in requests]
        planned.update((id(f), x) for f, x in zip(ordered, fixes, strict=True) if x)
    return [replace(f, fix=planned[id(f)]) if id(f) in planned else f for f in findings]


# A file's planning job: path, bytes, its findings' requests by fixer, and whether to make edits.
_FileJob = tuple[str, bytes, dict[str, list[tuple[Finding, FixRequest]]], bool]


def _describe(by_fixer: Mapping[str, Sequence[tuple[Finding, FixRequest]]], edits: bool) -> object:
    """Everything a file's fixes depend on besides its bytes (the cache key's other half)."""
    return (
        edits,
        [
            (name, [(f.code, f.span, r.params) for f, r in requests])
            for name, requests in by_fixer.items()
        ],
    )


def _plan_in_worker(job: _FileJob) -> list[Fix | None]:
    return _plan(job, worker_packs())


def _plan(job: _FileJob, packs: PackSet) -> list[Fix | None]:
    """One file's fixes, in request order: one fixer pass per fixer for the applicability, and
    with `edits`, one pass per finding for its own edits."""
    import libcst as cst

    from dbpoollint.fixers import FIXERS
    from dbpoollint.fixes import edits_between

    path, data, by_fixer, with_edits = job
    text = _text(path, {path: data})
    fixes: list[Fix | None] = []
    for name, requests in by_fixer.items():
        if text is None:
            fixes.extend(None for _ in requests)
            continue
        fixer = FIXERS[name]
        known = [r.param("planned") for _, r in requests]
        if not with_edits and all(isinstance(level, str) for level in known):
            # The analysis planned these fixes already: the marker needs no codemod.
            title = FIX_TITLES.get(name, name)
            fixes.extend(Fix(str(k), title, ()) if k != "none" else None for k in known)
            continue
        try:
            all_fixed, applicability = fixer(text, requests, True, packs)
        except (cst.ParserSyntaxError, RecursionError):
            fixes.extend(None for _ in requests)
            continue
        for (finding, request), level in zip(requests, applicability, strict=True):
            if level is None:
                fixes.append(None)
                continue
            edits: tuple[Edit, ...] = ()
            if with_edits:
                # With one request the pass above already is this finding's own fix.
                alone = len(requests) == 1
                fixed = all_fixed if alone else fixer(text, [(finding, request)], True, packs)[0]
                edits = edits_between(text, fixed)
            fixes.append(Fix(level, FIX_TITLES.get(name, name), edits))
    return fixes


def apply_fixes(
    findings: Sequence[Finding],
    sources: Mapping[str, bytes],
    packs: PackSet,
    allow_unsafe: bool,
) -> FixOutcome:
    """One fixer per file per round: positions of other findings are stale after an edit, so
    the caller re-checks the changed files and calls again until nothing changes."""
    import libcst as cst

    from dbpoollint.fixers import FIXERS

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
