"""The dev server's /t/<token>/<key> route: what a player fetches after the manifest, what is refused."""

from __future__ import annotations

import posixpath
import time
import uuid
from typing import Any
from urllib.parse import urlsplit

import httpx
import m3u8
import pytest

from shared.delivery.tokens import delivery_secret, sign
from shared.settings import get_settings
from tests.delivery.conftest import CAP, Playing, new_playing, streaming_app
from tests.support.identity import client_for
from tests.support.playback import transcoded_asset

# Every test plays the session's real transcoded asset (one ffmpeg run per test session).
pytestmark = pytest.mark.slow

IMMUTABLE = "public, max-age=31536000, immutable"


def _path(url: str) -> str:
    return urlsplit(url).path


def _token(
    playing: Playing,
    *,
    asset_id: str | None = None,
    expires_at: int | None = None,
    max_height: int = CAP,
) -> str:
    return sign(
        session_id=playing.session_id,
        asset_id=asset_id or playing.asset.asset_id,
        expires_at=expires_at or int(time.time()) + 600,
        secret=delivery_secret(get_settings()),
        max_height=max_height,
    )


async def _storage_bytes(key: str) -> bytes:
    from shared.infra.storage import get_storage

    return await (await get_storage()).get_bytes(key)


async def test_the_player_path_from_manifest_to_segment_and_key(
    api: httpx.AsyncClient, edge: httpx.AsyncClient, playing: Playing, database_url: str
) -> None:
    master = m3u8.loads((await api.get(playing.manifest_path("hls"), headers=playing.headers)).text)
    variant_url = master.playlists[0].uri
    playlist = await edge.get(_path(variant_url))
    assert playlist.status_code == 200, playlist.text
    assert playlist.headers["content-type"] == "application/vnd.apple.mpegurl"
    assert playlist.headers["cache-control"] == "public, max-age=60"
    assert playlist.headers["access-control-allow-origin"] == "*"
    media = m3u8.loads(playlist.text)
    # Relative URIs of the static playlist resolve under the same /t/<token>/ (the token is inherited).
    folder = posixpath.dirname(_path(variant_url))
    segment_path = posixpath.normpath(posixpath.join(folder, media.segments[0].uri))
    init_path = posixpath.normpath(posixpath.join(folder, media.segment_map[0].uri))
    key_path = posixpath.normpath(posixpath.join(folder, media.keys[0].uri))
    manifest_token = _path(variant_url).split("/")[2]
    assert segment_path.startswith(f"/t/{manifest_token}/{playing.asset.prefix}hls/h264_240p/seg-")
    assert key_path == f"/t/{manifest_token}/{playing.asset.prefix}hls/keys/hls.key"
    segment = await edge.get(segment_path)
    assert segment.status_code == 200
    assert segment.headers["content-type"] == "video/iso.segment"
    assert segment.headers["cache-control"] == IMMUTABLE
    assert segment.headers["x-content-type-options"] == "nosniff"
    key = segment_path.split("/", 3)[3]
    assert segment.content == await _storage_bytes(key)
    assert int(segment.headers["content-length"]) == len(segment.content)
    init = await edge.get(init_path)
    assert (init.status_code, init.headers["content-type"]) == (200, "video/mp4")

    # ../keys/hls.key: answered by the API's key endpoint for the live session, never cached.
    answered = await edge.get(key_path)
    assert answered.status_code == 200, answered.text
    assert answered.headers["cache-control"].startswith("no-store")
    from shared.transcoding.keys import load_keys

    async with await _connect(database_url) as conn:
        keys = await load_keys(conn, asset_id=uuid.UUID(playing.asset.asset_id), settings=get_settings())
    assert answered.content == keys.hls_key


async def _connect(database_url: str) -> Any:
    import psycopg

    return await psycopg.AsyncConnection.connect(database_url, autocommit=True, prepare_threshold=None)


async def test_content_types_and_caching_of_each_kind(edge: httpx.AsyncClient, playing: Playing) -> None:
    expected = {
        "hls/h264_240p/playlist.m3u8": ("application/vnd.apple.mpegurl", "public, max-age=60"),
        "hls/trickplay/playlist.m3u8": ("application/vnd.apple.mpegurl", "public, max-age=60"),
        "dash/h264_240p/seg-00001.m4s": ("video/iso.segment", IMMUTABLE),
        "hls/audio_eng/init.mp4": ("video/mp4", IMMUTABLE),
        "images/thumbnails.vtt": ("text/vtt", IMMUTABLE),
        "images/storyboard-1.jpg": ("image/jpeg", IMMUTABLE),
    }
    for relative, (content_type, cache) in expected.items():
        response = await edge.get(playing.signed(relative))
        assert response.status_code == 200, (relative, response.text)
        assert response.headers["content-type"].split(";")[0] == content_type, relative
        assert response.headers["cache-control"] == cache, relative
    subtitles = m3u8.loads((await edge.get(playing.signed("hls/subtitles/en.m3u8"))).text)
    vtt = await edge.get(playing.signed("hls/subtitles/" + subtitles.segments[0].uri))
    assert vtt.status_code == 200 and vtt.headers["content-type"].startswith("text/vtt")
    assert vtt.headers["cache-control"] == IMMUTABLE and vtt.text.startswith("WEBVTT")


