"""The assets a content manager sees: the one queued by completing an upload, then its renditions and
images as the transcoder records them (written here directly), never any key material."""

from __future__ import annotations

from typing import Any

import httpx
import psycopg
from psycopg.types.json import Jsonb

from tests.media.conftest import API, payload, put, start_upload
from tests.support.identity import SignedIn


async def test_assets_with_renditions(
    client: httpx.AsyncClient, manager: SignedIn, movie: str, db: psycopg.AsyncConnection[Any]
) -> None:
    data = payload(300)
    ticket = await start_upload(client, manager, movie, data)
    await put(ticket["upload"], data)
    done = await client.post(f"{API}/uploads/{ticket['source']['id']}/complete", headers=manager.headers)
    asset_id = done.json()["job"]["asset"]["id"]

    (asset,) = (await client.get(f"{API}/assets", params={"title_id": movie}, headers=manager.headers)).json()
    assert (asset["id"], asset["state"], asset["renditions"], asset["is_current"]) == (
        asset_id,
        "processing",
        [],
        False,
    )
    assert asset["storage_prefix"] == f"media/assets/{asset_id}/"

    images = {"posters": ["images/poster-1.jpg"], "thumbnails_vtt": "images/thumbnails.vtt"}
    await db.execute(
        """update public.media_assets set state = 'playable', is_current = true, images = %s, drm = %s,
                  hls_master = %s, duration_seconds = 12.5, playable_at = now() where id = %s""",
        (
            Jsonb(images),
            Jsonb({"key_id": "ab" * 16, "systems": ["clearkey"]}),
            f"media/assets/{asset_id}/hls/master.m3u8",
            asset_id,
        ),
    )
    for name, kind, codec, codecs, height, language in (
        ("h264_360p", "video", "h264", "avc1.64001e", 360, None),
        ("h264_240p", "video", "h264", "avc1.640015", 240, None),
        ("audio_eng", "audio", "aac", "mp4a.40.2", None, "eng"),
    ):
        await db.execute(
            """insert into public.media_renditions (asset_id, name, kind, codec, codecs, height, bandwidth,
                                                   average_bandwidth, language, is_default)
               values (%s, %s, %s, %s, %s, %s, 500000, 400000, %s, %s)""",
            (asset_id, name, kind, codec, codecs, height, language, language == "eng"),
        )
    await db.execute(
        """insert into public.media_keys (asset_id, key_id, wrapped_cenc_key, wrapped_hls_key, master_key_id)
           values (%s, %s, %s, %s, 'test')""",
        (asset_id, "ab" * 16, b"secret-cenc-wrapped", b"secret-hls-wrapped"),
    )

    response = await client.get(f"{API}/assets", params={"title_id": movie}, headers=manager.headers)
    (asset,) = response.json()
    assert asset["state"] == "playable" and asset["is_current"] and asset["images"] == images
    assert asset["hls_master"].endswith("hls/master.m3u8") and asset["duration_seconds"] == 12.5
    assert [r["name"] for r in asset["renditions"]] == ["audio_eng", "h264_240p", "h264_360p"]
    assert asset["renditions"][0]["language"] == "eng" and asset["renditions"][0]["is_default"]
    assert "secret" not in response.text and "wrapped" not in response.text
