"""Application factory for the blog: `flask --app flask_blog.app run`."""

import os
from typing import Any

import sqlalchemy as sa
from flask import Flask

from .views import bp


def create_app(config: dict[str, Any] | None = None) -> Flask:
    app = Flask(__name__)
    app.config.from_mapping(
        DATABASE_URL=os.getenv(
            "DATABASE_URL", "postgresql://blog:blog@localhost:5432/blog"
        ),
        DB_POOL_SIZE=int(os.getenv("DB_POOL_SIZE", "10")),
        POSTS_PER_PAGE=20,
    )
    if config:
        app.config.update(config)

    # One engine for the whole app, built once when the factory runs.
    app.extensions["db_engine"] = sa.create_engine(  # ok: app startup, not per call
        app.config["DATABASE_URL"],
        pool_size=app.config["DB_POOL_SIZE"],
        pool_pre_ping=True,
    )

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        with app.extensions["db_engine"].connect() as conn:  # ok: pooled
            conn.execute(sa.text("SELECT 1"))
        return {"status": "ok"}

    app.register_blueprint(bp)
    return app
