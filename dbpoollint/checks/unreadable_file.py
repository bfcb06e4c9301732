from __future__ import annotations

from collections.abc import Iterator

from dbpoollint.checks.base import Finding, Project, Rule


class UnreadableFile(Rule):
    """
    ## What it does
    Reports a file that cannot be read or analysed: permission denied, a symlink loop, bytes
    that are not valid in the file's encoding (UTF-8 unless a PEP 263 coding cookie says
    otherwise), nesting too deep for the parser, valid Python that libcst cannot parse (more
    than 3,000 implicitly concatenated strings), or a file whose analysis killed the process
    analysing it. The file is skipped; the others are still checked.

    ## Why is this bad?
    dbpoollint says nothing about a file it could not read, so a clean run would be a lie.

    ## Example
    A file saved as Latin-1 without a `# -*- coding: latin-1 -*-` line.

    ## Use instead
    Save the file as UTF-8, or declare its encoding in a coding cookie.

    ## Fix safety
    No fix.

    ## Options

    ## References
    - [PEP 263: source code encodings](https://peps.python.org/pep-0263/)
    """

    code = "DPL002"
    name = "unreadable-file"
    severity = "error"
    severity_reason = "The file is not checked at all until it can be read."

    def check(self, project: Project) -> Iterator[Finding]:
        return iter(())
