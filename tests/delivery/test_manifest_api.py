"""GET /api/v1/streaming/{contentId}/manifest on a real transcoded asset, through the real session API."""

from __future__ import annotations

import time
import uuid
import xml.etree.ElementTree as ET
from typing import Any
from urllib.parse import urlsplit

import httpx
import m3u8
import pytest

from shared.delivery.tokens import delivery_secret, verify
from shared.infra.loop_local import reset_all
from shared.settings import get_settings
from tests.delivery.conftest import CAP, Playing, new_playing, streaming_app
from tests.support.identity import client_for

# Every test plays the session's real transcoded asset (one ffmpeg run per test session).
pytestmark = pytest.mark.slow

MPD = "{urn:mpeg:dash:schema:mpd:2011}"


def _checked(url: str, playing: Playing) -> str:
    """Assert an absolute URL signed for the session's asset under MEDIA_BASE_URL; its storage key."""
    parts = urlsplit(url)
    base = urlsplit(str(get_settings().public_base_url))  # MEDIA_BASE_URL defaults to it
    assert (parts.scheme, parts.netloc) == (base.scheme, base.netloc), url
    assert parts.path.startswith("/t/"), url
    token, _, key = parts.path[3:].partition("/")
    claims = verify(token, key, secret=delivery_secret(get_settings()), now=int(time.time()))
    assert claims.session_id == playing.session_id and claims.asset_id == playing.asset.asset_id
    assert claims.max_height == playing.start["max_height"]  # the session's cap rides in the token
    assert key.startswith(playing.asset.prefix)
    return key


async def test_hls_master_is_capped_and_every_uri_signed(api: httpx.AsyncClient, playing: Playing) -> None:
    response = await api.get(playing.manifest_path("hls"), headers=playing.headers)

    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/vnd.apple.mpegurl"
    assert response.headers["cache-control"] == "private, no-store"
    master = m3u8.loads(response.text)
    assert master.is_variant
    # The asset has 240p (416x234) and 360p; the plan's cap of 240 keeps the first only.
    assert [p.stream_info.resolution for p in master.playlists] == [(416, 234)]
    assert [p.iframe_stream_info.resolution for p in master.iframe_playlists] == [(320, 180)]
    keys = [_checked(p.uri, playing) for p in master.playlists]
    keys += [_checked(p.uri, playing) for p in master.iframe_playlists]
    media = {(m.type, m.language): _checked(m.uri, playing) for m in master.media}
    assert keys[0].endswith("hls/h264_240p/playlist.m3u8") and keys[1].endswith("hls/trickplay/playlist.m3u8")
    assert set(media) == {("AUDIO", "en"), ("AUDIO", "fr"), ("SUBTITLES", "en"), ("SUBTITLES", "fr")}
    forced = [m for m in master.media if m.type == "SUBTITLES" and m.forced == "YES"]
    assert [m.language for m in forced] == ["fr"]
    assert "360p" not in response.text and "640x360" not in response.text


async def test_a_higher_plan_gets_every_rendition(database_url: str) -> None:
    premium = await new_playing(database_url, max_height=2160)
    async with client_for(streaming_app(), client_ip=premium.client_ip) as client:
        hls = await client.get(premium.manifest_path("hls"), headers=premium.headers)
        dash = await client.get(premium.manifest_path("dash"), headers=premium.headers)
    assert [p.stream_info.resolution for p in m3u8.loads(hls.text).playlists] == [(416, 234), (640, 360)]
    heights = {r.get("height") for r in ET.fromstring(dash.text).iter(f"{MPD}Representation")}
    assert {"234", "360"} <= heights


async def test_dash_mpd_is_capped_with_signed_base_url_and_licence_urls(
    api: httpx.AsyncClient, playing: Playing
) -> None:
    response = await api.get(playing.manifest_path("dash"), headers=playing.headers)

    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/dash+xml"
    assert response.headers["cache-control"] == "private, no-store"
    root = ET.fromstring(response.text)
    [base] = root.findall(f"{MPD}BaseURL")
    assert _checked(str(base.text) + "h264_240p/init.mp4", playing).endswith("/dash/h264_240p/init.mp4")
    assert str(base.text).endswith(f"{playing.asset.prefix}dash/")
    representations = list(root.iter(f"{MPD}Representation"))
    video = [r for r in representations if r.get("height")]
    assert video and all(int(str(r.get("height"))) <= CAP for r in video)
    assert {r.get("id") for r in video} == {"h264_240p", "trickplay"}
    assert {r.get("id") for r in representations if r.get("id", "").startswith("audio_")} == {
        "audio_eng",
        "audio_fra",
    }
    for adaptation in root.iter(f"{MPD}AdaptationSet"):  # maxHeight follows what is left
        if adaptation.get("maxHeight"):
            assert int(str(adaptation.get("maxHeight"))) <= CAP
    # Subtitles: relative BaseURLs under the signed MPD-level BaseURL.
    texts = [r.find(f"{MPD}BaseURL") for r in representations if r.get("id", "").startswith("text_")]
    assert len(texts) == 2 and all(t is not None and str(t.text).startswith("subtitles/") for t in texts)
    # ClearKey licence URL on every protected set, with the session's token; no DRM server configured.
    clearkey = [
        p
        for p in root.iter(f"{MPD}ContentProtection")
        if p.get("schemeIdUri") == "urn:uuid:e2719d58-a985-b3c9-781a-b030af78d30e"
    ]
    assert clearkey
    for protection in clearkey:
        laurl = protection.find("{https://dashif.org/CPS}Laurl")
        legacy = protection.find("{http://dashif.org/guidelines/clearKey}Laurl")
        assert laurl is not None and legacy is not None and laurl.text == legacy.text
        url = urlsplit(str(laurl.text))
        assert url.path == "/api/v1/streaming/licence/clearkey"
        token = url.query.removeprefix("token=")
        claims = verify(token, playing.asset.prefix + "x", secret=delivery_secret(get_settings()), now=0)
        assert claims.session_id == playing.session_id
    assert "{https://dashif.org/CPS}Laurl" not in {
        child.tag
        for p in root.iter(f"{MPD}ContentProtection")
        if "edef8ba9" in (p.get("schemeIdUri") or "")
        for child in p
    }


