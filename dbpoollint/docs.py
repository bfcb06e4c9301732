"""Render the README's rule table from the rules' own docs: `python -m dbpoollint.docs --write`."""

from __future__ import annotations

import sys
from pathlib import Path

from dbpoollint.checks import ALL_RULES

START = "<!-- rules-table:start -->"
END = "<!-- rules-table:end -->"


def rules_table() -> str:
    rows = ["| code | name | what it finds | fix |", "|---|---|---|---|"]
    for rule in ALL_RULES:
        summary = " ".join(rule.summary().split())
        first_sentence = summary.split(". ")[0].rstrip(".") + "."
        fix = rule.fix_title or "none"
        rows.append(f"| {rule.code} | {rule.name} | {first_sentence} | {fix} |")
    return "\n".join(rows)


def render_readme(text: str) -> str:
    head, _, rest = text.partition(START)
    _, _, tail = rest.partition(END)
    return f"{head}{START}\n{rules_table()}\n{END}{tail}"


def main() -> None:
    readme = Path(sys.argv[2] if len(sys.argv) > 2 else "README.md")
    if sys.argv[1:2] == ["--write"]:
        readme.write_text(render_readme(readme.read_text(encoding="utf-8")), encoding="utf-8")
    else:
        print(rules_table())


if __name__ == "__main__":
    main()
