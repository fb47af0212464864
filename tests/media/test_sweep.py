"""The orphan sweep: objects of aborted and rejected uploads are deleted from storage (late PUTs and
unfinished parts included) and their sources marked deleted; live and uploaded sources are untouched."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import psycopg
import pytest

from shared.infra.storage import LocalStorage, Storage, get_storage
from shared.infra.storage.rules import NoSuchUpload
from shared.media import repository
from shared.media.service import SOURCES_PREFIX, sweep_orphan_sources

MiB = 1024 * 1024
LONG_AGO = timedelta(hours=1)


async def _body(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def source(
    db: psycopg.AsyncConnection[Any], storage: Storage, title_id: str, state: str, *, multipart: bool = False
) -> dict[str, Any]:
    """A source in `state` with an object stored under its prefix (and an open multipart upload)."""
    source_id = uuid.uuid4()
    key = f"{SOURCES_PREFIX}/{source_id}/film.mp4"
    upload_id = None
    if multipart:
        assert isinstance(storage, LocalStorage)
        upload_id = await storage.create_multipart_upload(key, content_type="video/mp4")
        await storage.write_part_stream(key, upload_id, 1, _body(b"p" * 100))
    await repository.insert_source(
        db,
        source_id=source_id,
        title_id=uuid.UUID(title_id),
        episode_id=None,
        purpose="main",
        storage_key=key,
        filename="film.mp4",
        content_type="video/mp4",
        size_bytes=100,
        sha256="0" * 64,
        upload_id=upload_id,
        part_size=5 * MiB if multipart else None,
        created_by=None,
    )
    # What a PUT to a still-valid URL leaves behind, whatever the state, plus a stray second object.
    await storage.put_bytes(key, b"v" * 100, content_type="video/mp4")
    await storage.put_bytes(f"{SOURCES_PREFIX}/{source_id}/stray.bin", b"x")
    if state != "uploading":
        await repository.set_source_state(db, source_id, state=state, rejection_reason="test")
    row = await repository.get_source(db, source_id)
    assert row is not None
    return row


async def stored(storage: Storage, row: dict[str, Any]) -> list[str]:
    return await storage.list_keys(f"{SOURCES_PREFIX}/{row['id']}/")


async def test_sweep_deletes_orphans_only(db: psycopg.AsyncConnection[Any], movie: str) -> None:
    storage = await get_storage()
    await sweep_orphan_sources(db, storage=storage, older_than=timedelta(0))  # earlier tests' leftovers
    aborted = await source(db, storage, movie, "aborted", multipart=True)
    rejected = await source(db, storage, movie, "rejected")
    live = [
        await source(db, storage, movie, "uploading"),
        await source(db, storage, movie, "uploaded"),
    ]
    already = await source(db, storage, movie, "aborted")
    await db.execute("update public.media_sources set deleted_at = now() where id = %s", (already["id"],))
    already = await repository.get_source(db, already["id"]) or {}

    # Too recent: a URL handed out for them may still be valid, so nothing is touched yet.
    assert await sweep_orphan_sources(db, storage=storage, older_than=LONG_AGO) == 0
    assert len(await stored(storage, aborted)) == 2

    assert await sweep_orphan_sources(db, storage=storage, older_than=timedelta(0)) == 2

    for row in (aborted, rejected):
        assert await stored(storage, row) == []
        after = await repository.get_source(db, row["id"])
        assert after is not None and after["deleted_at"] is not None and after["state"] == row["state"]
    with pytest.raises(NoSuchUpload):  # the aborted upload's parts are gone too
        await storage.list_parts(aborted["storage_key"], aborted["upload_id"])
    for row in [*live, already]:
        assert len(await stored(storage, row)) == 2
        after = await repository.get_source(db, row["id"])
        assert after is not None and after["deleted_at"] == row["deleted_at"]
    assert await sweep_orphan_sources(db, storage=storage, older_than=timedelta(0)) == 0


async def test_concurrent_sweeps_share_the_work(
    db: psycopg.AsyncConnection[Any], database_url: str, movie: str
) -> None:
    storage = await get_storage()
    await sweep_orphan_sources(db, storage=storage, older_than=timedelta(0))
    rows = [await source(db, storage, movie, "rejected") for _ in range(2)]
    async with await psycopg.AsyncConnection.connect(database_url, prepare_threshold=None) as first:
        assert await sweep_orphan_sources(first, storage=storage, older_than=timedelta(0)) == 2
        # The first sweep's transaction still holds the rows: a second one skips them.
        assert await sweep_orphan_sources(db, storage=storage, older_than=timedelta(0)) == 0
        await first.commit()
    for row in rows:
        after = await repository.get_source(db, row["id"])
        assert after is not None and after["deleted_at"] is not None
