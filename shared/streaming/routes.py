"""HTTP routes of stream sessions (/api/v1/streaming/sessions...): start, heartbeat, list, end."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request, Response

from shared.catalog.viewer import CurrentViewer, edge_country
from shared.catalog.visibility import Viewer
from shared.http.auth import Principal, current_principal
from shared.http.openapi import BEARER_ERRORS, errors
from shared.infra.db import Tx
from shared.settings import get_settings
from shared.streaming import service, sessions
from shared.streaming.schemas import (
    ActiveSession,
    DeviceId,
    HeartbeatRequest,
    HeartbeatResponse,
    StartRequest,
    StartResponse,
)

router = APIRouter(prefix="/api/v1/streaming", tags=["streaming"])

Caller = Annotated[Principal, Depends(current_principal)]
SessionId = Annotated[uuid.UUID, Path(alias="sessionId", description="The stream session's id")]
PRIVATE = "private, no-store"

_UNAVAILABLE = ["redis_unavailable", "service_unavailable", "database_timeout"]


async def playback_viewer(request: Request, viewer: CurrentViewer) -> Viewer:
    """The catalog's viewer with the country playback trusts: the edge's header only, never a default.

    Browsing may assume DEFAULT_COUNTRY; playback may not (a licence follows where the viewer really is):
    without a trusted country header the country is unknown and UNKNOWN_COUNTRY_POLICY decides.
    """
    return replace(viewer, country=edge_country(request, get_settings()))


async def start_guard() -> AsyncIterator[service.StartGuard]:
    """Frees a start's stream slot when the request fails, the transaction's COMMIT included.

    Declared BEFORE the transaction in the endpoint's parameters, so it is torn down after it and sees an
    error of the commit itself (the Tx dependency has no on-rollback hook; a slot is Redis state).
    """
    guard = service.StartGuard()
    try:
        yield guard
    except BaseException:
        await guard.release()
        raise


PlaybackViewer = Annotated[Viewer, Depends(playback_viewer)]
Guard = Annotated[service.StartGuard, Depends(start_guard, scope="function")]


def _caller(principal: Principal) -> service.Caller:
    return service.Caller(
        user_id=principal.user_id, profile_id=principal.profile_id, auth_session_id=principal.session_id
    )


@router.post(
    "/sessions",
    status_code=201,
    response_model=StartResponse,
    summary="Start playback of a movie or an episode",
    responses=errors(
        {
            400: ["profile_required"],
            401: BEARER_ERRORS,
            403: ["not_available", "geo_blocked", "maturity_restricted", "not_entitled", "rental_expired"],
            404: ["content_not_found"],
            409: ["stream_limit_reached", "not_playable_yet", "conflict"],
            422: ["validation_failed"],
            429: ["rate_limited"],
            503: ["stream_limit_unavailable", *_UNAVAILABLE],
        }
    ),
)
async def start_session(
    body: StartRequest, guard: Guard, tx: Tx, caller: Caller, viewer: PlaybackViewer, response: Response
) -> StartResponse:
    """For the active profile (the access token must carry one) on a device.

    Checks, in order: visible and in its window (`content_not_found` 404, `not_available`), the
    viewer's country (`geo_blocked`), the profile's maturity (`maturity_restricted`), the entitlement
    (`not_entitled` or `rental_expired`, with `offers`: subscribe / upgrade / rent / buy), the plan's
    concurrent streams (`stream_limit_reached` 409, with `active_sessions` to end one), a playable asset
    (`not_playable_yet` 409); these last three carry the content's `title_id`. Keep it alive with a
    heartbeat every `heartbeat_seconds`; each returns a fresh delivery token.
    A new start from the same `device_id` replaces that device's stream. The country is the edge's
    (trusted proxy header); when unknown, UNKNOWN_COUNTRY_POLICY applies. At most 30 starts a minute per
    account (`rate_limited`, 429 with Retry-After).
    """
    response.headers["Cache-Control"] = PRIVATE
    return await service.start_session(
        tx,
        caller=_caller(caller),
        viewer=viewer,
        data=body,
        settings=get_settings(),
        now=sessions.clock(),
        guard=guard,
    )


@router.get(
    "/sessions",
    response_model=list[ActiveSession],
    summary="The account's active streams (devices)",
    responses=errors({401: BEARER_ERRORS, 503: ["redis_unavailable"]}),
)
async def list_sessions(caller: Caller, response: Response) -> list[ActiveSession]:
    """Oldest first, with device names: end one (DELETE) to free a slot at the stream limit.

    What plays (content, title, episode) is shown for the active profile's own streams only.
    """
    response.headers["Cache-Control"] = PRIVATE
    return await service.list_sessions(caller=_caller(caller), now=sessions.clock())


@router.post(
    "/sessions/{sessionId}/heartbeat",
    response_model=HeartbeatResponse,
    summary="Keep a stream session alive (and report playback quality)",
    responses=errors(
        {
            401: BEARER_ERRORS,
            403: ["not_entitled", "rental_expired"],
            404: ["session_ended", "session_not_found"],
            422: ["validation_failed"],
            503: _UNAVAILABLE,
        }
    ),
)
async def heartbeat(
    session_id: SessionId, caller: Caller, response: Response, body: HeartbeatRequest | None = None
) -> HeartbeatResponse:
    """Renews the slot for STREAM_HEARTBEAT_TTL_SECONDS; `session_ended` means start again.

    Only the profile and login that started the stream may beat it (else `session_not_found`). The
    entitlement is checked again: when it is gone the stream ends (`not_entitled` / `rental_expired`).
    The answer carries a fresh delivery token: swap it into the `/t/<token>/` segment of the media URLs;
    neither the session nor the token lasts past the entitlement's end.
    """
    response.headers["Cache-Control"] = PRIVATE
    return await service.heartbeat(
        caller=_caller(caller),
        session_id=session_id,
        data=body or HeartbeatRequest(),
        settings=get_settings(),
        now=sessions.clock(),
    )


@router.delete(
    "/sessions/{sessionId}",
    status_code=204,
    summary="End a stream session (this device's, or another device's of the account)",
    responses=errors(
        {401: BEARER_ERRORS, 404: ["session_not_found"], 422: ["validation_failed"], 503: _UNAVAILABLE}
    ),
)
async def end_session(
    session_id: SessionId,
    tx: Tx,
    caller: Caller,
    device_id: Annotated[
        DeviceId | None, Query(description="The calling device: another device's stream ends as evicted")
    ] = None,
) -> Response:
    """Frees the slot at once; the stream's keys and tokens stop working. Ending an ended one is a no-op."""
    await service.stop_session(
        tx, user_id=caller.user_id, session_id=session_id, device_id=device_id, now=sessions.clock()
    )
    return Response(status_code=204)
