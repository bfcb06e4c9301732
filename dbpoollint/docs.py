"""Render the README's generated tables: `python -m dbpoollint.docs --write README.md`.

The rule table comes from the rules' own docs; the pool-knob table comes from the rule packs
(every knob, its default, the versions it holds for and its source).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from dbpoollint.checks import ALL_RULES
from dbpoollint.checks.knobs import describe_default, is_number
from dbpoollint.packs import Knob, load_packs

START = "<!-- rules-table:start -->"
END = "<!-- rules-table:end -->"
KNOBS_START = "<!-- knobs-table:start -->"
KNOBS_END = "<!-- knobs-table:end -->"
ROLE_NAMES = {
    "size": "pool size",
    "bound": "upper bound",
    "acquire-timeout": "acquire timeout",
    "connect-timeout": "connect timeout",
    "stale-check": "stale check",
    "recycle": "recycle / idle",
}


def rules_table() -> str:
    rows = ["| code | name | what it finds | fix |", "|---|---|---|---|"]
    for rule in ALL_RULES:
        summary = " ".join(rule.summary().split())
        # The first sentence; a list ending in "..." is not its end.
        first_sentence = re.split(r"(?<!\.\.)\. ", summary)[0]
        if not first_sentence.endswith("..."):
            first_sentence = first_sentence.rstrip(".") + "."
        fix = rule.fix_title or "none"
        rows.append(f"| {rule.code} | {rule.name} | {first_sentence} | {fix} |")
    return "\n".join(rows)


def _versions(knob: Knob) -> str:
    if knob.since and knob.until:
        return f"{knob.package} {knob.since} to <{knob.until}"
    if knob.since:
        return f"{knob.package} >= {knob.since}"
    if knob.until:
        return f"{knob.package} < {knob.until}"
    return f"{knob.package} (all)"


def _where(knob: Knob) -> str:
    places = [f"`{k}=`" for k in knob.keywords]
    places += [f"`{arg.replace('.', '={…')}: …}}`" for arg in knob.connect_args]
    places += [f"`?{p}=`" for p in knob.url_params if p not in knob.keywords]
    if knob.url_schemes:
        places.append("for " + ", ".join(f"`{s}://`" for s in knob.url_schemes))
    return " ".join(places) or "—"


def _reported(knob: Knob, call_has_size: bool) -> str:
    """Which rule reports on this knob, and when."""
    if not knob.lint:
        return "—"
    explicit = [str(v) for v in knob.unbounded_when] + (
        ["None"] if knob.unbounded_when_none else []
    )
    when = f" if {' or '.join(explicit)}" if explicit else ""
    by_role = {
        "size": ("DPL201", "DPL202"),
        "bound": ("DPL201", "DPL202"),
        "acquire-timeout": ("DPL203", ""),
        "connect-timeout": ("DPL204", ""),
        "stale-check": ("DPL205", ""),
    }
    limit_rule, size_rule = by_role.get(knob.role, ("", ""))
    codes = []
    if knob.default in ("unbounded", "forever", "none") or (
        knob.role == "stale-check" and knob.default == "off" and knob.fix_value is not None
    ):
        codes.append(f"{limit_rule} when unset")
    elif when and limit_rule:
        codes.append(f"{limit_rule}{when}")
    if size_rule and is_number(knob.default) and (knob.role == "size" or not call_has_size):
        codes.append(f"{size_rule} when unset")
    return ", ".join(codes) or "—"


def knobs_table() -> str:
    """One row per knob and version range, per constructor group of every built-in pack."""
    rows = [
        "| library | constructor | knob | set with | default | versions | reported by | source |",
        "|---|---|---|---|---|---|---|---|",
    ]
    # Constructors with the same knobs (sync and async engines, ...) share their rows.
    grouped: dict[tuple[str, Knob, bool], list[str]] = {}
    for pack in load_packs().packs:
        for call in pack.calls:
            has_size = any(k.role == "size" for k in call.knobs)
            for knob in call.knobs:
                grouped.setdefault((pack.title, knob, has_size), []).append(call.names[0])
    for (title, knob, has_size), names in grouped.items():
        default = describe_default(knob.default)
        if knob.note:
            default = f"{default} ({knob.note})"
        constructors = ", ".join(f"`{name}`" for name in names)
        rows.append(
            f"| {title} | {constructors} | {ROLE_NAMES[knob.role]} "
            f"| {_where(knob)} | {default.replace('|', '/')} | {_versions(knob)} "
            f"| {_reported(knob, has_size)} | [source]({knob.source}) |"
        )
    return "\n".join(rows)


def _replace(text: str, start: str, end: str, body: str) -> str:
    if start not in text:
        return text
    head, _, rest = text.partition(start)
    _, _, tail = rest.partition(end)
    return f"{head}{start}\n{body}\n{end}{tail}"


def render_readme(text: str) -> str:
    text = _replace(text, START, END, rules_table())
    return _replace(text, KNOBS_START, KNOBS_END, knobs_table())


def main() -> None:
    readme = Path(sys.argv[2] if len(sys.argv) > 2 else "README.md")
    if sys.argv[1:2] == ["--write"]:
        readme.write_text(render_readme(readme.read_text(encoding="utf-8")), encoding="utf-8")
    elif sys.argv[1:2] == ["--knobs"]:
        print(knobs_table())
    else:
        print(rules_table())


if __name__ == "__main__":
    main()
