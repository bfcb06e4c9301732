"""Names with a meaning for pools, shared by the fact collectors and the rules.

Plain data, so that the rules (which run on cached summaries) import it without libcst.
"""

from __future__ import annotations

import re

# Methods that build an instance: a client built there is built with every instance.
CONSTRUCTORS = ("__init__", "__post_init__")
ACQUIRE_METHODS = frozenset({"connect", "raw_connection", "getconn", "acquire"})
RELEASE_METHODS = frozenset({"close", "aclose", "release", "dispose", "terminate"})
RETURN_TO_POOL = frozenset({"putconn", "release"})
# Calls that make a session factory, and classes whose call opens a session directly.
SESSION_MAKERS = frozenset(
    {
        "sqlalchemy.orm.sessionmaker",
        "sqlalchemy.orm.session.sessionmaker",
        "sqlalchemy.ext.asyncio.async_sessionmaker",
        "sqlalchemy.ext.asyncio.session.async_sessionmaker",
    }
)
SESSION_CLASSES = frozenset(
    {
        "sqlalchemy.orm.Session",
        "sqlalchemy.orm.session.Session",
        "sqlalchemy.ext.asyncio.AsyncSession",
        "sqlalchemy.ext.asyncio.session.AsyncSession",
        "sqlmodel.Session",
        "sqlmodel.ext.asyncio.session.AsyncSession",
    }
)
# A shell command that runs migrations (Procfile, compose `command:`, a subprocess call).
MIGRATION_COMMAND = re.compile(
    r"\balembic\b.*\b(?:upgrade|downgrade|stamp)\b|\bmanage\.py\s+migrate\b"
    r"|\bdjango-admin\s+migrate\b|\bflask\s+db\s+upgrade\b"
)
