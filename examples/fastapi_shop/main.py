"""Shop API entry point: `uvicorn fastapi_shop.main:app` from examples/."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
import redis.asyncio
from fastapi import FastAPI

from .db import engine
from .routers import items, users
from .settings import settings


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    # Shared clients are built once at startup and closed at shutdown.
    app.state.pool = await asyncpg.create_pool(  # ok: one pool per process
        settings.database_url,
        min_size=settings.pool_min_size,
        max_size=settings.pool_max_size,
    )
    app.state.redis = redis.asyncio.Redis.from_url(  # ok: one client at startup
        settings.redis_url, decode_responses=True
    )
    try:
        yield
    finally:
        await app.state.redis.aclose()
        await app.state.pool.close()
        await engine.dispose()  # ok: release the SQLAlchemy pool on shutdown


app = FastAPI(title="shop", debug=settings.debug, lifespan=lifespan)
app.include_router(items.router)
app.include_router(users.router)


@app.get("/healthz")
async def healthz() -> dict[str, str]:
    async with app.state.pool.acquire() as conn:  # ok: borrows from shared pool
        await conn.execute("SELECT 1")
    await app.state.redis.ping()
    return {"status": "ok"}
