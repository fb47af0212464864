"""HTTP routes of keys and licences: the HLS AES-128 key, the ClearKey licence and the DRM licence proxy.

No bearer token: players fetch keys and licences themselves (hls.js, dash.js, EME), so the delivery token
of the session with the live session and the entitlement behind it is the proof. The token comes in the
`X-Delivery-Token` header (the edge worker forwards key requests that way, keeping tokens out of access
logs) or, for players that can only set a URL, in `?token=`; the header wins when both are present.
"""

from __future__ import annotations

import contextlib
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Path, Query, Request, Response
from pydantic import ValidationError

from shared.errors import BadRequest, PayloadTooLarge
from shared.http.client_ip import ClientIp
from shared.http.openapi import errors
from shared.infra.db import Tx
from shared.licences import drm, service
from shared.licences.schemas import ClearKeyLicence, ClearKeyRequest
from shared.settings import get_settings

router = APIRouter(prefix="/api/v1/streaming", tags=["streaming"])


def _token(
    query: Annotated[
        str | None,
        Query(
            alias="token",
            description="The session's delivery token (the `/t/<token>/` segment of its media URLs)",
        ),
    ] = None,
    header: Annotated[
        str | None,
        Header(alias="X-Delivery-Token", description="The delivery token, instead of `?token=`"),
    ] = None,
) -> str | None:
    return header if header else query


Token = Annotated[str | None, Depends(_token)]
MAX_CLEARKEY_BYTES = 8 * 1024  # {"kids": [16 ids], "type": ...} is well under 1 KB
_REFUSALS = ["invalid_token", "token_expired", "session_ended", "wrong_asset", "not_entitled"]
_NOSNIFF = {"X-Content-Type-Options": "nosniff"}


def _responses(extra: dict[int, list[str]]) -> dict[int | str, dict[str, Any]]:
    merged: dict[int, list[str]] = {403: list(_REFUSALS), 429: ["rate_limited"], 503: ["service_unavailable"]}
    for status, codes in extra.items():
        merged.setdefault(status, []).extend(codes)
    return errors(merged)


async def _body(request: Request, *, limit: int, what: str) -> bytes:
    """The raw body, at most `limit` bytes (413 beyond), read as it streams in."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"The {what} is larger than {limit} bytes.", code=f"{what}_too_large")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise PayloadTooLarge(f"The {what} is larger than {limit} bytes.", code=f"{what}_too_large")
    return bytes(body)


@router.get(
    "/keys/{assetId}/hls.key",
    summary="The AES-128 key of an asset's HLS segments, for a live entitled session",
    response_class=Response,
    responses={
        200: {
            "description": "The 16-byte key (never cached)",
            "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
        },
        **_responses({404: ["asset_not_found"], 503: ["keys_unavailable"]}),
    },
)
async def hls_key(
    tx: Tx,
    client_ip: ClientIp,
    asset_id: Annotated[str, Path(alias="assetId")],
    token: Token,
) -> Response:
    """The key URI `../keys/hls.key` of the static media playlists resolves here (via /t/<token>/...)."""
    key = await service.hls_key(
        tx, token=token, asset_id=asset_id, client_ip=client_ip, settings=get_settings()
    )
    return Response(key, media_type="application/octet-stream", headers={**service.NO_STORE, **_NOSNIFF})


@router.post(
    "/licence/clearkey",
    summary="A W3C EME ClearKey licence (JWK set) for a live entitled session",
    response_model=ClearKeyLicence,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": ClearKeyRequest.model_json_schema()}},
        }
    },
    responses=_responses(
        {
            400: ["invalid_licence_request"],
            404: ["asset_not_found"],
            413: ["licence_request_too_large"],
            503: ["keys_unavailable"],
        }
    ),
)
async def clearkey_licence(
    request: Request, response: Response, tx: Tx, client_ip: ClientIp, token: Token
) -> ClearKeyLicence:
    """Only the session asset's KID is answered; other requested KIDs are left out (`keys` may be empty)."""
    raw = await _body(request, limit=MAX_CLEARKEY_BYTES, what="licence_request")
    try:
        # pydantic's own parser: bounded nesting (5,000 '[' is a validation error, where json.loads would
        # raise RecursionError), invalid UTF-8 and bad JSON are validation errors too.
        body = ClearKeyRequest.model_validate_json(raw)
    except (ValueError, RecursionError) as error:  # ValidationError is a ValueError
        detail = "; ".join(e["msg"] for e in error.errors()) if isinstance(error, ValidationError) else ""
        raise BadRequest(
            'Expected an EME ClearKey request: {"kids": [base64url of 16 bytes, ...], "type": "temporary"}'
            + (f" ({detail})." if detail else "."),
            code="invalid_licence_request",
        ) from None
    licence = await service.clearkey_licence(
        tx, token=token, request=body, client_ip=client_ip, settings=get_settings()
    )
    response.headers.update(service.NO_STORE)
    return licence


@router.post(
    "/licence/{system}",
    summary="Proxy a Widevine, PlayReady or FairPlay licence request to the configured licence server",
    response_class=Response,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
        }
    },
    responses={
        200: {
            "description": "The licence server's answer, as it sent it (never cached)",
            "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
        },
        **_responses(
            {
                400: ["empty_challenge", "invalid_challenge"],
                403: ["wrong_key"],
                404: ["unknown_drm_system", "asset_not_found"],
                413: ["challenge_too_large"],
                501: ["drm_not_configured"],
                502: ["licence_server_error"],
            }
        ),
    },
)
async def drm_licence(
    request: Request,
    client_ip: ClientIp,
    system: str,
    token: Token,
) -> Response:
    """The challenge is forwarded with the provider's credentials (DRM_AUTH_HEADER), never a client's.

    It also carries `X-Cinema-Entitlement`, a 60 s JWT naming the user, session, asset and the asset's KID,
    for the provider's policy to license that KID only (shared.licences.drm). PlayReady challenges naming
    another KID are refused here already (403 `wrong_key`). Allowed content types, both ways:
    application/octet-stream, text/xml, application/xml (anything else is sent as octet-stream).
    """
    from shared.infra.db import transaction

    settings = get_settings()
    name = drm.system_of(system)
    drm.licence_url(settings, name)  # 501 before any work when the system is not configured
    challenge = await _body(request, limit=drm.MAX_CHALLENGE_BYTES, what="challenge")
    if not challenge:
        raise BadRequest("The licence challenge is empty.", code="empty_challenge")
    # A transaction of its own, over before the licence server is called: a slow provider must not hold
    # a pooled connection (Tx would keep it until the response).
    async with contextlib.asynccontextmanager(transaction)() as conn:
        granted = await service.drm_grant(conn, token=token, client_ip=client_ip, settings=settings)
    if name == "playready":
        service.check_playready_kids(challenge, drm=granted, client_ip=client_ip)
    session = granted.grant.session
    entitlement = drm.entitlement_token(
        settings,
        user_id=session.user_id,
        session_id=session.id,
        asset_id=granted.grant.claims.asset_id,
        kid=granted.kid,
        now=granted.grant.now,
    )
    licence = await drm.forward(
        system=name,
        challenge=challenge,
        content_type=request.headers.get("content-type"),
        entitlement=entitlement,
        settings=settings,
    )
    return Response(licence.body, media_type=licence.content_type, headers={**service.NO_STORE, **_NOSNIFF})
