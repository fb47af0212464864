"""Subtitle tracks of a title or episode: normalised WebVTT files in storage, one live track per language.

A new file replaces the live track with the same language and forced/SDH flags (soft-deleted, its file
kept); every change queues a manifest refresh, so the track reaches HLS and DASH without a re-encode.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from typing import Any

from shared.errors import Conflict, NotFound, ValidationFailed
from shared.infra import ratelimit
from shared.infra.ratelimit import Limit
from shared.infra.storage import Storage, get_storage
from shared.media import repository
from shared.media.schemas import SubtitleCreate, SubtitleOut
from shared.media.service import Actor, check_content
from shared.media.subtitles import SubtitleErrors, normalise_subtitles
from shared.transcoding.service import queue_manifest_refresh

SUBTITLES_PREFIX = "media/subtitles"
VTT_CONTENT_TYPE = "text/vtt; charset=utf-8"
SUBTITLE_URL_SECONDS = 900
_SUBTITLES = Limit(120, 3600)  # a season's languages in an hour, with room for fixes


class InvalidSubtitles(ValidationFailed):
    """The subtitle file cannot be used; `errors` lists each problem with its 1-based line."""

    code = "invalid_subtitles"


def _subtitle_bytes(data: SubtitleCreate) -> bytes:
    if data.content_base64 is not None:
        try:
            return base64.b64decode(data.content_base64, validate=True)
        except (binascii.Error, ValueError):
            raise ValidationFailed(
                "content_base64 is not valid base64.", code="invalid_base64", field="content_base64"
            ) from None
    assert data.content is not None
    # surrogatepass: a lone surrogate from JSON becomes bytes the normaliser reports with its line.
    return data.content.encode("utf-8", "surrogatepass")


async def _subtitle_out(row: dict[str, Any], storage: Storage) -> SubtitleOut:
    request = await storage.presign_download(row["storage_key"], expires_in=SUBTITLE_URL_SECONDS)
    return SubtitleOut(
        id=row["id"],
        title_id=row["title_id"],
        episode_id=row["episode_id"],
        language=row["language"],
        label=row["label"],
        forced=row["forced"],
        sdh=row["sdh"],
        cue_count=row["cue_count"],
        storage_key=row["storage_key"],
        url=request.url,
        created_by=row["created_by"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


async def add_subtitles(conn: Any, *, data: SubtitleCreate, actor: Actor) -> SubtitleOut:
    """Check and normalise a subtitle file, store it as WebVTT (replacing its track), refresh manifests."""
    await ratelimit.enforce(rules=[_SUBTITLES.rule(f"media_subtitles:{actor.user_id}")])
    await check_content(conn, title_id=data.title_id, episode_id=data.episode_id)
    try:
        text, cue_count = normalise_subtitles(_subtitle_bytes(data), filename=data.filename)
    except SubtitleErrors as error:
        raise InvalidSubtitles(
            f"The subtitle file has {len(error.errors)} problem(s); the first: line {error.errors[0].line}: "
            f"{error.errors[0].message}.",
            errors=[{"line": item.line, "message": item.message} for item in error.errors],
        ) from None
    subtitle_id = uuid.uuid4()
    key = f"{SUBTITLES_PREFIX}/{subtitle_id}.vtt"
    await repository.retire_subtitle_track(
        conn,
        title_id=data.title_id,
        episode_id=data.episode_id,
        language=data.language,
        forced=data.forced,
        sdh=data.sdh,
    )
    row = await repository.insert_subtitle(
        conn,
        subtitle_id=subtitle_id,
        title_id=data.title_id,
        episode_id=data.episode_id,
        language=data.language,
        label=data.label,
        forced=data.forced,
        sdh=data.sdh,
        storage_key=key,
        cue_count=cue_count,
        created_by=actor.user_id,
    )
    if row is None:
        raise Conflict(
            "The same track was uploaded at the same moment by another request; try again.",
            code="subtitles_conflict",
        )
    storage = await get_storage()
    await storage.put_bytes(key, text.encode(), content_type=VTT_CONTENT_TYPE)
    await queue_manifest_refresh(conn, title_id=data.title_id, episode_id=data.episode_id)
    return await _subtitle_out(row, storage)


async def list_subtitles(
    conn: Any, *, title_id: uuid.UUID, episode_id: uuid.UUID | None
) -> list[SubtitleOut]:
    """Live subtitle tracks of a title (or one episode)."""
    storage = await get_storage()
    rows = await repository.list_subtitles(conn, title_id=title_id, episode_id=episode_id)
    return [await _subtitle_out(row, storage) for row in rows]


async def delete_subtitles(conn: Any, *, subtitle_id: uuid.UUID) -> None:
    """Remove a track from the content (soft delete) and refresh the manifests without it."""
    row = await repository.get_live_subtitle(conn, subtitle_id)
    if row is None:
        raise NotFound("No subtitle track has this id.", code="subtitles_not_found")
    await repository.delete_subtitle(conn, subtitle_id)
    await queue_manifest_refresh(conn, title_id=row["title_id"], episode_id=row["episode_id"])
