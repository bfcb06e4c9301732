"""Which rule codes run, from --select/--ignore/--extend-select and per-file-ignores."""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from dbpoollint.checks import ALL_RULES


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
        if path is not None:
            for pattern, codes in self.per_file_ignores.items():
                if _path_matches(pattern, path) and any(_matches(c, code) for c in codes):
                    return False
        return True


def _path_matches(pattern: str, path: str) -> bool:
    normalized = path.replace("\\", "/").removeprefix("./")
    return (
        fnmatch.fnmatchcase(normalized, pattern)
        or fnmatch.fnmatchcase(normalized, f"*/{pattern}")
        or fnmatch.fnmatchcase(normalized.rsplit("/", 1)[-1], pattern)
    )
