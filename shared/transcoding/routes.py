"""HTTP routes of transcode jobs (/api/v1/transcoding/jobs): content managers (media:write)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Path, Query, Response

from shared.errors import BadRequest
from shared.http.pagination import Page, PageParams, encode_cursor, page_params
from shared.http.permissions import CanWriteMedia, permission_responses
from shared.infra import ratelimit
from shared.infra.db import Tx
from shared.infra.ratelimit import Limit
from shared.transcoding import service
from shared.transcoding.schemas import JobState, TranscodeJobCreate, TranscodeJobOut

router = APIRouter(prefix="/api/v1/transcoding", tags=["transcoding"])

JobId = Annotated[uuid.UUID, Path(alias="jobId")]
_MAX_KEY = 255
# Each job is minutes of CPU: a content manager queues a season's episodes and re-encodes in an hour,
# a runaway script or a stolen token does not fill the queue.
QUEUE_LIMIT = Limit(60, 3600)


def _idempotency_key(value: str | None) -> str | None:
    if value is None:
        return None
    if not 1 <= len(value) <= _MAX_KEY or not value.isprintable() or not value.isascii():
        raise BadRequest(
            f"Idempotency-Key must be 1-{_MAX_KEY} printable ASCII characters.",
            code="invalid_idempotency_key",
        )
    return value


@router.post(
    "/jobs",
    status_code=202,
    response_model=TranscodeJobOut,
    summary="Queue a transcode or re-encode of an uploaded source",
    responses=permission_responses(
        {
            400: ["invalid_idempotency_key"],
            404: ["source_not_found"],
            409: [
                "idempotency_key_reused",
                "idempotency_key_in_use",
                "source_gone",
                "source_rejected",
                "source_not_uploaded",
                "transcode_in_progress",
            ],
            422: ["validation_failed"],
            429: ["rate_limited"],
        }
    ),
)
async def create_job(
    body: TranscodeJobCreate,
    tx: Tx,
    caller: CanWriteMedia,
    response: Response,
    idempotency_key: Annotated[
        str | None,
        Header(alias="Idempotency-Key", description="Same key and body: the same job, never a second one"),
    ] = None,
) -> TranscodeJobOut:
    """A source's first transcode, else a re-encode into a new asset (the current one stays until then)."""
    await ratelimit.enforce(rules=[QUEUE_LIMIT.rule(f"transcode_jobs:{caller.user_id}")])
    reason = await service.reason_for(tx, source_id=body.source_id)
    job = await service.queue_transcode(
        tx,
        source_id=body.source_id,
        created_by=caller.user_id,
        priority=body.numeric_priority(),
        reason=reason,
        options=body.options.as_stored(),
        idempotency_key=_idempotency_key(idempotency_key),
    )
    response.headers["location"] = f"/api/v1/transcoding/jobs/{job.id}"
    return job


@router.get(
    "/jobs",
    response_model=Page[TranscodeJobOut],
    summary="List transcode jobs, newest first",
    responses=permission_responses({400: ["invalid_cursor"], 422: ["validation_failed"]}),
)
async def list_jobs(
    tx: Tx,
    caller: CanWriteMedia,
    page: Annotated[PageParams, Depends(page_params)],
    source_id: Annotated[uuid.UUID | None, Query()] = None,
    title_id: Annotated[uuid.UUID | None, Query()] = None,
    state: Annotated[list[JobState] | None, Query(description="Repeat for several states")] = None,
) -> Page[TranscodeJobOut]:
    """Filter by source, title or state; pass next_cursor back for the next page (history not included)."""
    jobs = await service.list_jobs(
        tx,
        source_id=source_id,
        title_id=title_id,
        states=list(state) if state else None,
        after=page.after,
        limit=page.limit,
    )
    items = jobs[: page.limit]
    cursor = None
    if len(jobs) > page.limit and items:
        cursor = encode_cursor([items[-1].created_at.isoformat(), str(items[-1].id)])
    return Page[TranscodeJobOut](items=items, next_cursor=cursor)


@router.get(
    "/jobs/{jobId}",
    response_model=TranscodeJobOut,
    summary="A transcode job: state, progress, ETA, renditions done, failure reason, history",
    responses=permission_responses({404: ["job_not_found"]}),
)
async def get_job(job_id: JobId, tx: Tx, caller: CanWriteMedia) -> TranscodeJobOut:
    """Poll this while the job runs; progress is 0..100 over the whole job."""
    return await service.get_job(tx, job_id=job_id)


@router.post(
    "/jobs/{jobId}/cancel",
    response_model=TranscodeJobOut,
    summary="Cancel a transcode job",
    responses=permission_responses({404: ["job_not_found"], 409: ["job_finished"]}),
)
async def cancel_job(job_id: JobId, tx: Tx, caller: CanWriteMedia) -> TranscodeJobOut:
    """A queued job is cancelled at once; a running one stops at its next progress tick (ffmpeg killed)."""
    return await service.cancel_job(tx, job_id=job_id)
