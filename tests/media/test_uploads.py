"""Direct uploads end to end: the ticket, the client's PUTs to the presigned URLs (served by the local
storage app), resuming a multipart upload, completing (size check, transcode queued once), aborting."""

from __future__ import annotations

import base64
import hashlib
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import psycopg
import pytest

from shared.infra.loop_local import reset_all
from shared.infra.storage import LocalStorage, get_storage
from shared.media import repository
from tests.media.conftest import API, payload, put, start_upload, storage_call, upload_body
from tests.support import catalog_factory
from tests.support.identity import SignedIn

MiB = 1024 * 1024


@pytest.fixture
async def small_parts(settings_env: Callable[..., None]) -> None:
    """Multipart from 5 MiB on, in 5 MiB parts (S3's minimum; local storage enforces it too)."""
    settings_env(MEDIA_MULTIPART_THRESHOLD_BYTES=str(5 * MiB), MEDIA_PART_BYTES=str(5 * MiB))
    await reset_all()


async def audit_events(db: psycopg.AsyncConnection[Any], source_id: str) -> list[str]:
    cursor = await db.execute(
        "select event from public.audit_log where details->>'source_id' = %s order by id", (source_id,)
    )
    return [row[0] for row in await cursor.fetchall()]


async def test_single_upload_completes_once(
    client: httpx.AsyncClient, manager: SignedIn, movie: str, db: psycopg.AsyncConnection[Any]
) -> None:
    data = payload(4000)
    ticket = await start_upload(client, manager, movie, data)
    source = ticket["source"]
    assert ticket["mode"] == "single" and ticket["parts"] == [] and ticket["part_size"] is None
    assert source["state"] == "uploading" and source["size_bytes"] == 4000
    upload = ticket["upload"]
    checksum = base64.b64encode(hashlib.sha256(data).digest()).decode()
    assert upload["method"] == "PUT"
    assert upload["headers"] == {"Content-Type": "video/mp4", "x-amz-checksum-sha256": checksum}
    assert upload["expires_at"]
    assert f"/_storage/media/sources/{source['id']}/My_Film_final_.mp4?" in upload["url"]

    await put(upload, data)
    status = (await client.get(f"{API}/uploads/{source['id']}", headers=manager.headers)).json()
    assert status["mode"] == "single" and status["uploaded_bytes"] == 4000

    done = await client.post(
        f"{API}/uploads/{source['id']}/complete", json={"priority": 5}, headers=manager.headers
    )
    assert done.status_code == 202, done.text
    body = done.json()
    assert body["source"]["state"] == "uploaded" and body["source"]["uploaded_at"]
    # The object's ETag at completion is kept, so a later re-encode can tell a replaced file.
    head = await (await get_storage()).head(f"media/sources/{source['id']}/My_Film_final_.mp4")
    row = await repository.get_source(db, uuid.UUID(source["id"]))
    assert head is not None and row is not None and row["etag"] == head.etag
    job = body["job"]
    assert job["source_id"] == source["id"] and job["state"] == "queued" and job["priority"] == 5
    assert job["reason"] == "upload" and job["title_id"] == movie

    # Completing again (a retried request) answers the same job and queues nothing new.
    again = await client.post(f"{API}/uploads/{source['id']}/complete", headers=manager.headers)
    assert again.status_code == 202 and again.json()["job"]["id"] == job["id"]
    cursor = await db.execute(
        "select count(*) from public.transcode_jobs where source_id = %s", (source["id"],)
    )
    assert (await cursor.fetchone()) == (1,)

    # Too late to abort; the upload can no longer take parts.
    aborted = await client.delete(f"{API}/uploads/{source['id']}", headers=manager.headers)
    assert aborted.status_code == 409 and aborted.json()["code"] == "upload_completed"

    listed = (await client.get(f"{API}/sources", params={"title_id": movie}, headers=manager.headers)).json()
    assert [(item["id"], item["state"]) for item in listed] == [(source["id"], "uploaded")]
    assert await audit_events(db, source["id"]) == ["media_upload_created", "media_upload_completed"]


