"""Through the streaming group's HTTP API: start a session, report positions, end it, resume elsewhere."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import httpx

from shared.infra.redis import get_redis
from shared.watch import buffer
from tests.streaming.conftest import add_asset, entitle
from tests.support import catalog_factory as make
from tests.support.identity import client_for
from tests.watch.conftest import STREAMING, Watcher, stored, streaming_app


async def start(
    streaming: httpx.AsyncClient, watcher: Watcher, content_id: Any, device: str
) -> dict[str, Any]:
    """POST /api/v1/streaming/sessions; the started session."""
    response = await streaming.post(
        f"{STREAMING}/sessions",
        json={"content_id": str(content_id), "device_id": device},
        headers=watcher.headers,
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_positions_resume_across_sessions_and_a_redis_loss(
    db: Any, streaming: httpx.AsyncClient, watcher: Watcher, stranger: Watcher
) -> None:
    movie = await make.title(db, "End to end", maturity_level="13+")
    await add_asset(db, movie)  # a ready asset of 6 s
    await entitle(db, watcher.user.user_id)
    first = await start(streaming, watcher, movie, "laptop")
    assert first["resume_position"] is None
    position = f"{STREAMING}/sessions/{first['session_id']}/position"
    saved = await streaming.put(
        position, json={"position_seconds": 1.0, "sequence": 1}, headers=watcher.headers
    )
    assert saved.status_code == 200, saved.text
    assert saved.json()["duration_seconds"] == 6  # the asset's, as the player sent none
    await streaming.put(position, json={"position_seconds": 2.5, "sequence": 2}, headers=watcher.headers)
    assert (await stored(db, watcher.profile_id, movie) or {})["position_seconds"] == 1.0  # buffered
    refused = await streaming.put(
        position, json={"position_seconds": 3, "sequence": 3}, headers=stranger.headers
    )
    assert refused.status_code == 404

    # Stopping the session writes the buffered position to Postgres; the ended session takes no more.
    ended = await streaming.delete(f"{STREAMING}/sessions/{first['session_id']}", headers=watcher.headers)
    assert ended.status_code == 204, ended.text
    assert (await stored(db, watcher.profile_id, movie) or {})["position_seconds"] == 2.5
    late = await streaming.put(position, json={"position_seconds": 3, "sequence": 3}, headers=watcher.headers)
    assert late.status_code == 404 and late.json()["code"] == "session_not_found"

    # Redis loses the buffer: the next start still resumes from Postgres.
    await (await get_redis()).delete(buffer.position_key(watcher.profile_id, str(movie)))
    second = await start(streaming, watcher, movie, "tv")
    assert second["resume_position"] == 2.5
    listed = await streaming.get(f"{STREAMING}/continue-watching", headers=watcher.headers)
    (item,) = listed.json()["items"]
    assert item["content_id"] == str(movie) and item["progress"] == round(2.5 * 100 / 6, 1)
    # The newer session (sequence restarting at 0) moves the position on.
    moved = await streaming.put(
        f"{STREAMING}/sessions/{second['session_id']}/position",
        json={"position_seconds": 5.9, "sequence": 0},
        headers=watcher.headers,
    )
    assert moved.json()["applied"] is True and moved.json()["watched"] is True
    await streaming.delete(f"{STREAMING}/sessions/{second['session_id']}", headers=watcher.headers)
    assert (await stored(db, watcher.profile_id, movie) or {})["watched"] is True
    third = await start(streaming, watcher, movie, "phone")
    assert third["resume_position"] is None  # watched: start over
    await streaming.delete(f"{STREAMING}/sessions/{third['session_id']}", headers=watcher.headers)


async def test_start_resumes_from_postgres_after_a_redis_flushall(
    db: Any, watcher: Watcher, settings_env: Any, tmp_path: Path
) -> None:
    from shared.infra.loop_local import reset_all
    from shared.local.services import embedded_redis_url, stop_embedded_redis

    movie = await make.title(db, "Flushed", maturity_level="13+")
    await add_asset(db, movie)
    await entitle(db, watcher.user.user_id)
    shared_redis = os.environ["REDIS_URL"]
    # A Redis of this test's own: FLUSHALL must not touch the shared test server.
    settings_env(REDIS_URL=embedded_redis_url(tmp_path))
    await reset_all()
    try:
        async with client_for(streaming_app()) as streaming:
            first = await start(streaming, watcher, movie, "laptop")
            position = f"{STREAMING}/sessions/{first['session_id']}/position"
            for seconds, sequence in ((1.5, 1), (3.0, 2)):
                saved = await streaming.put(
                    position,
                    json={"position_seconds": seconds, "sequence": sequence},
                    headers=watcher.headers,
                )
                assert saved.status_code == 200, saved.text
            # The first write reached Postgres at once, the second only Redis (inside the flush interval).
            assert (await stored(db, watcher.profile_id, movie) or {})["position_seconds"] == 1.5

            await (await get_redis()).eval("return redis.call('FLUSHALL')")

            # Everything in Redis is gone (live sessions, slots, the buffer): a new start resumes from
            # Postgres, losing at most the writes of one flush interval.
            second = await start(streaming, watcher, movie, "tv")
            assert second["resume_position"] == 1.5
            lost = await streaming.put(
                position, json={"position_seconds": 4, "sequence": 3}, headers=watcher.headers
            )
            assert lost.status_code == 404 and lost.json()["code"] == "session_not_found"
    finally:
        settings_env(REDIS_URL=shared_redis)
        await reset_all()
        stop_embedded_redis(tmp_path)
