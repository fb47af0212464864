"""A psycopg pool for tests that drive the queue directly, configured like the platform's own."""

from __future__ import annotations

from psycopg_pool import AsyncConnectionPool

from shared.infra.db import connection_kwargs
from shared.settings import get_settings


async def open_test_pool(database_url: str, size: int = 4) -> AsyncConnectionPool:
    """Open a pool on the run's database with the platform's connection options."""
    pool = AsyncConnectionPool(
        database_url, min_size=1, max_size=size, kwargs=connection_kwargs(get_settings()), open=False
    )
    await pool.open(wait=True)
    return pool
