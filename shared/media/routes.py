"""HTTP routes of media (/api/v1/media/...): direct uploads, sources, assets and subtitles (media:write)."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.responses import JSONResponse

from shared.errors import AppError
from shared.http.auth import Principal
from shared.http.client_meta import Meta
from shared.http.permissions import CanWriteMedia, permission_responses
from shared.http.problems import app_error_response
from shared.infra.db import Tx
from shared.media import service, tracks
from shared.media.schemas import (
    AssetOut,
    CompleteOut,
    CompleteRequest,
    PartsOut,
    PartsRequest,
    SourceOut,
    SubtitleCreate,
    SubtitleOut,
    UploadCreate,
    UploadStatus,
    UploadTicket,
)
from shared.media.service import Actor
from shared.settings import get_settings

router = APIRouter(prefix="/api/v1/media", tags=["media"])

UploadId = Annotated[uuid.UUID, Path(alias="uploadId")]
SubtitleId = Annotated[uuid.UUID, Path(alias="subtitleId")]
TitleFilter = Annotated[uuid.UUID, Query(description="The title (movie or series)")]
EpisodeFilter = Annotated[uuid.UUID | None, Query(description="Only this episode (default: the whole title)")]

_INVALID = ["validation_failed"]
_CONTENT = {404: ["title_not_found", "episode_not_found"], 422: [*_INVALID, "episode_not_of_title"]}
_UPLOAD = {404: ["upload_not_found"]}


def _actor(caller: Principal, meta: Any) -> Actor:
    return Actor(user_id=caller.user_id, ip=meta.ip, user_agent=meta.user_agent)


# Uploads.


@router.post(
    "/uploads",
    status_code=201,
    response_model=UploadTicket,
    summary="Start a direct upload of a source file",
    responses=permission_responses(_CONTENT, {422: ["upload_too_large"], 429: ["rate_limited"]}),
)
async def create_upload(body: UploadCreate, tx: Tx, caller: CanWriteMedia, meta: Meta) -> UploadTicket:
    """Files above MEDIA_MULTIPART_THRESHOLD_BYTES get a multipart upload (one presigned PUT per part).

    Send each request with exactly the given `headers`: a single PUT is bound to the announced size and
    SHA-256 (`x-amz-checksum-sha256`; storage refuses any other body), each part URL to that part's size
    (`part_size`, the last part the remainder). Keep nothing: storage remembers the parts (GET the upload
    to resume). The SHA-256 of a multipart upload is checked by the transcoder before probing.
    """
    return await service.create_upload(tx, settings=get_settings(), data=body, actor=_actor(caller, meta))


@router.get(
    "/uploads/{uploadId}",
    response_model=UploadStatus,
    summary="An upload's state and the parts storage holds (to resume)",
    responses=permission_responses(_UPLOAD, {422: _INVALID}),
)
async def get_upload(upload_id: UploadId, tx: Tx, caller: CanWriteMedia) -> UploadStatus:
    """After a reload: upload the `missing_parts` (ask for their URLs), then complete."""
    return await service.upload_status(tx, source_id=upload_id)


@router.post(
    "/uploads/{uploadId}/parts",
    response_model=PartsOut,
    summary="Presigned URLs for parts of a multipart upload",
    responses=permission_responses(
        _UPLOAD,
        {
            409: ["upload_completed", "upload_aborted", "upload_rejected", "not_multipart"],
            422: [*_INVALID, "invalid_part_number"],
            429: ["rate_limited"],
        },
    ),
)
async def presign_parts(
    upload_id: UploadId, body: PartsRequest, tx: Tx, caller: CanWriteMedia, meta: Meta
) -> PartsOut:
    """Up to 100 part numbers per call; a part uploaded again replaces the earlier one."""
    return await service.presign_parts(
        tx,
        settings=get_settings(),
        source_id=upload_id,
        part_numbers=body.part_numbers,
        actor=_actor(caller, meta),
    )


@router.post(
    "/uploads/{uploadId}/complete",
    status_code=202,
    response_model=CompleteOut,
    summary="Complete an upload and queue its transcode",
    responses=permission_responses(
        _UPLOAD,
        {
            400: ["invalid_part"],
            409: [
                "parts_incomplete",
                "upload_missing",
                "size_mismatch",
                "upload_aborted",
                "upload_rejected",
                "source_gone",
            ],
            422: _INVALID,
        },
    ),
)
async def complete_upload(
    upload_id: UploadId,
    tx: Tx,
    caller: CanWriteMedia,
    meta: Meta,
    request: Request,
    body: CompleteRequest | None = None,
) -> CompleteOut | JSONResponse:
    """Checks the parts and the size, then queues the transcode; calling it again returns the same job.

    409 parts_incomplete leaves the upload open (upload the listed parts and complete again); 409
    size_mismatch rejects the source and deletes what arrived; 400 invalid_part means a part was sent
    again while completing (complete again).
    """
    result = await service.complete_upload(
        tx, source_id=upload_id, priority=(body or CompleteRequest()).priority, actor=_actor(caller, meta)
    )
    if isinstance(result, AppError):
        # Answered without raising, so the rejection it reports is committed with the request.
        return app_error_response(result, instance=request.url.path)
    return result


@router.delete(
    "/uploads/{uploadId}",
    response_model=SourceOut,
    summary="Abort an unfinished upload",
    responses=permission_responses(_UPLOAD, {409: ["upload_completed"], 422: _INVALID}),
)
async def abort_upload(upload_id: UploadId, tx: Tx, caller: CanWriteMedia, meta: Meta) -> SourceOut:
    """Its parts (or object) are removed; aborting again is harmless; a completed upload is 409."""
    return await service.abort_upload(tx, source_id=upload_id, actor=_actor(caller, meta))


# Sources and assets.


@router.get(
    "/sources",
    response_model=list[SourceOut],
    summary="Uploaded source files of a title or episode",
    responses=permission_responses({422: _INVALID}),
)
async def list_sources(
    title_id: TitleFilter, tx: Tx, caller: CanWriteMedia, episode_id: EpisodeFilter = None
) -> list[SourceOut]:
    """Newest first, with state, probe facts and the rejection reason of refused files."""
    return await service.list_sources(tx, title_id=title_id, episode_id=episode_id)


@router.get(
    "/assets",
    response_model=list[AssetOut],
    summary="Transcoded assets of a title or episode",
    responses=permission_responses({422: _INVALID}),
)
async def list_assets(
    title_id: TitleFilter, tx: Tx, caller: CanWriteMedia, episode_id: EpisodeFilter = None
) -> list[AssetOut]:
    """Newest first: state, renditions, images and manifest keys (no key material)."""
    return await service.list_assets(tx, title_id=title_id, episode_id=episode_id)


# Subtitles.


@router.post(
    "/subtitles",
    status_code=201,
    response_model=SubtitleOut,
    summary="Add a subtitle track (SRT or WebVTT)",
    responses=permission_responses(
        _CONTENT,
        {409: ["subtitles_conflict"], 422: ["invalid_subtitles", "invalid_base64"], 429: ["rate_limited"]},
    ),
)
async def add_subtitles(body: SubtitleCreate, tx: Tx, caller: CanWriteMedia, meta: Meta) -> SubtitleOut:
    """Normalised to WebVTT; replaces the track with the same language, forced and SDH flags.

    A bad file is 422 invalid_subtitles with `errors: [{line, message}]` (1-based lines). The HLS and
    DASH manifests are rewritten with the track shortly after (no re-encode).
    """
    return await tracks.add_subtitles(tx, data=body, actor=_actor(caller, meta))


@router.get(
    "/subtitles",
    response_model=list[SubtitleOut],
    summary="Subtitle tracks of a title or episode",
    responses=permission_responses({422: _INVALID}),
)
async def list_subtitles(
    title_id: TitleFilter, tx: Tx, caller: CanWriteMedia, episode_id: EpisodeFilter = None
) -> list[SubtitleOut]:
    """Live tracks, each with a short-lived URL of its WebVTT file."""
    return await tracks.list_subtitles(tx, title_id=title_id, episode_id=episode_id)


@router.delete(
    "/subtitles/{subtitleId}",
    status_code=204,
    summary="Remove a subtitle track",
    responses=permission_responses({404: ["subtitles_not_found"], 422: _INVALID}),
)
async def delete_subtitles(subtitle_id: SubtitleId, tx: Tx, caller: CanWriteMedia) -> Response:
    """The manifests are rewritten without it shortly after."""
    await tracks.delete_subtitles(tx, subtitle_id=subtitle_id)
    return Response(status_code=204)
