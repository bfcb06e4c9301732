"""A visitor that resolves qualified names lazily from libcst's scopes."""

from __future__ import annotations

import libcst as cst

from dbpoollint.analysis.indexer import absolute_name
from dbpoollint.analysis.scopes import ScopesProvider


class ScopedVisitor(cst.CSTVisitor):
    """Asks for qualified names only for the nodes that matter: scopes are computed once per
    file and shared by every visitor on the same wrapper."""

    METADATA_DEPENDENCIES = (ScopesProvider,)

    def __init__(self, package: str) -> None:
        super().__init__()
        self.package = package

    def qualnames(self, node: cst.CSTNode) -> frozenset[str]:
        scope = self.get_metadata(ScopesProvider, node, None)
        if scope is None:
            return frozenset()
        return frozenset(
            absolute_name(n.name, self.package) for n in scope.get_qualified_names_for(node)
        )
