"""Transcoding logic callable from other domains and the API: queue, read, list and cancel jobs."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

from shared.errors import Conflict, NotFound
from shared.transcoding import repository
from shared.transcoding.schemas import (
    FINISHED_STATES,
    AssetSummary,
    JobEventOut,
    TranscodeJobOut,
)

if TYPE_CHECKING:
    from psycopg import AsyncConnection

RUN_KIND = "transcode.run"
MANIFESTS_KIND = "media.manifests"


class JobNotFound(NotFound):
    """No transcode job has this id."""

    code = "job_not_found"


class SourceNotFound(NotFound):
    """No media source has this id."""

    code = "source_not_found"


def to_job_out(row: dict[str, Any], events: list[dict[str, Any]] | None = None) -> TranscodeJobOut:
    """The API shape of a job row from repository._JOB_VIEW."""
    asset = None
    if row.get("asset_id") is not None and row.get("asset_state") is not None:
        asset = AssetSummary(
            id=row["asset_id"],
            state=row["asset_state"],
            hls_master=row.get("hls_master"),
            dash_manifest=row.get("dash_manifest"),
        )
    return TranscodeJobOut(
        id=row["id"],
        source_id=row["source_id"],
        title_id=row["title_id"],
        episode_id=row["episode_id"],
        purpose=row["purpose"],
        reason=row["reason"],
        priority=row["priority"],
        state=row["state"],
        progress=round(float(row["progress"]), 2),
        eta_seconds=row["eta_seconds"],
        stage_detail=row["stage_detail"],
        renditions_done=list(row["renditions_done"] or []),
        options=dict(row["options"] or {}),
        attempts=row["attempts"],
        failure_code=row["failure_code"],
        failure_reason=row["failure_reason"],
        dead_lettered=row["dead_lettered"],
        cancel_requested=row["cancel_requested"],
        created_by=row["created_by"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        asset=asset,
        history=[JobEventOut(**event) for event in events or []],
    )


def _same_request(
    row: dict[str, Any], *, source_id: uuid.UUID, priority: int, options: dict[str, Any]
) -> bool:
    # The reason is derived (first job of a source or not), not asked for: a replay may see another one.
    return (
        row["source_id"] == source_id
        and row["priority"] == priority
        and dict(row["options"] or {}) == options
    )


def _check_source(source: dict[str, Any] | None, source_id: uuid.UUID) -> dict[str, Any]:
    if source is None:
        raise SourceNotFound(f"No media source {source_id}.")
    if source["deleted_at"] is not None:
        raise Conflict(
            "The source file was deleted after its transcode (MEDIA_KEEP_SOURCES is off): upload it again.",
            code="source_gone",
        )
    if source["state"] == "rejected":
        reason = source.get("rejection_reason") or "the file was refused"
        raise Conflict(f"The source was rejected: {reason}", code="source_rejected")
    if source["state"] != "uploaded":
        raise Conflict(
            f"The source is not uploaded (state {source['state']}); complete the upload first.",
            code="source_not_uploaded",
        )
    return source


async def queue_transcode(
    conn: AsyncConnection[Any],
    *,
    source_id: uuid.UUID,
    created_by: uuid.UUID | None,
    priority: int = 0,
    reason: Literal["upload", "reencode"] = "upload",
    options: dict[str, Any] | None = None,
    idempotency_key: str | None = None,
) -> TranscodeJobOut:
    """Create the job, its 'processing' asset and the queued transcode.run message in the caller's tx.

    Idempotent: the same Idempotency-Key with the same request returns the first job (another request
    under that key is 409 idempotency_key_reused); reason 'upload' queues at most one job per source.
    """
    from shared.infra.queue.postgres import enqueue_in_transaction

    stored_options = {key: value for key, value in (options or {}).items() if value is not None}
    if idempotency_key is not None and created_by is not None:
        earlier = await repository.job_by_idempotency_key(conn, created_by=created_by, key=idempotency_key)
        if earlier is not None:
            return _replay(earlier, source_id=source_id, priority=priority, options=stored_options)
    # The lock orders concurrent requests for one source (two "complete upload" calls queue once).
    source = _check_source(await repository.get_source(conn, source_id, lock=True), source_id)
    if reason == "upload":
        existing = await repository.upload_job_of_source(conn, source_id)
        if existing is not None:
            return to_job_out(existing, await repository.job_events(conn, existing["id"]))
    elif await repository.active_job_of_source(conn, source_id) is not None:
        raise Conflict(
            "A transcode of this source is still queued or running; cancel it or wait for it to finish.",
            code="transcode_in_progress",
        )
    asset_id = await repository.insert_asset(conn, source=source)
    job_id = await repository.insert_job(
        conn,
        source_id=source_id,
        asset_id=asset_id,
        reason=reason,
        priority=priority,
        options=stored_options,
        created_by=created_by,
        idempotency_key=idempotency_key,
    )
    if job_id is None:
        # A concurrent request with the same key committed first: answer as a replay of it. Our asset
        # row goes with the caller's transaction only if it commits; drop it now to leave no orphan.
        await conn.execute("delete from public.media_assets where id = %s", (asset_id,))
        assert created_by is not None and idempotency_key is not None  # only the key can conflict
        earlier = await repository.job_by_idempotency_key(conn, created_by=created_by, key=idempotency_key)
        if earlier is None:
            raise Conflict(
                "The Idempotency-Key is in use by a request still running.", code="idempotency_key_in_use"
            )
        return _replay(earlier, source_id=source_id, priority=priority, options=stored_options)
    await repository.add_event(
        conn, job_id, "queued", "re-encode queued" if reason == "reencode" else "transcode queued"
    )
    queue_job_id = await enqueue_in_transaction(
        conn, RUN_KIND, {"transcode_job_id": str(job_id)}, priority=priority
    )
    await repository.set_queue_job_id(conn, job_id, queue_job_id)
    return await get_job(conn, job_id=job_id)


def _replay(
    earlier: dict[str, Any], *, source_id: uuid.UUID, priority: int, options: dict[str, Any]
) -> TranscodeJobOut:
    if not _same_request(earlier, source_id=source_id, priority=priority, options=options):
        raise Conflict(
            "This Idempotency-Key was already used for a different request.", code="idempotency_key_reused"
        )
    return to_job_out(earlier)


async def reason_for(conn: AsyncConnection[Any], *, source_id: uuid.UUID) -> Literal["upload", "reencode"]:
    """'upload' for a source's first transcode, 'reencode' after that."""
    return "reencode" if await repository.has_jobs(conn, source_id) else "upload"


