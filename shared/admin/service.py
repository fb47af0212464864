"""User administration: search accounts, change their roles, disable and re-enable them, read the audit log.

`actor` is the signed-in staff member, or None for an operator at the command line (trusted).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from shared.accounts.sessions import claims_changed, end_all_sessions
from shared.admin import repository
from shared.admin.schemas import AdminUserDetail, AdminUserRead, AuditEventRead
from shared.audit import repository as audit_log
from shared.audit import service as audit
from shared.errors import Conflict, Forbidden, NotFound, ValidationFailed
from shared.http.auth import Principal
from shared.http.client_meta import ClientMeta
from shared.http.pagination import InvalidCursor, Page, PageParams, paginate
from shared.http.permissions import ROLES, has_permission
from shared.settings import Settings

_NO_META = ClientMeta(ip=None, user_agent=None)


class UserNotFound(NotFound):
    """No account has this id."""

    def __init__(self) -> None:
        super().__init__("No account has this id.", code="user_not_found")


def canonical_roles(roles: list[str] | set[str] | frozenset[str]) -> list[str]:
    """The roles in their fixed order, without duplicates, always including "viewer"."""
    unknown = set(roles) - set(ROLES)
    if unknown:
        raise ValidationFailed(f"Unknown roles: {', '.join(sorted(unknown))}.", code="unknown_role")
    wanted = set(roles) | {"viewer"}
    return [role for role in ROLES if role in wanted]


async def search_users(
    conn: Any, *, q: str | None, role: str | None, status: str | None, page: PageParams
) -> Page[AdminUserRead]:
    """Accounts matching the filters, newest first, one page at a time."""
    after: tuple[datetime, uuid.UUID] | None = None
    if page.after is not None:
        try:
            created_at, user_id = page.after
            after = (datetime.fromisoformat(created_at), uuid.UUID(user_id))
        except (TypeError, ValueError) as error:
            raise InvalidCursor("The cursor is malformed; start again without one.") from error
    rows = await repository.search_users(
        conn, q=q or None, role=role, status=status, after=after, limit=page.limit + 1
    )
    items = [AdminUserRead.from_row(row) for row in rows]
    return paginate(items, page, key=lambda user: (user.created_at.isoformat(), str(user.id)))


async def get_user(conn: Any, *, user_id: uuid.UUID) -> AdminUserDetail:
    """One account in full (404 user_not_found)."""
    row = await repository.user_detail(conn, user_id)
    if row is None:
        raise UserNotFound()
    return AdminUserDetail.from_detail(row, await repository.identities_of(conn, user_id))


async def _locked(conn: Any, user_id: uuid.UUID) -> dict[str, Any]:
    user = await repository.lock_user(conn, user_id)
    if user is None:
        raise UserNotFound()
    return user


def _by(actor: Principal | None) -> dict[str, Any]:
    """Audit fields naming who acted; the audit log reads a missing actor as the subject, so say "cli"."""
    return {"actor_id": actor.user_id} if actor is not None else {"source": "cli"}


def _check_may_manage(actor: Principal | None, user: dict[str, Any]) -> None:
    """Only those who may grant roles may disable/enable a staff account (support cannot lock out admins)."""
    staff = set(user["roles"]) - {"viewer"}
    if actor is not None and staff and not has_permission(actor, "users:roles"):
        raise Forbidden(
            "This is a staff account; only an administrator may disable or enable it.",
            code="cannot_manage_staff",
        )


async def change_roles(
    conn: Any,
    *,
    settings: Settings,
    actor: Principal | None,
    user_id: uuid.UUID,
    roles: list[str],
    meta: ClientMeta = _NO_META,
) -> tuple[list[str], list[str]]:
    """Replace the account's roles (access tokens must refresh to carry them); returns (before, after)."""
    user = await _locked(conn, user_id)
    before = list(user["roles"])
    after = canonical_roles(roles)
    if actor is not None and actor.user_id == user_id and "admin" in before and "admin" not in after:
        # An admin could otherwise leave the platform with no admin by a slip; another admin has to do it.
        raise Conflict("You cannot remove your own admin role.", code="cannot_demote_self")
    if set(after) == set(before):
        return before, before
    await repository.set_roles(conn, user_id, after)
    await audit.record(
        conn,
        event="roles_changed",
        subject_id=user_id,
        **_by(actor),
        ip=meta.ip,
        user_agent=meta.user_agent,
        before=before,
        after=after,
    )
    await claims_changed(settings=settings, user_id=user_id)
    return before, after


async def disable_account(
    conn: Any,
    *,
    settings: Settings,
    actor: Principal | None,
    user_id: uuid.UUID,
    reason: str,
    meta: ClientMeta = _NO_META,
) -> bool:
    """Disable the account and end every session; False when it was already disabled."""
    user = await _locked(conn, user_id)
    if actor is not None and actor.user_id == user_id:
        raise Conflict("You cannot disable your own account.", code="cannot_disable_self")
    _check_may_manage(actor, user)
    if user["status"] == "disabled":
        return False
    await repository.set_status(conn, user_id, status="disabled", reason=reason)
    ended = await end_all_sessions(conn, settings=settings, user_id=user_id, reason="account_disabled")
    await claims_changed(settings=settings, user_id=user_id)
    await audit.record(
        conn,
        event="account_disabled",
        subject_id=user_id,
        **_by(actor),
        ip=meta.ip,
        user_agent=meta.user_agent,
        reason=reason,
        sessions_ended=ended,
    )
    return True


async def enable_account(
    conn: Any, *, actor: Principal | None, user_id: uuid.UUID, meta: ClientMeta = _NO_META
) -> bool:
    """Let a disabled account sign in again; False when it was already active."""
    user = await _locked(conn, user_id)
    _check_may_manage(actor, user)
    if user["status"] == "active":
        return False
    await repository.set_status(conn, user_id, status="active", reason=None)
    await audit.record(
        conn,
        event="account_enabled",
        subject_id=user_id,
        **_by(actor),
        ip=meta.ip,
        user_agent=meta.user_agent,
        previous_reason=user["disabled_reason"],
    )
    return True


def _host(ip: str | None) -> str | None:
    """inet::text carries the netmask ("203.0.113.7/32"); a single address reads better without it."""
    if ip is None:
        return None
    address, _, bits = ip.partition("/")
    return address if bits in ("", "32", "128") else ip


async def list_audit_events(
    conn: Any, *, user_id: uuid.UUID | None, event: str | None, page: PageParams
) -> Page[AuditEventRead]:
    """The security audit log, newest first, optionally for one account and/or one event type."""
    if event is not None and event not in audit.EVENTS:
        raise ValidationFailed(
            f"Unknown event {event!r}; known events: {', '.join(sorted(audit.EVENTS))}.",
            code="unknown_event",
        )
    before_id: int | None = None
    if page.after is not None:
        if len(page.after) != 1 or type(page.after[0]) is not int:
            raise InvalidCursor("The cursor is malformed; start again without one.")
        before_id = page.after[0]
    rows = await audit_log.list_events(
        conn, subject_id=user_id, event=event, before_id=before_id, limit=page.limit + 1
    )
    items = [AuditEventRead(**{**row, "ip": _host(row["ip"])}) for row in rows]
    return paginate(items, page, key=lambda item: (item.id,))