async def test_multipart_upload_resumes(
    client: httpx.AsyncClient,
    manager: SignedIn,
    movie: str,
    small_parts: None,
    db: psycopg.AsyncConnection[Any],
) -> None:
    data = payload(5 * MiB + 1234)
    ticket = await start_upload(client, manager, movie, data, purpose="trailer")
    source_id = ticket["source"]["id"]
    assert ticket["mode"] == "multipart" and ticket["upload"] is None
    assert (ticket["part_size"], ticket["part_count"]) == (5 * MiB, 2)
    assert [part["part_number"] for part in ticket["parts"]] == [1, 2]
    first, second = data[: 5 * MiB], data[5 * MiB :]

    await put(ticket["parts"][0], first)
    # "After a reload": the client asks what storage holds, then only for the missing part's URL.
    status = (await client.get(f"{API}/uploads/{source_id}", headers=manager.headers)).json()
    assert [(p["part_number"], p["size"]) for p in status["uploaded_parts"]] == [(1, 5 * MiB)]
    assert status["uploaded_parts"][0]["etag"]
    assert status["missing_parts"] == [2] and status["uploaded_bytes"] == 5 * MiB

    early = await client.post(f"{API}/uploads/{source_id}/complete", headers=manager.headers)
    assert early.status_code == 409 and early.json()["code"] == "parts_incomplete"
    assert early.json()["missing_parts"] == [2]

    urls = await client.post(
        f"{API}/uploads/{source_id}/parts", json={"part_numbers": [2]}, headers=manager.headers
    )
    assert urls.status_code == 200, urls.text
    (part_two,) = urls.json()["parts"]
    assert part_two["part_number"] == 2
    # Each part URL takes exactly its part's size: the last one the remainder, no more, no less.
    for wrong_size in (second[:-10], first):
        refused = await storage_call("PUT", part_two["url"], content=wrong_size, headers=part_two["headers"])
        assert refused.status_code == 403 and refused.json()["code"] == "content_length_mismatch"
    # A short part stored another way (an older, unbound URL) is still caught on completion ...
    storage = await get_storage()
    assert isinstance(storage, LocalStorage)
    row = await repository.get_source(db, uuid.UUID(source_id))
    assert row is not None

    async def body(data: bytes) -> AsyncIterator[bytes]:
        yield data

    await storage.write_part_stream(row["storage_key"], row["upload_id"], 2, body(second[:-10]))
    short = await client.post(f"{API}/uploads/{source_id}/complete", headers=manager.headers)
    assert short.status_code == 409 and short.json()["wrong_size_parts"] == [
        {"part_number": 2, "size": len(second) - 10, "expected": len(second)}
    ]
    await put(part_two, second)  # ... and the right one sent again replaces it

    done = await client.post(f"{API}/uploads/{source_id}/complete", headers=manager.headers)
    assert done.status_code == 202, done.text
    assert done.json()["source"]["state"] == "uploaded" and done.json()["job"]["purpose"] == "trailer"
    stored = await (await get_storage()).get_bytes(f"media/sources/{source_id}/My_Film_final_.mp4")
    assert stored == data


async def test_size_mismatch_rejects_and_deletes(
    client: httpx.AsyncClient, manager: SignedIn, movie: str, db: psycopg.AsyncConnection[Any]
) -> None:
    announced = payload(1000)
    ticket = await start_upload(client, manager, movie, announced)
    source_id = ticket["source"]["id"]
    missing = await client.post(f"{API}/uploads/{source_id}/complete", headers=manager.headers)
    assert missing.status_code == 409 and missing.json()["code"] == "upload_missing"

    # The upload URL takes only the announced bytes ...
    short = await storage_call(
        "PUT", ticket["upload"]["url"], content=announced[:900], headers=ticket["upload"]["headers"]
    )
    assert short.status_code == 403 and short.json()["code"] == "content_length_mismatch"
    key = f"media/sources/{source_id}/My_Film_final_.mp4"
    assert await (await get_storage()).head(key) is None
    # ... but an object of another size stored another way (an older, unbound URL) is still refused.
    await (await get_storage()).put_bytes(key, announced[:900], content_type="video/mp4")
    refused = await client.post(f"{API}/uploads/{source_id}/complete", headers=manager.headers)
    assert refused.status_code == 409, refused.text
    problem = refused.json()
    assert problem["code"] == "size_mismatch" and (problem["size_bytes"], problem["expected_bytes"]) == (
        900,
        1000,
    )
    assert refused.headers["content-type"].startswith("application/problem+json")

    status = (await client.get(f"{API}/uploads/{source_id}", headers=manager.headers)).json()
    assert status["source"]["state"] == "rejected"
    assert "900 bytes arrived" in status["source"]["rejection_reason"]
    assert await (await get_storage()).head(key) is None  # deleted once the rejection was saved
    again = await client.post(f"{API}/uploads/{source_id}/complete", headers=manager.headers)
    assert again.status_code == 409 and again.json()["code"] == "upload_rejected"
    assert await audit_events(db, source_id) == ["media_upload_created", "media_upload_rejected"]


