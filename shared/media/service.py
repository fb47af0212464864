"""Media logic: direct uploads of source files (single PUT or S3 multipart), their sources and assets.

No byte of a source passes through a function (Vercel caps bodies at 4.5 MB): the API hands out presigned
URLs, the client uploads straight to storage, and "complete" checks what arrived. Every URL is bound to
its body: a single PUT to the announced size and SHA-256 (storage hashes the body and refuses another),
each part to its exact size. Completion verifies the size (a HEAD) and records the object's ETag, so the
transcoder can tell a replaced object later; the SHA-256 of a multipart upload is verified by the
transcoder on its local copy before probing, because hashing gigabytes does not fit a request's time limit
(a mismatch fails the job with failure_code `source_corrupted`).
"""

from __future__ import annotations

import contextlib
import logging
import math
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from shared.audit.service import record
from shared.errors import AppError, Conflict, NotFound, ValidationFailed
from shared.infra import ratelimit
from shared.infra.db import after_commit
from shared.infra.ratelimit import Limit
from shared.infra.storage import PresignedRequest, Storage, UploadedPart, get_storage
from shared.infra.storage.rules import MAX_PART_NUMBER, MAX_SINGLE_PUT_BYTES, MiB, NoSuchUpload
from shared.media import repository
from shared.media.schemas import (
    MAX_PART_BATCH,
    AssetOut,
    CompleteOut,
    PartsOut,
    PartUrl,
    PresignedUrl,
    RenditionOut,
    SourceOut,
    UploadCreate,
    UploadedPartOut,
    UploadStatus,
    UploadTicket,
)
from shared.settings import Settings
from shared.transcoding.service import queue_transcode

SOURCES_PREFIX = "media/sources"
# A content manager starts a season's worth of uploads in an hour, not hundreds; resuming asks for part
# URLs in batches of 100, so even a 10,000-part upload needs 100 calls.
_UPLOADS = Limit(60, 3600)
_PART_BATCHES = Limit(600, 3600)
_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")
_SWEEP_BATCH = 500  # sources per sweep: each costs a listing and a delete in storage

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Actor:
    """Who acts, for rate limits and the audit log."""

    user_id: uuid.UUID
    ip: str | None = None
    user_agent: str | None = None


class UploadNotFound(NotFound):
    """No upload (media source) has this id."""

    code = "upload_not_found"


# --- helpers ------------------------------------------------------------------------------------------


def safe_filename(filename: str) -> str:
    """The client's file name as a safe object-key segment ('My film (v2).MOV' -> 'My_film_v2_.MOV')."""
    name = filename.replace("\\", "/").rsplit("/", 1)[-1]
    name = _SAFE_NAME.sub("_", name).strip("._")[-100:].lstrip("._")
    return name or "source"


def part_plan(size: int, settings: Settings) -> tuple[int, int]:
    """(part size, part count): the configured part size, grown (whole MiB) when 10,000 parts would not do."""
    part_size = settings.media_part_bytes
    if math.ceil(size / part_size) > MAX_PART_NUMBER:
        part_size = math.ceil(size / MAX_PART_NUMBER / MiB) * MiB
    return part_size, math.ceil(size / part_size)


def part_length(size: int, part_size: int, number: int) -> int:
    """The exact size of part `number` (1-based): `part_size`, the last part the remainder."""
    count = math.ceil(size / part_size)
    return size - (count - 1) * part_size if number == count else part_size


def _is_multipart(size: int, settings: Settings) -> bool:
    return size > min(settings.media_multipart_threshold_bytes, MAX_SINGLE_PUT_BYTES)


def _expires_at(request: PresignedRequest) -> datetime:
    return datetime.now(UTC) + timedelta(seconds=request.expires_in)


def _presigned(request: PresignedRequest) -> PresignedUrl:
    return PresignedUrl(
        url=request.url, method=request.method, headers=request.headers, expires_at=_expires_at(request)
    )


