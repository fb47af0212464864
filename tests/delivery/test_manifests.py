"""Per-session manifest rendering and the in-process manifest cache (real storage, real asset)."""

from __future__ import annotations

import uuid
import xml.etree.ElementTree as ET
from typing import Any

import m3u8
import psycopg
import pytest

from shared.delivery import manifests
from shared.delivery.manifests import Context, ManifestCache, ManifestMissing, render_dash, render_hls
from tests.support.catalog_factory import title
from tests.support.playback import asset_for, transcoded_asset

ASSET = str(uuid.uuid4())
MPD = "{urn:mpeg:dash:schema:mpd:2011}"


def _context(max_height: int = 720, **overrides: Any) -> Context:
    values: dict[str, Any] = {
        "asset_id": ASSET,
        "max_height": max_height,
        "media_base": "https://media.example.com",
        "api_base": "https://api.example.com",
    }
    return Context(**(values | overrides))


SIGNED = f"https://media.example.com/t/{manifests.PLACEHOLDER}/media/assets/{ASSET}/hls/"

MASTER = """#EXTM3U
#EXT-X-VERSION:6
#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="audio",NAME="A, \\"quoted\\" name",DEFAULT=YES,URI="audio_eng/playlist.m3u8"
#EXT-X-STREAM-INF:BANDWIDTH=900000,RESOLUTION=1280x720,CODECS="avc1.64001f,mp4a.40.2",AUDIO="audio"
h264_720p/playlist.m3u8
#EXT-X-STREAM-INF:BANDWIDTH=400000,RESOLUTION=640x360,CODECS="avc1.64001e,mp4a.40.2",AUDIO="audio"
h264_360p/playlist.m3u8

#EXT-X-STREAM-INF:BANDWIDTH=2000000,RESOLUTION=1080x1920,CODECS="avc1.640028,mp4a.40.2",AUDIO="audio"
portrait_1080p/playlist.m3u8
#EXT-X-I-FRAME-STREAM-INF:BANDWIDTH=30000,RESOLUTION=320x180,URI="trickplay/playlist.m3u8"
#EXT-X-I-FRAME-STREAM-INF:BANDWIDTH=90000,RESOLUTION=1280x720,URI="trick_720/playlist.m3u8"
"""


def test_hls_caps_on_the_shorter_side_and_signs_every_uri() -> None:
    capped = m3u8.loads(render_hls(MASTER, _context(max_height=720)))
    assert [p.uri for p in capped.playlists] == [
        SIGNED + "h264_720p/playlist.m3u8",
        SIGNED + "h264_360p/playlist.m3u8",
    ]
    assert [p.uri for p in capped.iframe_playlists] == [
        SIGNED + "trickplay/playlist.m3u8",
        SIGNED + "trick_720/playlist.m3u8",
    ]
    assert [m.uri for m in capped.media] == [SIGNED + "audio_eng/playlist.m3u8"]
    low = m3u8.loads(render_hls(MASTER, _context(max_height=400)))
    assert [p.stream_info.resolution for p in low.playlists] == [(640, 360)]
    assert [p.uri for p in low.iframe_playlists] == [SIGNED + "trickplay/playlist.m3u8"]
    everything = m3u8.loads(render_hls(MASTER, _context(max_height=1080)))
    assert len(everything.playlists) == 3  # portrait 1080x1920 is 1080p


def test_hls_keeps_the_lowest_variant_when_nothing_fits() -> None:
    rendered = m3u8.loads(render_hls(MASTER, _context(max_height=144)))
    assert [p.stream_info.resolution for p in rendered.playlists] == [(640, 360)]
    assert rendered.iframe_playlists == []


def test_hls_audio_only_and_foreign_uris() -> None:
    audio_only = (
        '#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=130000,CODECS="mp4a.40.2"\naudio_eng/playlist.m3u8\n'
        '#EXT-X-STREAM-INF:BANDWIDTH=1,CODECS="mp4a.40.2"\nhttps://elsewhere.example/x.m3u8\n'
    )
    rendered = m3u8.loads(render_hls(audio_only, _context(max_height=144)))
    assert [p.uri for p in rendered.playlists] == [
        SIGNED + "audio_eng/playlist.m3u8",
        "https://elsewhere.example/x.m3u8",
    ]
    with pytest.raises(ValueError):
        render_hls("#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\n../../other/playlist.m3u8\n", _context())


def test_attribute_lists_parse_quoted_commas() -> None:
    parsed = manifests.parse_attributes('A=1,B="x,y",C=z,D=""')
    assert parsed == {"A": "1", "B": "x,y", "C": "z", "D": ""}