async def test_single_upload_url_takes_only_the_announced_file(
    client: httpx.AsyncClient, manager: SignedIn, movie: str
) -> None:
    data = payload(3000)
    ticket = await start_upload(client, manager, movie, data)
    source_id, upload = ticket["source"]["id"], ticket["upload"]
    key = f"media/sources/{source_id}/My_Film_final_.mp4"
    tampered = bytes([data[0] ^ 1]) + data[1:]  # same size, another SHA-256
    refused = await storage_call("PUT", upload["url"], content=tampered, headers=upload["headers"])
    assert refused.status_code == 400 and refused.json()["code"] == "bad_digest"
    unsigned = await storage_call("PUT", upload["url"], content=data, headers={"Content-Type": "video/mp4"})
    assert unsigned.status_code == 403 and unsigned.json()["code"] == "checksum_header_mismatch"
    assert await (await get_storage()).head(key) is None
    missing = await client.post(f"{API}/uploads/{source_id}/complete", headers=manager.headers)
    assert missing.status_code == 409 and missing.json()["code"] == "upload_missing"

    await put(upload, data)
    done = await client.post(f"{API}/uploads/{source_id}/complete", headers=manager.headers)
    assert done.status_code == 202, done.text
    # The URL outlives the upload, but can only ever store the same file again.
    late = await storage_call("PUT", upload["url"], content=tampered, headers=upload["headers"])
    assert late.status_code == 400 and late.json()["code"] == "bad_digest"
    assert await (await get_storage()).get_bytes(key) == data


async def test_abort_discards_the_parts(
    client: httpx.AsyncClient, manager: SignedIn, movie: str, small_parts: None
) -> None:
    data = payload(5 * MiB + 10)
    ticket = await start_upload(client, manager, movie, data)
    source_id = ticket["source"]["id"]
    await put(ticket["parts"][0], data[: 5 * MiB])

    aborted = await client.delete(f"{API}/uploads/{source_id}", headers=manager.headers)
    assert aborted.status_code == 200 and aborted.json()["state"] == "aborted"
    late = await storage_call("PUT", ticket["parts"][1]["url"], content=data[5 * MiB :])
    assert late.status_code == 404 and late.json()["code"] == "no_such_upload"
    for path, body in (("/complete", {}), ("/parts", {"part_numbers": [2]})):
        response = await client.post(f"{API}/uploads/{source_id}{path}", json=body, headers=manager.headers)
        assert response.status_code == 409 and response.json()["code"] == "upload_aborted"
    again = await client.delete(f"{API}/uploads/{source_id}", headers=manager.headers)
    assert again.status_code == 200 and again.json()["state"] == "aborted"


