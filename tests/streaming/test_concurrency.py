"""Concurrent stream limits through HTTP: the start race, the active-device list, ending another device's
stream, slots freed by missed heartbeats, one stream per device, and failing closed without Redis."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest
from psycopg.rows import dict_row

from shared.infra.loop_local import reset_all
from shared.infra.redis import get_redis
from shared.settings import get_settings
from shared.streaming.sessions import USER_KEY, get_live_session
from tests.streaming.conftest import (
    SESSIONS,
    Clock,
    Db,
    SettingsEnv,
    Viewer,
    entitle,
    movie,
    new_viewer,
    problem,
    start,
    streaming_app,
)
from tests.support.identity import client_for


async def _records(db: Db, user_id: uuid.UUID) -> list[dict]:
    async with db.cursor(row_factory=dict_row) as cursor:
        await cursor.execute(
            "select id, device_id, ended_at, end_reason, playback from public.stream_sessions"
            " where user_id = %s order by started_at",
            (user_id,),
        )
        return await cursor.fetchall()


async def test_twenty_parallel_starts_on_a_two_stream_plan_make_exactly_two_sessions(
    viewer: Viewer, db: Db
) -> None:
    title_id = await movie(db)
    await entitle(db, viewer.user_id, max_streams=2)
    async with client_for(streaming_app()) as client:
        responses = await asyncio.gather(
            *(start(client, viewer, title_id, device_id=f"device-{n}") for n in range(20))
        )
    statuses = sorted(response.status_code for response in responses)
    assert statuses == [201] * 2 + [409] * 18, [r.text for r in responses if r.status_code not in (201, 409)]
    assert {r.json()["code"] for r in responses if r.status_code == 409} == {"stream_limit_reached"}
    started = {r.json()["session_id"] for r in responses if r.status_code == 201}
    store = await get_redis()
    members = await store.zrangebyscore(USER_KEY.format(viewer.user_id), "-inf", "+inf")
    assert {member.partition("|")[0] for member in members} == started
    # The refused starts left no record behind (their transaction rolled back).
    assert {str(record["id"]) for record in await _records(db, viewer.user_id)} == started


async def test_at_the_limit_the_viewer_sees_the_devices_and_ends_one(
    client: httpx.AsyncClient, viewer: Viewer, db: Db, database_url: str
) -> None:
    title_id = await movie(db)
    await entitle(db, viewer.user_id, max_streams=2)
    tv = (await start(client, viewer, title_id, device_id="tv-1", device_name="TV", device_class="tv")).json()
    phone = (await start(client, viewer, title_id, device_id="phone-1", device_name="Phone")).json()
    body = problem(await start(client, viewer, title_id, device_id="laptop-1"), 409, "stream_limit_reached")
    assert body["title_id"] == str(title_id)
    assert body["max_streams"] == 2
    assert [(s["device_name"], s["device_class"]) for s in body["active_sessions"]] == [
        ("TV", "tv"),
        ("Phone", "web"),
    ]
    listed = await client.get(SESSIONS, headers=viewer.headers)
    assert listed.status_code == 200 and listed.headers["cache-control"] == "private, no-store"
    assert [s["session_id"] for s in listed.json()] == [tv["session_id"], phone["session_id"]]
    # Another account cannot see or end them.
    other = await new_viewer(database_url)
    assert (await client.get(SESSIONS, headers=other.headers)).json() == []
    problem(
        await client.delete(f"{SESSIONS}/{tv['session_id']}", headers=other.headers), 404, "session_not_found"
    )
    # The laptop ends the TV's stream, then starts.
    ended = await client.delete(
        f"{SESSIONS}/{tv['session_id']}", params={"device_id": "laptop-1"}, headers=viewer.headers
    )
    assert ended.status_code == 204, ended.text
    assert await get_live_session(tv["session_id"]) is None
    laptop = await start(client, viewer, title_id, device_id="laptop-1")
    assert laptop.status_code == 201, laptop.text
    records = {record["device_id"]: record for record in await _records(db, viewer.user_id)}
    assert records["tv-1"]["end_reason"] == "evicted" and records["tv-1"]["ended_at"] is not None
    assert records["phone-1"]["ended_at"] is None
    # The TV's heartbeat now says it is over; ending it again is a no-op; the phone stops itself.
    problem(
        await client.post(f"{SESSIONS}/{tv['session_id']}/heartbeat", headers=viewer.headers),
        404,
        "session_ended",
    )
    assert (await client.delete(f"{SESSIONS}/{tv['session_id']}", headers=viewer.headers)).status_code == 204
    assert (
        await client.delete(f"{SESSIONS}/{phone['session_id']}", headers=viewer.headers)
    ).status_code == 204
    records = {record["device_id"]: record for record in await _records(db, viewer.user_id)}
    assert records["phone-1"]["end_reason"] == "stopped"
    assert [s["device_id"] for s in (await client.get(SESSIONS, headers=viewer.headers)).json()] == [
        "laptop-1"
    ]


async def test_missed_heartbeats_free_the_slot(
    client: httpx.AsyncClient, viewer: Viewer, db: Db, clock: Clock
) -> None:
    title_id = await movie(db)
    await entitle(db, viewer.user_id, max_streams=2)
    ttl = get_settings().stream_heartbeat_ttl_seconds
    first = (await start(client, viewer, title_id, device_id="a")).json()
    second = (await start(client, viewer, title_id, device_id="b")).json()
    problem(await start(client, viewer, title_id, device_id="c"), 409, "stream_limit_reached")
    # The first keeps beating, the second goes silent.
    clock.advance(ttl * 2 / 3)
    beat = await client.post(
        f"{SESSIONS}/{first['session_id']}/heartbeat",
        json={"bitrate": 800000, "height": 360},
        headers=viewer.headers,
    )
    assert beat.status_code == 200, beat.text
    assert beat.json()["delivery_token"] != first["delivery_token"]  # fresh: later expiry
    clock.advance(ttl / 3 + 1)
    assert await get_live_session(second["session_id"]) is None
    third = await start(client, viewer, title_id, device_id="c")
    assert third.status_code == 201, third.text
    body = problem(await start(client, viewer, title_id, device_id="d"), 409, "stream_limit_reached")
    assert {s["device_id"] for s in body["active_sessions"]} == {"a", "c"}
    records = {record["device_id"]: record for record in await _records(db, viewer.user_id)}
    assert records["b"]["end_reason"] == "expired"
    # The heartbeat came more than a minute after the start: the quality reached Postgres.
    assert records["a"]["playback"] == {"bitrate": 800000, "height": 360}
    problem(
        await client.post(f"{SESSIONS}/{second['session_id']}/heartbeat", headers=viewer.headers),
        404,
        "session_ended",
    )


async def test_heartbeats_write_postgres_at_most_once_a_minute(
    client: httpx.AsyncClient, viewer: Viewer, db: Db, clock: Clock
) -> None:
    title_id = await movie(db)
    await entitle(db, viewer.user_id)
    session_id = (await start(client, viewer, title_id)).json()["session_id"]
    for bitrate in (1, 2, 3):
        clock.advance(20)
        response = await client.post(
            f"{SESSIONS}/{session_id}/heartbeat", json={"bitrate": bitrate}, headers=viewer.headers
        )
        assert response.status_code == 200, response.text
    assert (await _records(db, viewer.user_id))[0]["playback"] == {"bitrate": 3}  # at 60 s
    clock.advance(20)
    await client.post(f"{SESSIONS}/{session_id}/heartbeat", json={"bitrate": 4}, headers=viewer.headers)
    assert (await _records(db, viewer.user_id))[0]["playback"] == {"bitrate": 3}
    problem(
        await client.post(f"{SESSIONS}/{session_id}/heartbeat", json={"bitrate": -1}, headers=viewer.headers),
        422,
        "validation_failed",
    )


async def test_a_new_start_from_the_same_device_replaces_its_stream(
    client: httpx.AsyncClient, viewer: Viewer, db: Db
) -> None:
    first_title, second_title = await movie(db), await movie(db)
    await entitle(db, viewer.user_id, max_streams=1)
    first = (await start(client, viewer, first_title, device_id="tv")).json()
    second = await start(client, viewer, second_title, device_id="tv")
    assert second.status_code == 201, second.text
    assert await get_live_session(first["session_id"]) is None
    records = {str(r["id"]): r for r in await _records(db, viewer.user_id)}
    assert records[first["session_id"]]["end_reason"] == "stopped"
    assert records[second.json()["session_id"]]["ended_at"] is None


async def test_without_redis_no_stream_starts(
    viewer: Viewer, db: Db, settings_env: SettingsEnv, redis_url: str
) -> None:
    title_id = await movie(db)
    await entitle(db, viewer.user_id)
    settings_env(REDIS_URL="redis://127.0.0.1:1/0")  # nothing listens there
    await reset_all()
    try:
        async with client_for(streaming_app()) as client:
            response = await start(client, viewer, title_id)
        # Through HTTP the bearer check reads Redis first (the login's revocation records), so the answer is
        # ITS code; the slot claim's own `stream_limit_unavailable` is asserted in the next test.
        problem(response, 503, "redis_unavailable")
        assert await _records(db, viewer.user_id) == []
    finally:
        settings_env(REDIS_URL=redis_url)
        await reset_all()


async def test_the_slot_claim_fails_closed_with_its_own_code(
    settings_env: SettingsEnv, redis_url: str
) -> None:
    from shared.streaming.concurrency import StreamLimitUnavailable, claim
    from shared.streaming.sessions import StreamSession

    session = StreamSession(
        id=str(uuid.uuid4()),
        user_id=str(uuid.uuid4()),
        profile_id=None,
        device_id="d",
        device_class="web",
        title_id=str(uuid.uuid4()),
        episode_id=None,
        content_id=str(uuid.uuid4()),
        asset_id=str(uuid.uuid4()),
        max_height=1080,
        ads=False,
        country=None,
        entitlement_id=None,
        started_at=0.0,
        expires_at=90.0,
    )
    settings_env(REDIS_URL="redis://127.0.0.1:1/0")
    await reset_all()
    try:
        with pytest.raises(StreamLimitUnavailable) as raised:
            await claim(session, limit=2, ttl=90, now=1.0)
        assert raised.value.status == 503 and raised.value.code == "stream_limit_unavailable"
    finally:
        settings_env(REDIS_URL=redis_url)
        await reset_all()


async def test_a_start_whose_commit_fails_frees_its_slot(
    client: httpx.AsyncClient, viewer: Viewer, db: Db
) -> None:
    title_id = await movie(db)
    await entitle(db, viewer.user_id, max_streams=1)
    # A deferred constraint, checked at COMMIT only: the start does all its work, takes its slot in Redis,
    # and only then does its transaction fail (as a deadline or a concurrent write could make it).
    await db.execute(
        """
        create or replace function public.test_refuse_at_commit() returns trigger language plpgsql as $$
        begin
          if new.device_id = 'refused-at-commit' then
            raise exception 'refused at commit' using errcode = '23514';
          end if;
          return null;
        end $$;
        drop trigger if exists test_refuse_at_commit on public.stream_sessions;
        create constraint trigger test_refuse_at_commit after insert on public.stream_sessions
          deferrable initially deferred for each row execute function public.test_refuse_at_commit();
        """
    )
    try:
        problem(await start(client, viewer, title_id, device_id="refused-at-commit"), 409, "conflict")
    finally:
        await db.execute(
            "drop trigger test_refuse_at_commit on public.stream_sessions;"
            " drop function public.test_refuse_at_commit();"
        )
    store = await get_redis()
    assert await store.zrangebyscore(USER_KEY.format(viewer.user_id), "-inf", "+inf") == []
    assert await _records(db, viewer.user_id) == []
    # The plan's one stream is free at once, not after the heartbeat expiry.
    assert (await start(client, viewer, title_id, device_id="tv")).status_code == 201


async def test_starts_are_rate_limited_per_account(client: httpx.AsyncClient, viewer: Viewer, db: Db) -> None:
    from shared.infra import ratelimit
    from shared.streaming.service import STARTS

    title_id = await movie(db)
    await entitle(db, viewer.user_id)
    store = await get_redis()
    for _ in range(STARTS.limit):  # a burst of starts already spent the minute's budget
        await ratelimit.hit(
            store,
            key=f"stream_start:{viewer.user_id}",
            limit=STARTS.limit,
            window_seconds=STARTS.window_seconds,
        )
    response = await start(client, viewer, title_id)
    body = problem(response, 429, "rate_limited")
    assert int(response.headers["retry-after"]) >= 1 and body["retry_after"] >= 1
    assert await _records(db, viewer.user_id) == []


def test_the_slot_scripts_touch_only_their_declared_keys() -> None:
    """Redis Cluster and Upstash route a script by its KEYS: a key built inside the script breaks there."""
    import re

    from shared.streaming import concurrency

    scripts = [value for value in vars(concurrency).values() if isinstance(value, concurrency.Script)]
    assert len(scripts) == 3
    for script in scripts:
        for command, key in re.findall(r"redis\.call\('(\w+)',\s*([^,)]+)", script.lua):
            assert key.startswith("KEYS["), (command, key)
