"""The transcoding API: queue (202, idempotency), read, list, cancel, and who may do it."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from api.transcoding import app
from tests.support.identity import SignedIn, client_for, signed_in_user
from tests.transcoding.jobs_support import Db, make_source

API = "/api/v1/transcoding/jobs"


@pytest.fixture(scope="module")
async def manager(database_url: str) -> SignedIn:
    return await signed_in_user(database_url, roles=["content_manager"])


@pytest.fixture(scope="module")
async def viewer(database_url: str) -> SignedIn:
    return await signed_in_user(database_url)


@pytest.fixture(autouse=True)
async def no_leftover_jobs(db: Db) -> AsyncIterator[None]:
    """No worker runs here: retire the transcode.run messages these tests queued, for later tests' workers."""
    yield
    await db.execute(
        "update public.job_queue set state = 'done', finished_at = now() where kind = 'transcode.run'"
        " and state = 'queued' and (payload->>'transcode_job_id')::uuid in"
        " (select id from public.transcode_jobs where created_by is not null)"
    )


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(app) as opened:
        yield opened


@pytest.fixture
async def source(db: Db, tmp_path: Path) -> uuid.UUID:
    """An uploaded source (its bytes do not matter: no worker runs in these tests)."""
    path = tmp_path / "film.mp4"
    path.write_bytes(b"\0" * 64)
    source_id, _ = await make_source(db, path)
    return source_id


async def post(
    client: httpx.AsyncClient, who: SignedIn, body: dict[str, Any], key: str | None = None
) -> httpx.Response:
    headers = dict(who.headers)
    if key is not None:
        headers["Idempotency-Key"] = key
    return await client.post(API, json=body, headers=headers)


async def test_queue_read_and_replay_with_an_idempotency_key(
    client: httpx.AsyncClient, manager: SignedIn, source: uuid.UUID, db: Db
) -> None:
    body = {"source_id": str(source), "priority": "high", "options": {"hevc": False, "max_height": 720}}
    first = await post(client, manager, body, key="k-" + uuid.uuid4().hex)
    assert first.status_code == 202, first.text
    job = first.json()
    assert first.headers["location"] == f"{API}/{job['id']}"
    assert (job["state"], job["priority"], job["reason"], job["progress"]) == ("queued", 5, "upload", 0)
    assert job["options"] == {"hevc": False, "max_height": 720}
    assert job["asset"]["state"] == "processing" and job["history"][0]["state"] == "queued"

    key = first.request.headers["Idempotency-Key"]
    again = await post(client, manager, body, key=key)
    assert again.status_code == 202 and again.json()["id"] == job["id"]
    other = await post(client, manager, {**body, "priority": 1}, key=key)
    assert other.status_code == 409 and other.json()["code"] == "idempotency_key_reused"
    cursor = await db.execute("select count(*) from public.transcode_jobs where source_id = %s", (source,))
    assert await cursor.fetchone() == (1,)
    cursor = await db.execute(
        "select count(*) from public.job_queue where kind = 'transcode.run'"
        " and payload->>'transcode_job_id' = %s",
        (job["id"],),
    )
    assert await cursor.fetchone() == (1,)

    read = await client.get(f"{API}/{job['id']}", headers=manager.headers)
    assert read.status_code == 200
    assert {
        "state",
        "progress",
        "eta_seconds",
        "stage_detail",
        "renditions_done",
        "failure_code",
        "failure_reason",
        "dead_lettered",
        "attempts",
        "asset",
        "history",
    } <= read.json().keys()

    # A second request without the key is a re-encode, refused while the first job is still queued.
    busy = await post(client, manager, {"source_id": str(source)})
    assert busy.status_code == 409 and busy.json()["code"] == "transcode_in_progress"


async def test_cancel_a_queued_job_then_a_finished_one(
    client: httpx.AsyncClient, manager: SignedIn, source: uuid.UUID, db: Db
) -> None:
    job = (await post(client, manager, {"source_id": str(source)})).json()
    cancelled = await client.post(f"{API}/{job['id']}/cancel", headers=manager.headers)
    assert cancelled.status_code == 200, cancelled.text
    assert (
        cancelled.json()["state"] == "cancelled" and cancelled.json()["history"][-1]["state"] == "cancelled"
    )
    cursor = await db.execute("select state from public.media_assets where id = %s", (job["asset"]["id"],))
    assert await cursor.fetchone() == ("failed",)
    cursor = await db.execute(
        "select count(*) from public.domain_events where name = 'media.transcode.cancelled'"
        " and payload->>'job_id' = %s",
        (job["id"],),
    )
    assert await cursor.fetchone() == (1,)
    again = await client.post(f"{API}/{job['id']}/cancel", headers=manager.headers)
    assert again.status_code == 409 and again.json()["code"] == "job_finished"

    # Once the source has a finished job, a new request is a re-encode.
    reencode = await post(client, manager, {"source_id": str(source)})
    assert reencode.status_code == 202 and reencode.json()["reason"] == "reencode"


async def test_cancel_a_running_job_asks_its_worker(
    client: httpx.AsyncClient, manager: SignedIn, source: uuid.UUID, db: Db
) -> None:
    job = (await post(client, manager, {"source_id": str(source)})).json()
    await db.execute(
        "update public.transcode_jobs set state = 'encoding', worker_id = 'w', heartbeat_at = now()"
        " where id = %s",
        (job["id"],),
    )
    response = await client.post(f"{API}/{job['id']}/cancel", headers=manager.headers)
    assert response.status_code == 200
    assert (response.json()["state"], response.json()["cancel_requested"]) == ("encoding", True)
    # No worker holds it really: end it so no later watchdog pass finds a "stalled" job.
    await db.execute("update public.transcode_jobs set state = 'cancelled' where id = %s", (job["id"],))