async def test_stored_masters_and_renditions_above_the_session_cap_are_refused(
    edge: httpx.AsyncClient, playing: Playing
) -> None:
    # The session is capped at 240 (its plan); the asset also has 360p, and its stored masters list it.
    assert playing.asset.heights[-1] > CAP
    refused = [
        "hls/master.m3u8",
        "dash/manifest.mpd",
        "hls/h264_360p/playlist.m3u8",
        "hls/h264_360p/seg-00001.m4s",
        "hls/h264_360p/init.mp4",
        "dash/h264_360p/seg-00001.m4s",
        "dash/h264_360p/init.mp4",
    ]
    for relative in refused:
        response = await edge.get(playing.signed(relative))
        assert response.status_code == 403, (relative, response.status_code)
        assert response.json()["code"] == "path_not_allowed", relative
        assert response.headers["cache-control"] == "no-store"
    # The same files exist: a token of an uncapped session opens the renditions, never the masters.
    uncapped = _token(playing, max_height=2160)
    assert (await edge.get(playing.signed("hls/h264_360p/seg-00001.m4s", token=uncapped))).status_code == 200
    assert (await edge.get(playing.signed("dash/h264_360p/init.mp4", token=uncapped))).status_code == 200
    for master in ("hls/master.m3u8", "dash/manifest.mpd"):
        assert (await edge.get(playing.signed(master, token=uncapped))).status_code == 403


async def test_every_url_of_the_capped_manifests_opens_at_the_edge(
    api: httpx.AsyncClient, edge: httpx.AsyncClient, playing: Playing
) -> None:
    import xml.etree.ElementTree as ET

    master = m3u8.loads((await api.get(playing.manifest_path("hls"), headers=playing.headers)).text)
    uris = [p.uri for p in master.playlists] + [p.uri for p in master.iframe_playlists]
    uris += [m.uri for m in master.media if m.uri]
    for uri in uris:
        assert (await edge.get(_path(uri))).status_code == 200, uri
    mpd = ET.fromstring((await api.get(playing.manifest_path("dash"), headers=playing.headers)).text)
    ns = "{urn:mpeg:dash:schema:mpd:2011}"
    base = _path(str(mpd.findtext(f"{ns}BaseURL")))
    inits = []
    for adaptation in mpd.iter(f"{ns}AdaptationSet"):
        for representation in adaptation.iter(f"{ns}Representation"):
            template = representation.find(f"{ns}SegmentTemplate")
            if template is None:
                template = adaptation.find(f"{ns}SegmentTemplate")
            if template is not None and template.get("initialization"):
                name = str(template.get("initialization"))
                inits.append(name.replace("$RepresentationID$", str(representation.get("id"))))
    assert inits
    for init in inits:
        assert (await edge.get(base + init)).status_code == 200, init


async def test_the_edge_reads_playbacks_clock(
    edge: httpx.AsyncClient, playing: Playing, monkeypatch: pytest.MonkeyPatch
) -> None:
    from shared.streaming import sessions

    path = playing.signed("hls/h264_240p/seg-00001.m4s")
    assert (await edge.get(path)).status_code == 200
    # Playback's one clock moved past the token's expiry: the dev server sees it expired.
    monkeypatch.setattr(sessions, "clock", lambda: time.time() + 2 * get_settings().stream_token_ttl_seconds)
    expired = await edge.get(path)
    assert expired.status_code == 403 and expired.json()["code"] == "token_expired"


async def test_the_key_request_carries_the_token_in_a_header(devserver_app: Any, playing: Playing) -> None:
    from shared.delivery.edge import DeliveryEdge

    seen: list[tuple[str, bytes, dict[bytes, bytes]]] = []

    async def key_endpoint(scope: Any, receive: Any, send: Any) -> None:
        seen.append((scope["path"], scope["query_string"], dict(scope["headers"])))
        await httpx_response(scope, receive, send)

    async def httpx_response(scope: Any, receive: Any, send: Any) -> None:
        from starlette.responses import Response

        await Response(b"k" * 16, media_type="application/octet-stream")(scope, receive, send)

    delivery = DeliveryEdge(lambda path: key_endpoint)
    async with client_for(delivery, client_ip=playing.client_ip) as client:
        answered = await client.get(
            playing.signed("hls/keys/hls.key"), headers={"x-delivery-token": "forged-by-the-client"}
        )
    assert answered.status_code == 200
    [(path, query, headers)] = seen
    assert path == f"/api/v1/streaming/keys/{playing.asset.asset_id}/hls.key"
    assert headers[b"x-delivery-token"] == playing.token.encode()  # the path's token, not the client's
    assert query == f"token={playing.token}".encode()  # until every key endpoint reads the header


