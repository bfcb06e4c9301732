"""Catalogue endpoints."""

import os
from typing import Any

import asyncpg
from fastapi import APIRouter, HTTPException, Request

from ..db import get_redis
from ..settings import settings

router = APIRouter(prefix="/items", tags=["items"])

ITEM_COLUMNS = "id, sku, name, price_cents, stock"


@router.get("/")
async def list_items(limit: int = 50, offset: int = 0) -> list[dict[str, Any]]:
    pool = await asyncpg.create_pool(  # wrong: a new pool per request
        settings.database_url, min_size=1, max_size=5
    )
    try:
        rows = await pool.fetch(
            f"SELECT {ITEM_COLUMNS} FROM items ORDER BY id LIMIT $1 OFFSET $2",
            limit,
            offset,
        )
    finally:
        await pool.close()
    return [dict(row) for row in rows]


# Declared before /{item_id} so "search" is not parsed as an item id.
@router.get("/search")
async def search_items(request: Request, q: str) -> list[dict[str, Any]]:
    pool: asyncpg.Pool = request.app.state.pool  # ok: shared pool from lifespan
    async with pool.acquire() as conn:
        rows = await conn.fetch(
            f"SELECT {ITEM_COLUMNS} FROM items WHERE name ILIKE $1 LIMIT 20",
            f"%{q}%",
        )
    return [dict(row) for row in rows]


@router.get("/{item_id}")
async def get_item(item_id: int) -> dict[str, Any]:
    conn = await asyncpg.connect(  # wrong: fresh connection per request, no pool
        os.environ["DATABASE_URL"]
    )
    try:
        row = await conn.fetchrow(
            f"SELECT {ITEM_COLUMNS} FROM items WHERE id = $1", item_id
        )
    finally:
        await conn.close()
    if row is None:
        raise HTTPException(status_code=404, detail="item not found")
    return dict(row)


@router.post("/{item_id}/views")
async def record_view(item_id: int) -> dict[str, int]:
    cache = get_redis()  # the factory in db.py hands out a fresh client each call
    views = await cache.incr(f"item:{item_id}:views")
    return {"item_id": item_id, "views": views}
