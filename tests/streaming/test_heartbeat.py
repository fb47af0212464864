"""Heartbeats through HTTP: only the profile and login that started a stream may keep it alive (with no
hint about anyone else's sessions), the entitlement is checked again on every beat, and neither the session
nor its delivery tokens outlive the entitlement."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import httpx
from psycopg.rows import dict_row

from shared.delivery.tokens import decode, delivery_secret
from shared.entitlements.service import invalidate
from shared.settings import get_settings
from shared.streaming.sessions import get_live_session
from tests.streaming.conftest import (
    PROFILES,
    SESSIONS,
    Clock,
    Db,
    Viewer,
    bearer,
    entitle,
    movie,
    problem,
    start,
)
from tests.support.identity import auth_client, log_in, users_client


async def _select(access_token: str, profile_id: str) -> dict[str, str]:
    """Headers of a token of this login bound to the profile."""
    async with users_client() as client:
        selected = await client.post(f"{PROFILES}/{profile_id}/select", headers=bearer(access_token))
    assert selected.status_code == 200, selected.text
    return bearer(selected.json()["access_token"])


async def _second_profile(viewer: Viewer) -> str:
    async with users_client() as client:
        made = await client.post(PROFILES, json={"name": "Second"}, headers=viewer.user.headers)
    assert made.status_code == 201, made.text
    return str(made.json()["id"])


async def _beat(client: httpx.AsyncClient, session_id: str, headers: dict[str, str]) -> httpx.Response:
    return await client.post(f"{SESSIONS}/{session_id}/heartbeat", headers=headers)


async def _end_reason(db: Db, session_id: str) -> str | None:
    async with db.cursor(row_factory=dict_row) as cursor:
        await cursor.execute("select end_reason from public.stream_sessions where id = %s", (session_id,))
        row = await cursor.fetchone()
    assert row is not None
    return row["end_reason"]


async def test_another_profile_of_the_account_can_neither_beat_nor_see_a_stream(
    client: httpx.AsyncClient, viewer: Viewer, db: Db
) -> None:
    title_id = await movie(db)
    await entitle(db, viewer.user_id, max_streams=1)
    other = await _select(viewer.user.access_token, await _second_profile(viewer))
    session_id = (await start(client, viewer, title_id, device_id="tv", device_name="TV")).json()[
        "session_id"
    ]
    live_answer = problem(await _beat(client, session_id, other), 404, "session_not_found")
    # The other profile sees a device, not what plays on it; the profile that started it sees both.
    theirs = (await client.get(SESSIONS, headers=other)).json()
    assert [(s["session_id"], s["device_name"], s["this_profile"]) for s in theirs] == [
        (session_id, "TV", False)
    ]
    assert (theirs[0]["content_id"], theirs[0]["title_id"], theirs[0]["episode_id"]) == (None, None, None)
    mine = (await client.get(SESSIONS, headers=viewer.headers)).json()
    assert mine[0]["this_profile"] is True and mine[0]["content_id"] == str(title_id)
    # Their own stream's limit answer shows the same: devices, no content of other profiles.
    body = problem(
        await start(client, viewer, title_id, device_id="phone", headers=other), 409, "stream_limit_reached"
    )
    assert [(s["device_id"], s["content_id"]) for s in body["active_sessions"]] == [("tv", None)]
    # Ended: the profile that started it hears "ended", the other the very same "not found" as before.
    assert (await client.delete(f"{SESSIONS}/{session_id}", headers=viewer.headers)).status_code == 204
    problem(await _beat(client, session_id, viewer.headers), 404, "session_ended")
    ended_answer = problem(await _beat(client, session_id, other), 404, "session_not_found")
    assert {k: v for k, v in live_answer.items() if k not in ("request_id", "instance")} == {
        k: v for k, v in ended_answer.items() if k not in ("request_id", "instance")
    }
    problem(await _beat(client, str(uuid.uuid4()), viewer.headers), 404, "session_not_found")


async def test_only_the_login_that_started_a_stream_keeps_it_alive(
    client: httpx.AsyncClient, viewer: Viewer, db: Db
) -> None:
    title_id = await movie(db)
    await entitle(db, viewer.user_id)
    session_id = (await start(client, viewer, title_id)).json()["session_id"]
    # The same account and profile, signed in on another device.
    second_login = await log_in(viewer.user.email, viewer.user.password)
    elsewhere = await _select(second_login.access_token, viewer.profile_id)
    problem(await _beat(client, session_id, elsewhere), 404, "session_not_found")
    assert (await _beat(client, session_id, viewer.headers)).status_code == 200
    # Signing the first login out ends its tokens: the stream has no one left to keep it alive.
    async with auth_client() as auth:
        assert (await auth.post("/api/v1/auth/logout", headers=viewer.headers)).status_code == 204
    problem(await _beat(client, session_id, viewer.headers), 401, "invalid_token")
    problem(await _beat(client, session_id, elsewhere), 404, "session_not_found")


async def test_a_lost_entitlement_ends_the_stream_at_the_next_heartbeat(
    client: httpx.AsyncClient, viewer: Viewer, db: Db
) -> None:
    title_id = await movie(db)
    subscription = await entitle(db, viewer.user_id)
    session_id = (await start(client, viewer, title_id)).json()["session_id"]
    assert (await _beat(client, session_id, viewer.headers)).status_code == 200
    await db.execute("update public.entitlements set revoked_at = now() where id = %s", (subscription,))
    await invalidate(viewer.user_id)
    body = problem(await _beat(client, session_id, viewer.headers), 403, "not_entitled")
    assert body["offers"] == ["subscribe", "rent", "buy"]
    assert await get_live_session(session_id) is None
    assert await _end_reason(db, session_id) == "revoked"
    problem(await _beat(client, session_id, viewer.headers), 404, "session_ended")


async def test_a_shortened_rental_ends_the_stream_as_expired(
    client: httpx.AsyncClient, viewer: Viewer, db: Db, clock: Clock
) -> None:
    title_id = await movie(db, access="transactional")
    now = datetime.fromtimestamp(clock.now, UTC)
    rental = await entitle(
        db,
        viewer.user_id,
        kind="rental",
        title_id=title_id,
        ends_at=now + timedelta(days=2),
        play_window_seconds=7200,
    )
    session_id = (await start(client, viewer, title_id)).json()["session_id"]
    # Commerce corrects the window to one minute (from the first play, which this start recorded).
    await db.execute("update public.entitlements set play_window_seconds = 60 where id = %s", (rental,))
    await invalidate(viewer.user_id)
    clock.advance(61)
    problem(await _beat(client, session_id, viewer.headers), 403, "rental_expired")
    assert await _end_reason(db, session_id) == "revoked"


async def test_no_session_or_token_outlives_the_rental(
    client: httpx.AsyncClient, viewer: Viewer, db: Db, clock: Clock
) -> None:
    title_id = await movie(db, access="transactional")
    now = datetime.fromtimestamp(clock.now, UTC)
    window = 300  # shorter than a delivery token's lifetime (STREAM_TOKEN_TTL_SECONDS, 900 by default)
    await entitle(
        db,
        viewer.user_id,
        kind="rental",
        title_id=title_id,
        ends_at=now + timedelta(days=2),
        play_window_seconds=window,
    )
    started = (await start(client, viewer, title_id)).json()
    end = clock.now + window
    assert datetime.fromisoformat(started["token_expires_at"]).timestamp() <= end
    live = await get_live_session(started["session_id"])
    assert live is not None and live.valid_until is not None and abs(live.valid_until - end) < 1e-3
    beats = []
    for step in (60, 60, 60, 60, 61):  # 60 .. 240 s, then just past the window
        clock.advance(step)
        beats.append(await _beat(client, started["session_id"], viewer.headers))
    assert [b.status_code for b in beats[:4]] == [200] * 4, beats[-1].text
    last = beats[3].json()
    assert abs(datetime.fromisoformat(last["expires_at"]).timestamp() - end) < 1e-3  # not now + 90 s
    assert datetime.fromisoformat(last["token_expires_at"]).timestamp() <= end
    for token in (started["delivery_token"], last["delivery_token"]):  # the signed claim, not only the field
        assert decode(token, secret=delivery_secret(get_settings())).expires_at <= end
    # At the end of the window the session is over (it expired with the rental).
    problem(beats[4], 404, "session_ended")
