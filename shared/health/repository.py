"""SQL of the health domain."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from psycopg import AsyncConnection


async def database_facts(conn: AsyncConnection[Any]) -> dict[str, Any]:
    """The newest applied migration: proves both connectivity and that the schema is in place."""
    cursor = await conn.execute("select max(version) from supabase_migrations.schema_migrations")
    row = await cursor.fetchone()
    assert row is not None
    return {"schema_version": row[0]}
