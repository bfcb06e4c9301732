"""The fixers: each takes a file's text and the requests of its findings and returns the new
text plus, per request, the applicability it achieved ("safe", "unsafe") or None when it cannot
fix it. A fixer only applies unsafe edits when asked to. Rules name their fixer in
`FixRequest.fixer`; `fixing.FIX_TITLES` has the same keys.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from dbpoollint.checks.base import Finding, FixRequest
from dbpoollint.codemods.cache_factory import cache_factories
from dbpoollint.codemods.call_args import AddArgument, CallEdit, add_arguments, edit_calls
from dbpoollint.codemods.hoist import HoistRequest, hoist
from dbpoollint.codemods.lifecycle import register_atexit_closes, release_in_finally, yield_session
from dbpoollint.codemods.line_split import DEFAULT_LINE_LENGTH
from dbpoollint.codemods.loop_hoist import LoopHoist, hoist_out_of_loops
from dbpoollint.noqa import remove_codes
from dbpoollint.packs import PackSet

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
