"""Login sessions: open one, rotate its refresh token, re-issue access tokens, revoke."""

from __future__ import annotations

import time
import uuid
from typing import Any

from shared.accounts import repository
from shared.accounts.authn import end_supabase_tokens, mark_claims_stale, revoke_sessions
from shared.accounts.schemas import TokenResponse, UserRead
from shared.accounts.tokens import InvalidToken, issue_access_token, new_opaque_token, token_hash
from shared.audit import service as audit
from shared.errors import Unauthenticated
from shared.http.client_meta import ClientMeta
from shared.infra.redis import get_redis
from shared.settings import Settings


class RefreshRefused(Unauthenticated):
    """The refresh token is unknown, spent, expired or its session is revoked."""

    def __init__(self, detail: str, code: str = "invalid_refresh_token") -> None:
        super().__init__(detail, code=code)


def _amr(methods: list[str], at: int) -> list[dict[str, Any]]:
    return [{"method": method, "timestamp": at} for method in methods]


def _device_name(user_agent: str | None) -> str | None:
    """A short human label for a browser (the full string is kept too)."""
    if not user_agent:
        return None
    agent = user_agent.lower()
    browser = next(
        (
            name
            for key, name in (
                ("edg/", "Edge"),
                ("firefox", "Firefox"),
                ("chrome", "Chrome"),
                ("safari", "Safari"),
            )
            if key in agent
        ),
        "Browser",
    )
    system = next(
        (
            name
            for key, name in (
                ("android", "Android"),
                ("iphone", "iPhone"),
                ("ipad", "iPad"),
                ("windows", "Windows"),
                ("mac os", "macOS"),
                ("linux", "Linux"),
            )
            if key in agent
        ),
        None,
    )
    return f"{browser} on {system}" if system else browser


async def _tokens(
    conn: Any, *, settings: Settings, user: dict[str, Any], session: dict[str, Any], refresh: str | None
) -> TokenResponse:
    now = int(time.time())
    access, expires_at = issue_access_token(
        settings=settings,
        user_id=user["id"],
        email=user["email"],
        roles=list(user["roles"]),
        session_id=session["id"],
        profile_id=session.get("profile_id"),
        aal=session["aal"],
        amr=_amr(list(session["amr"]), repository.timestamp(session["created_at"]) or now),
        # No `now`: the token takes the exact (millisecond) time, which the stale-claims check compares
        # with; a whole-second `now` would date a token minted just after a role change before it.
    )
    if refresh is None:
        refresh, digest = new_opaque_token()
        await repository.insert_refresh_token(conn, session_id=session["id"], token_hash=digest)
    return TokenResponse(
        access_token=access,
        expires_in=expires_at - now,
        expires_at=expires_at,
        refresh_token=refresh,
        session_id=session["id"],
        profile_id=session.get("profile_id"),
        user=UserRead.from_row(user),
    )


async def start_session(
    conn: Any,
    *,
    settings: Settings,
    user: dict[str, Any],
    methods: list[str],
    aal: str,
    meta: ClientMeta,
) -> TokenResponse:
    """Open a session for a user who just proved who they are; returns the first token pair."""
    new_device = not await repository.known_device(conn, user["id"], meta.user_agent)
    session = await repository.insert_session(
        conn,
        user_id=user["id"],
        aal=aal,
        amr=methods,
        user_agent=meta.user_agent,
        ip=meta.ip,
        device_name=_device_name(meta.user_agent),
        max_days=settings.session_max_days,
    )
    await repository.touch_login(conn, user["id"])
    await audit.record(
        conn,
        event="login_succeeded",
        subject_id=user["id"],
        ip=meta.ip,
        user_agent=meta.user_agent,
        methods=methods,
        session_id=str(session["id"]),
    )
    if new_device and user.get("last_login_at") is not None:
        from shared.mail.service import queue_mail

        await queue_mail(
            conn,
            to=user["email"],
            template="new_device",
            user_id=user["id"],
            data={
                "device": session["device_name"] or "an unknown device",
                "ip": meta.ip or "unknown",
                "time": session["created_at"].strftime("%Y-%m-%d %H:%M UTC"),
            },
        )
    return await _tokens(conn, settings=settings, user=user, session=session, refresh=None)


# A spent token presented again this soon is a concurrent refresh, not a replay.
REUSE_GRACE_SECONDS = 10


