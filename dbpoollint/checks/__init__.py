"""The rules, one module each. ``ALL_RULES`` is the registry, in code order."""

from __future__ import annotations

from dbpoollint.checks.base import Rule
from dbpoollint.checks.client_in_handler import ClientInHandler
from dbpoollint.checks.connection_per_request import ConnectionPerRequest
from dbpoollint.checks.invalid_syntax import InvalidSyntax
from dbpoollint.checks.uncached_client_factory import UncachedClientFactory
from dbpoollint.checks.unreadable_file import UnreadableFile

ALL_RULES: tuple[type[Rule], ...] = (
    InvalidSyntax,
    UnreadableFile,
    ClientInHandler,
    ConnectionPerRequest,
    UncachedClientFactory,
)
RULES_BY_CODE: dict[str, type[Rule]] = {rule.code: rule for rule in ALL_RULES}
