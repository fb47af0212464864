"""Apply supabase/migrations/*.sql in order, each once, each in its own transaction, race-safe."""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from shared.settings import REPO_ROOT

if TYPE_CHECKING:
    from psycopg import AsyncConnection

MIGRATIONS_DIR = REPO_ROOT / "supabase" / "migrations"
_NAME = re.compile(r"^(?P<version>\d{14})_(?P<name>[a-z0-9_]+)\.sql$")
# Transaction-scoped advisory lock: unlike a session lock it is safe behind pgbouncer's transaction mode.
_LOCK_KEY = int.from_bytes(hashlib.sha256(b"cinema.migrations").digest()[:8], "big", signed=True)
logger = logging.getLogger("cinema.migrations")

# The Supabase CLI's own ledger, so `supabase db push` and `cinema migrate` agree on what is applied.
_LEDGER = """
create schema if not exists supabase_migrations;
create table if not exists supabase_migrations.schema_migrations (
    version text not null primary key,
    statements text[],
    name text
);
"""


class MigrationError(Exception):
    """A migration file is misnamed or failed to apply."""


@dataclass(frozen=True)
class Migration:
    """One SQL file of supabase/migrations."""

    version: str
    name: str
    path: Path

    @property
    def sql(self) -> str:
        """The file's SQL."""
        return self.path.read_text(encoding="utf-8")


def discover(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    """List migrations in version order, refusing files that break the Supabase CLI naming."""
    migrations = []
    for path in sorted(directory.glob("*.sql")):
        match = _NAME.match(path.name)
        if not match:
            raise MigrationError(f"{path.name}: expected <14-digit timestamp>_<snake_name>.sql")
        migrations.append(Migration(match["version"], match["name"], path))
    versions = [m.version for m in migrations]
    if len(set(versions)) != len(versions):
        raise MigrationError("two migration files share a version")
    return migrations


async def applied_versions(conn: AsyncConnection) -> set[str]:
    """Versions recorded in the ledger (empty when it does not exist yet)."""
    cursor = await conn.execute("select to_regclass('supabase_migrations.schema_migrations') is not null")
    row = await cursor.fetchone()
    if not row or not row[0]:
        return set()
    cursor = await conn.execute("select version from supabase_migrations.schema_migrations")
    return {version for (version,) in await cursor.fetchall()}


async def migrate(database_url: str, directory: Path = MIGRATIONS_DIR) -> list[str]:
    """Apply pending migrations; return the versions applied by this call."""
    import psycopg

    migrations = discover(directory)
    applied_now: list[str] = []
    async with await psycopg.AsyncConnection.connect(database_url, prepare_threshold=None) as conn:
        done = await applied_versions(conn)
        await conn.commit()
        for migration in migrations:
            if migration.version in done:
                continue
            async with conn.transaction():
                await conn.execute("select pg_advisory_xact_lock(%s)", (_LOCK_KEY,))
                await conn.execute(_LEDGER)
                cursor = await conn.execute(
                    "select 1 from supabase_migrations.schema_migrations where version = %s",
                    (migration.version,),
                )
                if await cursor.fetchone():
                    continue  # another process applied it while we waited for the lock
                try:
                    await conn.execute(migration.sql.encode())
                except psycopg.Error as error:
                    raise MigrationError(f"{migration.path.name}: {error}") from error
                await conn.execute(
                    "insert into supabase_migrations.schema_migrations (version, name, statements)"
                    " values (%s, %s, %s)",
                    (migration.version, migration.name, [migration.sql]),
                )
            applied_now.append(migration.version)
            logger.info("applied migration %s_%s", migration.version, migration.name)
    return applied_now
