"""A visitor that resolves qualified names lazily from libcst's scopes."""

from __future__ import annotations

import libcst as cst

from dbpoollint.analysis.scopes import NamesMemo, ScopesProvider


class ScopedVisitor(cst.CSTVisitor):
    """Asks for qualified names only for the nodes that matter: scopes are computed once per
    file and shared by every visitor on the same wrapper."""

    METADATA_DEPENDENCIES = (ScopesProvider,)

    def __init__(self, package: str) -> None:
        super().__init__()
        self.package = package
        self.names_memo = NamesMemo(package)

    def qualnames(self, node: cst.CSTNode) -> frozenset[str]:
        return self.names_memo.names(self, node)[0]