async def test_range_head_and_conditional_requests(edge: httpx.AsyncClient, playing: Playing) -> None:
    path = playing.signed("hls/h264_240p/seg-00001.m4s")
    whole = await edge.get(path)
    ranged = await edge.get(path, headers={"range": "bytes=10-19"})
    assert ranged.status_code == 206 and ranged.content == whole.content[10:20]
    assert ranged.headers["content-range"] == f"bytes 10-19/{len(whole.content)}"
    head = await edge.head(path)
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-length"] == str(len(whole.content))
    again = await edge.get(path, headers={"if-none-match": whole.headers["etag"]})
    assert again.status_code == 304
    preflight = await edge.options(
        path, headers={"origin": "http://player.test", "access-control-request-method": "GET"}
    )
    assert preflight.status_code == 204 and preflight.headers["access-control-allow-origin"] == "*"
    assert (await edge.post(path)).status_code == 405


async def test_refused_tokens_and_paths(edge: httpx.AsyncClient, playing: Playing, database_url: str) -> None:
    relative = "hls/h264_240p/seg-00001.m4s"
    other = await transcoded_asset(database_url)  # another asset than the session's

    async def refused(path: str) -> str:
        response = await edge.get(path)
        assert response.status_code == 403, (path, response.status_code, response.text)
        assert response.headers["cache-control"] == "no-store"
        assert playing.token not in response.text  # the token is never echoed
        return str(response.json()["code"])

    tampered = playing.token[:40] + ("A" if playing.token[40] != "A" else "B") + playing.token[41:]
    assert await refused(playing.signed(relative, token=tampered)) == "invalid_token"
    assert await refused(playing.signed(relative, token="x" * 95)) == "invalid_token"
    assert await refused(f"/t/{playing.token}/{other.prefix}{relative}") == "wrong_asset"
    expired = _token(playing, expires_at=int(time.time()) - 1)
    assert await refused(playing.signed(relative, token=expired)) == "token_expired"
    # A token signed for the other asset opens the other asset only.
    for_other = _token(playing, asset_id=other.asset_id)
    assert (await edge.get(f"/t/{for_other}/{other.prefix}{relative}")).status_code == 200
    assert await refused(playing.signed(relative, token=for_other)) == "wrong_asset"
    # Paths that only look like they stay under the prefix.
    tricks = [
        f"/t/{playing.token}/{playing.asset.prefix}%2e%2e/{other.asset_id}/{relative}",
        f"/t/{playing.token}/{playing.asset.prefix}hls%2F..%2F..%2F{other.asset_id}/{relative}",
        f"/t/{playing.token}/{playing.asset.prefix}hls//h264_240p/seg-00001.m4s",
        f"/t/{playing.token}/media/assets/{playing.asset.asset_id}",
    ]
    for trick in tricks:
        assert await refused(trick) == "wrong_asset", trick
    missing = await edge.get(playing.signed("hls/h264_240p/seg-09999.m4s"))
    assert missing.status_code == 404
    assert (await edge.get("/t/just-a-token")).status_code == 404


async def test_an_ended_session_keeps_media_until_token_expiry_but_loses_manifest_and_keys(
    database_url: str, devserver_app: Any
) -> None:
    mine = await new_playing(database_url)
    async with (
        client_for(streaming_app(), client_ip=mine.client_ip) as api,
        client_for(devserver_app, client_ip=mine.client_ip) as edge,
    ):
        assert (await api.get(mine.manifest_path(), headers=mine.headers)).status_code == 200
        ended = await api.delete(f"/api/v1/streaming/sessions/{mine.session_id}", headers=mine.headers)
        assert ended.status_code == 204, ended.text

        # Media: the token still opens the (cacheable, shared) files until it expires...
        segment = await edge.get(mine.signed("hls/h264_240p/seg-00001.m4s"))
        assert segment.status_code == 200
        # ...but no new manifest, and no key: those check the live session.
        manifest = await api.get(mine.manifest_path(), headers=mine.headers)
        assert manifest.status_code == 404 and manifest.json()["code"] == "session_ended"
        key = await edge.get(mine.signed("hls/keys/hls.key"))
        assert key.status_code == 403 and key.json()["code"] == "session_ended"
