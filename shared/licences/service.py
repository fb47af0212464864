"""Keys and licences, handed only to a live stream session that is still entitled to the asset.

Every request carries the session's delivery token (shared.delivery.tokens), the proof that the player
belongs to a started session. Before any key leaves, in this order (each refusal a 403 with its code):
1. the token is authentic (`invalid_token`), unexpired (`token_expired`) and opens this asset
   (`wrong_asset`);
2. the session's rate limit has room (429);
3. the stream session is still live in Redis: not stopped, not expired by missed heartbeats
   (`session_ended`), and on the asset the token names (`wrong_asset`); for DRM licences (billed per
   licence by the provider) the user's own limit, over all their sessions, must have room too (429);
4. the viewer is still signed in: the login session the stream was started from has not been signed out
   or revoked (`session_ended`);
5. the entitlement still holds (`not_entitled`): shared.entitlements' decision, cached for at most
   ENTITLEMENT_CACHE_SECONDS and invalidated at once by commerce.
Only then are the asset's keys unwrapped (shared.transcoding.keys). Nothing is audited per key fetch (a
player fetches keys on every start, rendition and token change); refusals are logged.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

from shared.errors import Forbidden, NotFound, ServiceUnavailable
from shared.infra.ratelimit import HOUR, MINUTE, Limit, enforce
from shared.licences.schemas import ClearKeyJwk, ClearKeyLicence, ClearKeyRequest, b64url

if TYPE_CHECKING:
    from psycopg import AsyncConnection

    from shared.delivery.tokens import TokenClaims
    from shared.settings import Settings
    from shared.streaming.sessions import StreamSession

logger = logging.getLogger("cinema.licences")

# Keys and licences must never sit in a browser, proxy or CDN cache: they are per session, and the next
# request may be refused.
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}

Kind = Literal["hls_key", "clearkey", "drm"]

# Per session: a player fetches the HLS key once per playlist it loads (again after each heartbeat swaps
# the token in the path) and a DASH player one licence per start, so a few a minute; 60 leaves room for
# seeking and quality switches. DRM licences are billed per licence by the provider: fewer.
# Not per address: key requests through the CDN arrive from its few egress addresses, and one bucket per
# address would throttle every viewer behind them. The budget is only reachable with an authentic token of
# the session, and stream limits bound a user's sessions.
SESSION_LIMITS: dict[Kind, Limit] = {
    "hls_key": Limit(60, MINUTE),
    "clearkey": Limit(60, MINUTE),
    "drm": Limit(10, MINUTE),
}
# Per user, over all their sessions: a user may start sessions one after the other (each with a fresh
# budget above), so the paid licences are capped per account too. 20 a minute covers every stream of the
# largest plan starting and renewing at once; 300 an hour is a day of heavy, normal viewing per hour.
USER_LIMITS: dict[Kind, tuple[Limit, ...]] = {"drm": (Limit(20, MINUTE), Limit(300, HOUR))}


class KeyRefused(Forbidden):
    """A 403 from a key or licence endpoint: never cached either."""

    def __init__(self, detail: str, *, code: str) -> None:
        super().__init__(detail, code=code, headers=dict(NO_STORE))


@dataclass(frozen=True)
class Grant:
    """A request that passed every check: the live session it belongs to."""

    session: StreamSession
    claims: TokenClaims
    now: int  # when it was checked (the playback clock), for anything minted from the grant


@dataclass(frozen=True)
class DrmGrant:
    """A DRM licence request that passed every check, and the one KID its licence may carry."""

    grant: Grant
    kid: bytes  # the asset's CENC key id (big-endian, 16 bytes)


def _refuse(code: str, detail: str, *, kind: Kind, client_ip: str, **context: Any) -> KeyRefused:
    """Log a refusal (who, what, why; never the token) and build its error."""
    logger.warning(
        "%s refused: %s", kind, code, extra={"code": code, "kind": kind, "client_ip": client_ip, **context}
    )
    return KeyRefused(detail, code=code)


def _claims(
    token: str | None, *, asset_id: str | None, kind: Kind, client_ip: str, settings: Settings, now: int
) -> TokenClaims:
    """Verify the token: for a path under the asset when the request names one, else for its own asset."""
    from shared.delivery.tokens import PROBLEM_CODES, TokenError, delivery_secret, verify, verify_claims

    secret = delivery_secret(settings)
    try:
        if not token:
            raise TokenError("malformed", "A delivery token is required.")
        if asset_id is not None:
            return verify(token, f"media/assets/{asset_id}/hls/keys/hls.key", secret=secret, now=now)
        return verify_claims(token, secret=secret, now=now)
    except TokenError as error:
        raise _refuse(
            PROBLEM_CODES[error.reason], error.detail, kind=kind, client_ip=client_ip, reason=error.reason
        ) from None


async def signed_out(session: StreamSession) -> bool:
    """Whether the login behind the stream was signed out (logout, revoked session, every session ended)."""
    from shared.accounts import authn
    from shared.infra.redis import get_redis

    store = await get_redis()
    # The stream carries the login session it was started from: its revocation record (written by
    # logout, "sign out this device", refresh-token reuse, end_all_sessions) outlives any access token,
    # and a stream cannot outlive its last heartbeat, which needs a live access token.
    return await authn.login_ended(
        store,
        auth_session_id=session.auth_session_id,
        user_id=str(session.user_id),
        since_ms=int(session.started_at * 1000),
    )


async def _entitled(
    conn: AsyncConnection[Any], *, session: StreamSession, settings: Settings, at: float
) -> str | None:
    """None when the user may still play the session's title, else the entitlement service's reason."""
    from shared.entitlements.service import decide
    from shared.licences import repository

    title = await repository.title_access(conn, title_id=session.title_id)
    if title is None:  # deleted since the session started
        return "not_available"
    decision = await decide(
        conn, user_id=session.user_id, title=title, at=datetime.fromtimestamp(at, UTC), settings=settings
    )
    return None if decision.allowed else decision.code or "not_entitled"


async def authorise(
    conn: AsyncConnection[Any],
    *,
    token: str | None,
    kind: Kind,
    client_ip: str,
    settings: Settings,
    asset_id: str | None = None,
) -> Grant:
    """Run checks 1-5 of the module docstring; the grant, or KeyRefused (403) / RateLimited (429)."""
    from shared.delivery.tokens import same_id
    from shared.streaming.sessions import clock, get_live_session

    at = clock()  # the entitlement check keeps the fraction: a grant made this very second already holds
    now = int(at)
    claims = _claims(token, asset_id=asset_id, kind=kind, client_ip=client_ip, settings=settings, now=now)
    context = {"session_id": claims.session_id, "asset_id": claims.asset_id}
    # After the token: a session's budget can only be spent by a holder of its token.
    await enforce(rules=[SESSION_LIMITS[kind].rule(f"licence:{kind}:{claims.session_id}")])
    session = await get_live_session(claims.session_id, now=at)
    if session is None:
        raise _refuse(
            "session_ended",
            "This playback session has ended; start playback again.",
            kind=kind,
            client_ip=client_ip,
            **context,
        )
    if not same_id(session.asset_id, claims.asset_id):
        raise _refuse(
            "wrong_asset",
            "This playback session does not play this asset.",
            kind=kind,
            client_ip=client_ip,
            **context,
        )
    context["user_id"] = str(session.user_id)
    user_limits = USER_LIMITS.get(kind, ())
    if user_limits:
        key = f"licence:{kind}:user:{session.user_id}"
        await enforce(rules=[limit.rule(f"{key}:{limit.window_seconds}") for limit in user_limits])
    if await signed_out(session):
        raise _refuse(
            "session_ended",
            "You were signed out; sign in and start playback again.",
            kind=kind,
            client_ip=client_ip,
            reason="signed_out",
            **context,
        )
    reason = await _entitled(conn, session=session, settings=settings, at=at)
    if reason is not None:
        raise _refuse(
            "not_entitled",
            "You are no longer entitled to watch this title.",
            kind=kind,
            client_ip=client_ip,
            reason=reason,
            **context,
        )
    return Grant(session=session, claims=claims, now=now)


async def drm_grant(
    conn: AsyncConnection[Any], *, token: str | None, client_ip: str, settings: Settings
) -> DrmGrant:
    """authorise() for a DRM licence, and the asset's KID (no key material: the provider holds the keys)."""
    from shared.licences import repository

    grant = await authorise(conn, token=token, kind="drm", client_ip=client_ip, settings=settings)
    kid = await repository.key_id(conn, asset_id=grant.claims.asset_id)
    if kid is None:
        raise NotFound("This asset does not exist or has no keys.", code="asset_not_found")
    return DrmGrant(grant=grant, kid=kid)