async def test_widevine_licence_url_when_a_licence_server_is_configured(
    settings_env: Any, playing: Playing
) -> None:
    settings_env(DRM_WIDEVINE_URL="http://127.0.0.1:9/widevine")
    await reset_all()
    async with client_for(streaming_app(), client_ip=playing.client_ip) as client:
        response = await client.get(playing.manifest_path("dash"), headers=playing.headers)
    root = ET.fromstring(response.text)
    widevine = [p for p in root.iter(f"{MPD}ContentProtection") if "edef8ba9" in (p.get("schemeIdUri") or "")]
    urls = {str(p.findtext("{https://dashif.org/CPS}Laurl")) for p in widevine}
    assert len(urls) == 1 and urlsplit(urls.pop()).path == "/api/v1/streaming/licence/widevine"


async def test_refusals(api: httpx.AsyncClient, playing: Playing, database_url: str) -> None:
    path = playing.manifest_path("hls")
    assert (await api.get(path)).status_code == 401
    bad = await api.get(path, headers={"authorization": "Bearer not-a-jwt"})
    assert bad.status_code == 401 and bad.json()["code"] == "invalid_token"
    unknown = await api.get(path.replace(playing.session_id, str(uuid.uuid4())), headers=playing.headers)
    assert unknown.status_code == 404 and unknown.json()["code"] == "session_not_found"
    other_content = path.replace(playing.asset.content_id, str(uuid.uuid4()))
    mismatch = await api.get(other_content, headers=playing.headers)
    assert mismatch.status_code == 409 and mismatch.json()["code"] == "session_content_mismatch"
    wrong_format = await api.get(path.replace("format=hls", "format=smooth"), headers=playing.headers)
    assert wrong_format.status_code == 422 and wrong_format.json()["code"] == "validation_failed"
    # Another signed-in user cannot read this session's manifest.
    from tests.delivery.conftest import profile_headers
    from tests.support.identity import signed_in_user

    intruder = await profile_headers(await signed_in_user(database_url))
    stolen = await api.get(path, headers=intruder)
    assert stolen.status_code == 404 and stolen.json()["code"] == "session_not_found"


async def _other_profile_headers(playing: Playing, *, kids: bool) -> dict[str, str]:
    """A bearer of the same login, switched to a new profile of the same account."""
    from tests.support.identity import users_client

    async with users_client() as client:
        created = await client.post(
            "/api/v1/users/me/profiles",
            json={"name": f"P{uuid.uuid4().hex[:6]}", "is_kids": kids},
            headers=playing.headers,
        )
        assert created.status_code == 201, created.text
        selected = await client.post(
            f"/api/v1/users/me/profiles/{created.json()['id']}/select", headers=playing.headers
        )
        assert selected.status_code == 200, selected.text
    return {"authorization": f"Bearer {selected.json()['access_token']}"}


async def test_another_profile_of_the_account_cannot_read_the_manifest(database_url: str) -> None:
    mine = await new_playing(database_url)
    async with client_for(streaming_app(), client_ip=mine.client_ip) as client:
        assert (await client.get(mine.manifest_path(), headers=mine.headers)).status_code == 200
        for kids in (True, False):
            other = await _other_profile_headers(mine, kids=kids)
            for kind in ("hls", "dash"):
                refused = await client.get(mine.manifest_path(kind), headers=other)
                assert refused.status_code == 404, refused.text
                assert refused.json()["code"] == "session_not_found"
        # The account's login without a profile is not the session's profile either.
        bare = await client.get(mine.manifest_path(), headers=mine.viewer.headers)
        assert bare.status_code == 404 and bare.json()["code"] == "session_not_found"


