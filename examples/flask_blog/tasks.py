"""Background jobs for the Celery worker: `celery -A flask_blog.tasks worker`."""

import os

import psycopg
from celery import shared_task
from psycopg_pool import ConnectionPool

DATABASE_URL = os.getenv("DATABASE_URL", "postgresql://blog:blog@localhost/blog")

RECOUNT_SQL = """
    UPDATE authors
       SET post_count = (SELECT count(*) FROM posts WHERE author_id = %(id)s)
     WHERE id = %(id)s
"""


@shared_task(autoretry_for=(psycopg.OperationalError,), retry_backoff=True)
def refresh_post_count(author_id: int) -> int:
    # Runs thousands of times a day; each run opens and tears down a pool.
    with ConnectionPool(  # wrong: a new pool on every task run
        DATABASE_URL, max_size=4
    ) as pool:
        with pool.connection() as conn:
            cur = conn.execute(RECOUNT_SQL, {"id": author_id})
            return cur.rowcount


if __name__ == "__main__":
    # Manual run: queue a recount for every author.
    with psycopg.connect(DATABASE_URL) as conn:  # ok: one-off script
        for (author_id,) in conn.execute("SELECT id FROM authors"):
            refresh_post_count.delay(author_id)
