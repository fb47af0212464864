"""Bearer-token verification: our tokens cost a signature check and one Redis read, no database."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable

from fastapi import Request

from shared.accounts.tokens import SUPABASE_MAX_TOKEN_SECONDS, AccessClaims, InvalidToken, decode_access_token
from shared.http.auth import Principal, register_authenticator
from shared.infra.redis import KeyValueStore, get_redis
from shared.settings import Settings, get_settings

# Revocation records live as long as the longest access token could, then expire by themselves.
_REVOKED = "auth:revoked:{}"
_STALE_BEFORE = "auth:stale-before:{}"
# Supabase Auth tokens have no session of ours to revoke: "every session ended" is a per-user time instead.
_SUPABASE_ENDED_BEFORE = "auth:supabase-ended-before:{}"


def _revocation_ttl(settings: Settings) -> int:
    longest = settings.access_token_ttl_seconds
    if settings.accept_supabase_tokens:  # they are refused when they would outlive this
        longest = max(longest, SUPABASE_MAX_TOKEN_SECONDS)
    return longest + 120


async def revoke_sessions(
    store: KeyValueStore, session_ids: Iterable[uuid.UUID], *, settings: Settings
) -> None:
    """Kill the access tokens of these sessions now rather than at their expiry."""
    for session_id in session_ids:
        await store.set(_REVOKED.format(session_id), "1", ex=_revocation_ttl(settings))


async def mark_claims_stale(store: KeyValueStore, user_id: uuid.UUID, *, settings: Settings) -> None:
    """Tokens issued before now carry stale roles: refuse them so the client refreshes and gets new ones."""
    await store.set(_STALE_BEFORE.format(user_id), str(int(time.time() * 1000)), ex=_revocation_ttl(settings))


async def end_supabase_tokens(store: KeyValueStore, user_id: uuid.UUID, *, settings: Settings) -> None:
    """Every session of the user ended: refuse the Supabase Auth tokens issued before now too."""
    # A key of its own, not the stale-claims one: a password change keeps the caller's own session,
    # whose current access token (issued before now) must keep working.
    await store.set(
        _SUPABASE_ENDED_BEFORE.format(user_id), str(int(time.time() * 1000)), ex=_revocation_ttl(settings)
    )


async def supabase_cutoff(store: KeyValueStore, user_id: uuid.UUID) -> int | None:
    """Unix ms before which the user's Supabase tokens are refused (claims changed, or sessions ended)."""
    values = await store.mget(_STALE_BEFORE.format(user_id), _SUPABASE_ENDED_BEFORE.format(user_id))
    marks = [int(value) for value in values if value is not None]
    return max(marks) if marks else None


async def login_ended(
    store: KeyValueStore, *, auth_session_id: str | None, user_id: str, since_ms: int
) -> bool:
    """Whether a login was signed out since `since_ms` (Unix ms): revoked session, or Supabase cut-off."""
    # A Supabase Auth login has no session of ours: "every session ended" is a per-user cut-off time.
    if auth_session_id:
        return await store.get(_REVOKED.format(auth_session_id)) is not None
    cutoff = await store.get(_SUPABASE_ENDED_BEFORE.format(user_id))
    return cutoff is not None and int(cutoff) > since_ms


def revocation_keys(claims: AccessClaims) -> tuple[str, str]:
    """The Redis keys check_not_revoked reads, for a hot path that fetches them with its own in one MGET."""
    return _REVOKED.format(claims.session_id), _STALE_BEFORE.format(claims.user_id)


async def check_not_revoked(claims: AccessClaims, *, store: KeyValueStore) -> None:
    """Refuse a revoked session, or claims older than a change of roles/status (one round trip)."""
    revoked, stale_before = await store.mget(*revocation_keys(claims))
    judge_revocation(claims, revoked=revoked, stale_before=stale_before)


def judge_revocation(claims: AccessClaims, *, revoked: str | None, stale_before: str | None) -> None:
    """Raise InvalidToken when the values read at revocation_keys(claims) refuse these claims."""
    if revoked is not None:
        raise InvalidToken("This session has been signed out; sign in again.")
    if stale_before is not None and claims.issued_at_ms < int(stale_before):
        raise InvalidToken("Your account changed since this token was issued; refresh it.")


async def verify_access_token(token: str, request: Request) -> Principal:
    """The registered authenticator: verify the JWT, then the revocation record."""
    settings = get_settings()
    claims = decode_access_token(token, settings=settings)
    if claims.issuer != decode_issuer(settings):
        from shared.accounts.external import principal_for_supabase

        return await principal_for_supabase(claims, settings=settings)
    if claims.session_id is None:
        raise InvalidToken()
    await check_not_revoked(claims, store=await get_redis())
    return principal_of(claims)


def principal_of(claims: AccessClaims) -> Principal:
    """The caller named by our own access token's claims (once verified and not revoked)."""
    return Principal(
        user_id=claims.user_id,
        roles=claims.roles,
        session_id=str(claims.session_id),
        profile_id=claims.profile_id,
        aal=claims.aal,
        email=claims.email,
    )


def decode_issuer(settings: Settings) -> str:
    """The issuer of our own tokens."""
    from shared.accounts.tokens import key_ring

    return key_ring(settings).issuer


register_authenticator(verify_access_token)
