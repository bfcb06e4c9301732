from __future__ import annotations

from collections.abc import Iterator

from dbpoollint.analysis.contexts import LONG_LIVED
from dbpoollint.checks.base import Finding, Project, Rule, file_finding


class InvalidSyntax(Rule):
    """
    ## What it does
    Reports a file that cannot be parsed as Python. The file is skipped: no other rule runs on
    it and no fix ever rewrites it. The other files are still checked.

    ## Why is this bad?
    A file dbpoollint cannot parse is a file it cannot vouch for. It is usually a real syntax
    error, or syntax newer than the parser (libcst) supports.

    Only a service's modules are reported by default: a script under `bin/` or `scripts/`, a
    migration or an example that does not parse holds no long-lived pool, and such files are
    often leftovers the project's own linters exclude (Python 2 `print` statements in an old
    `bin/` script). Widen with `contexts = ["one-off"]` or `["examples"]`.

    ## Example
    ```python
    def handler(event, context)
        return psycopg2.connect(DSN)
    ```

    ## Use instead
    ```python
    def handler(event, context):
        return query(event)
    ```

    ## Fix safety
    No fix.

    ## Options
    - `contexts`: also report one-off code and examples.

    ## References
    - [libcst: parsing](https://libcst.readthedocs.io/en/latest/parser.html)
    """

    code = "DPL001"
    name = "invalid-syntax"
    contexts = LONG_LIVED
    severity = "error"
    severity_reason = "The file is not checked at all until it parses."

    def check(self, project: Project) -> Iterator[Finding]:
        # Reported by the engine while parsing; nothing to join.
        return iter(())


def syntax_error_finding(path: str, error: SyntaxError) -> Finding:
    """DPL001 at the place CPython's parser names."""
    line, column = error.lineno or 1, error.offset or 1
    return file_finding(path, "DPL001", f"SyntaxError: {error.msg}", line, column)