async def test_part_rules(
    client: httpx.AsyncClient, manager: SignedIn, movie: str, small_parts: None
) -> None:
    ticket = await start_upload(client, manager, movie, payload(5 * MiB + 1))
    source_id = ticket["source"]["id"]
    beyond = await client.post(
        f"{API}/uploads/{source_id}/parts", json={"part_numbers": [2, 3]}, headers=manager.headers
    )
    assert beyond.status_code == 422 and beyond.json()["code"] == "invalid_part_number"
    assert beyond.json()["invalid_parts"] == [3]
    too_many = await client.post(
        f"{API}/uploads/{source_id}/parts",
        json={"part_numbers": list(range(1, 102))},
        headers=manager.headers,
    )
    assert too_many.status_code == 422

    single = await start_upload(client, manager, movie, payload(100))
    no_parts = await client.post(
        f"{API}/uploads/{single['source']['id']}/parts", json={"part_numbers": [1]}, headers=manager.headers
    )
    assert no_parts.status_code == 409 and no_parts.json()["code"] == "not_multipart"


async def test_who_may_upload(client: httpx.AsyncClient, viewer: SignedIn, movie: str) -> None:
    body = upload_body(movie, b"x")
    forbidden = await client.post(f"{API}/uploads", json=body, headers=viewer.headers)
    assert forbidden.status_code == 403 and forbidden.json()["code"] == "permission_denied"
    anonymous = await client.post(f"{API}/uploads", json=body)
    assert anonymous.status_code == 401
    for path in ("/sources", "/assets", "/subtitles"):
        listed = await client.get(f"{API}{path}", params={"title_id": movie}, headers=viewer.headers)
        assert listed.status_code == 403


async def test_what_may_be_uploaded(
    client: httpx.AsyncClient, manager: SignedIn, movie: str, db: psycopg.AsyncConnection[Any]
) -> None:
    async def code(body: dict[str, Any]) -> tuple[int, str]:
        response = await client.post(f"{API}/uploads", json=body, headers=manager.headers)
        return response.status_code, response.json()["code"]

    data = b"video"
    unknown = "00000000-0000-4000-8000-000000000001"
    assert await code(upload_body(unknown, data)) == (404, "title_not_found")
    assert await code(upload_body(movie, data, episode_id=unknown)) == (404, "episode_not_found")
    series = await catalog_factory.title(db, "Media Test Series", kind="series")
    season = await catalog_factory.season(db, series, 1, episodes=1)
    cursor = await db.execute("select id from public.catalog_episodes where season_id = %s", (season,))
    episode = str((await cursor.fetchone() or [None])[0])
    assert await code(upload_body(movie, data, episode_id=episode)) == (422, "episode_not_of_title")
    assert await code(upload_body(str(series), data, size_bytes=50 * 1024**3 + 1)) == (
        422,
        "upload_too_large",
    )
    assert await code(upload_body(movie, data, sha256="abc")) == (422, "validation_failed")
    # Text that PostgreSQL cannot store (NUL) or that breaks a line is refused by validation (never reaching
    # the database as 422 invalid_value, nor a 500).
    for name in ("film\x00.mp4", "film\u2028.mp4", "\x01"):
        assert await code(upload_body(movie, data, filename=name)) == (422, "validation_failed")
    refused = await client.post(
        f"{API}/uploads", json=upload_body(movie, data, content_type="text/html"), headers=manager.headers
    )
    assert refused.status_code == 422 and refused.json()["errors"][0]["type"] == "unsupported_content_type"

    ok = await client.post(
        f"{API}/uploads", json=upload_body(str(series), data, episode_id=episode), headers=manager.headers
    )
    assert ok.status_code == 201 and ok.json()["source"]["episode_id"] == episode
    by_episode = await client.get(
        f"{API}/sources", params={"title_id": str(series), "episode_id": episode}, headers=manager.headers
    )
    assert [item["id"] for item in by_episode.json()] == [ok.json()["source"]["id"]]


async def test_uploads_are_rate_limited(
    client: httpx.AsyncClient, manager: SignedIn, movie: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from shared.infra.ratelimit import Limit
    from shared.media import service

    monkeypatch.setattr(service, "_UPLOADS", Limit(1, 3600))  # the manager's earlier uploads count too
    body = upload_body(movie, b"x")
    answers = [await client.post(f"{API}/uploads", json=body, headers=manager.headers) for _ in range(2)]
    limited = answers[-1]
    assert limited.status_code == 429 and limited.json()["code"] == "rate_limited"
    assert int(limited.headers["retry-after"]) > 0
