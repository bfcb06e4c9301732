"""The rules, one module each. ``ALL_RULES`` is the registry, in code order."""

from __future__ import annotations

from dbpoollint.checks.base import Rule
from dbpoollint.checks.client_before_fork import ClientBeforeFork
from dbpoollint.checks.client_in_handler import ClientInHandler
from dbpoollint.checks.client_in_loop import ClientInLoop
from dbpoollint.checks.connection_budget import ConnectionBudgetExceeded
from dbpoollint.checks.connection_leak import ConnectionLeak
from dbpoollint.checks.connection_per_request import ConnectionPerRequest
from dbpoollint.checks.credentials_in_url import CredentialsInUrl
from dbpoollint.checks.implicit_pool_size import ImplicitPoolSize
from dbpoollint.checks.invalid_syntax import InvalidSyntax
from dbpoollint.checks.missing_acquire_timeout import MissingAcquireTimeout
from dbpoollint.checks.missing_connect_timeout import MissingConnectTimeout
from dbpoollint.checks.missing_shutdown import MissingShutdown
from dbpoollint.checks.missing_stale_check import MissingStaleCheck
from dbpoollint.checks.persistent_connections_under_asgi import PersistentConnectionsUnderAsgi
from dbpoollint.checks.pool_closed_per_request import PoolClosedPerRequest
from dbpoollint.checks.pooler_url_in_migrations import PoolerUrlInMigrations
from dbpoollint.checks.prepared_statements_through_pooler import PreparedStatementsThroughPooler
from dbpoollint.checks.prisma_url_parameters import PrismaUrlParameters
from dbpoollint.checks.unbounded_pool import UnboundedPool
from dbpoollint.checks.uncached_client_factory import UncachedClientFactory
from dbpoollint.checks.unreadable_file import UnreadableFile
from dbpoollint.checks.unused_noqa import UnusedNoqa

ALL_RULES: tuple[type[Rule], ...] = (
    InvalidSyntax,
    UnreadableFile,
    UnusedNoqa,
    ClientInHandler,
    ConnectionPerRequest,
    UncachedClientFactory,
    ClientInLoop,
    ClientBeforeFork,
    UnboundedPool,
    ImplicitPoolSize,
    MissingAcquireTimeout,
    MissingConnectTimeout,
    MissingStaleCheck,
    PersistentConnectionsUnderAsgi,
    MissingShutdown,
    ConnectionLeak,
    PoolClosedPerRequest,
    PoolerUrlInMigrations,
    PreparedStatementsThroughPooler,
    PrismaUrlParameters,
    ConnectionBudgetExceeded,
    CredentialsInUrl,
)
RULES_BY_CODE: dict[str, type[Rule]] = {rule.code: rule for rule in ALL_RULES}
