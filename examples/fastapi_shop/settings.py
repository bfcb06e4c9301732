"""Plain environment-based settings for the shop (no pydantic on purpose)."""

import os
from dataclasses import dataclass


def _env_int(name: str, default: int) -> int:
    return int(os.getenv(name, str(default)))


@dataclass(frozen=True, slots=True)
class Settings:
    database_url: str  # plain libpq URL, asyncpg takes it as-is
    redis_host: str
    redis_port: int
    pool_min_size: int
    pool_max_size: int
    debug: bool

    @property
    def sqlalchemy_url(self) -> str:
        # SQLAlchemy wants the async driver spelled out in the scheme.
        return self.database_url.replace("postgresql://", "postgresql+asyncpg://", 1)

    @property
    def redis_url(self) -> str:
        return f"redis://{self.redis_host}:{self.redis_port}/0"


def load_settings() -> Settings:
    return Settings(
        database_url=os.getenv(
            "DATABASE_URL", "postgresql://shop:shop@localhost:5432/shop"
        ),
        redis_host=os.getenv("REDIS_HOST", "localhost"),
        redis_port=_env_int("REDIS_PORT", 6379),
        pool_min_size=_env_int("DB_POOL_MIN", 2),
        pool_max_size=_env_int("DB_POOL_MAX", 10),
        debug=os.getenv("SHOP_DEBUG", "0") == "1",
    )


settings = load_settings()