DASH = f"""<?xml version="1.0" encoding="utf-8"?>
<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" xmlns:cenc="urn:mpeg:cenc:2013" type="static">
  <Period id="0">
    <AdaptationSet id="1" contentType="video" maxWidth="1280" maxHeight="720">
      <ContentProtection schemeIdUri="urn:mpeg:dash:mp4protection:2011" value="cenc"
                         cenc:default_KID="{uuid.uuid4()}" />
      <ContentProtection schemeIdUri="urn:uuid:e2719d58-a985-b3c9-781a-b030af78d30e" value="ClearKey1.0" />
      <ContentProtection schemeIdUri="urn:uuid:edef8ba9-79d6-4ace-a3c8-27dcd51d21ed" value="Widevine" />
      <Representation id="h264_360p" bandwidth="400000" width="640" height="360" />
      <Representation id="h264_720p" bandwidth="900000" width="1280" height="720" />
    </AdaptationSet>
    <AdaptationSet id="2" contentType="video" maxWidth="1920" maxHeight="1080">
      <Representation id="hevc_1080p" bandwidth="2000000" width="1920" height="1080" />
    </AdaptationSet>
    <AdaptationSet id="3" contentType="video">
      <EssentialProperty schemeIdUri="http://dashif.org/guidelines/trickmode" value="1 2" />
      <Representation id="trickplay" bandwidth="30000" width="320" height="180" />
    </AdaptationSet>
    <AdaptationSet id="4" contentType="audio">
      <Representation id="audio_eng" bandwidth="128000" />
    </AdaptationSet>
  </Period>
</MPD>
"""


def test_dash_caps_representations_and_sets() -> None:
    root = ET.fromstring(render_dash(DASH, _context(max_height=480)))
    sets = {s.get("id"): s for s in root.iter(f"{MPD}AdaptationSet")}
    assert set(sets) == {"1", "3", "4"}  # the HEVC set had nothing under the cap
    assert [r.get("id") for r in sets["1"].iter(f"{MPD}Representation")] == ["h264_360p"]
    assert (sets["1"].get("maxWidth"), sets["1"].get("maxHeight")) == ("640", "360")
    trick = sets["3"].find(f"{MPD}EssentialProperty")
    assert trick is not None and trick.get("value") == "1"
    assert root[0].tag == f"{MPD}BaseURL"
    assert root[0].text == f"https://media.example.com/t/{manifests.PLACEHOLDER}/media/assets/{ASSET}/dash/"
    # Nothing under the cap at all: the lowest main representation stays, the trick-mode set goes.
    tiny = ET.fromstring(render_dash(DASH, _context(max_height=100)))
    assert [r.get("id") for r in tiny.iter(f"{MPD}Representation")] == ["h264_360p", "audio_eng"]


def test_dash_licence_urls_only_for_configured_systems() -> None:
    rendered = render_dash(DASH, _context(licensed=frozenset({"widevine"})))
    root = ET.fromstring(rendered)
    laurls = [
        (p.get("schemeIdUri"), child.text)
        for p in root.iter(f"{MPD}ContentProtection")
        for child in p
        if child.tag.endswith("Laurl")
    ]
    token = manifests.PLACEHOLDER
    assert (
        "urn:uuid:edef8ba9-79d6-4ace-a3c8-27dcd51d21ed",
        f"https://api.example.com/api/v1/streaming/licence/widevine?token={token}",
    ) in laurls
    assert len([url for scheme, url in laurls if "clearkey" in str(url)]) == 2  # dashif: and clearkey:
    assert 'xmlns:dashif="https://dashif.org/CPS"' in rendered and "ns0:" not in rendered
    assert "widevine" not in render_dash(DASH, _context())


WIDE = """#EXTM3U
#EXT-X-STREAM-INF:BANDWIDTH=400000,RESOLUTION=640x268
h264_360p/playlist.m3u8
#EXT-X-STREAM-INF:BANDWIDTH=900000,RESOLUTION=1280x536
h264_720p/playlist.m3u8
#EXT-X-I-FRAME-STREAM-INF:BANDWIDTH=90000,RESOLUTION=1280x536,URI="h264_720p/iframes.m3u8"
"""


def test_hls_caps_a_wide_rung_by_its_name_as_the_token_does() -> None:
    # A 2.39:1 "720p" rung is 1280x536: under a 540 cap by its pixels, but the edge refuses h264_720p/.
    rendered = m3u8.loads(render_hls(WIDE, _context(max_height=540)))
    assert [p.uri for p in rendered.playlists] == [SIGNED + "h264_360p/playlist.m3u8"]
    assert rendered.iframe_playlists == []
    assert len(m3u8.loads(render_hls(WIDE, _context(max_height=720))).playlists) == 2


