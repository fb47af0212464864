"""The data export: everything stored about an account, as one JSON document (GDPR art. 15 and 20)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from shared.accounts import repository


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, dict):
        return {key: _jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(item) for item in value]
    return value


async def _rows(conn: Any, query: str, user_id: uuid.UUID) -> list[dict[str, Any]]:
    from psycopg.rows import dict_row

    async with conn.cursor(row_factory=dict_row) as cursor:
        await cursor.execute(query, (user_id,))
        return list(await cursor.fetchall())


async def collect(conn: Any, *, user: dict[str, Any]) -> dict[str, Any]:
    """Account, profiles, sessions, linked identities, 2FA state, security events and mail sent."""
    from shared.mfa import service as mfa
    from shared.profiles import service as profiles

    user_id = user["id"]
    account = {
        key: user[key]
        for key in (
            "id",
            "email",
            "email_verified_at",
            "display_name",
            "roles",
            "status",
            "created_at",
            "last_login_at",
            "password_changed_at",
        )
    }
    account["has_password"] = user["password_hash"] is not None
    sessions = await _rows(
        conn,
        """select id, device_name, user_agent, host(ip) as ip, aal, amr, created_at, last_seen_at, expires_at,
                  revoked_at, revoked_reason
           from public.auth_sessions where user_id = %s order by created_at""",
        user_id,
    )
    events = await _rows(
        conn,
        """select occurred_at, event, host(ip) as ip, user_agent, details from public.audit_log
           where subject_id = %s order by id""",
        user_id,
    )
    mail = await _rows(
        conn,
        """select created_at, to_address, template, subject, state, sent_at from public.mail_outbox
           where user_id = %s order by created_at""",
        user_id,
    )
    document = {
        "format": "cinema-online-export/1",
        "exported_at": datetime.now().astimezone().isoformat(),
        "account": account,
        "profiles": await profiles.list_profiles(conn, user_id=user_id),
        "two_factor": await mfa.status(conn, user_id=user_id),
        "identities": await repository.identities_of(conn, user_id),
        "sessions": sessions,
        "security_events": events,
        "emails": mail,
    }
    result: dict[str, Any] = _jsonable(document)
    return result