def check_playready_kids(challenge: bytes, *, drm: DrmGrant, client_ip: str) -> None:
    """Refuse a PlayReady challenge naming any KID but the asset's (403 wrong_key), or unreadable (400)."""
    from shared.errors import BadRequest
    from shared.licences.playready import InvalidChallenge, challenge_kids

    context = {"session_id": drm.grant.claims.session_id, "asset_id": drm.grant.claims.asset_id}
    try:
        kids = challenge_kids(challenge)
    except InvalidChallenge as error:
        logger.warning("playready challenge unreadable: %s", error, extra={"client_ip": client_ip, **context})
        raise BadRequest(
            "The PlayReady challenge is not a licence acquisition challenge.", code="invalid_challenge"
        ) from None
    if any(kid != drm.kid for kid in kids):
        raise _refuse(
            "wrong_key",
            "This playback session may only license its own asset's key.",
            kind="drm",
            client_ip=client_ip,
            **context,
        )


async def _asset_keys(conn: AsyncConnection[Any], *, asset_id: str, settings: Settings) -> Any:
    """The asset's ContentKeys; 404 when it has none, 503 when this deployment cannot unwrap them."""
    from shared.transcoding.keys import KeysMissing, asset_keys
    from shared.transcoding.pipeline.model import PipelineError

    try:
        return await asset_keys(conn, asset_id=uuid.UUID(asset_id), settings=settings)
    except KeysMissing:
        raise NotFound("This asset does not exist or has no keys.", code="asset_not_found") from None
    except PipelineError as error:
        logger.error("asset keys unavailable: %s", error, extra={"asset_id": asset_id})
        raise ServiceUnavailable(
            "The keys of this asset are unavailable; try again later.", code="keys_unavailable"
        ) from None