def _part_url(part_number: int, request: PresignedRequest) -> PartUrl:
    return PartUrl(
        part_number=part_number,
        url=request.url,
        method=request.method,
        headers=request.headers,
        expires_at=_expires_at(request),
    )


def _part_count(row: dict[str, Any]) -> int | None:
    return math.ceil(row["size_bytes"] / row["part_size"]) if row["upload_id"] and row["part_size"] else None


def to_source_out(row: dict[str, Any]) -> SourceOut:
    """The API shape of a media_sources row."""
    return SourceOut(
        id=row["id"],
        title_id=row["title_id"],
        episode_id=row["episode_id"],
        purpose=row["purpose"],
        filename=row["filename"],
        content_type=row["content_type"],
        size_bytes=row["size_bytes"],
        sha256=row["sha256"],
        mode="multipart" if row["upload_id"] else "single",
        part_size=row["part_size"] if row["upload_id"] else None,
        part_count=_part_count(row),
        state=row["state"],
        probe=row["probe"],
        rejection_reason=row["rejection_reason"],
        created_by=row["created_by"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        uploaded_at=row["uploaded_at"],
        source_deleted=row["deleted_at"] is not None,
    )


async def check_content(conn: Any, *, title_id: uuid.UUID, episode_id: uuid.UUID | None) -> None:
    """The title must be live and the episode one of its own: 404 title/episode_not_found, 422 otherwise."""
    found = await repository.content_of(conn, title_id=title_id, episode_id=episode_id)
    if not found["title_found"]:
        raise NotFound("No title has this id.", code="title_not_found", field="title_id")
    if episode_id is None:
        return
    if found["episode_title_id"] is None:
        raise NotFound("No episode has this id.", code="episode_not_found", field="episode_id")
    if found["episode_title_id"] != title_id:
        raise ValidationFailed(
            "The episode belongs to another title.", code="episode_not_of_title", field="episode_id"
        )


async def _audit(conn: Any, event: str, actor: Actor, row: dict[str, Any], **details: Any) -> None:
    await record(
        conn,
        event=event,
        subject_id=None,
        actor_id=actor.user_id,
        ip=actor.ip,
        user_agent=actor.user_agent,
        source_id=row["id"],
        title_id=row["title_id"],
        episode_id=row["episode_id"],
        **details,
    )


async def _locked_source(conn: Any, source_id: uuid.UUID) -> dict[str, Any]:
    row = await repository.get_source(conn, source_id, lock=True)
    if row is None:
        raise UploadNotFound(f"No upload {source_id}.")
    return row


_STATE_CODES = {"uploaded": "upload_completed", "aborted": "upload_aborted", "rejected": "upload_rejected"}


def _not_in_progress(row: dict[str, Any]) -> Conflict:
    state = row["state"]
    detail = {
        "uploaded": "The upload is complete; nothing more can be sent to it.",
        "aborted": "The upload was aborted; start a new one.",
        "rejected": f"The upload was rejected ({row['rejection_reason'] or 'see its source'}); start anew.",
    }.get(state, f"The upload is {state}.")
    return Conflict(detail, code=_STATE_CODES.get(state, "upload_not_in_progress"), state=state)


# --- uploads ------------------------------------------------------------------------------------------


async def create_upload(conn: Any, *, settings: Settings, data: UploadCreate, actor: Actor) -> UploadTicket:
    """Record a new source and hand out where to upload it (one PUT, or the first part URLs)."""
    if data.size_bytes > settings.media_max_upload_bytes:
        raise ValidationFailed(
            f"The file has {data.size_bytes} bytes; at most {settings.media_max_upload_bytes} are accepted.",
            code="upload_too_large",
            field="size_bytes",
            max_bytes=settings.media_max_upload_bytes,
        )
    await ratelimit.enforce(rules=[_UPLOADS.rule(f"media_upload:{actor.user_id}")])
    await check_content(conn, title_id=data.title_id, episode_id=data.episode_id)
    source_id = uuid.uuid4()
    key = f"{SOURCES_PREFIX}/{source_id}/{safe_filename(data.filename)}"
    storage = await get_storage()
    ttl = settings.media_upload_url_ttl_seconds
    upload: PresignedUrl | None = None
    parts: list[PartUrl] = []
    upload_id: str | None = None
    part_size: int | None = None
    part_count: int | None = None
    if _is_multipart(data.size_bytes, settings):
        part_size, part_count = part_plan(data.size_bytes, settings)
        # Started before the row is committed: if the request fails, the bucket's lifecycle rule
        # (abort incomplete multipart uploads) reclaims the empty upload.
        upload_id = await storage.create_multipart_upload(key, content_type=data.content_type)
        for number in range(1, min(part_count, MAX_PART_BATCH) + 1):
            request = await storage.presign_upload_part(
                key,
                upload_id,
                number,
                expires_in=ttl,
                content_length=part_length(data.size_bytes, part_size, number),
            )
            parts.append(_part_url(number, request))
    else:
        request = await storage.presign_upload(
            key,
            content_type=data.content_type,
            expires_in=ttl,
            content_length=data.size_bytes,
            sha256=data.sha256,
        )
        upload = _presigned(request)
    row = await repository.insert_source(
        conn,
        source_id=source_id,
        title_id=data.title_id,
        episode_id=data.episode_id,
        purpose=data.purpose,
        storage_key=key,
        filename=data.filename,
        content_type=data.content_type,
        size_bytes=data.size_bytes,
        sha256=data.sha256,
        upload_id=upload_id,
        part_size=part_size,
        created_by=actor.user_id,
    )
    await _audit(
        conn,
        "media_upload_created",
        actor,
        row,
        size_bytes=data.size_bytes,
        mode="multipart" if upload_id else "single",
    )
    return UploadTicket(
        source=to_source_out(row),
        mode="multipart" if upload_id else "single",
        upload=upload,
        part_size=part_size,
        part_count=part_count,
        parts=parts,
    )


async def presign_parts(
    conn: Any, *, settings: Settings, source_id: uuid.UUID, part_numbers: list[int], actor: Actor
) -> PartsOut:
    """Presigned URLs for these parts of an unfinished multipart upload (to continue or resume it)."""
    await ratelimit.enforce(rules=[_PART_BATCHES.rule(f"media_upload_parts:{actor.user_id}")])
    row = await repository.get_source(conn, source_id)
    if row is None:
        raise UploadNotFound(f"No upload {source_id}.")
    if row["state"] != "uploading":
        raise _not_in_progress(row)
    count = _part_count(row)
    if count is None:
        raise Conflict("This is a single-PUT upload; it has no parts.", code="not_multipart")
    beyond = sorted({number for number in part_numbers if number > count})
    if beyond:
        raise ValidationFailed(
            f"The upload has {count} parts; there is no part {beyond[0]}.",
            code="invalid_part_number",
            part_count=count,
            invalid_parts=beyond,
        )
    storage = await get_storage()
    ttl = settings.media_upload_url_ttl_seconds
    parts = []
    for number in sorted(set(part_numbers)):
        request = await storage.presign_upload_part(
            row["storage_key"],
            row["upload_id"],
            number,
            expires_in=ttl,
            content_length=part_length(row["size_bytes"], row["part_size"], number),
        )
        parts.append(_part_url(number, request))
    return PartsOut(parts=parts)


async def _stored_parts(storage: Storage, row: dict[str, Any]) -> list[UploadedPart] | None:
    """Parts storage holds; None when the multipart upload no longer exists (completed or expired)."""
    try:
        return await storage.list_parts(row["storage_key"], row["upload_id"])
    except NoSuchUpload:
        return None


def _part_gaps(row: dict[str, Any], parts: list[UploadedPart]) -> tuple[list[int], list[dict[str, int]]]:
    """(missing part numbers, parts whose size is wrong) among 1..part_count."""
    count = _part_count(row) or 0
    stored = {part.part_number: part for part in parts}
    missing = [number for number in range(1, count + 1) if number not in stored]
    size, part_size = row["size_bytes"], row["part_size"]
    wrong = [
        {"part_number": number, "size": stored[number].size, "expected": part_length(size, part_size, number)}
        for number in range(1, count + 1)
        if number in stored and stored[number].size != part_length(size, part_size, number)
    ]
    return missing, wrong


async def upload_status(conn: Any, *, source_id: uuid.UUID) -> UploadStatus:
    """The source and what storage holds of it now (parts so far for multipart)."""
    row = await repository.get_source(conn, source_id)
    if row is None:
        raise UploadNotFound(f"No upload {source_id}.")
    storage = await get_storage()
    count = _part_count(row)
    uploaded: list[UploadedPartOut] = []
    missing: list[int] = []
    uploaded_bytes = 0
    if row["state"] == "uploading" and count is not None:
        parts = await _stored_parts(storage, row)
        if parts is not None:
            uploaded = [UploadedPartOut(part_number=p.part_number, size=p.size, etag=p.etag) for p in parts]
            gaps, wrong = _part_gaps(row, parts)
            missing = sorted([*gaps, *(item["part_number"] for item in wrong)])
            uploaded_bytes = sum(p.size for p in parts if p.part_number <= count)
        else:
            head = await storage.head(row["storage_key"])
            uploaded_bytes = head.size if head else 0
    elif row["state"] in ("uploading", "uploaded") and row["deleted_at"] is None:
        head = await storage.head(row["storage_key"])
        uploaded_bytes = head.size if head else 0
    return UploadStatus(
        source=to_source_out(row),
        mode="multipart" if count is not None else "single",
        part_size=row["part_size"] if count is not None else None,
        part_count=count,
        uploaded_parts=uploaded,
        missing_parts=missing,
        uploaded_bytes=uploaded_bytes,
    )


async def complete_upload(
    conn: Any, *, source_id: uuid.UUID, priority: int, actor: Actor
) -> CompleteOut | AppError:
    """Assemble and check the upload, then queue its transcode; completing again returns the same job.

    A size mismatch is not raised but returned: the rejection must be committed (and the object deleted
    after the commit), so the caller answers it as a problem once the transaction is saved. A part sent
    again between the listing and the assembly makes storage answer 400 invalid_part (complete again).
    """
    row = await _locked_source(conn, source_id)
    if row["state"] == "uploaded":
        job = await queue_transcode(conn, source_id=source_id, created_by=actor.user_id, priority=priority)
        return CompleteOut(source=to_source_out(row), job=job)
    if row["state"] != "uploading":
        raise _not_in_progress(row)
    storage = await get_storage()
    key = row["storage_key"]
    if row["upload_id"]:
        parts = await _stored_parts(storage, row)
        if parts is not None:  # None: assembled by an earlier call whose transaction failed; HEAD decides
            missing, wrong = _part_gaps(row, parts)
            if missing or wrong:
                raise Conflict(
                    f"{len(missing)} part(s) missing and {len(wrong)} of the wrong size: upload them, then "
                    "complete again.",
                    code="parts_incomplete",
                    missing_parts=missing[:MAX_PART_BATCH],
                    wrong_size_parts=wrong[:MAX_PART_BATCH],
                )
            count = _part_count(row) or 0
            # Only parts 1..count: a stray higher part is left out (and discarded by storage).
            with contextlib.suppress(NoSuchUpload):  # gone since the listing (expired): HEAD decides
                await storage.complete_multipart_upload(
                    key, row["upload_id"], [p for p in parts if p.part_number <= count]
                )
    head = await storage.head(key)
    if head is None:
        detail = (
            "The multipart upload no longer exists (expired or aborted); start a new upload."
            if row["upload_id"]
            else "Nothing was uploaded yet: PUT the file to the upload URL first."
        )
        raise Conflict(detail, code="upload_missing")
    if head.size != row["size_bytes"]:
        reason = f"{head.size} bytes arrived but {row['size_bytes']} were announced"
        rejected = await repository.set_source_state(
            conn, source_id, state="rejected", rejection_reason=reason
        )
        await _audit(
            conn, "media_upload_rejected", actor, rejected, reason="size_mismatch", size_bytes=head.size
        )

        async def delete_object() -> None:
            await storage.delete(key)

        await after_commit(delete_object)
        return Conflict(
            f"The upload was rejected: {reason}. Start a new upload.",
            code="size_mismatch",
            size_bytes=head.size,
            expected_bytes=row["size_bytes"],
        )
    # The ETag pins the object that was checked: a re-encode compares it with what storage holds then.
    uploaded = await repository.set_source_state(conn, source_id, state="uploaded", etag=head.etag)
    job = await queue_transcode(conn, source_id=source_id, created_by=actor.user_id, priority=priority)
    await _audit(conn, "media_upload_completed", actor, uploaded, size_bytes=head.size, job_id=job.id)
    return CompleteOut(source=to_source_out(uploaded), job=job)


async def abort_upload(conn: Any, *, source_id: uuid.UUID, actor: Actor) -> SourceOut:
    """Abort an unfinished upload (its parts or object are removed after the commit); idempotent."""
    row = await _locked_source(conn, source_id)
    if row["state"] == "uploaded":
        raise Conflict(
            "The upload is complete and its transcode queued; it can no longer be aborted.",
            code="upload_completed",
            state="uploaded",
        )
    if row["state"] != "uploading":
        return to_source_out(row)  # aborted or rejected already: nothing is left to remove
    aborted = await repository.set_source_state(conn, source_id, state="aborted")
    await _audit(conn, "media_upload_aborted", actor, aborted)
    storage = await get_storage()
    key, upload_id = row["storage_key"], row["upload_id"]

    async def discard() -> None:
        if upload_id:
            await storage.abort_multipart_upload(key, upload_id)
        await storage.delete(key)  # a single PUT, or parts assembled by a failed completion

    await after_commit(discard)
    return to_source_out(aborted)


async def sweep_orphan_sources(conn: Any, *, storage: Storage, older_than: timedelta) -> int:
    """Delete what storage still holds of aborted and rejected uploads and mark them deleted; how many.

    Normally abort and rejection delete the object after their commit; this catches what that missed and
    what a late PUT stored afterwards. A URL stays valid for its lifetime after an abort, so `older_than`
    should be at least MEDIA_UPLOAD_URL_TTL_SECONDS: nothing can then come back after the sweep. Run it in
    a transaction: the rows are locked (skip locked), so concurrent sweeps share the work. Up to 500 per
    call; a source whose deletion fails is logged and left for the next run.
    """
    swept: list[uuid.UUID] = []
    for row in await repository.orphan_sources(conn, older_than=older_than, limit=_SWEEP_BATCH):
        try:
            if row["state"] == "aborted" and row["upload_id"]:
                # A rejected upload was assembled already; an aborted one may still hold parts.
                await storage.abort_multipart_upload(row["storage_key"], row["upload_id"])
            await storage.delete_prefix(f"{SOURCES_PREFIX}/{row['id']}/")
        except Exception:
            logger.warning("orphan source not swept", extra={"source_id": str(row["id"])}, exc_info=True)
            continue
        swept.append(row["id"])
    await repository.mark_sources_deleted(conn, swept)
    return len(swept)


# --- sources and assets -------------------------------------------------------------------------------


async def list_sources(conn: Any, *, title_id: uuid.UUID, episode_id: uuid.UUID | None) -> list[SourceOut]:
    """Uploads of a title (or one episode), newest first."""
    return [
        to_source_out(row)
        for row in await repository.list_sources(conn, title_id=title_id, episode_id=episode_id)
    ]


async def list_assets(conn: Any, *, title_id: uuid.UUID, episode_id: uuid.UUID | None) -> list[AssetOut]:
    """Transcoded assets of a title (or one episode) with their renditions, newest first."""
    rows = await repository.list_assets(conn, title_id=title_id, episode_id=episode_id)
    return [
        AssetOut(
            **{key: value for key, value in row.items() if key != "renditions"},
            renditions=[RenditionOut(**rendition) for rendition in row["renditions"]],
        )
        for row in rows
    ]
