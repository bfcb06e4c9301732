from __future__ import annotations

from collections.abc import Iterator

from dbpoollint.checks.base import Finding, Project, Rule


class UnusedNoqa(Rule):
    """
    ## What it does
    Reports a `# noqa: DPLxxx` directive that suppresses nothing: the code is not reported on
    that line (unused), is not selected (non-enabled), or is no dbpoollint rule (unknown).
    Opt-in: enable it with `--extend-select DPL009` or `extend-select = ["DPL009"]`.

    ## Why is this bad?
    A stale suppression hides the next real finding on that line. Teams that adopt dbpoollint
    with `--add-noqa` ratchet by turning this rule on in CI: every fixed finding then forces its
    `noqa` out.

    ## Example
    ```python
    engine = create_engine(URL)  # noqa: DPL101
    ```
    at module level, where DPL101 does not fire.

    ## Use instead
    ```python
    engine = create_engine(URL)
    ```

    ## Fix safety
    Safe: the fix removes the unused codes, or the whole directive when none is left. Codes of
    other tools (`# noqa: E501`) and bare `# noqa` comments are left alone.

    ## Options
    None. The directives are read from comments only, never from strings. The check runs after
    the other rules, on the findings they reported (ruff's RUF100 does the same for its codes).

    ## References
    - [ruff: unused-noqa (RUF100)](https://docs.astral.sh/ruff/rules/unused-noqa/)
    """

    code = "DPL009"
    name = "unused-noqa"
    severity = "warning"
    severity_reason = "A stale directive hides nothing today but will hide a real finding later."
    fix_title = "Remove the unused codes from the `noqa` directive"
    enabled_by_default = False

    def check(self, project: Project) -> Iterator[Finding]:
        # The suppression stage reports it (dbpoollint.engine.unused_directives): it needs the
        # other rules' findings before suppression, which no rule sees.
        return iter(())
