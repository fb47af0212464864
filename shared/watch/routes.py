"""HTTP routes of watching (/api/v1/streaming): positions, continue watching, history, next episode."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Response

from shared.catalog.viewer import CurrentViewer
from shared.http.auth import Principal, current_principal
from shared.http.openapi import BEARER_ERRORS, errors
from shared.http.pagination import Page, PageParams, page_params
from shared.infra.db import Tx
from shared.watch import service
from shared.watch.schemas import (
    ContinueWatching,
    HistoryItem,
    NextEpisode,
    PositionInput,
    PositionRead,
)

router = APIRouter(prefix="/api/v1/streaming", tags=["streaming"])

Caller = Annotated[Principal, Depends(current_principal)]
Paging = Annotated[PageParams, Depends(page_params)]
SessionId = Annotated[uuid.UUID, Path(alias="sessionId", description="The stream session's id")]
ContentId = Annotated[
    uuid.UUID, Path(alias="contentId", description="A movie's or series' title id, or an episode id")
]

_AUTH = {401: BEARER_ERRORS, 503: ["service_unavailable", "database_timeout"]}
_PROFILE = {**_AUTH, 400: ["profile_required"], 422: ["validation_failed"]}
PRIVATE = "private, no-store"


@router.put(
    "/sessions/{sessionId}/position",
    response_model=PositionRead,
    summary="Save the playback position of a session",
    responses=errors(
        {
            401: BEARER_ERRORS,
            400: ["profile_required"],
            404: ["session_not_found"],
            422: ["validation_failed"],
            503: ["redis_unavailable"],
        }
    ),
)
async def save_position(
    session_id: SessionId, body: PositionInput, caller: Caller, response: Response
) -> PositionRead:
    """Idempotent and monotonic per write sequence.

    A write with an older `sequence` (or of a session started before the one that last wrote this item)
    changes nothing and answers the stored position with `applied: false`; the same sequence again is the
    same write. Cheap enough for every 10 s: one Redis call, and Postgres only
    once per POSITION_FLUSH_SECONDS. The session must be live and started by the caller's account AND
    profile (else 404 `session_not_found`, whether someone else's session is live, ended or unknown).
    """
    from shared.streaming.sessions import get_live_session

    session = await get_live_session(str(session_id))
    # The position belongs to the profile that plays: another profile of the same account (a child's, say)
    # must not move it. Someone else's session, live or ended, and a missing one look the same.
    if session is None or not service.owns(session, user_id=caller.user_id, profile_id=caller.profile_id):
        raise service.SessionNotFound("No live stream session with this id.")
    response.headers["cache-control"] = PRIVATE
    return await service.save_position(session=session, position=body)


@router.get(
    "/continue-watching",
    response_model=ContinueWatching,
    summary="The active profile's titles to resume",
    responses=errors(_PROFILE),
)
async def continue_watching(
    tx: Tx,
    caller: Caller,
    viewer: CurrentViewer,
    response: Response,
    limit: Annotated[int, Query(ge=1, le=50, description="How many titles")] = service.ROW_SIZE,
) -> ContinueWatching:
    """Most recently watched first, one entry per title, with progress in percent.

    Finished items drop out; for a series the entry is the episode in progress, or the next one after a
    finished episode (with `next_episode` the one after it). Only titles the profile may still see.
    """
    response.headers["cache-control"] = PRIVATE
    return ContinueWatching(items=await service.continue_watching(tx, viewer=viewer, limit=limit))


@router.get(
    "/history",
    response_model=Page[HistoryItem],
    summary="The active profile's watch history",
    responses=errors({**_PROFILE, 400: ["profile_required", "invalid_cursor"]}),
)
async def history(
    tx: Tx, caller: Caller, viewer: CurrentViewer, page: Paging, response: Response
) -> Page[HistoryItem]:
    """Every movie and episode played, finished or not, most recent first; pass next_cursor as `cursor`."""
    response.headers["cache-control"] = PRIVATE
    return await service.history(tx, viewer=viewer, page=page)


@router.delete(
    "/history/{contentId}",
    status_code=204,
    summary="Remove an item from the watch history",
    responses=errors(_PROFILE),
)
async def remove_from_history(
    content_id: ContentId, tx: Tx, caller: Caller, viewer: CurrentViewer
) -> Response:
    """Hides a movie or episode (a series id: all its episodes) from history and continue watching.

    It also forgets the resume position. Idempotent; watching it again brings it back.
    """
    await service.remove_from_history(tx, viewer=viewer, content_id=content_id)
    return Response(status_code=204)


@router.get(
    "/{contentId}/next",
    response_model=NextEpisode,
    summary="The next episode to play",
    responses={
        204: {"description": "Nothing follows (a movie, or the last episode)"},
        **errors({**_AUTH, 404: ["content_not_found"], 422: ["validation_failed"]}),
    },
)
async def next_episode(content_id: ContentId, tx: Tx, caller: Caller, viewer: CurrentViewer) -> Response:
    """The episode after an episode, or a series' episode to play now; 204 when none.

    For an episode: the same season's next episode, else the first of the next season. For a series: the
    episode to play now (in progress, or after the last finished one; else the first). 204 when none.
    """
    found = await service.next_episode(tx, viewer=viewer, content_id=content_id)
    if found is None:
        return Response(status_code=204, headers={"cache-control": PRIVATE})
    return Response(
        content=found.model_dump_json(), media_type="application/json", headers={"cache-control": PRIVATE}
    )
