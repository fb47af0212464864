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
    """Account, profiles, sessions, identities, 2FA state, security events, mail sent and payments."""
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
    # What the account paid for: subscriptions, rentals/purchases and invoices (no card data is held).
    subscriptions = await _rows(
        conn,
        """select plan_code, status, billing_interval, currency, amount_minor, current_period_start,
                  current_period_end, trial_end, cancel_at_period_end, canceled_at, ended_at, created_at
           from public.subscriptions where user_id = %s order by created_at""",
        user_id,
    )
    purchases = await _rows(
        conn,
        """select kind, title_name, currency, amount_minor, status, paid_at, ended_at, created_at
           from public.purchases where user_id = %s order by created_at""",
        user_id,
    )
    invoices = await _rows(
        conn,
        """select number, status, currency, subtotal_minor, tax_minor, total_minor, amount_paid_minor,
                  amount_refunded_minor, lines, tax_lines, issued_at, paid_at
           from public.invoices where user_id = %s order by issued_at""",
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
        "subscriptions": subscriptions,
        "purchases": purchases,
        "invoices": invoices,
    }
    result: dict[str, Any] = _jsonable(document)
    return result
