"""SQL the social login needs beyond shared.accounts.repository (identities and users live there).

`clear_password` belongs in shared.accounts.repository; it sits here only until the accounts domain
offers it, so this issue's files stay with their owners.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from psycopg import AsyncConnection


async def clear_password(conn: AsyncConnection[Any], user_id: uuid.UUID) -> None:
    """Drop the account's password (it then signs in only through its linked providers)."""
    await conn.execute(
        "update public.users set password_hash = null, password_changed_at = now() where id = %s",
        (user_id,),
    )
