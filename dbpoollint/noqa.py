"""`# noqa`, `# noqa: DPL101, DPL102` on a line, and `# dbpoollint: noqa` for a whole file."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_LINE = re.compile(r"#\s*noqa(?::\s*(?P<codes>[A-Z]+[0-9]+(?:[\s,]+[A-Z]+[0-9]+)*))?", re.I)
_FILE = re.compile(r"^\s*#\s*dbpoollint:\s*noqa\s*$", re.I | re.M)


@dataclass
class Suppressions:
    whole_file: bool = False
    # line -> codes, or None for a bare `# noqa` that silences everything on the line.
    lines: dict[int, frozenset[str] | None] = field(default_factory=dict)

    def suppresses(self, code: str, line: int) -> bool:
        if self.whole_file and code not in ("DPL001", "DPL002"):
            return True
        if line not in self.lines:
            return False
        codes = self.lines[line]
        return codes is None or code in codes


def parse_suppressions(text: str) -> Suppressions:
    result = Suppressions(whole_file=_FILE.search(text) is not None)
    if "noqa" not in text and "NOQA" not in text:
        return result
    for number, line in enumerate(text.splitlines(), start=1):
        if "#" not in line:
            continue
        match = _LINE.search(line)
        if match is None:
            continue
        codes = match.group("codes")
        result.lines[number] = (
            frozenset(c.upper() for c in re.split(r"[\s,]+", codes) if c) if codes else None
        )
    return result
