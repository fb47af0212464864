"""Entitlements seen through a stream start: rentals (first play, play window, expiry with the clock moved
rather than slept), pay-per-view, revocation and commerce's invalidation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx

from shared.entitlements.service import invalidate
from tests.streaming.conftest import Clock, Db, Viewer, entitle, movie, problem, start

WINDOW = 48 * 3600


async def test_a_rental_plays_for_its_window_from_the_first_play(
    client: httpx.AsyncClient, viewer: Viewer, db: Db, clock: Clock
) -> None:
    title_id = await movie(db, access="transactional")
    now = datetime.fromtimestamp(clock.now, UTC)
    rental = await entitle(
        db,
        viewer.user_id,
        kind="rental",
        title_id=title_id,
        ends_at=now + timedelta(days=30),
        play_window_seconds=WINDOW,
        max_height=720,
    )
    response = await start(client, viewer, title_id, device_id="tv")
    assert response.status_code == 201, response.text
    assert response.json()["entitlement"] == "rental" and response.json()["max_height"] == 720
    cursor = await db.execute("select first_played_at from public.entitlements where id = %s", (rental,))
    row = await cursor.fetchone()
    assert row is not None and abs((row[0] - now).total_seconds()) < 1
    # A day later it still plays (the window is counted from the first play, not restarted).
    clock.advance(24 * 3600)
    assert (await start(client, viewer, title_id, device_id="tv")).status_code == 201
    clock.advance(24 * 3600 + 1)
    body = problem(await start(client, viewer, title_id, device_id="tv"), 403, "rental_expired")
    assert body["offers"] == []  # the test title is not on sale (no title_offers)


async def test_a_rental_not_started_before_its_end_has_expired(
    client: httpx.AsyncClient, viewer: Viewer, db: Db
) -> None:
    title_id = await movie(db, access="transactional")
    now = datetime.now(UTC)
    await entitle(
        db,
        viewer.user_id,
        kind="rental",
        title_id=title_id,
        starts_at=now - timedelta(days=40),
        ends_at=now - timedelta(days=10),
        play_window_seconds=WINDOW,
    )
    problem(await start(client, viewer, title_id), 403, "rental_expired")


async def test_pay_per_view_plays_inside_its_window_only(
    client: httpx.AsyncClient, viewer: Viewer, db: Db, clock: Clock
) -> None:
    title_id = await movie(db, access="transactional")
    now = datetime.fromtimestamp(clock.now, UTC)
    await entitle(
        db,
        viewer.user_id,
        kind="ppv",
        title_id=title_id,
        starts_at=now + timedelta(hours=1),
        ends_at=now + timedelta(hours=4),
    )
    problem(await start(client, viewer, title_id), 403, "not_entitled")
    clock.advance(2 * 3600)
    assert (await start(client, viewer, title_id, device_id="tv")).status_code == 201
    clock.advance(3 * 3600)
    problem(await start(client, viewer, title_id, device_id="tv"), 403, "not_entitled")


async def test_a_revoked_subscription_stops_new_streams_once_invalidated(
    client: httpx.AsyncClient, viewer: Viewer, db: Db
) -> None:
    title_id = await movie(db)
    subscription = await entitle(db, viewer.user_id, max_streams=4)
    assert (await start(client, viewer, title_id)).status_code == 201
    await db.execute("update public.entitlements set revoked_at = now() where id = %s", (subscription,))
    await invalidate(viewer.user_id)
    problem(await start(client, viewer, title_id), 403, "not_entitled")


async def test_a_rental_on_a_premium_plan_keeps_the_plan_streams_and_quality(
    client: httpx.AsyncClient, viewer: Viewer, db: Db, clock: Clock
) -> None:
    title_id = await movie(db, access="transactional")
    now = datetime.fromtimestamp(clock.now, UTC)
    await entitle(db, viewer.user_id, tier=4, max_streams=4, max_height=2160)
    await entitle(
        db,
        viewer.user_id,
        kind="rental",
        title_id=title_id,
        ends_at=now + timedelta(days=30),
        play_window_seconds=WINDOW,
        max_streams=1,
        max_height=1080,
    )
    for device in ("a", "b", "c", "d"):
        response = await start(client, viewer, title_id, device_id=device)
        assert response.status_code == 201, response.text
        assert response.json()["entitlement"] == "rental" and response.json()["max_height"] == 2160
    body = problem(await start(client, viewer, title_id, device_id="e"), 409, "stream_limit_reached")
    assert body["max_streams"] == 4