async def queue_manifest_refresh(
    conn: AsyncConnection[Any], *, title_id: uuid.UUID, episode_id: uuid.UUID | None
) -> None:
    """Queue a media.manifests job: rewrite the content's published manifests with its current subtitles."""
    from shared.infra.queue.postgres import enqueue_in_transaction

    payload = {"title_id": str(title_id), "episode_id": str(episode_id) if episode_id else None}
    # A small delay lets a burst of subtitle changes (several languages at once) land before it runs;
    # every run reads the subtitles afresh, so an extra run is harmless.
    await enqueue_in_transaction(conn, MANIFESTS_KIND, payload, priority=1, delay_seconds=2)


async def get_job(conn: AsyncConnection[Any], *, job_id: uuid.UUID, history: bool = True) -> TranscodeJobOut:
    """A job with its history; JobNotFound (404 job_not_found) when absent."""
    row = await repository.get_job(conn, job_id)
    if row is None:
        raise JobNotFound(f"No transcode job {job_id}.")
    events = await repository.job_events(conn, job_id) if history else None
    return to_job_out(row, events)


async def list_jobs(
    conn: AsyncConnection[Any],
    *,
    source_id: uuid.UUID | None = None,
    title_id: uuid.UUID | None = None,
    states: list[str] | None = None,
    after: list[Any] | None = None,
    limit: int = 20,
) -> list[TranscodeJobOut]:
    """Jobs newest first, limit + 1 rows so the caller can tell whether a next page exists."""
    key: tuple[str, str] | None = None
    if after is not None:
        from shared.http.pagination import InvalidCursor

        try:
            created, ident = after
            datetime.fromisoformat(str(created))
            uuid.UUID(str(ident))
        except (TypeError, ValueError) as error:
            raise InvalidCursor("The cursor is malformed; start again without one.") from error
        key = (str(created), str(ident))
    rows = await repository.list_jobs(
        conn, source_id=source_id, title_id=title_id, states=states, after=key, limit=limit + 1
    )
    return [to_job_out(row) for row in rows]


