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


async def seed_demo_catalog(database_url: str) -> str:
    """Load the generated demo catalog (shared/catalog/demo.py) or bring it up to date; a one-line summary."""
    import psycopg

    from shared.errors import AppError
    from shared.infra.loop_local import reset_all
    from shared.infra.storage import get_storage

    try:
        # Pillow draws the artwork: a local-only dependency (requirements-local.txt).
        from shared.catalog.demo import load_demo_catalog
    except ImportError as error:
        raise SeedError(f"demo catalog: {error} (pip install -r requirements-local.txt)") from error
    try:
        async with await psycopg.AsyncConnection.connect(
            database_url, autocommit=True, prepare_threshold=None
        ) as conn:
            result = await load_demo_catalog(conn, storage=await get_storage())
    except (psycopg.Error, OSError, AppError) as error:
        raise SeedError(f"demo catalog: {error}") from error
    finally:
        await reset_all()  # the storage client belongs to this event loop
    # An older catalog's images given their resized variants (shared/catalog/demo.py).
    upgraded = f"; {result.upgraded} older image(s) given resized variants" if result.upgraded else ""
    if not result.created:
        return "demo catalog already present" + upgraded
    return f"demo catalog: {result.created} title(s) created, {result.images} image(s) stored" + upgraded
