"""A committed `pgbouncer.ini`: the pool mode, prepared-statement support and port it settles.

PgBouncer's defaults apply to what the file leaves out: `pool_mode = session`,
`listen_port = 6432`, and `max_prepared_statements` 0 before 1.24, 200 from 1.24 (so an unset
value "depends" on the version). Per-database `pool_mode=` in `[databases]` is not read: the
`[pgbouncer]` value is the one every database without its own gets.
Source: https://www.pgbouncer.org/config.html (pool_mode, listen_port, max_prepared_statements).
"""

from __future__ import annotations

import configparser
import fnmatch
import re
from dataclasses import dataclass
from pathlib import PurePath

PGBOUNCER_INI_PATTERNS = ("pgbouncer.ini", "pgbouncer*.ini", "*pgbouncer*.ini")
DEFAULT_LISTEN_PORT = 6432


@dataclass(frozen=True)
class PgBouncerIni:
    path: str
    pool_mode: str  # "session" when the file does not say
    pool_mode_line: int  # 0 when not written
    listen_port: int
    # None: not written (the version's default decides); else the number written.
    max_prepared_statements: int | None
    max_prepared_statements_line: int = 0

    @property
    def prepared_statements(self) -> str:
        """ "yes" / "no" / "depends", in the pooler pack's terms."""
        if self.max_prepared_statements is None:
            return "depends"
        return "yes" if self.max_prepared_statements > 0 else "no"

    def where(self, line: int) -> str:
        return f"{PurePath(self.path).name}:{line}" if line else PurePath(self.path).name


def is_pgbouncer_ini(path: str) -> bool:
    name = PurePath(path).name.lower()
    return any(fnmatch.fnmatchcase(name, p) for p in PGBOUNCER_INI_PATTERNS)


def read_pgbouncer_ini(path: str, text: str) -> PgBouncerIni | None:
    """None when the file has no `[pgbouncer]` section or cannot be read as INI."""
    # `%include` lines and bare keys are legal in pgbouncer.ini; `;` and `#` start comments.
    parser = configparser.ConfigParser(
        interpolation=None,
        allow_no_value=True,
        strict=False,
        comment_prefixes=(";", "#"),
        inline_comment_prefixes=(";",),
    )
    # `%include` is PgBouncer's, not INI: blank it (keeping line numbers) before parsing.
    readable = "\n".join("" if line.lstrip().startswith("%") else line for line in text.split("\n"))
    try:
        parser.read_string(readable)
    except configparser.Error:
        return None
    if not parser.has_section("pgbouncer"):
        return None
    section = parser["pgbouncer"]
    mode = (section.get("pool_mode") or "session").strip().lower()
    port_text = (section.get("listen_port") or "").strip()
    prepared_text = (section.get("max_prepared_statements") or "").strip()
    return PgBouncerIni(
        path=path,
        pool_mode=mode,
        pool_mode_line=_line_of(text, "pool_mode"),
        listen_port=int(port_text) if port_text.isdigit() else DEFAULT_LISTEN_PORT,
        max_prepared_statements=int(prepared_text) if prepared_text.isdigit() else None,
        max_prepared_statements_line=_line_of(text, "max_prepared_statements"),
    )


def _line_of(text: str, key: str) -> int:
    """The line of `key = ...` in the `[pgbouncer]` section."""
    inside = False
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if stripped.startswith("["):
            inside = stripped.lower() == "[pgbouncer]"
        elif inside and re.match(rf"{re.escape(key)}\s*=", stripped, re.IGNORECASE):
            return number
    return 0
