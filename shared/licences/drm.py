"""The DRM licence proxy: forward a CDM's challenge to the configured Widevine / PlayReady / FairPlay server.

Licence providers authenticate their customer (us) with an API key in a header (DRM_AUTH_HEADER:
DRM_AUTH_VALUE); the key must never reach a browser, so players post their challenge here and we add it.
The challenge and the licence are opaque bytes, bounded both ways (size, time). Content types are
allowlisted both ways (application/octet-stream for Widevine/FairPlay, text/xml or application/xml for
PlayReady); anything else travels as application/octet-stream, so neither side can make the other (or a
browser on our origin) interpret the bytes as something else (HTML, say).

Binding the licence to the asset. The provider's API key alone would let ANY live session's token buy
licences for whatever KIDs its challenge names (any asset's keys). So every forwarded challenge also
carries an entitlement: `X-Cinema-Entitlement`, a JWT (HS256, 60 s) signed with
derived_key(settings, "drm-entitlement"), claims `sub` (user id), `sid` (stream session), `aid` (asset
id), `kid` (the asset's KID, 32 hex digits, as in media_keys / media_assets.drm.key_id), `iat`, `exp`.
The provider's licence policy verifies it and issues keys for that KID only. Every major DRM service
offers this hook under its own name: an entitlement / licence token (Axinom "X-AxDRM-Message", an HS256
JWT much like this one; PallyCon "pallycon-customdata-v2"; castLabs DRMtoday upfront token or
"x-dt-custom-data"; BuyDRM / EZDRM "custom data"), which the provider checks against the key ids of the
challenge; a deployment maps this token onto its provider's format (header name and claims) and gives the
provider the derived secret (`shared.licences.drm.entitlement_secret(get_settings()).hex()`).
PlayReady challenges are XML with the KIDs in the clear, so for PlayReady the proxy also reads them and
refuses any other KID itself (shared.licences.playready); Widevine's (a signed protobuf) and FairPlay's
(an SPC encrypted to the provider) are left to the provider's policy.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from shared.errors import AppError, NotFound

if TYPE_CHECKING:
    from shared.settings import Settings

logger = logging.getLogger("cinema.licences")

System = Literal["widevine", "playready", "fairplay"]
SYSTEMS: tuple[System, ...] = ("widevine", "playready", "fairplay")
MAX_CHALLENGE_BYTES = 64 * 1024  # real challenges are a few KB (a PlayReady SOAP body is the largest)
MAX_LICENCE_BYTES = 1024 * 1024  # real licences are a few KB; anything near this is not a licence
CONNECT_SECONDS = 3.0
TOTAL_SECONDS = 10.0  # a player gives up on a licence after ~10-30 s; answer before it does
_DEFAULT_TYPE = "application/octet-stream"
CONTENT_TYPES = frozenset({"application/octet-stream", "text/xml", "application/xml"})
_CHARSET = re.compile(r"[A-Za-z0-9_.:-]{1,40}")
ENTITLEMENT_HEADER = "X-Cinema-Entitlement"
ENTITLEMENT_PURPOSE = "drm-entitlement"
ENTITLEMENT_SECONDS = 60  # minted per licence request and checked by the provider at once: short


class DrmNotConfigured(AppError):
    """501: this deployment has no licence server for the system."""

    status = 501
    code = "drm_not_configured"
    title = "Not implemented"


class LicenceServerError(AppError):
    """502: the licence server failed, refused us, timed out or answered nonsense."""

    status = 502
    code = "licence_server_error"
    title = "Bad gateway"


@dataclass(frozen=True)
class Licence:
    """The licence server's answer, passed to the player as is."""

    body: bytes
    content_type: str


def system_of(name: str) -> System:
    """The DRM system named in the path; 404 for anything else."""
    for system in SYSTEMS:
        if name == system:
            return system
    raise NotFound(
        f"Unknown DRM system {name[:32]!r}; one of {', '.join(SYSTEMS)}.", code="unknown_drm_system"
    )