async def test_sources_that_cannot_be_transcoded(
    client: httpx.AsyncClient, manager: SignedIn, db: Db, tmp_path: Path
) -> None:
    path = tmp_path / "f.mp4"
    path.write_bytes(b"\0" * 8)
    gone, _ = await make_source(db, path)
    await db.execute("update public.media_sources set deleted_at = now() where id = %s", (gone,))
    uploading, _ = await make_source(db, path, state="uploading")
    rejected, _ = await make_source(db, path, state="rejected")
    for source_id, code in (
        (gone, "source_gone"),
        (uploading, "source_not_uploaded"),
        (rejected, "source_rejected"),
    ):
        response = await post(client, manager, {"source_id": str(source_id)})
        assert (response.status_code, response.json()["code"]) == (409, code)
    missing = await post(client, manager, {"source_id": str(uuid.uuid4())})
    assert (missing.status_code, missing.json()["code"]) == (404, "source_not_found")
    for bad in (
        {"source_id": str(gone), "priority": 11},
        {"source_id": str(gone), "priority": "urgent"},
        {"source_id": str(gone), "options": {"codec": "av1"}},
    ):
        assert (await post(client, manager, bad)).status_code == 422


async def test_list_filters_and_pages(
    client: httpx.AsyncClient, manager: SignedIn, db: Db, tmp_path: Path
) -> None:
    path = tmp_path / "f.mp4"
    path.write_bytes(b"\0" * 8)
    source_id, title_id = await make_source(db, path)
    other, _ = await make_source(db, path, title_id=title_id)
    ids = [(await post(client, manager, {"source_id": str(s)})).json()["id"] for s in (source_id, other)]
    await client.post(f"{API}/{ids[0]}/cancel", headers=manager.headers)

    page = await client.get(API, params={"title_id": str(title_id), "limit": 1}, headers=manager.headers)
    assert page.status_code == 200
    assert [item["id"] for item in page.json()["items"]] == [ids[1]] and page.json()["next_cursor"]
    rest = await client.get(
        API,
        params={"title_id": str(title_id), "limit": 1, "cursor": page.json()["next_cursor"]},
        headers=manager.headers,
    )
    assert [item["id"] for item in rest.json()["items"]] == [ids[0]] and rest.json()["next_cursor"] is None
    cancelled = await client.get(
        API, params={"title_id": str(title_id), "state": "cancelled"}, headers=manager.headers
    )
    assert [item["id"] for item in cancelled.json()["items"]] == [ids[0]]
    by_source = await client.get(API, params={"source_id": str(other)}, headers=manager.headers)
    assert [item["id"] for item in by_source.json()["items"]] == [ids[1]]
    bad = await client.get(API, params={"cursor": "nonsense"}, headers=manager.headers)
    assert (bad.status_code, bad.json()["code"]) == (400, "invalid_cursor")


async def test_viewers_and_strangers_are_refused(
    client: httpx.AsyncClient, viewer: SignedIn, manager: SignedIn, source: uuid.UUID
) -> None:
    forbidden = await post(client, viewer, {"source_id": str(source)})
    assert (forbidden.status_code, forbidden.json()["code"]) == (403, "permission_denied")
    assert (await client.get(API, headers=viewer.headers)).status_code == 403
    assert (await client.get(f"{API}/{uuid.uuid4()}")).status_code == 401
    unknown = await client.get(f"{API}/{uuid.uuid4()}", headers=manager.headers)
    assert (unknown.status_code, unknown.json()["code"]) == (404, "job_not_found")
    cancel = await client.post(f"{API}/{uuid.uuid4()}/cancel", headers=manager.headers)
    assert (cancel.status_code, cancel.json()["code"]) == (404, "job_not_found")


def test_every_route_documents_its_errors() -> None:
    spec = app.openapi()
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            assert operation.get("summary"), (method, path)
            assert {"401", "403"} <= operation["responses"].keys(), (method, path)


async def test_queueing_is_rate_limited_per_user(
    client: httpx.AsyncClient, database_url: str, source: uuid.UUID, manager: SignedIn
) -> None:
    from shared.infra import ratelimit
    from shared.infra.redis import get_redis
    from shared.transcoding.routes import QUEUE_LIMIT

    busy = await signed_in_user(database_url, roles=["content_manager"])
    # The hour's budget spent (as by QUEUE_LIMIT.limit earlier requests), charged through the real limiter.
    await ratelimit.hit(
        await get_redis(),
        key=f"transcode_jobs:{busy.user_id}",
        limit=QUEUE_LIMIT.limit,
        window_seconds=QUEUE_LIMIT.window_seconds,
        cost=QUEUE_LIMIT.limit,
    )
    refused = await post(client, busy, {"source_id": str(source)})
    assert (refused.status_code, refused.json()["code"]) == (429, "rate_limited")
    assert int(refused.headers["retry-after"]) >= 1
    # Per user: another content manager still queues.
    assert (await post(client, manager, {"source_id": str(source)})).status_code == 202
    operation = app.openapi()["paths"][API]["post"]
    assert "429" in operation["responses"]