SHARED_SIZE = """<?xml version="1.0" encoding="utf-8"?>
<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" type="static">
  <Period id="0">
    <AdaptationSet id="1" contentType="video" width="1920" height="1080">
      <Representation id="main_hd" bandwidth="6000000" />
    </AdaptationSet>
    <AdaptationSet id="2" contentType="video" maxWidth="1280" maxHeight="720">
      <Representation id="a" bandwidth="3000000" />
      <Representation id="b" bandwidth="2000000" />
    </AdaptationSet>
    <AdaptationSet id="3" contentType="video" maxWidth="640" maxHeight="360">
      <Representation id="low" bandwidth="400000" />
    </AdaptationSet>
    <AdaptationSet id="4" contentType="video">
      <Representation id="h264_1080p" bandwidth="6000000" width="1920" height="800" />
    </AdaptationSet>
    <AdaptationSet id="5" contentType="audio">
      <Representation id="audio_eng" bandwidth="128000" />
    </AdaptationSet>
  </Period>
</MPD>
"""


def test_dash_representations_without_a_size_are_capped_by_their_set() -> None:
    root = ET.fromstring(render_dash(SHARED_SIZE, _context(max_height=480)))
    kept = {r.get("id") for r in root.iter(f"{MPD}Representation")}
    assert kept == {"low", "audio_eng"}  # the 1080 set, the maxHeight 720 set and h264_1080p (800) gone
    assert {s.get("id") for s in root.iter(f"{MPD}AdaptationSet")} == {"3", "5"}
    everything = ET.fromstring(render_dash(SHARED_SIZE, _context(max_height=1080)))
    assert len(list(everything.iter(f"{MPD}Representation"))) == 6


@pytest.mark.slow  # the real asset (one ffmpeg run per test session)
async def test_the_cache_reads_storage_once_per_ttl_and_bounds_its_size(database_url: str) -> None:
    from shared.infra.storage import get_storage

    storage = await get_storage()
    base = await transcoded_asset(database_url)
    cache = ManifestCache(ttl=30, entries=2)
    first = await cache.entry(storage, base.asset_id, "hls", now=1000)
    assert cache.fetches == 1 and first.text.startswith("#EXTM3U")
    assert await cache.entry(storage, base.asset_id, "hls", now=1029) is first
    assert cache.fetches == 1
    # Rewritten in storage (new subtitles): seen once the entry is older than the TTL.
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as db:
        title_id = await title(db, f"Cache {uuid.uuid4().hex[:8]}")
    copy = await asset_for(database_url, title_id=title_id)
    cache.clear()
    await cache.entry(storage, copy.asset_id, "hls", now=1000)
    await storage.put_bytes(
        copy.hls_master, b"#EXTM3U\n# rewritten\n", content_type="application/vnd.apple.mpegurl"
    )
    assert "rewritten" not in (await cache.entry(storage, copy.asset_id, "hls", now=1010)).text
    assert "rewritten" in (await cache.entry(storage, copy.asset_id, "hls", now=1031)).text
    # Least recently used goes first.
    await cache.entry(storage, base.asset_id, "hls", now=1031)
    await cache.entry(storage, base.asset_id, "dash", now=1031)
    fetches = cache.fetches
    await cache.entry(storage, base.asset_id, "hls", now=1032)
    assert cache.fetches == fetches  # still cached
    await cache.entry(storage, copy.asset_id, "hls", now=1032)
    assert cache.fetches == fetches + 1  # it had been evicted
    with pytest.raises(ManifestMissing):
        await cache.entry(storage, str(uuid.uuid4()), "dash", now=1032)


@pytest.mark.slow
async def test_a_rendering_is_memoised_per_context_and_the_token_substituted(database_url: str) -> None:
    from shared.infra.storage import get_storage

    base = await transcoded_asset(database_url)
    manifests.cache.clear()
    context = _context(max_height=240, asset_id=base.asset_id)
    one = await manifests.session_manifest(await get_storage(), kind="hls", context=context, token="T" * 92)
    two = await manifests.session_manifest(await get_storage(), kind="hls", context=context, token="U" * 92)
    assert one.replace("T" * 92, "U" * 92) == two and manifests.PLACEHOLDER not in one
    entry = await manifests.cache.entry(await get_storage(), base.asset_id, "hls", now=0)
    assert list(entry.rendered) == [context]