def licence_url(settings: Settings, system: System) -> str:
    """DRM_<SYSTEM>_URL; DrmNotConfigured when it is unset."""
    url = {
        "widevine": settings.drm_widevine_url,
        "playready": settings.drm_playready_url,
        "fairplay": settings.drm_fairplay_url,
    }[system]
    if url is None:
        raise DrmNotConfigured(
            f"{system.capitalize()} licences are not configured on this server (DRM_{system.upper()}_URL)."
        )
    return str(url)


def allowed_type(header: str | None) -> str:
    """The allowlisted form of a Content-Type: the media type (and a plain charset), else octet-stream."""
    if not header:
        return _DEFAULT_TYPE
    media_type, _, params = header.partition(";")
    media_type = media_type.strip().lower()
    if media_type not in CONTENT_TYPES:
        return _DEFAULT_TYPE
    for param in params.split(";"):
        name, _, value = param.partition("=")
        value = value.strip().strip('"')
        if name.strip().lower() == "charset" and _CHARSET.fullmatch(value):
            return f"{media_type}; charset={value}"
    return media_type


_secret: tuple[object, bytes] | None = None


def entitlement_secret(settings: Settings) -> bytes:
    """The entitlement token's HS256 key: DRM_ENTITLEMENT_SECRET, else derived (the provider holds it too)."""
    global _secret
    if _secret is not None and _secret[0] is settings:
        return _secret[1]
    from shared.settings import derived_key

    configured = settings.drm_entitlement_secret
    secret = configured.encode() if configured else derived_key(settings, ENTITLEMENT_PURPOSE)
    _secret = (settings, secret)
    return secret


def entitlement_token(
    settings: Settings, *, user_id: str, session_id: str, asset_id: str, kid: bytes, now: int
) -> str:
    """The short-lived JWT telling the provider which KID this licence may carry (module docstring)."""
    import jwt

    claims = {
        "sub": str(user_id),
        "sid": str(session_id),
        "aid": str(asset_id),
        "kid": kid.hex(),
        "iat": now,
        "exp": now + ENTITLEMENT_SECONDS,
    }
    return jwt.encode(claims, entitlement_secret(settings), algorithm="HS256")


def _failed(system: System, reason: str, **context: object) -> LicenceServerError:
    logger.error("licence server failed: %s", reason, extra={"drm_system": system, **context})
    return LicenceServerError(f"The {system} licence server did not answer with a licence; try again.")


async def forward(
    *, system: System, challenge: bytes, content_type: str | None, entitlement: str, settings: Settings
) -> Licence:
    """POST the challenge to the system's licence server with our credentials and the entitlement token.

    Its licence, or 502.
    """
    import asyncio

    import httpx

    url = licence_url(settings, system)
    headers = {
        "content-type": allowed_type(content_type),
        "accept": "*/*",
        ENTITLEMENT_HEADER: entitlement,
    }
    if settings.drm_auth_value:
        headers[settings.drm_auth_header] = settings.drm_auth_value
    # httpx bounds each phase (connect, every read); asyncio.timeout bounds the whole exchange, so a
    # server trickling bytes cannot hold the request open.
    timeout = httpx.Timeout(TOTAL_SECONDS, connect=CONNECT_SECONDS)
    try:
        # A client per call: licence requests are rare (one per playback start) and serverless instances
        # freeze between requests, which breaks pooled keep-alive connections anyway.
        async with (
            asyncio.timeout(TOTAL_SECONDS),
            httpx.AsyncClient(timeout=timeout, follow_redirects=False) as client,
            client.stream("POST", url, content=challenge, headers=headers) as response,
        ):
            if response.status_code != 200:
                raise _failed(system, "status", upstream_status=response.status_code)
            body = bytearray()
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > MAX_LICENCE_BYTES:
                    raise _failed(system, "too_large")
            if not body:
                raise _failed(system, "empty")
            return Licence(bytes(body), allowed_type(response.headers.get("content-type")))
    except (httpx.TimeoutException, TimeoutError):
        raise _failed(system, "timeout") from None
    except httpx.HTTPError as error:
        raise _failed(system, "unreachable", error=type(error).__name__) from None
