"""HLS playlists as text: media (AES-128), I-frames-only, subtitle and master playlists (RFC 8216).

Written by hand rather than through the m3u8 library's model: the few tags we need are simple, and their
order matters (EXT-X-KEY after EXT-X-MAP keeps the init segment clear). The tests parse the output with m3u8.
"""

from __future__ import annotations

import math
import posixpath
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from shared.transcoding.pipeline.langtags import bcp47
from shared.transcoding.pipeline.model import PackagedRendition, SubtitleTrack

VERSION = 6  # EXT-X-MAP in playlists that are not I-frames-only needs 6
KEY_URI = "../keys/hls.key"  # answered per session by the playback issue's key endpoint; never stored here
AUDIO_GROUP = "audio"
SUBTITLE_GROUP = "subs"
SDH_CHARACTERISTICS = (
    "public.accessibility.transcribes-spoken-dialog,public.accessibility.describes-music-and-sound"
)


@dataclass(frozen=True)
class Segment:
    """One media segment: its URI (relative to the playlist) and duration in seconds."""

    uri: str
    duration: float


def media_playlist(
    segments: Sequence[Segment],
    *,
    init_uri: str | None = "init.mp4",
    key_uri: str | None = KEY_URI,
    iframes_only: bool = False,
    media_sequence: int = 1,
) -> str:
    """A VOD media playlist over fMP4 segments; with key_uri, METHOD=AES-128 and the implicit IV."""
    lines = [
        "#EXTM3U",
        f"#EXT-X-VERSION:{VERSION}",
        f"#EXT-X-TARGETDURATION:{target_duration(segment.duration for segment in segments)}",
        "#EXT-X-PLAYLIST-TYPE:VOD",
        f"#EXT-X-MEDIA-SEQUENCE:{media_sequence}",
        "#EXT-X-INDEPENDENT-SEGMENTS",
    ]
    if iframes_only:
        lines.append("#EXT-X-I-FRAMES-ONLY")
    if init_uri:
        lines.append(f'#EXT-X-MAP:URI="{init_uri}"')
    if key_uri:
        # No IV attribute: each segment's IV is its media sequence number (how encryption.py encrypted it).
        lines.append(f'#EXT-X-KEY:METHOD=AES-128,URI="{key_uri}"')
    for segment in segments:
        lines += [f"#EXTINF:{_seconds(segment.duration)},", segment.uri]
    lines.append("#EXT-X-ENDLIST")
    return "\n".join(lines) + "\n"


def subtitle_playlist(vtt_uri: str, *, duration: float) -> str:
    """A one-segment playlist over a whole WebVTT file."""
    return media_playlist([Segment(vtt_uri, duration)], init_uri=None, key_uri=None)


def target_duration(durations: Iterable[float]) -> int:
    """EXT-X-TARGETDURATION: every EXTINF rounded to the nearest integer must not exceed it."""
    return max([1, *(math.floor(value + 0.5) for value in durations)])