async def cancel_job(conn: AsyncConnection[Any], *, job_id: uuid.UUID) -> TranscodeJobOut:
    """Cancel: queued ends at once; running gets cancel_requested (its worker stops); finished is 409."""
    row = await repository.get_job(conn, job_id, lock=True)
    if row is None:
        raise JobNotFound(f"No transcode job {job_id}.")
    if row["state"] in FINISHED_STATES:
        raise Conflict(f"The job is already {row['state']}.", code="job_finished", state=row["state"])
    if row["state"] == "queued":
        await repository.cancel_queued(conn, job_id)
        await repository.add_event(conn, job_id, "cancelled", "cancelled before it started")
        await repository.fail_asset(conn, row["asset_id"])
        await emit_finished(conn, job_id=job_id, outcome="cancelled")
    elif not row["cancel_requested"]:
        await repository.request_cancel(conn, job_id)
        await repository.add_event(conn, job_id, row["state"], "cancellation requested")
    return await get_job(conn, job_id=job_id)


async def end_job(
    conn: AsyncConnection[Any],
    *,
    job_id: uuid.UUID,
    asset_id: uuid.UUID | None,
    outcome: Literal["failed", "cancelled"],
    reason: str,
    code: str | None = None,
    dead_lettered: bool = False,
    worker_id: str | None = None,
) -> bool:
    """End an unfinished job as failed or cancelled: the row, its history, its asset, the event.

    With `worker_id`, only while that worker holds the job. False (nothing done) when it had ended.
    """
    done = await repository.finish_job(
        conn,
        job_id,
        worker_id=worker_id,
        state=outcome,
        failure_code=code,
        failure_reason=reason,
        dead_lettered=dead_lettered,
    )
    if not done:
        return False
    await repository.add_event(conn, job_id, outcome, reason)
    await repository.fail_asset(conn, asset_id)
    await emit_finished(conn, job_id=job_id, outcome=outcome)
    return True


async def emit_finished(
    conn: AsyncConnection[Any], *, job_id: uuid.UUID, outcome: Literal["ready", "failed", "cancelled"]
) -> None:
    """Emit media.transcode.<outcome> for a finished job, in the caller's transaction."""
    from shared.events import emit

    row = await repository.get_job(conn, job_id)
    if row is None:
        return
    payload = {
        "job_id": str(row["id"]),
        "asset_id": str(row["asset_id"]) if row["asset_id"] else None,
        "source_id": str(row["source_id"]),
        "title_id": str(row["title_id"]),
        "episode_id": str(row["episode_id"]) if row["episode_id"] else None,
        "purpose": row["purpose"],
        "reason": row["reason"],
        "state": outcome,
        "failure_code": row["failure_code"],
        "failure_reason": row["failure_reason"],
    }
    await emit(conn, f"media.transcode.{outcome}", payload)


# Files of a failed or retired asset stay this long (a player mid-title keeps its segments; someone may
# look into a failure), then go; the rows stay for history.
ASSET_FILES_GRACE = timedelta(days=2)
# Chunk files of an ended fan-out: long enough for a straggling chunk delivery to have given up.
WORK_FILES_GRACE = timedelta(hours=1)
_SWEEP_BATCH = 500


async def sweep_storage(*, limit: int = _SWEEP_BATCH) -> int:
    """Delete stored files nothing plays or joins any more; how many prefixes were removed.

    media/assets/<id>/ of assets failed or retired for longer than ASSET_FILES_GRACE, and media/work/
    <job>/ of ended jobs. Each prefix is deleted, then marked on its row (the asset's packaging gets
    'purged_at', the chunks lose their output_prefix), so a later run neither lists it again nor loses
    one whose deletion failed half way. Bounded per run; the daily maintenance calls it.
    """
    from shared.infra.db import get_pool
    from shared.infra.storage import get_storage

    pool = await get_pool()
    storage = await get_storage()
    async with pool.connection() as conn:
        assets = await repository.sweepable_assets(
            conn, older_than_seconds=ASSET_FILES_GRACE.total_seconds(), limit=limit
        )
        jobs = await repository.sweepable_work(
            conn, older_than_seconds=WORK_FILES_GRACE.total_seconds(), limit=limit
        )
    removed = 0
    for asset in assets:
        prefix = str(asset["storage_prefix"])
        if not prefix.startswith("media/assets/") or not prefix.endswith("/"):
            continue  # never a broader delete than the asset's own folder
        await storage.delete_prefix(prefix)
        async with pool.connection() as conn:
            await repository.mark_asset_purged(conn, asset["id"])
        removed += 1
    for job_id in jobs:
        await storage.delete_prefix(f"media/work/{job_id}/")
        async with pool.connection() as conn:
            await repository.mark_work_purged(conn, job_id)
        removed += 1
    return removed
