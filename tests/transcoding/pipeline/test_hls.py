"""HLS playlist text: media, subtitle and master playlists parse with m3u8 and say what players need."""

from __future__ import annotations

from pathlib import Path

import m3u8

from shared.transcoding.pipeline.hls import (
    Segment,
    master_playlist,
    media_playlist,
    subtitle_playlist,
    target_duration,
)
from shared.transcoding.pipeline.langtags import bcp47
from shared.transcoding.pipeline.model import PackagedRendition, SubtitleTrack


def rendition(name: str, kind: str = "video", **facts: object) -> PackagedRendition:
    defaults: dict[str, object] = {
        "codecs": "mp4a.40.2" if kind == "audio" else "avc1.64001f",
        "bandwidth": 1000,
        "average_bandwidth": 900,
        "duration_seconds": 10.0,
        "segment_count": 2,
        "hls_playlist": f"hls/{name}/playlist.m3u8",
        "dash_dir": f"dash/{name}",
    }
    if kind != "audio":
        defaults |= {"width": 1280, "height": 720, "frame_rate": 29.97}
    return PackagedRendition(name=name, kind=kind, **(defaults | facts))  # type: ignore[arg-type]


def test_target_duration_rounds_to_the_nearest_second() -> None:
    assert target_duration([6.0, 6.4, 1.0]) == 6
    assert target_duration([6.5]) == 7
    assert target_duration([]) == 1


def test_media_playlist_keeps_the_map_clear_and_the_key_without_iv() -> None:
    text = media_playlist([Segment("seg-00001.m4s", 6.0), Segment("seg-00002.m4s", 2.5)])
    assert text.index("#EXT-X-MAP") < text.index("#EXT-X-KEY")
    assert "IV=" not in text
    playlist = m3u8.loads(text)
    assert playlist.media_sequence == 1 and playlist.is_endlist and not playlist.is_i_frames_only
    assert [(s.uri, s.duration, s.key.method) for s in playlist.segments] == [
        ("seg-00001.m4s", 6.0, "AES-128"),
        ("seg-00002.m4s", 2.5, "AES-128"),
    ]
    iframes = m3u8.loads(media_playlist([Segment("seg-00001.m4s", 2.0)], iframes_only=True))
    assert iframes.is_i_frames_only


def test_subtitle_playlist_is_one_clear_segment() -> None:
    playlist = m3u8.loads(subtitle_playlist("en.vtt", duration=61.2))
    assert [(s.uri, s.duration, s.key) for s in playlist.segments] == [("en.vtt", 61.2, None)]
    assert playlist.target_duration == 61 and not playlist.segment_map


def test_master_orders_variants_and_makes_names_unique() -> None:
    renditions = [
        rendition("hevc_1080p", codecs="hvc1.1.6.L120.90", bandwidth=3000, height=1080, width=1920),
        rendition("h264_720p", bandwidth=2000),
        rendition("h264_360p", bandwidth=500, width=640, height=360),
        rendition("audio_eng", "audio", language="eng", label="English", bandwidth=100, average_bandwidth=90),
        rendition("audio_und", "audio", language=None, label='Commentary "director"', is_default=True),
    ]
    vtt = Path("unused.vtt")
    subtitles = [
        (SubtitleTrack("pt-BR", "Português", forced=False, sdh=False, vtt_path=vtt), "subtitles/pt-BR.m3u8"),
        (
            SubtitleTrack("pt-BR", "Português", forced=False, sdh=False, vtt_path=vtt),
            "subtitles/pt-BR_2.m3u8",
        ),
        (SubtitleTrack("en", "English SDH", forced=False, sdh=True, vtt_path=vtt), "subtitles/en_sdh.m3u8"),
    ]
    master = m3u8.loads(master_playlist(renditions, subtitles))
    assert [p.uri for p in master.playlists] == [
        "h264_360p/playlist.m3u8",
        "h264_720p/playlist.m3u8",
        "hevc_1080p/playlist.m3u8",
    ]
    info = master.playlists[0].stream_info
    assert info.bandwidth == 500 + 1000 and info.average_bandwidth == 900 + 900
    assert info.frame_rate == 29.97 and info.closed_captions == "NONE"
    audio = [m for m in master.media if m.type == "AUDIO"]
    assert [(m.language, m.default, m.name) for m in audio] == [
        ("en", "NO", "English"),
        ("und", "YES", "Commentary 'director'"),
    ]
    names = [m.name for m in master.media if m.type == "SUBTITLES"]
    assert names == ["Português", "Português 2", "English SDH"]


def test_an_audio_only_asset_gets_an_audio_variant() -> None:
    master = m3u8.loads(
        master_playlist([rendition("audio_fra", "audio", language="fre", label="Français")], [])
    )
    assert [p.uri for p in master.playlists] == ["audio_fra/playlist.m3u8"]
    assert master.playlists[0].stream_info.codecs == "mp4a.40.2"
    assert master.media[0].language == "fr"


def test_language_tags_become_bcp47() -> None:
    assert [bcp47(tag) for tag in ("eng", "ger", "deu", "pt-BR", "haw", None, "", "not a tag")] == [
        "en",
        "de",
        "de",
        "pt-BR",
        "haw",
        "und",
        "und",
        "und",
    ]
