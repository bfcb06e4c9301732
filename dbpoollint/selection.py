"""Which rule codes run, from --select/--ignore/--extend-select and per-file-ignores."""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from dbpoollint.checks import ALL_RULES
from dbpoollint.checks.base import Finding


class SelectionError(Exception):
    """A selector matches no rule code."""


def _matches(selector: str, code: str) -> bool:
    return selector == "ALL" or code.startswith(selector)


def validate_selectors(selectors: Iterable[str]) -> None:
    codes = [rule.code for rule in ALL_RULES]
    for selector in selectors:
        if not any(_matches(selector, code) for code in codes):
            raise SelectionError(
                f"unknown rule selector `{selector}` (codes look like DPL101, or a prefix: DPL1)"
            )


@dataclass
class Selection:
    select: Sequence[str] | None = None
    extend_select: Sequence[str] = ()
    ignore: Sequence[str] = ()
    per_file_ignores: Mapping[str, Sequence[str]] = field(default_factory=dict)
    # The folder of the configuration file: per-file-ignores globs are relative to it,
    # whatever the working directory.
    root: Path | None = None
    # False with --ignore-noqa: report suppressed findings too (to fix them).
    respect_noqa: bool = True
    _relative_paths: dict[str, str] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        validate_selectors([*(self.select or []), *self.extend_select, *self.ignore])
        for codes in self.per_file_ignores.values():
            validate_selectors(codes)

    def _base_enabled(self, code: str) -> bool:
        if self.select is None:
            rule = next((r for r in ALL_RULES if r.code == code), None)
            chosen = rule is not None and rule.enabled_by_default
        else:
            chosen = any(_matches(s, code) for s in self.select)
        chosen = chosen or any(_matches(s, code) for s in self.extend_select)
        # The most specific selector wins, as in ruff: --select DPL1 --ignore DPL101.
        if chosen:
            ignoring = [s for s in self.ignore if _matches(s, code)]
            selecting = [
                s for s in [*(self.select or []), *self.extend_select] if _matches(s, code)
            ]
            if ignoring and max(map(len, ignoring)) >= max(map(len, selecting), default=0):
                return False
        return chosen

    def enabled(self, code: str, path: str | None = None) -> bool:
        if not self._base_enabled(code):
            return False
        if path is not None and self.per_file_ignores:
            relative = self._relative_paths.get(path)
            if relative is None:
                relative = self._relative_paths[path] = _relative(path, self.root)
            for pattern, codes in self.per_file_ignores.items():
                if _path_matches(pattern, relative) and any(_matches(c, code) for c in codes):
                    return False
        return True


def _relative(path: str, root: Path | None) -> str:
    """`path` relative to the configuration's folder (or the working directory), posix style."""
    base = root or Path.cwd()
    try:
        return Path(path).resolve().relative_to(base.resolve()).as_posix()
    except ValueError:
        return Path(path).as_posix().removeprefix("./")


def _path_matches(pattern: str, relative: str) -> bool:
    """A glob matches the path from the config's folder; a glob without `/` also the name."""
    pattern = pattern.removeprefix("./")
    if fnmatch.fnmatchcase(relative, pattern):
        return True
    return "/" not in pattern and fnmatch.fnmatchcase(relative.rsplit("/", 1)[-1], pattern)


# Rules that judge a long-lived pool (SPEC "Run context"); a construction reported as built per
# call (DPL101) is not one yet, and their advice applies after the hoist.
PER_CALL_CONSTRUCTION = "DPL101"
LONG_LIVED_POOL_RULES = ("DPL2", "DPL301", "DPL303", "DPL5")


def drop_contradictions(findings: Iterable[Finding]) -> list[Finding]:
    """No "long-lived pool without pre-ping" on the very call DPL101 says runs per request."""
    items = list(findings)
    per_call = {
        (f.path, f.span.line, f.span.column) for f in items if f.code == PER_CALL_CONSTRUCTION
    }
    if not per_call:
        return items
    return [
        f
        for f in items
        if not (
            f.code.startswith(LONG_LIVED_POOL_RULES)
            and (f.path, f.span.line, f.span.column) in per_call
        )
    ]
