"""Tokens issued by Supabase Auth: accepted when configured, mapped to local users by identity."""

from __future__ import annotations

import time
import uuid
from typing import Any

from shared.accounts import repository
from shared.accounts.authn import supabase_cutoff
from shared.accounts.tokens import AccessClaims, InvalidToken
from shared.audit import service as audit
from shared.errors import Unauthenticated
from shared.http.auth import Principal
from shared.infra.redis import get_redis
from shared.settings import Settings

_PROVIDER = "supabase"
_CACHE = "auth:supabase-user:{}"
_CACHE_SECONDS = 60
# A mapping read from the database shortly after a revocation mark may predate the commit of the
# transaction that wrote the mark (the mark is written inside it): such entries are not trusted.
_COMMIT_MARGIN_MS = 5_000


class SupabaseAccountConflict(Unauthenticated):
    """A local account already uses the Supabase user's address, and the two were never linked."""

    def __init__(self) -> None:
        super().__init__(
            "An account with this email address already exists here: sign in with your Cinema Online "
            "password (or reset it with \u201cForgot password\u201d) instead of through Supabase.",
            code="supabase_account_conflict",
        )


class MfaRequiredLocally(Unauthenticated):
    """The local account has two-step verification, which a Supabase session cannot satisfy."""

    def __init__(self) -> None:
        super().__init__(
            "This account uses two-step verification here: sign in with your Cinema Online password "
            "and your code.",
            code="mfa_required_locally",
        )


async def principal_for_supabase(claims: AccessClaims, *, settings: Settings) -> Principal:
    """Map a Supabase Auth user to its local account (created on first sight), cached briefly in Redis."""
    store = await get_redis()
    key = _CACHE.format(claims.user_id)
    cached = await store.get(key)
    parts = cached.split("|") if cached is not None else []
    cutoff: int | None = None
    if len(parts) == 3:
        user_text, roles_text, cached_at = parts
        cutoff = await supabase_cutoff(store, uuid.UUID(user_text))
        # Roles or status changed, sessions ended or identities were unlinked since: the mapping is stale.
        if cutoff is not None and cutoff + _COMMIT_MARGIN_MS >= int(cached_at):
            parts = []
    else:
        parts = []  # absent, or written by an older version
    if not parts:
        user_id, roles = await _resolve(claims)
        user_text, roles_text = str(user_id), ",".join(roles)
        cutoff = await supabase_cutoff(store, user_id)
        # Milliseconds, like the revocation marks it is compared with.
        await store.set(key, f"{user_text}|{roles_text}|{int(time.time() * 1000)}", ex=_CACHE_SECONDS)
    # Supabase's iat has whole seconds: a token from the second of the mark is refused too (safe side).
    if cutoff is not None and claims.issued_at * 1000 < cutoff:
        raise InvalidToken("This session has been signed out; sign in again.")
    return Principal(
        user_id=uuid.UUID(user_text),
        roles=frozenset(role for role in roles_text.split(",") if role),
        session_id=None,
        profile_id=None,
        aal=claims.aal,
        email=claims.email,
    )


async def _resolve(claims: AccessClaims) -> tuple[uuid.UUID, list[str]]:
    """The local account of a Supabase user (id, roles); refuses disabled and two-step accounts."""
    from shared.infra.db import get_pool
    from shared.mfa import service as mfa

    pool = await get_pool()
    async with pool.connection() as conn:
        linked = await repository.identity(conn, _PROVIDER, str(claims.user_id))
        if linked is not None:
            user = await repository.user_by_id(conn, linked["user_id"])
        else:
            user = await _create(conn, claims)
        if user is None:
            raise InvalidToken()
        if user["status"] != "active":
            raise InvalidToken("This account is disabled.")
        # Any Supabase user can reach aal2 with an authenticator of their own choosing, so the token's aal
        # says nothing about the factor enrolled here: such accounts sign in with us only.
        if await mfa.is_enabled(conn, user_id=user["id"]):
            raise MfaRequiredLocally()
        return user["id"], list(user["roles"])


async def _create(conn: Any, claims: AccessClaims) -> dict[str, Any] | None:
    """A new local account for an unlinked Supabase user whose address no local account uses."""
    if not claims.email:
        raise InvalidToken("The Supabase token carries no email to map to an account.")
    # Supabase puts nothing in its tokens that proves the address (user_metadata is written by the user
    # themselves, and a project may sign people in before they confirm): an existing account with this
    # address is never claimed, and a new one starts unverified (a password reset proves it later).
    if await repository.user_by_email(conn, claims.email) is not None:
        raise SupabaseAccountConflict()
    user = await repository.insert_user(
        conn, email=claims.email, password_hash=None, display_name=None, verified=False
    )
    if user is None:
        # The address was taken meanwhile: by a parallel first request of this same Supabase user (its
        # identity is committed by now, as the insert waited for it), or by someone else.
        linked = await repository.identity(conn, _PROVIDER, str(claims.user_id))
        if linked is None:
            raise SupabaseAccountConflict()
        return await repository.user_by_id(conn, linked["user_id"])
    from shared.profiles import service as profiles

    # Like every account: one profile to start with.
    await profiles.create_default_profile(conn, user_id=user["id"], name=claims.email.split("@")[0][:50])
    await repository.link_identity(
        conn, provider=_PROVIDER, subject=str(claims.user_id), user_id=user["id"], email=claims.email
    )
    await audit.record(conn, event="signup", subject_id=user["id"], provider=_PROVIDER)
    await audit.record(conn, event="identity_linked", subject_id=user["id"], provider=_PROVIDER)
    return user