def master_playlist(
    renditions: Sequence[PackagedRendition], subtitles: Sequence[tuple[SubtitleTrack, str]]
) -> str:
    """The master playlist over packaged renditions and subtitle tracks (track, playlist URI under hls/)."""
    video = _ordered([r for r in renditions if r.kind == "video"])
    audio = [r for r in renditions if r.kind == "audio"]
    iframes = _ordered([r for r in renditions if r.kind == "iframe"])
    lines = ["#EXTM3U", f"#EXT-X-VERSION:{VERSION}", "#EXT-X-INDEPENDENT-SEGMENTS"]
    default_audio = next((r for r in audio if r.is_default), audio[0] if audio else None)
    audio_names = _unique([r.label or r.language or r.name for r in audio])
    for rendition, name in zip(audio, audio_names, strict=True):
        attributes = [
            "TYPE=AUDIO",
            f'GROUP-ID="{AUDIO_GROUP}"',
            f'NAME="{_quoted(name)}"',
            f'LANGUAGE="{bcp47(rendition.language)}"',
            f"DEFAULT={_yes(rendition is default_audio)}",
            "AUTOSELECT=YES",
            'CHANNELS="2"',  # the encode step makes every audio rendition AAC stereo
            f'URI="{_uri(rendition.hls_playlist)}"',
        ]
        lines.append("#EXT-X-MEDIA:" + ",".join(attributes))
    subtitle_names = _unique([_subtitle_name(track) for track, _ in subtitles])
    for (track, uri), name in zip(subtitles, subtitle_names, strict=True):
        attributes = [
            "TYPE=SUBTITLES",
            f'GROUP-ID="{SUBTITLE_GROUP}"',
            f'NAME="{_quoted(name)}"',
            f'LANGUAGE="{bcp47(track.language)}"',
            "DEFAULT=NO",
            "AUTOSELECT=YES",  # FORCED=YES requires AUTOSELECT=YES
            f"FORCED={_yes(track.forced)}",
        ]
        if track.sdh:
            attributes.append(f'CHARACTERISTICS="{SDH_CHARACTERISTICS}"')
        attributes.append(f'URI="{uri}"')
        lines.append("#EXT-X-MEDIA:" + ",".join(attributes))
    audio_codecs = sorted({r.codecs for r in audio})
    audio_peak = max((r.bandwidth for r in audio), default=0)
    audio_average = max((r.average_bandwidth for r in audio), default=0)
    groups = ([f'AUDIO="{AUDIO_GROUP}"'] if audio else []) + (
        [f'SUBTITLES="{SUBTITLE_GROUP}"'] if subtitles else []
    )
    for rendition in video:
        attributes = [
            f"BANDWIDTH={rendition.bandwidth + audio_peak}",
            f"AVERAGE-BANDWIDTH={rendition.average_bandwidth + audio_average}",
            f'CODECS="{",".join([rendition.codecs, *audio_codecs])}"',
            f"RESOLUTION={rendition.width}x{rendition.height}",
        ]
        if rendition.frame_rate:
            attributes.append(f"FRAME-RATE={rendition.frame_rate:.3f}")
        attributes += [*groups, "CLOSED-CAPTIONS=NONE"]
        lines += ["#EXT-X-STREAM-INF:" + ",".join(attributes), _uri(rendition.hls_playlist)]
    if not video and default_audio is not None:
        # Audio only: one variant playing the default language, the group offering the others.
        attributes = [
            f"BANDWIDTH={audio_peak}",
            f"AVERAGE-BANDWIDTH={audio_average}",
            f'CODECS="{",".join(audio_codecs)}"',
            *groups,
        ]
        lines += ["#EXT-X-STREAM-INF:" + ",".join(attributes), _uri(default_audio.hls_playlist)]
    for rendition in iframes:
        attributes = [
            f"BANDWIDTH={rendition.bandwidth}",
            f"AVERAGE-BANDWIDTH={rendition.average_bandwidth}",
            f'CODECS="{rendition.codecs}"',
            f"RESOLUTION={rendition.width}x{rendition.height}",
            f'URI="{_uri(rendition.hls_playlist)}"',
        ]
        lines.append("#EXT-X-I-FRAME-STREAM-INF:" + ",".join(attributes))
    return "\n".join(lines) + "\n"


def _ordered(renditions: list[PackagedRendition]) -> list[PackagedRendition]:
    # H.264 first (every client plays it), each codec from the lowest bandwidth up.
    return sorted(renditions, key=lambda r: (not r.codecs.startswith("avc"), r.bandwidth, r.name))


def _subtitle_name(track: SubtitleTrack) -> str:
    name = track.label or track.language
    if track.forced and "forced" not in name.lower():
        name += " (forced)"
    if track.sdh and "sdh" not in name.lower():
        name += " (SDH)"
    return name


def _unique(names: list[str]) -> list[str]:
    """NAME must be unique in a group: number the repeats ('English', 'English 2')."""
    seen: dict[str, int] = {}
    result = []
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        result.append(name if seen[name] == 1 else f"{name} {seen[name]}")
    return result


def _uri(asset_path: str) -> str:
    """A path relative to the asset root ('hls/x/playlist.m3u8') as seen from hls/master.m3u8."""
    return posixpath.relpath(asset_path, "hls")


def _quoted(text: str) -> str:
    # A quoted-string cannot hold double quotes, line breaks or other control characters.
    return " ".join("".join(c if c >= " " and c != "\x7f" else " " for c in text.replace('"', "'")).split())


def _seconds(value: float) -> str:
    return f"{value:.6f}"


def _yes(flag: bool) -> str:
    return "YES" if flag else "NO"