async def hls_key(
    conn: AsyncConnection[Any], *, token: str | None, asset_id: str, client_ip: str, settings: Settings
) -> bytes:
    """The asset's 16-byte AES-128 HLS key for a live, entitled session holding a token for it."""
    try:
        asset = str(uuid.UUID(asset_id))
    except ValueError:
        raise NotFound("No such asset.", code="asset_not_found") from None
    grant = await authorise(
        conn, token=token, kind="hls_key", client_ip=client_ip, settings=settings, asset_id=asset
    )
    keys = await _asset_keys(conn, asset_id=grant.claims.asset_id, settings=settings)
    return bytes(keys.hls_key)


async def clearkey_licence(
    conn: AsyncConnection[Any],
    *,
    token: str | None,
    request: ClearKeyRequest,
    client_ip: str,
    settings: Settings,
) -> ClearKeyLicence:
    """An EME ClearKey licence with the session's asset key, for the requested KIDs that are that key.

    Requested KIDs that are not the asset's key are left out (an empty `keys` when none is): a CDM then
    reports the key missing, and nothing says whether the KID exists elsewhere.
    """
    grant = await authorise(conn, token=token, kind="clearkey", client_ip=client_ip, settings=settings)
    keys = await _asset_keys(conn, asset_id=grant.claims.asset_id, settings=settings)
    granted = [
        ClearKeyJwk(kid=b64url(kid), k=b64url(bytes(keys.cenc_key)))
        for kid in dict.fromkeys(request.key_ids())  # a repeated KID is answered once
        if kid == bytes(keys.key_id)
    ]
    if not granted:
        logger.warning(
            "clearkey asked for unknown key ids",
            extra={"session_id": grant.claims.session_id, "asset_id": grant.claims.asset_id},
        )
    return ClearKeyLicence(keys=granted)
