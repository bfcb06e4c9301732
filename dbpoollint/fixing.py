"""Turn fixable findings into fixes: edits for reports, rewritten sources for `--fix`.

Each fixer takes a file's text and the requests of its findings and returns the new text plus,
per request, the applicability it achieved ("safe", "unsafe") or None when it cannot fix it.
A fixer only applies unsafe edits when asked to. Rules name their fixer in `FixRequest.fixer`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path

import libcst as cst

from dbpoollint.cache import ResultCache
from dbpoollint.checks.base import Edit, Finding, Fix, FixRequest
from dbpoollint.codemods.cache_factory import cache_factories
from dbpoollint.codemods.call_args import AddArgument, CallEdit, add_arguments, edit_calls
from dbpoollint.codemods.hoist import HoistRequest, hoist
from dbpoollint.codemods.lifecycle import register_atexit_closes, release_in_finally, yield_session
from dbpoollint.codemods.line_split import DEFAULT_LINE_LENGTH
from dbpoollint.codemods.loop_hoist import LoopHoist, hoist_out_of_loops
from dbpoollint.fixes import edits_between
from dbpoollint.noqa import remove_codes
from dbpoollint.packs import PackSet
from dbpoollint.source import SourceError, decode
from dbpoollint.workers import parallel_map, worker_packs
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
            hoists.append(
                HoistRequest(
                    finding.span.line,
                    finding.span.column,
                    call,
                    in_handler,
                    line_length=_line_length(request),
                )
            )
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
    lengths = {_line_length(request) for _, request in requests}
    return cache_factories(text, positions, min(lengths, default=DEFAULT_LINE_LENGTH))


def _call_edit_fixer(
    text: str,
    requests: Sequence[tuple[Finding, FixRequest]],
    allow_unsafe: bool,
    level: str,
    to_edit: Callable[[Finding, FixRequest], CallEdit],
) -> FixerResult:
    """DPL402 (safe) / DPL403 (unsafe): edit the arguments of the reported call."""
    if level == "unsafe" and not allow_unsafe:
        _, made = edit_calls(text, [to_edit(f, r) for f, r in requests])
        return text, [level if ok else None for ok in made]
    fixed, made = edit_calls(text, [to_edit(f, r) for f, r in requests])
    return fixed, [level if ok else None for ok in made]


def _driver_options_edit(finding: Finding, request: FixRequest) -> CallEdit:
    entries = tuple(
        tuple(entry.split("=", 1)) for entry in str(request.param("entries") or "").split(";")
    )
    return CallEdit(
        finding.span.line,
        finding.span.column,
        container=str(request.param("container") or ""),
        entries=tuple((k, v) for k, v in entries),
        line_length=_line_length(request),
    )


def _strip_params_edit(finding: Finding, request: FixRequest) -> CallEdit:
    params = tuple(str(request.param("params") or "").split(","))
    return CallEdit(
        finding.span.line,
        finding.span.column,
        strip_params=params,
        line_length=_line_length(request),
    )


def _line_length(request: FixRequest) -> int:
    """The project's `line-length` when the rule passed it (ruff's default otherwise)."""
    value = request.param("line-length")
    return value if isinstance(value, int) and value > 0 else DEFAULT_LINE_LENGTH


def _driver_options_fixer(
    text: str, requests: Sequence[tuple[Finding, FixRequest]], allow_unsafe: bool, packs: PackSet
) -> FixerResult:
    return _call_edit_fixer(text, requests, allow_unsafe, "safe", _driver_options_edit)


def _strip_params_fixer(
    text: str, requests: Sequence[tuple[Finding, FixRequest]], allow_unsafe: bool, packs: PackSet
) -> FixerResult:
    return _call_edit_fixer(text, requests, allow_unsafe, "unsafe", _strip_params_edit)


def _add_argument_fixer(
    text: str, requests: Sequence[tuple[Finding, FixRequest]], allow_unsafe: bool, packs: PackSet
) -> FixerResult:
    """DPL201-DPL205: add a keyword (or a dict key) at the finding's call or dict literal; the
    rule says how safe that is, per request."""
    wanted: list[AddArgument] = []
    safety: list[str] = []
    for finding, request in requests:
        within = request.param("within")
        wanted.append(
            AddArgument(
                finding.span.line,
                finding.span.column,
                str(request.param("keyword")),
                str(request.param("value")),
                str(within) if within else "",
                _line_length(request),
            )
        )
        safety.append(str(request.param("safety") or "unsafe"))
    chosen = [
        item for item, level in zip(wanted, safety, strict=True) if level == "safe" or allow_unsafe
    ]
    fixed, done = add_arguments(text, chosen) if chosen else (text, set())
    _, possible = add_arguments(text, wanted) if len(chosen) < len(wanted) else (fixed, done)
    applicability: list[str | None] = [
        level if item in possible else None for item, level in zip(wanted, safety, strict=True)
    ]
    return fixed, applicability


def _atexit_fixer(
    text: str, requests: Sequence[tuple[Finding, FixRequest]], allow_unsafe: bool, packs: PackSet
) -> FixerResult:
    """DPL301 (unsafe): `atexit.register(engine.dispose)` after the module-level assignment."""
    wanted = [(f.span.line, str(r.param("variable")), str(r.param("method"))) for f, r in requests]
    fixed, made = register_atexit_closes(text, wanted)
    levels: list[str | None] = ["unsafe" if ok else None for ok in made]
    return (fixed if allow_unsafe else text), levels


def _release_fixer(
    text: str, requests: Sequence[tuple[Finding, FixRequest]], allow_unsafe: bool, packs: PackSet
) -> FixerResult:
    """DPL302 (unsafe): the statements after the acquisition go into `try:`, the release into
    `finally:`."""
    fixed, made = release_in_finally(text, [(f.span.line, f.span.column) for f, _ in requests])
    levels: list[str | None] = ["unsafe" if ok else None for ok in made]
    return (fixed if allow_unsafe else text), levels


def _yield_session_fixer(
    text: str, requests: Sequence[tuple[Finding, FixRequest]], allow_unsafe: bool, packs: PackSet
) -> FixerResult:
    """DPL302 (unsafe): a dependency returning its session yields it and closes it after."""
    fixed, made = yield_session(text, [(f.span.line, f.span.column) for f, _ in requests])
    levels: list[str | None] = ["unsafe" if ok else None for ok in made]
    return (fixed if allow_unsafe else text), levels


def _unused_noqa_fixer(
    text: str, requests: Sequence[tuple[Finding, FixRequest]], allow_unsafe: bool, packs: PackSet
) -> FixerResult:
    """DPL009 (safe): drop the stale codes from the directive, or the directive itself."""
    removals = {f.span.line: str(r.param("codes") or "").split(",") for f, r in requests}
    fixed, done = remove_codes(text, removals)
    return fixed, ["safe" if f.span.line in done else None for f, _ in requests]


def _loop_hoist_fixer(
    text: str, requests: Sequence[tuple[Finding, FixRequest]], allow_unsafe: bool, packs: PackSet
) -> FixerResult:
    """DPL104 (unsafe): move the client above its loop, its close after it."""
    wanted = [
        LoopHoist(
            int(str(r.param("call_line"))), int(str(r.param("loop_line"))), str(r.param("target"))
        )
        for _, r in requests
    ]
    fixed, made = hoist_out_of_loops(text, wanted)
    levels: list[str | None] = ["unsafe" if ok else None for ok in made]
    return (fixed if allow_unsafe else text), levels


FIXERS: dict[str, Fixer] = {
    "add-argument": _add_argument_fixer,
    "hoist": _hoist_fixer,
    "cache-factory": _cache_factory_fixer,
    "add-driver-options": _driver_options_fixer,
    "strip-url-params": _strip_params_fixer,
    "atexit-close": _atexit_fixer,
    "release-in-finally": _release_fixer,
    "yield-session": _yield_session_fixer,
    "unused-noqa": _unused_noqa_fixer,
    "hoist-loop": _loop_hoist_fixer,
}
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
