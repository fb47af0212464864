"""The StreamSession contract (JSON blob, one-GET reads, ending) and resume through a real position."""

from __future__ import annotations

import uuid

import httpx
from psycopg.rows import dict_row

from shared.infra.db import transaction
from shared.infra.redis import get_redis
from shared.streaming.sessions import SESSION_KEY, StreamSession, end_session, get_live_session
from tests.streaming.conftest import SESSIONS, Clock, Db, Viewer, entitle, movie, start


def _session(**fields: object) -> StreamSession:
    base: dict[str, object] = {
        "id": str(uuid.uuid4()),
        "user_id": str(uuid.uuid4()),
        "profile_id": str(uuid.uuid4()),
        "device_id": "tv-1",
        "device_class": "tv",
        "title_id": str(uuid.uuid4()),
        "episode_id": None,
        "content_id": str(uuid.uuid4()),
        "asset_id": str(uuid.uuid4()),
        "max_height": 1080,
        "ads": True,
        "country": "FR",
        "entitlement_id": None,
        "started_at": 1_800_000_000.25,
        "expires_at": 1_800_000_090.25,
        "device_name": "TV",
        "auth_session_id": str(uuid.uuid4()),
    }
    return StreamSession(**{**base, **fields})  # type: ignore[arg-type]


def test_the_blob_round_trips_and_ignores_unknown_fields() -> None:
    session = _session()
    assert StreamSession.from_json(session.to_json()) == session
    newer = session.to_json()[:-1] + ',"field_of_a_newer_version":1}'
    assert StreamSession.from_json(newer) == session
    assert session.member == f"{session.id}|tv-1"


async def test_a_live_session_is_one_get_and_disappears_at_its_expiry(
    client: httpx.AsyncClient, viewer: Viewer, db: Db, clock: Clock
) -> None:
    title_id = await movie(db)
    await entitle(db, viewer.user_id)
    body = (await start(client, viewer, title_id, device_class="mobile")).json()
    live = await get_live_session(body["session_id"])
    assert live is not None
    assert (live.user_id, live.profile_id, live.content_id) == (
        str(viewer.user_id),
        viewer.profile_id,
        str(title_id),
    )
    assert live.max_height == 1080 and live.device_class == "mobile"
    assert live.auth_session_id == viewer.user.session_id
    store = await get_redis()
    assert 0 < await store.ttl(SESSION_KEY.format(live.id)) <= 90
    clock.advance(live.expires_at - clock.now)
    assert await get_live_session(live.id) is None


async def test_end_session_frees_the_slot_and_closes_the_record(
    client: httpx.AsyncClient, viewer: Viewer, db: Db
) -> None:
    title_id = await movie(db)
    await entitle(db, viewer.user_id, max_streams=1)
    session_id = (await start(client, viewer, title_id, device_id="a")).json()["session_id"]
    tx = transaction()
    conn = await anext(tx)
    await end_session(conn, session_id=session_id, reason="revoked")
    await anext(tx, None)  # commits
    assert await get_live_session(session_id) is None
    async with db.cursor(row_factory=dict_row) as cursor:
        await cursor.execute(
            "select ended_at, end_reason from public.stream_sessions where id = %s", (session_id,)
        )
        record = await cursor.fetchone()
    assert record is not None and record["ended_at"] is not None and record["end_reason"] == "revoked"
    assert (await start(client, viewer, title_id, device_id="b")).status_code == 201


async def test_a_restart_resumes_where_the_profile_stopped(
    client: httpx.AsyncClient, viewer: Viewer, db: Db
) -> None:
    title_id = await movie(db)
    await entitle(db, viewer.user_id)
    session_id = (await start(client, viewer, title_id)).json()["session_id"]
    saved = await client.put(
        f"{SESSIONS}/{session_id}/position",
        json={"position_seconds": 42.5, "duration_seconds": 600, "sequence": 1},
        headers=viewer.headers,
    )
    assert saved.status_code == 200, saved.text
    assert (await client.delete(f"{SESSIONS}/{session_id}", headers=viewer.headers)).status_code == 204
    cursor = await db.execute(
        "select position_seconds from public.watch_positions where profile_id = %s and content_id = %s",
        (viewer.profile_id, title_id),
    )
    assert await cursor.fetchone() == (42.5,)  # flushed to Postgres as the session ended
    assert (await start(client, viewer, title_id)).json()["resume_position"] == 42.5


def test_one_reading_of_a_blob_judges_liveness() -> None:
    from shared.streaming.sessions import live_from_blob

    session = _session()
    assert live_from_blob(None, 0.0) is None
    assert live_from_blob(session.to_json(), session.expires_at - 1) == session
    assert live_from_blob(session.to_json(), session.expires_at) is None  # expired at its expiry


async def _record(db: Db, session_id: str) -> dict:
    async with db.cursor(row_factory=dict_row) as cursor:
        await cursor.execute(
            "select started_at, last_heartbeat_at, ended_at, end_reason from public.stream_sessions"
            " where id = %s",
            (session_id,),
        )
        row = await cursor.fetchone()
    assert row is not None
    return row


async def test_records_of_vanished_players_are_closed_by_the_maintenance(
    client: httpx.AsyncClient, viewer: Viewer, db: Db, clock: Clock
) -> None:
    from shared.settings import get_settings
    from shared.streaming.service import EXPIRED_MARGIN_SECONDS, RECORD_SECONDS, close_expired_sessions

    settings = get_settings()
    ttl = settings.stream_heartbeat_ttl_seconds
    title_id = await movie(db)
    await entitle(db, viewer.user_id, max_streams=3)
    vanished = (await start(client, viewer, title_id, device_id="vanished")).json()["session_id"]
    beating = (await start(client, viewer, title_id, device_id="beating")).json()["session_id"]
    stopped = (await start(client, viewer, title_id, device_id="stopped")).json()["session_id"]
    assert (await client.delete(f"{SESSIONS}/{stopped}", headers=viewer.headers)).status_code == 204
    started_at = clock.now
    # The beating player's recorded heartbeat lags (it is written once a minute): only Redis says it lives.
    for _ in range(8):
        clock.advance(30)
        beat = await client.post(f"{SESSIONS}/{beating}/heartbeat", headers=viewer.headers)
        assert beat.status_code == 200, beat.text
    await db.execute(
        "update public.stream_sessions set last_heartbeat_at = to_timestamp(%s) where id = %s",
        (started_at, beating),
    )
    assert clock.now - started_at > ttl + EXPIRED_MARGIN_SECONDS
    assert await close_expired_sessions(settings=settings) >= 1  # earlier tests' abandoned streams too
    record = await _record(db, vanished)
    assert record["end_reason"] == "expired"
    # Ended no later than it could have been alive: its last recorded beat plus the expiry and the lag.
    lapse = (record["ended_at"] - record["last_heartbeat_at"]).total_seconds()
    assert abs(lapse - (ttl + RECORD_SECONDS)) < 1e-3
    assert (await _record(db, beating))["ended_at"] is None
    assert (await _record(db, stopped))["end_reason"] == "stopped"
    assert await close_expired_sessions(settings=settings) == 0  # idempotent
