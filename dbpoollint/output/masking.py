"""Passwords never leave dbpoollint: source lines in `full` output and `--diff` hunks are masked.

The masking itself is `dbpoollint.urls.mask` (the one every message uses); this applies it to
the URLs and string literals of a line of code, leaving the code around them as written.
"""

from __future__ import annotations

import re

from dbpoollint.urls import mask, urls_in_text

_STRING_BODY = re.compile(r"""(?P<quote>['"])(?P<body>(?:\\.|(?!(?P=quote)).)*)(?P=quote)""")


def mask_line(line: str) -> str:
    if "://" not in line and "=" not in line:
        return line
    masked = _STRING_BODY.sub(
        lambda m: m.group("quote") + mask(m.group("body")) + m.group("quote"), line
    )
    for _, url in urls_in_text(masked):
        masked = masked.replace(url, mask(url))
    return masked


def mask_text(text: str) -> str:
    return "".join(mask_line(line) for line in text.splitlines(keepends=True))
