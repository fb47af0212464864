"""The reads of the licence path: how a title is offered (entitlement re-check) and an asset's key id."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from psycopg import AsyncConnection


async def title_access(conn: AsyncConnection[Any], *, title_id: str | uuid.UUID) -> dict[str, Any] | None:
    """{id, access, min_tier} of a title that still exists (None once deleted)."""
    from shared.infra.db import fetch_one

    return await fetch_one(
        conn,
        "select id, access, min_tier from public.catalog_titles where id = %s and deleted_at is null",
        (uuid.UUID(str(title_id)),),
    )


async def key_id(conn: AsyncConnection[Any], *, asset_id: str | uuid.UUID) -> bytes | None:
    """The asset's CENC key id (16 bytes; no key material), None when it has no keys."""
    from shared.infra.db import fetch_one

    row = await fetch_one(
        conn, "select key_id from public.media_keys where asset_id = %s", (uuid.UUID(str(asset_id)),)
    )
    return None if row is None else bytes.fromhex(row["key_id"])
