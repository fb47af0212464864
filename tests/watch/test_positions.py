"""Positions: monotonic per write sequence, newer sessions win, Redis-buffered and flushed to Postgres."""

from __future__ import annotations

import asyncio
import os
import random
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

from shared.watch import service
from shared.watch.schemas import PositionInput
from tests.support import catalog_factory as make
from tests.watch.conftest import STREAMING, Watcher, live_session, other_profile, stored


def url(session: Any) -> str:
    """The position endpoint of a session."""
    return f"{STREAMING}/sessions/{session.id}/position"


async def save(
    session: Any, position: float, sequence: int, *, now: float, duration: float | None = None
) -> Any:
    """One position write through the service with an injected clock."""
    return await service.save_position(
        session=session,
        position=PositionInput(position_seconds=position, sequence=sequence, duration_seconds=duration),
        now=now,
    )


async def test_out_of_order_and_repeated_writes(
    db: Any, streaming: httpx.AsyncClient, watcher: Watcher
) -> None:
    movie = await make.title(db, "Monotonic")
    session = await live_session(watcher, title_id=movie)
    first = await streaming.put(
        url(session), json={"position_seconds": 50, "sequence": 5}, headers=watcher.headers
    )
    assert first.status_code == 200, first.text
    assert first.json()["applied"] is True and first.json()["position_seconds"] == 50
    assert first.headers["cache-control"] == "private, no-store"
    # An older write arriving late changes nothing and is told the stored position.
    late = await streaming.put(
        url(session), json={"position_seconds": 30, "sequence": 3}, headers=watcher.headers
    )
    assert late.status_code == 200
    assert late.json()["applied"] is False
    assert (late.json()["position_seconds"], late.json()["sequence"]) == (50, 5)
    # The same sequence again is the same write (a retry): 200, nothing changes.
    again = await streaming.put(
        url(session), json={"position_seconds": 51, "sequence": 5}, headers=watcher.headers
    )
    assert again.status_code == 200 and again.json()["applied"] is False
    assert again.json()["position_seconds"] == 50
    newer = await streaming.put(
        url(session), json={"position_seconds": 60, "sequence": 6}, headers=watcher.headers
    )
    assert newer.json()["applied"] is True and newer.json()["position_seconds"] == 60
    async with await _pool_conn() as conn:
        assert await service.resume_position(conn, profile_id=watcher.profile_id, content_id=movie) == 60
    # The first write reached Postgres at once (a flush is due when none happened yet).
    row = await stored(db, watcher.profile_id, movie)
    assert row is not None and row["sequence"] == 5 and row["position_seconds"] == 50


async def test_a_newer_session_wins_over_an_older_one(db: Any, watcher: Watcher) -> None:
    movie = await make.title(db, "Two devices")
    now = time.time()
    phone = await live_session(watcher, title_id=movie, started_at=now - 600)
    tv = await live_session(watcher, title_id=movie, started_at=now - 60)
    assert (await save(phone, 1200, 120, now=now)).applied
    # The TV started later: its sequence restarts at 0 and still wins.
    assert (await save(tv, 300, 0, now=now + 1)).applied
    # The phone, still sending, cannot rewind what the newer session set.
    stale = await save(phone, 1210, 121, now=now + 2)
    assert not stale.applied and stale.position_seconds == 300
    await service.flush_session(db, session_id=tv.id)
    row = await stored(db, watcher.profile_id, movie)
    assert row is not None and (row["position_seconds"], row["sequence"]) == (300, 0)


