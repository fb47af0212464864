"""Tokens issued by Supabase Auth: accepted when configured, mapped to local users by identity."""

from __future__ import annotations

import time
import uuid

from shared.accounts import repository
from shared.accounts.authn import stale_since
from shared.accounts.tokens import AccessClaims, InvalidToken
from shared.audit import service as audit
from shared.http.auth import Principal
from shared.infra.redis import get_redis
from shared.settings import Settings

_PROVIDER = "supabase"
_CACHE = "auth:supabase-user:{}"
_CACHE_SECONDS = 60


async def principal_for_supabase(claims: AccessClaims, *, settings: Settings) -> Principal:
    """Map a Supabase Auth user to the local account (created on first sight), cached briefly in Redis."""
    store = await get_redis()
    key = _CACHE.format(claims.user_id)
    cached = await store.get(key)
    parts = cached.split("|") if cached is not None else []
    if len(parts) == 4:
        user_text, roles_text, mfa_text, cached_at = parts
        # An admin changed roles or disabled the account since: the cached mapping is stale.
        changed = await stale_since(store, uuid.UUID(user_text))
        if changed is not None and changed >= int(cached_at):
            parts = []
    else:
        parts = []  # absent, or written by an older version
    if not parts:
        user_id, roles, status, mfa_enabled = await _resolve(claims)
        if status != "active":
            raise InvalidToken("This account is disabled.")
        user_text, roles_text, mfa_text = str(user_id), ",".join(roles), "1" if mfa_enabled else "0"
        # Milliseconds, like the stale-claims record it is compared with.
        record = f"{user_text}|{roles_text}|{mfa_text}|{int(time.time() * 1000)}"
        await store.set(key, record, ex=_CACHE_SECONDS)
    if mfa_text == "1" and claims.aal != "aal2":
        # The account has two-step verification here; a Supabase session without a second factor must not
        # be a way around it (as a password reset or a social login is not).
        raise InvalidToken("This account uses two-step verification: sign in with your code.")
    return Principal(
        user_id=uuid.UUID(user_text),
        roles=frozenset(role for role in roles_text.split(",") if role),
        session_id=None,
        profile_id=None,
        aal=claims.aal,
        email=claims.email,
    )


async def _resolve(claims: AccessClaims) -> tuple[uuid.UUID, list[str], str, bool]:
    """The local account of a Supabase user: id, roles, status and whether it has 2FA on."""
    from shared.infra.db import get_pool

    pool = await get_pool()
    async with pool.connection() as conn:
        linked = await repository.identity(conn, _PROVIDER, str(claims.user_id))
        if linked is not None:
            user = await repository.user_by_id(conn, linked["user_id"])
        else:
            if not claims.email:
                raise InvalidToken("The Supabase token carries no email to map to an account.")
            if not claims.email_verified:
                # A Supabase project may sign people in before they confirm their address (confirmations
                # off): such a token proves nothing about the address, so it must not claim the account
                # that uses it, nor create one that the real owner would then share with it.
                raise InvalidToken("Confirm your email address with Supabase first, then sign in again.")
            # Supabase confirmed the address, so it may claim an existing account.
            user = await repository.user_by_email(conn, claims.email)
            if user is None:
                user = await repository.insert_user(
                    conn, email=claims.email, password_hash=None, display_name=None, verified=True
                )
                if user is not None:
                    from shared.profiles import service as profiles

                    # Like every account: one profile to start with.
                    await profiles.create_default_profile(
                        conn, user_id=user["id"], name=claims.email.split("@")[0][:50]
                    )
                else:  # created concurrently
                    user = await repository.user_by_email(conn, claims.email)
            elif user["email_verified_at"] is None:
                # Pre-account takeover: whoever registered this address never proved they own it, and
                # Supabase just did for this caller. That unproven password must not stay a way in.
                await repository.clear_password(conn, user["id"])
                await repository.mark_verified(conn, user["id"])
            assert user is not None
            await repository.link_identity(
                conn, provider=_PROVIDER, subject=str(claims.user_id), user_id=user["id"], email=claims.email
            )
            await audit.record(conn, event="identity_linked", subject_id=user["id"], provider=_PROVIDER)
        if user is None:
            raise InvalidToken()
        from shared.mfa import service as mfa

        mfa_enabled = await mfa.is_enabled(conn, user_id=user["id"])
        return user["id"], list(user["roles"]), str(user["status"]), mfa_enabled
