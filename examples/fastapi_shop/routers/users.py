"""Account endpoints: profiles in Postgres, rate limits and prefs in Redis."""

import functools
from typing import Any

import redis
from fastapi import APIRouter, Depends, HTTPException
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from ..db import get_session
from ..settings import settings

router = APIRouter(prefix="/users", tags=["users"])


def get_client() -> redis.Redis:
    # FastAPI calls this for every request that depends on it.
    return redis.Redis(  # wrong: new Redis client per request via Depends (DPL103)
        host=settings.redis_host, port=settings.redis_port, decode_responses=True
    )


@functools.cache
def get_shared_client() -> redis.Redis:
    # Built on first use, then the same instance is returned forever.
    return redis.Redis(  # ok: functools.cache makes this one client per process
        host=settings.redis_host, port=settings.redis_port, decode_responses=True
    )


# Sync handlers: FastAPI runs them in its threadpool, fine for sync redis.
@router.post("/{user_id}/login-attempts")
def record_login_attempt(
    user_id: int, client: redis.Redis = Depends(get_client)
) -> dict[str, int]:
    key = f"login-attempts:{user_id}"
    attempts = client.incr(key)
    client.expire(key, 900)
    if attempts > 5:
        raise HTTPException(status_code=429, detail="too many attempts")
    return {"attempts": attempts}


@router.get("/{user_id}/preferences")
def get_preferences(
    user_id: int, client: redis.Redis = Depends(get_shared_client)  # ok: cached
) -> dict[str, str]:
    return client.hgetall(f"prefs:{user_id}")


@router.get("/{user_id}")
async def get_profile(
    user_id: int, session: AsyncSession = Depends(get_session)  # ok: pooled
) -> dict[str, Any]:
    result = await session.execute(
        text("SELECT id, email, display_name FROM users WHERE id = :id"),
        {"id": user_id},
    )
    row = result.mappings().first()
    if row is None:
        raise HTTPException(status_code=404, detail="user not found")
    return dict(row)