async def test_twenty_parallel_writes_keep_the_highest_sequence(
    db: Any, streaming: httpx.AsyncClient, watcher: Watcher
) -> None:
    movie = await make.title(db, "Parallel")
    session = await live_session(watcher, title_id=movie)
    sequences = list(range(1, 21))
    random.shuffle(sequences)
    answers = await asyncio.gather(
        *(
            streaming.put(
                url(session), json={"position_seconds": seq * 10, "sequence": seq}, headers=watcher.headers
            )
            for seq in sequences
        )
    )
    assert all(answer.status_code == 200 for answer in answers), [
        a.text for a in answers if a.status_code != 200
    ]
    assert max(answer.json()["sequence"] for answer in answers) == 20
    async with await _pool_conn() as conn:
        assert await service.resume_position(conn, profile_id=watcher.profile_id, content_id=movie) == 200
    # The session's end writes the newest state, whatever order the flushes ran in.
    await service.flush_session(db, session_id=session.id)
    row = await stored(db, watcher.profile_id, movie)
    assert row is not None and (row["sequence"], row["position_seconds"]) == (20, 200)


async def test_flush_interval_and_the_periodic_flush(db: Any, watcher: Watcher, settings_env: Any) -> None:
    settings_env(POSITION_FLUSH_SECONDS="1")
    movie = await make.title(db, "Flushing")
    session = await live_session(watcher, title_id=movie)
    t = time.time()

    async def in_postgres() -> float | None:
        row = await stored(db, watcher.profile_id, movie)
        return None if row is None else row["position_seconds"]

    await save(session, 10, 1, now=t)
    assert await in_postgres() == 10  # first write: flushed at once
    await save(session, 20, 2, now=t + 0.5)
    assert await in_postgres() == 10  # buffered: the last flush is younger than 1 s
    await save(session, 30, 3, now=t + 1.0)
    assert await in_postgres() == 30  # due again
    await save(session, 40, 4, now=t + 1.2)
    assert await in_postgres() == 30
    # The player stops sending: the every-minute maintenance writes what is older than the interval.
    await service.flush_expired(now=t + 1.5)
    assert await in_postgres() == 30  # not yet a flush interval old
    assert await service.flush_expired(now=t + 2.3) >= 1
    assert await in_postgres() == 40
    # Nothing left for it: a second run writes nothing of ours.
    await service.flush_expired(now=t + 5)
    row = await stored(db, watcher.profile_id, movie)
    assert row is not None and row["sequence"] == 4


async def test_session_end_flushes_the_buffered_position(db: Any, watcher: Watcher) -> None:
    movie = await make.title(db, "Ending")
    session = await live_session(watcher, title_id=movie)
    t = time.time()
    await save(session, 100, 1, now=t)
    await save(session, 150, 2, now=t + 5)  # inside the 30 s interval: Redis only
    assert (await stored(db, watcher.profile_id, movie) or {})["position_seconds"] == 100
    await service.flush_session(db, session_id=session.id)
    assert (await stored(db, watcher.profile_id, movie) or {})["position_seconds"] == 150
    # A session that never reported a position is fine too.
    await service.flush_session(db, session_id=(await live_session(watcher, title_id=movie)).id)


async def test_resume_after_redis_flushall_keeps_the_flushed_position(
    db: Any, watcher: Watcher, settings_env: Any, tmp_path: Path
) -> None:
    from shared.infra.loop_local import reset_all
    from shared.infra.redis import get_redis
    from shared.local.services import embedded_redis_url, stop_embedded_redis

    movie = await make.title(db, "Restart")
    shared_redis = os.environ["REDIS_URL"]
    # A Redis of this test's own: FLUSHALL must not touch the shared test server.
    settings_env(REDIS_URL=embedded_redis_url(tmp_path))
    await reset_all()
    try:
        session = await live_session(watcher, title_id=movie)
        t = time.time()
        await save(session, 100, 1, now=t)
        await save(session, 200, 2, now=t + 40)  # past the 30 s interval: flushed
        await save(session, 230, 3, now=t + 45)  # buffered only
        async with await _pool_conn() as conn:
            assert await service.resume_position(conn, profile_id=watcher.profile_id, content_id=movie) == 230
            await (await get_redis()).eval("return redis.call('FLUSHALL')")
            assert await service.resume_position(conn, profile_id=watcher.profile_id, content_id=movie) == 200
    finally:
        settings_env(REDIS_URL=shared_redis)
        await reset_all()
        stop_embedded_redis(tmp_path)


