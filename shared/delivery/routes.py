"""HTTP route of signed delivery: the per-session master manifest (mounted by api/streaming.py)."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Annotated, Literal

from fastapi import APIRouter, Path, Query, Request, Response

from shared.delivery import manifests
from shared.delivery.caller import caller_and_session
from shared.delivery.tokens import same_id, session_token
from shared.errors import Conflict, NotFound, ServiceUnavailable
from shared.http.openapi import BEARER_ERRORS, errors
from shared.settings import get_settings

if TYPE_CHECKING:
    from shared.http.auth import Principal
    from shared.streaming.sessions import StreamSession

router = APIRouter(prefix="/api/v1/streaming", tags=["streaming"])

NO_STORE = "private, no-store"  # per session, signed with a token that is the session's to keep


@router.get(
    "/{contentId}/manifest",
    summary="The master manifest (HLS or DASH) of a playback session, capped and with signed URLs",
    response_class=Response,
    responses={
        200: {
            "description": "The HLS master playlist or the DASH MPD (never cached)",
            "content": {
                "application/vnd.apple.mpegurl": {"schema": {"type": "string"}},
                "application/dash+xml": {"schema": {"type": "string"}},
            },
        },
        **errors(
            {
                401: BEARER_ERRORS,
                404: ["session_ended", "session_not_found", "manifest_not_found"],
                409: ["session_content_mismatch"],
                422: ["validation_failed"],
                503: ["redis_unavailable", "service_unavailable"],
            }
        ),
    },
)
async def session_manifest(
    content_id: Annotated[uuid.UUID, Path(alias="contentId", description="The movie's or episode's id")],
    session: Annotated[uuid.UUID, Query(description="The playback session's id (from POST /sessions)")],
    request: Request,
    kind: Annotated[
        Literal["hls", "dash"], Query(alias="format", description="hls (default) or dash")
    ] = "hls",
) -> Response:
    """Renditions above the session's maximum height are left out; every URL carries the delivery token.

    Media playlists and segments are fetched from MEDIA_BASE_URL under `/t/<token>/`; the token expires
    after STREAM_TOKEN_TTL_SECONDS (the heartbeat hands out a fresh one). DASH: the ClearKey licence URL
    (and Widevine / PlayReady ones when configured) carries the same token. `session_not_found`: no
    session of this viewer profile by that id (another account's or profile's answers the same, live or
    ended); `session_ended`: the viewer's own session stopped or missed its heartbeats.
    """
    from shared.infra.storage import get_storage
    from shared.streaming.sessions import clock

    caller, stored = await caller_and_session(request, str(session))
    now = clock()
    if stored is None:
        raise await _gone(caller, session)
    if not _owns(caller, stored):
        raise _not_found()
    # The same code as the heartbeat (shared.streaming): the player starts again.
    if stored.expires_at <= now:
        raise _ended()
    if not same_id(stored.content_id, content_id):
        raise Conflict("This playback session plays another content.", code="session_content_mismatch")
    settings = get_settings()
    token, _ = session_token(settings, session=stored, now=int(now))
    context = manifests.context_for(
        settings, asset_id=str(stored.asset_id), max_height=int(stored.max_height)
    )
    try:
        text = await manifests.session_manifest(await get_storage(), kind=kind, context=context, token=token)
    except manifests.ManifestMissing:
        raise NotFound("This content has no published manifest yet.", code="manifest_not_found") from None
    return Response(
        text,
        media_type=manifests.CONTENT_TYPES[kind],
        headers={"Cache-Control": NO_STORE, "Vary": "Authorization"},
    )


def _owns(caller: Principal, session: StreamSession) -> bool:
    """The caller's account AND viewer profile started the session (a kids profile reads only its own)."""
    if not same_id(session.user_id, caller.user_id):
        return False
    if session.profile_id is None or caller.profile_id is None:
        return session.profile_id is None and caller.profile_id is None
    return same_id(session.profile_id, caller.profile_id)


def _not_found() -> NotFound:
    return NotFound("No such stream session.", code="session_not_found")


def _ended() -> NotFound:
    return NotFound("This stream session has ended; start playback again.", code="session_ended")


async def _gone(caller: Principal, session_id: uuid.UUID) -> NotFound:
    """No live state left: `session_ended` for the caller's own recorded session, else `session_not_found`.

    Only here, off the hot path, one Postgres read: answering `session_ended` to anyone would tell a
    stranger which ids were sessions (live ones answer `session_not_found` to them).
    """
    from psycopg import Error as DatabaseError

    from shared.infra.db import get_pool
    from shared.streaming import repository

    try:
        async with (await get_pool()).connection() as conn:
            owner = await repository.session_owner(conn, session_id=session_id)
    except DatabaseError as error:
        raise ServiceUnavailable("The session could not be looked up; try again.") from error
    return _ended() if owner is not None and same_id(owner["user_id"], caller.user_id) else _not_found()
