"""SQL of the health domain."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from psycopg import AsyncConnection


async def database_facts(conn: AsyncConnection[Any]) -> dict[str, Any]:
    """Server version and the newest applied migration: proves both connectivity and schema."""
    cursor = await conn.execute(
        "select current_setting('server_version'),"
        " (select max(version) from supabase_migrations.schema_migrations)"
    )
    row = await cursor.fetchone()
    assert row is not None
    return {"server_version": row[0], "schema_version": row[1]}