async def test_refusals(db: Any, streaming: httpx.AsyncClient, watcher: Watcher, stranger: Watcher) -> None:
    movie = await make.title(db, "Refusals")
    session = await live_session(watcher, title_id=movie)
    body = {"position_seconds": 5, "sequence": 1}
    # Someone else's session is not found (no hint that it exists).
    other = await streaming.put(url(session), json=body, headers=stranger.headers)
    assert other.status_code == 404 and other.json()["code"] == "session_not_found"
    # An ended or expired session takes no more positions.
    gone = await streaming.put(
        f"{STREAMING}/sessions/{uuid.uuid4()}/position", json=body, headers=watcher.headers
    )
    assert gone.status_code == 404 and gone.json()["code"] == "session_not_found"
    unauthenticated = await streaming.put(url(session), json=body)
    assert unauthenticated.status_code == 401
    for bad in (
        {"position_seconds": -1, "sequence": 1},
        {"position_seconds": 5},
        {"position_seconds": 5, "sequence": -1},
        {"position_seconds": 5, "sequence": 1, "duration_seconds": 0},
        {"position_seconds": "soon", "sequence": 1},
    ):
        refused = await streaming.put(url(session), json=bad, headers=watcher.headers)
        assert refused.status_code == 422, (bad, refused.text)
    assert await stored(db, watcher.profile_id, movie) is None


async def test_another_profile_of_the_same_account_cannot_move_the_position(
    db: Any, streaming: httpx.AsyncClient, watcher: Watcher, stranger: Watcher
) -> None:
    movie = await make.title(db, "Profiles")
    session = await live_session(watcher, title_id=movie)
    child = await other_profile(watcher, "Child")
    body = {"position_seconds": 500, "sequence": 9}
    # Same account, other profile: as unknown as anybody else's session (same code and detail).
    answers = [
        await streaming.put(url(session), json=body, headers=child),
        await streaming.put(url(session), json=body, headers=stranger.headers),
        await streaming.put(f"{STREAMING}/sessions/{uuid.uuid4()}/position", json=body, headers=child),
    ]
    for answer in answers:
        assert answer.status_code == 404, answer.text
        assert answer.json()["code"] == "session_not_found"
    assert len({answer.json()["detail"] for answer in answers}) == 1
    # A token of the account without a profile is not the playing profile either.
    assert (await streaming.put(url(session), json=body, headers=watcher.user.headers)).status_code == 404
    assert await stored(db, watcher.profile_id, movie) is None
    # The playing profile still writes; the other profile's ended session is refused the same way.
    own = await streaming.put(
        url(session), json={"position_seconds": 5, "sequence": 1}, headers=watcher.headers
    )
    assert own.status_code == 200, own.text
    await (await _redis()).delete(f"stream:session:{session.id}")
    ended = await streaming.put(url(session), json=body, headers=child)
    assert ended.status_code == 404 and ended.json()["detail"] == answers[0].json()["detail"]


async def test_content_facts_cache_follows_the_playback_clock(db: Any, watcher: Watcher) -> None:
    movie = await make.title(db, "Credits later", runtime_minutes=100)
    session = await live_session(watcher, title_id=movie)
    t = time.time()
    assert not (await save(session, 5400, 1, now=t)).watched  # 90 of 100 minutes, no credits mark yet
    await db.execute("update public.catalog_titles set credits_start_seconds = 5000 where id = %s", (movie,))
    # Cached for five minutes of the playback clock, then read again: past the credits is watched.
    assert not (await save(session, 5410, 2, now=t + 60)).watched
    assert (await save(session, 5420, 3, now=t + service._META_TTL + 61)).watched


async def _redis() -> Any:
    from shared.infra.redis import get_redis

    return await get_redis()


async def _pool_conn() -> Any:
    from shared.infra.db import get_pool

    return (await get_pool()).connection()