async def test_a_stranger_gets_one_answer_for_live_expired_ended_and_unknown_sessions(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from shared.streaming import sessions
    from tests.delivery.conftest import profile_headers
    from tests.support.identity import signed_in_user

    live = await new_playing(database_url)
    expired = await new_playing(database_url)
    ended = await new_playing(database_url)
    stranger = await profile_headers(await signed_in_user(database_url))
    async with client_for(streaming_app(), client_ip=live.client_ip) as client:
        stopped = await client.delete(f"/api/v1/streaming/sessions/{ended.session_id}", headers=ended.headers)
        assert stopped.status_code == 204, stopped.text
        unknown = live.manifest_path().replace(live.session_id, str(uuid.uuid4()))

        async def code(path: str, headers: dict[str, str]) -> str:
            response = await client.get(path, headers=headers)
            assert response.status_code == 404, response.text
            return str(response.json()["code"])

        assert await code(live.manifest_path(), stranger) == "session_not_found"
        assert await code(ended.manifest_path(), stranger) == "session_not_found"
        assert await code(unknown, stranger) == "session_not_found"
        assert await code(ended.manifest_path(), ended.headers) == "session_ended"  # the owner's own
        # Past its heartbeat expiry but still stored: the owner learns it ended, a stranger nothing.
        real = sessions.clock
        monkeypatch.setattr(
            sessions, "clock", lambda: real() + 10 * get_settings().stream_heartbeat_ttl_seconds
        )
        assert await code(expired.manifest_path(), stranger) == "session_not_found"
        assert await code(expired.manifest_path(), expired.headers) == "session_ended"


async def test_the_manifest_token_runs_on_playbacks_clock(
    api: httpx.AsyncClient, playing: Playing, monkeypatch: pytest.MonkeyPatch
) -> None:
    from shared.streaming import sessions

    earlier = time.time() - 30
    monkeypatch.setattr(sessions, "clock", lambda: earlier)
    response = await api.get(playing.manifest_path("hls"), headers=playing.headers)
    assert response.status_code == 200, response.text
    uri = m3u8.loads(response.text).playlists[0].uri
    token, _, key = urlsplit(uri).path[3:].partition("/")
    claims = verify(token, key, secret=delivery_secret(get_settings()), now=int(earlier))
    assert claims.expires_at == int(earlier) + get_settings().stream_token_ttl_seconds


async def test_warm_manifest_costs_one_redis_call_and_no_postgres(
    api: httpx.AsyncClient, playing: Playing, monkeypatch: pytest.MonkeyPatch, settings_env: Any
) -> None:
    from psycopg import AsyncConnection

    from shared.infra.redis import get_redis

    path = playing.manifest_path("hls")
    assert (await api.get(path, headers=playing.headers)).status_code == 200  # warm the cache
    # The database is unreachable from here on: any Postgres use on this path would fail the request.
    settings_env(DATABASE_URL="postgresql://nobody:nothing@127.0.0.1:9/none")
    await reset_all()
    counts = {"redis": 0, "postgres": 0}
    store_class = type(await get_redis())
    execute, wait = store_class._execute, AsyncConnection.wait

    async def counted_execute(self: Any, *args: str) -> Any:
        counts["redis"] += 1
        return await execute(self, *args)

    async def counted_wait(self: Any, *args: Any, **kwargs: Any) -> Any:
        counts["postgres"] += 1
        return await wait(self, *args, **kwargs)

    monkeypatch.setattr(store_class, "_execute", counted_execute)
    monkeypatch.setattr(AsyncConnection, "wait", counted_wait)
    try:
        for kind in ("hls", "dash", "hls"):
            before = dict(counts)
            response = await api.get(playing.manifest_path(kind), headers=playing.headers)
            assert response.status_code == 200, response.text
            # The bearer's revocation records and the session blob: one MGET.
            assert (counts["redis"] - before["redis"], counts["postgres"] - before["postgres"]) == (1, 0)
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()
        await reset_all()


async def test_signed_out_viewer_is_refused(database_url: str) -> None:
    from tests.support.identity import auth_client

    mine = await new_playing(database_url)
    async with client_for(streaming_app(), client_ip=mine.client_ip) as client:
        assert (await client.get(mine.manifest_path(), headers=mine.headers)).status_code == 200
        async with auth_client() as auth:
            out = await auth.post("/api/v1/auth/logout", headers=mine.headers)
            assert out.status_code in (200, 204), out.text
        refused = await client.get(mine.manifest_path(), headers=mine.headers)
    assert refused.status_code == 401 and refused.json()["code"] == "invalid_token"


def test_manifest_route_is_documented() -> None:
    spec = streaming_app().openapi()
    operation = spec["paths"]["/api/v1/streaming/{contentId}/manifest"]["get"]
    assert operation["summary"]
    assert {"401", "404", "409", "422"} <= set(operation["responses"])
    assert {p["name"] for p in operation["parameters"]} >= {"contentId", "session", "format"}
