"""Demo data: supabase/seed.sql (idempotent SQL), applied in one transaction after the migrations."""

from __future__ import annotations

import asyncio
from pathlib import Path

from shared.settings import REPO_ROOT

SEED_FILE = REPO_ROOT / "supabase" / "seed.sql"


class SeedError(Exception):
    """The seed file failed to apply; nothing of it was kept."""


async def seed(database_url: str, seed_file: Path = SEED_FILE) -> None:
    """Apply the seed file in one transaction (it is written to be re-run on every start)."""
    import psycopg

    sql = await asyncio.to_thread(seed_file.read_bytes)
    async with await psycopg.AsyncConnection.connect(database_url, prepare_threshold=None) as conn:
        try:
            async with conn.transaction():
                await conn.execute(sql)
        except psycopg.Error as error:
            raise SeedError(f"{seed_file.name}: {error}") from error