async def _revoke_family(*, settings: Settings, session_id: uuid.UUID, meta: ClientMeta) -> None:
    from shared.infra.db import write_despite_rollback

    async def write(conn: Any) -> None:
        session = await repository.session_by_id(conn, session_id)
        if session is not None and await repository.revoke_session(conn, session_id, "refresh_reuse"):
            await audit.record(
                conn,
                event="token_refresh_reuse",
                subject_id=session["user_id"],
                ip=meta.ip,
                user_agent=meta.user_agent,
                session_id=str(session_id),
            )

    # Kept despite this failing request's rollback, on its own connection (no second pooled one).
    await write_despite_rollback(write)
    # At once: the family's access tokens stop working now, not when the request ends.
    await revoke_sessions(await get_redis(), [session_id], settings=settings)


async def refresh(conn: Any, *, settings: Settings, refresh_token: str, meta: ClientMeta) -> TokenResponse:
    """Rotate: spend the refresh token and issue a new pair; a spent token's reuse revokes the family."""
    digest = token_hash(refresh_token)
    spent = await repository.spend_refresh_token(conn, digest)
    if spent is None:
        known = await repository.refresh_token(conn, digest)
        if known is None or known["used_at"] is None:
            raise RefreshRefused("The refresh token is not valid; sign in again.")
        if time.time() - known["used_at"].timestamp() < REUSE_GRACE_SECONDS:
            # Two tabs refreshing at once: the other request won and holds the new pair; refuse this one
            # without ending the session (a thief racing the owner gets nothing either way).
            raise RefreshRefused(
                "This refresh token was just used by another request; use the tokens it received.",
                code="refresh_token_already_used",
            )
        # An old token of this family came back (stolen, or replayed): end the whole family. In its own
        # transaction, because this request fails and rolls back.
        await _revoke_family(settings=settings, session_id=known["session_id"], meta=meta)
        raise RefreshRefused(
            "This refresh token was already used; the session has been signed out for safety.",
            code="refresh_token_reused",
        )
    session = await repository.session_by_id(conn, spent["session_id"])
    assert session is not None
    idle_days = (time.time() - spent["issued_at"].timestamp()) / 86_400
    if session["revoked_at"] is not None or session["expires_at"].timestamp() <= time.time():
        raise RefreshRefused("This session has ended; sign in again.")
    if idle_days > settings.refresh_token_idle_days:
        raise RefreshRefused("This session was idle too long; sign in again.")
    user = await repository.user_by_id(conn, session["user_id"])
    if user is None or user["status"] != "active":
        raise RefreshRefused("This account cannot sign in.", code="account_disabled")
    await repository.touch_session(conn, session["id"], ip=meta.ip, user_agent=meta.user_agent)
    return await _tokens(conn, settings=settings, user=user, session=session, refresh=None)


async def reissue(
    conn: Any,
    *,
    settings: Settings,
    session_id: uuid.UUID,
    profile_id: uuid.UUID | None = None,
    clear_profile: bool = False,
    aal: str | None = None,
    add_method: str | None = None,
) -> TokenResponse:
    """New tokens for a live session after it changed (profile switch, step-up to aal2)."""
    session = await repository.session_by_id(conn, session_id)
    if session is None or session["revoked_at"] is not None:
        raise InvalidToken("This session has been signed out; sign in again.")
    amr = list(session["amr"]) + ([add_method] if add_method and add_method not in session["amr"] else [])
    await repository.update_session(
        conn, session_id, aal=aal, amr=amr, profile_id=profile_id, clear_profile=clear_profile
    )
    session = await repository.session_by_id(conn, session_id)
    user = await repository.user_by_id(conn, session["user_id"]) if session else None
    if session is None or user is None:
        raise InvalidToken()
    # The new refresh token replaces the session's unspent ones: one live refresh token per session.
    await repository.drop_unspent_refresh_tokens(conn, session_id)
    return await _tokens(conn, settings=settings, user=user, session=session, refresh=None)


async def end_session(conn: Any, *, settings: Settings, session_id: uuid.UUID, reason: str) -> bool:
    """Revoke one session in the database and its access tokens in Redis."""
    revoked = await repository.revoke_session(conn, session_id, reason)
    await revoke_sessions(await get_redis(), [session_id], settings=settings)
    return revoked


async def end_all_sessions(
    conn: Any, *, settings: Settings, user_id: uuid.UUID, reason: str, keep: uuid.UUID | None = None
) -> int:
    """Revoke every session of the user (except `keep`), tokens included (Supabase Auth's too)."""
    revoked = await repository.revoke_user_sessions(conn, user_id, reason, keep=keep)
    store = await get_redis()
    await revoke_sessions(store, revoked, settings=settings)
    # Not mark_claims_stale: that would also refuse the kept session's current access token.
    await end_supabase_tokens(store, user_id, settings=settings)
    return len(revoked)


async def claims_changed(*, settings: Settings, user_id: uuid.UUID) -> None:
    """Roles or status changed: outstanding access tokens must be refreshed to carry the new claims."""
    await mark_claims_stale(await get_redis(), user_id, settings=settings)
