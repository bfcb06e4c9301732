"""Database and cache handles for the shop service."""

from collections.abc import AsyncIterator

import redis.asyncio
from sqlalchemy.ext.asyncio import (
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from .settings import settings

# One engine (and one connection pool) per process, built at import time.
engine = create_async_engine(  # ok: module level, shared by every request
    settings.sqlalchemy_url,
    pool_size=settings.pool_max_size,
    pool_pre_ping=True,
    echo=settings.debug,
)
SessionLocal = async_sessionmaker(engine, expire_on_commit=False)  # ok: shared


async def get_session() -> AsyncIterator[AsyncSession]:
    """FastAPI dependency: one session per request, borrowed from the pool."""
    session = SessionLocal()  # ok: cheap, checks a connection out of the pool
    try:
        yield session
    finally:
        await session.close()  # ok: connection goes back to the pool


def get_redis() -> redis.asyncio.Redis:
    """Cache client for the item view counter (called in routers/items.py)."""
    # Nobody closes these, so every request leaks a client and its sockets.
    return redis.asyncio.Redis.from_url(  # wrong: a new client per call (DPL103)
        settings.redis_url, decode_responses=True
    )
