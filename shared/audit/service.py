"""The audit log: every security event and role change, appended in the caller's transaction."""

from __future__ import annotations

import json
import logging
import uuid
from typing import Any

from shared.audit import repository

logger = logging.getLogger("cinema.audit")

# The events recorded; a closed list so dashboards and alerts can rely on the names.
EVENTS = frozenset(
    {
        "signup",
        "email_verified",
        "login_succeeded",
        "login_failed",
        "login_locked",
        "mfa_challenge_failed",
        "mfa_replay_rejected",
        "token_refresh_reuse",
        "logout",
        "logout_everywhere",
        "session_revoked",
        "password_reset_requested",
        "password_reset",
        "password_changed",
        "email_change_requested",
        "email_changed",
        "mfa_enabled",
        "mfa_disabled",
        "backup_codes_regenerated",
        "backup_code_used",
        "identity_linked",
        "identity_unlinked",
        "roles_changed",
        "account_disabled",
        "account_enabled",
        "account_deleted",
        "data_exported",
        "profile_pin_failed",
        "catalog_created",
        "commerce_plan_changed",
        "commerce_offer_changed",
        "commerce_ppv_changed",
        "catalog_updated",
        "catalog_deleted",
        "catalog_restored",
        "catalog_imported",
        "media_upload_created",
        "media_upload_completed",
        "media_upload_rejected",
        "media_upload_aborted",
    }
)


async def record(
    conn: Any,
    *,
    event: str,
    subject_id: uuid.UUID | None,
    actor_id: uuid.UUID | None = None,
    ip: str | None = None,
    user_agent: str | None = None,
    **details: Any,
) -> None:
    """Append a security event (and log it) in the caller's transaction."""
    if event not in EVENTS:
        raise ValueError(f"unknown audit event {event!r}")
    actor = actor_id if actor_id is not None else subject_id
    await repository.insert_event(
        conn,
        event=event,
        actor_id=actor,
        subject_id=subject_id,
        ip=ip,
        user_agent=user_agent,
        details=_plain(details),
    )
    logger.info(
        "audit %s",
        event,
        extra={"event": event, "subject_id": str(subject_id) if subject_id else None, "ip": ip},
    )


def _plain(details: dict[str, Any]) -> dict[str, Any]:
    """Details as plain JSON: a UUID, datetime or set passed by a caller must not turn an event into a 500."""

    def fallback(value: Any) -> Any:
        return sorted(value, key=str) if isinstance(value, set | frozenset) else str(value)

    plain: dict[str, Any] = json.loads(json.dumps(details, default=fallback))
    return plain


async def record_standalone(*, event: str, subject_id: uuid.UUID | None, **fields: Any) -> None:
    """Record an event that must survive the request's rollback (failed login); at once outside a request."""
    from shared.infra.db import write_despite_rollback

    if event not in EVENTS:  # now, not when the request ends
        raise ValueError(f"unknown audit event {event!r}")

    async def write(conn: Any) -> None:
        await record(conn, event=event, subject_id=subject_id, **fields)

    # On the request's own connection, after its rollback: never a second pooled connection per failure.
    await write_despite_rollback(write)


async def forget(conn: Any, *, user_id: uuid.UUID) -> None:
    """Strip personal data from a deleted account's events."""
    await repository.forget_subject(conn, user_id)
