"""The manifest request's caller and stream session, read together in ONE Redis round trip.

The regular bearer check (shared.accounts.authn) costs one MGET of the login session's revocation records
and get_live_session one GET of the stream's blob: two round trips for the hottest playback request.
Here the access token's signature is verified first (no I/O), then one MGET fetches both revocation
records and the session blob, and authn's own judge_revocation judges the records it asked for, so the
revocation rules stay authn's. Supabase Auth tokens (another issuer, other records) take the regular path.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import Request

from shared.errors import Unauthenticated
from shared.http.auth import Principal, bearer_token

if TYPE_CHECKING:
    from shared.streaming.sessions import StreamSession


async def caller_and_session(request: Request, session_id: str) -> tuple[Principal, StreamSession | None]:
    """The verified caller and the stream session as stored (None when gone; it may be past expires_at).

    Expired-but-stored sessions are returned so the caller can judge ownership first: a stranger must get
    the same answer for a live and for an ended session of someone else.
    """
    from shared.accounts import authn
    from shared.accounts.tokens import InvalidToken, decode_access_token
    from shared.infra.redis import get_redis
    from shared.settings import get_settings
    from shared.streaming import sessions

    token = bearer_token(request)
    if token is None:
        raise Unauthenticated("Sign in and send the access token as 'Authorization: Bearer <token>'.")
    settings = get_settings()
    claims = decode_access_token(token, settings=settings)
    if claims.issuer != authn.decode_issuer(settings):
        principal = await authn.verify_access_token(token, request)  # Supabase Auth: its own records
        return principal, await sessions.get_live_session(session_id, now=float("-inf"))
    if claims.session_id is None:
        raise InvalidToken()
    # authn's revocation records and the stream session in one round trip; authn judges its records.
    session_key = sessions.SESSION_KEY.format(session_id)
    revoked, stale_before, blob = await (await get_redis()).mget(*authn.revocation_keys(claims), session_key)
    authn.judge_revocation(claims, revoked=revoked, stale_before=stale_before)
    return authn.principal_of(claims), None if blob is None else sessions.StreamSession.from_json(blob)
