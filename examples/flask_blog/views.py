"""Blog pages and a small JSON API."""

import os
from typing import Any

import psycopg2
import pymongo
import sqlalchemy as sa
from flask import Blueprint, Response, abort, jsonify, render_template
from flask.views import MethodView
from psycopg2.extras import RealDictCursor
from psycopg2.pool import ThreadedConnectionPool

bp = Blueprint("blog", __name__)

LATEST_SQL = "SELECT id, title, published_at FROM posts ORDER BY 3 DESC LIMIT %s"

_pool: ThreadedConnectionPool | None = None


def load_posts(limit: int = 20) -> list[tuple[Any, ...]]:
    conn = psycopg2.connect(  # wrong: new connection on every call, no pool
        os.environ["DATABASE_URL"]
    )
    try:
        with conn.cursor() as cur:
            cur.execute(LATEST_SQL, (limit,))
            return cur.fetchall()
    finally:
        conn.close()


@bp.get("/")
def index() -> str:
    # Looks harmless, but load_posts() opens a connection on every page view.
    return render_template("index.html", posts=load_posts())


@bp.get("/stats")
def stats() -> Response:
    engine = sa.create_engine(  # wrong: a new engine (and pool) per request
        os.environ["DATABASE_URL"]
    )
    with engine.connect() as conn:
        total = conn.execute(sa.text("SELECT count(*) FROM posts")).scalar_one()
    return jsonify(posts=total)


@bp.get("/posts/<int:post_id>")
def show_post(post_id: int) -> str:
    global _pool
    if _pool is None:
        _pool = ThreadedConnectionPool(  # ok: lazily built once, then reused
            1, 10, os.environ["DATABASE_URL"]
        )
    conn = _pool.getconn()  # ok: borrowed from the shared pool
    try:
        with conn.cursor(cursor_factory=RealDictCursor) as cur:
            cur.execute("SELECT * FROM posts WHERE id = %s", (post_id,))
            post = cur.fetchone()
    finally:
        _pool.putconn(conn)
    if post is None:
        abort(404)
    return render_template("post.html", post=post)


class AuthorAPI(MethodView):
    def get(self, author_id: str) -> Response:
        client = pymongo.MongoClient(  # wrong: a new MongoClient per request
            os.environ["MONGO_URL"]
        )
        try:
            author = client.blog.authors.find_one({"slug": author_id}, {"_id": 0})
        finally:
            client.close()
        if author is None:
            abort(404)
        return jsonify(author)


bp.add_url_rule("/api/authors/<author_id>", view_func=AuthorAPI.as_view("author"))
