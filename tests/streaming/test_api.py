"""POST /api/v1/streaming/sessions through HTTP: what a started session describes, and every refusal in
its order (content, window, geo, maturity, entitlement, stream limit, playable asset)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import httpx
import psycopg
from psycopg.rows import dict_row

from shared.delivery.tokens import delivery_secret, verify
from shared.settings import get_settings
from tests.streaming.conftest import Db, Viewer, entitle, movie, new_viewer, problem, start, streaming_app
from tests.support import catalog_factory as factory
from tests.support.identity import client_for, random_ip, signed_in_user

NOW = datetime.now(UTC)


async def test_a_started_session_describes_the_stream(
    client: httpx.AsyncClient, viewer: Viewer, db: Db
) -> None:
    title_id = await movie(db)
    await entitle(db, viewer.user_id, tier=2, max_streams=2, max_height=2160)
    response = await start(client, viewer, title_id, device_name="Living room", device_class="web")
    assert response.status_code == 201, response.text
    assert response.headers["cache-control"] == "private, no-store"
    body = response.json()
    session_id = body["session_id"]
    assert body["content_id"] == body["title_id"] == str(title_id) and body["episode_id"] is None
    assert body["manifests"] == {
        "hls": f"/api/v1/streaming/{title_id}/manifest?session={session_id}&format=hls",
        "dash": f"/api/v1/streaming/{title_id}/manifest?session={session_id}&format=dash",
    }
    assert body["resume_position"] is None
    assert body["ads"] is False and body["entitlement"] == "subscription" and body["max_height"] == 2160
    assert [(t["language"], t["default"]) for t in body["audio_tracks"]] == [("eng", True), ("fra", False)]
    # The token opens this asset's prefix only, and every track URL carries it in the path.
    token = body["delivery_token"]
    async with await psycopg.AsyncConnection.connect(get_settings().database_url or "") as conn:
        cursor = await conn.execute(
            "select id from public.media_assets where title_id = %s and is_current", (title_id,)
        )
        row = await cursor.fetchone()
    assert row is not None
    asset = str(row[0])
    claims = verify(
        token,
        f"media/assets/{asset}/images/thumbnails.vtt",
        secret=delivery_secret(get_settings()),
        now=int(NOW.timestamp()),
    )
    assert claims.session_id == session_id and claims.asset_id == asset
    assert datetime.fromtimestamp(claims.expires_at, UTC) == datetime.fromisoformat(body["token_expires_at"])
    signed = f"/t/{token}/media/assets/{asset}/"
    subtitles = {(t["language"], t["forced"]): t["url"] for t in body["subtitle_tracks"]}
    assert subtitles[("en", False)].endswith(signed + "hls/subtitles/en.m3u8")
    assert subtitles[("fr", True)].endswith(signed + "hls/subtitles/fr_forced.m3u8")
    assert body["thumbnails"]["url"].endswith(signed + "images/thumbnails.vtt")
    assert body["thumbnails"]["tile_width"] == 160
    assert datetime.fromisoformat(body["expires_at"]) > datetime.now(UTC)
    # The record of the start.
    async with db.cursor(row_factory=dict_row) as cursor:
        await cursor.execute("select * from public.stream_sessions where id = %s", (session_id,))
        record = await cursor.fetchone()
    assert record is not None
    assert record["user_id"] == viewer.user_id and str(record["profile_id"]) == viewer.profile_id
    assert record["device_name"] == "Living room" and record["max_height"] == 2160
    assert record["ended_at"] is None and str(record["asset_id"]) == asset


async def test_an_episode_plays_by_its_id_and_a_series_id_is_not_content(
    client: httpx.AsyncClient, viewer: Viewer, db: Db, database_url: str
) -> None:
    from tests.streaming.conftest import add_asset

    series = await factory.title(db, "Serial", kind="series", maturity_level="all")
    await factory.season(db, series, 1, episodes=2)
    cursor = await db.execute(
        "select id from public.catalog_episodes where title_id = %s order by number", (series,)
    )
    first, second = [row[0] for row in await cursor.fetchall()]
    await add_asset(db, series, first)
    await entitle(db, viewer.user_id)
    response = await start(client, viewer, first)
    assert response.status_code == 201, response.text
    assert response.json()["episode_id"] == str(first) and response.json()["title_id"] == str(series)
    problem(await start(client, viewer, series), 404, "content_not_found")
    # Refusals of an episode name its series, which a client shows and sells.
    assert problem(await start(client, viewer, second), 409, "not_playable_yet")["title_id"] == str(series)
    stranger = await new_viewer(database_url)
    assert problem(await start(client, stranger, first), 403, "not_entitled")["title_id"] == str(series)


async def test_a_token_without_a_profile_is_refused(
    client: httpx.AsyncClient, db: Db, database_url: str
) -> None:
    user = await signed_in_user(database_url)
    response = await client.post(
        "/api/v1/streaming/sessions",
        json={"content_id": str(await movie(db)), "device_id": "d1"},
        headers=user.headers,
    )
    problem(response, 400, "profile_required")
    response = await client.post(
        "/api/v1/streaming/sessions", json={"content_id": str(uuid.uuid4()), "device_id": "d1"}
    )
    problem(response, 401, "unauthenticated")


async def test_missing_deleted_and_unpublished_content_is_not_found(
    client: httpx.AsyncClient, viewer: Viewer, db: Db
) -> None:
    await entitle(db, viewer.user_id)
    problem(await start(client, viewer, uuid.uuid4()), 404, "content_not_found")
    problem(await start(client, viewer, await movie(db, status="draft")), 404, "content_not_found")
    problem(await start(client, viewer, await movie(db, deleted_at=NOW)), 404, "content_not_found")
    # Published but outside its window, or scheduled for later: not available (even where geo-blocked:
    # the window is checked first).
    expired = await movie(db, available_until=NOW - timedelta(days=1), country_deny=["FR", "US"])
    problem(await start(client, viewer, expired), 403, "not_available")
    upcoming = await movie(db, status="scheduled", publish_at=NOW + timedelta(days=2))
    problem(await start(client, viewer, upcoming), 403, "not_available")


async def test_maturity_is_checked_after_geo_and_before_the_entitlement(
    db: Db, database_url: str, settings_env
) -> None:
    proxy = random_ip()
    settings_env(TRUSTED_PROXIES=proxy)
    kid = await new_viewer(database_url, kids=True)
    adult_only = await movie(db, maturity_level="18+")
    blocked_adult_only = await movie(db, maturity_level="18+", country_deny=["FR"])
    family = await movie(db, maturity_level="all")
    in_france = {"x-vercel-ip-country": "FR"}
    async with client_for(streaming_app(), client_ip=proxy) as client:
        problem(await start(client, kid, blocked_adult_only, headers=in_france), 403, "geo_blocked")
        # No entitlement either: maturity comes first.
        problem(await start(client, kid, adult_only, headers=in_france), 403, "maturity_restricted")
        body = problem(await start(client, kid, family, headers=in_france), 403, "not_entitled")
        assert body["offers"] == ["subscribe"]  # not sold to rent or buy: no such offers
        await entitle(db, kid.user_id)
        assert (await start(client, kid, family, headers=in_france)).status_code == 201


async def test_not_entitled_lists_what_would_entitle(
    client: httpx.AsyncClient, viewer: Viewer, db: Db
) -> None:
    premium = await movie(db, access="subscription", min_tier=3)
    bought_only = await movie(db, access="transactional")
    rent_only = await movie(db, access="transactional")
    # Rent and buy are offered only where the title is sold that way (commerce's title_offers).
    for title_id, kind in ((premium, "rental"), (premium, "purchase"), (bought_only, "purchase")):
        await db.execute(
            "insert into public.title_offers (title_id, kind, currency, amount_minor) "
            "values (%s, %s, 'USD', 399)",
            (title_id, kind),
        )
    await db.execute(
        "insert into public.title_offers (title_id, kind, currency, amount_minor, active) "
        "values (%s, 'purchase', 'USD', 999, false)",  # withdrawn: not on sale
        (rent_only,),
    )
    await db.execute(
        "insert into public.title_offers (title_id, kind, currency, amount_minor) "
        "values (%s, 'rental', 'EUR', 299)",
        (rent_only,),
    )
    body = problem(await start(client, viewer, premium), 403, "not_entitled")
    assert body["offers"] == ["subscribe", "rent", "buy"]
    await entitle(db, viewer.user_id, tier=2)
    body = problem(await start(client, viewer, premium), 403, "not_entitled")
    assert body["offers"] == ["upgrade", "rent", "buy"]
    body = problem(await start(client, viewer, bought_only), 403, "not_entitled")
    assert body["offers"] == ["buy"] and "rent or buy" in body["detail"]
    body = problem(await start(client, viewer, rent_only), 403, "not_entitled")
    assert body["offers"] == ["rent"]


async def test_free_titles_play_without_a_subscription_with_the_free_limits(
    client: httpx.AsyncClient, viewer: Viewer, db: Db
) -> None:
    free = await movie(db, access="free")
    with_ads = await movie(db, access="free_with_ads")
    settings = get_settings()
    body = (await start(client, viewer, free, device_id="phone")).json()
    assert body["entitlement"] == "free" and body["ads"] is False
    assert body["max_height"] == settings.free_max_height
    # FREE_MAX_STREAMS (1): another device is at the limit, the same device switches titles.
    body = problem(await start(client, viewer, with_ads, device_id="tv"), 409, "stream_limit_reached")
    assert body["max_streams"] == settings.free_max_streams == 1
    body = (await start(client, viewer, with_ads, device_id="phone")).json()
    assert body["ads"] is True and body["entitlement"] == "free"


async def test_an_ad_free_plan_removes_the_ads_an_ad_supported_one_keeps_them(
    client: httpx.AsyncClient, db: Db, database_url: str
) -> None:
    with_ads = await movie(db, access="free_with_ads")
    paid = await movie(db)
    ad_free, supported = await new_viewer(database_url), await new_viewer(database_url)
    await entitle(db, ad_free.user_id, ad_free=True, max_streams=4)
    await entitle(db, supported.user_id, ad_free=False, max_streams=4)
    assert (await start(client, ad_free, with_ads)).json()["ads"] is False
    assert (await start(client, supported, with_ads)).json()["ads"] is True
    assert (await start(client, supported, paid)).json()["ads"] is True
    assert (await start(client, ad_free, paid)).json()["ads"] is False


async def test_the_device_class_caps_the_quality(client: httpx.AsyncClient, viewer: Viewer, db: Db) -> None:
    title_id = await movie(db)
    await entitle(db, viewer.user_id, max_streams=4, max_height=2160)
    heights = {}
    for device_class in ("web", "mobile", "tv"):
        response = await start(client, viewer, title_id, device_class=device_class)
        assert response.status_code == 201, response.text
        heights[device_class] = response.json()["max_height"]
    assert heights == {"web": 2160, "mobile": 1080, "tv": 2160}
    problem(await start(client, viewer, title_id, device_class="toaster"), 422, "validation_failed")
    problem(await start(client, viewer, title_id, device_id="has space"), 422, "validation_failed")


async def test_without_a_playable_asset_the_limit_is_still_reported_first(
    client: httpx.AsyncClient, viewer: Viewer, db: Db
) -> None:
    playable = await movie(db)
    not_yet = await movie(db, asset=False)
    await entitle(db, viewer.user_id, max_streams=1)
    problem(await start(client, viewer, not_yet), 409, "not_playable_yet")
    assert (await start(client, viewer, playable, device_id="tv")).status_code == 201
    body = problem(await start(client, viewer, not_yet, device_id="phone"), 409, "stream_limit_reached")
    assert [s["device_id"] for s in body["active_sessions"]] == ["tv"]
    # The same device may switch titles: its stream is replaced, so only "not playable" stands.
    problem(await start(client, viewer, not_yet, device_id="tv"), 409, "not_playable_yet")
