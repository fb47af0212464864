"""Values passed between the pipeline's steps: probed source, ladder rungs, encoded and packaged outputs."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

# progress(fraction 0..1 of this step, eta seconds or None): called at most every second or so.
ProgressCallback = Callable[[float, float | None], Awaitable[None]]


class PipelineError(Exception):
    """A step failed; `code` is stable (API failure_code), `transient` says whether a retry may help."""

    def __init__(self, message: str, *, code: str, transient: bool = False) -> None:
        super().__init__(message)
        self.code = code
        self.transient = transient


@dataclass(frozen=True)
class AudioTrack:
    """One audio stream of the source, kept as its own language rendition (AAC stereo)."""

    stream_index: int  # index in the source container
    name: str  # unique and path-safe: 'audio_eng', 'audio_fra', 'audio_und_2'
    language: str  # ISO 639-2/B from the source ('und' when unknown)
    label: str  # human name, e.g. 'English'
    channels: int
    is_default: bool


@dataclass(frozen=True)
class SourceInfo:
    """A probed source that passed every check: what the ladder and encoder need."""

    path: Path
    demuxer: str  # the allowed ffmpeg -f name judged from content ('mov', 'matroska', ...)
    duration_seconds: float
    size_bytes: int
    width: int | None  # None for audio-only sources
    height: int | None
    frame_rate: float | None
    video_stream_index: int | None
    audio: list[AudioTrack] = field(default_factory=list)


@dataclass(frozen=True)
class Rung:
    """One video rendition of the ladder."""

    name: str  # 'h264_720p', 'hevc_1080p'
    codec: Literal["h264", "hevc"]
    width: int  # even, aspect kept from the source
    height: int
    frame_rate: float  # never above the source's
    crf: int
    maxrate: int  # bits/s cap (capped-quality rate control)
    bufsize: int  # bits
    profile: str  # 'high' / 'main'
    level: str  # '3.1', '4.0', ... fitted to size and rate


@dataclass(frozen=True)
class EncodedOutput:
    """An encoded elementary rendition in its own MP4 (video-only or audio-only), keyframes every GOP."""

    name: str
    kind: Literal["video", "audio", "iframe"]
    path: Path
    rung: Rung | None = None  # video and iframe
    audio: AudioTrack | None = None  # audio


@dataclass(frozen=True)
class ContentKeys:
    """A per-asset key set: CENC (DASH) key with its KID, and a separate AES-128 key for HLS."""

    key_id: bytes  # 16 bytes, the CENC default_KID
    # repr=False: a traceback or debug log of the key set must never print key material.
    cenc_key: bytes = field(repr=False)  # 16 bytes
    hls_key: bytes = field(repr=False)  # 16 bytes


@dataclass(frozen=True)
class PackagedRendition:
    """One rendition packaged into CMAF segments for HLS (AES-128) and DASH (CENC), with its facts."""

    name: str
    kind: Literal["video", "audio", "iframe"]
    codecs: str  # RFC 6381 from the init segment: 'avc1.64001f', 'hvc1.1.6.L120.90', 'mp4a.40.2'
    bandwidth: int  # peak bits/s over segments
    average_bandwidth: int
    duration_seconds: float
    segment_count: int
    width: int | None = None
    height: int | None = None
    frame_rate: float | None = None
    language: str | None = None
    label: str | None = None
    is_default: bool = False
    hls_playlist: str = ""  # path relative to the asset root, e.g. 'hls/h264_720p/playlist.m3u8'
    dash_dir: str = ""  # e.g. 'dash/h264_720p' (init.mp4 + seg-00001.m4s ...)
    dash_segment_durations: list[int] = field(default_factory=list)  # in dash_timescale units
    dash_timescale: int = 0


@dataclass(frozen=True)
class SubtitleTrack:
    """A normalised WebVTT subtitle file to reference from both manifests."""

    language: str  # BCP 47
    label: str
    forced: bool
    sdh: bool
    vtt_path: Path  # local file


@dataclass(frozen=True)
class ImageSet:
    """Poster candidates, storyboard sprites and their WebVTT thumbnails track (paths from the asset root)."""

    posters: list[str]
    storyboards: list[str]
    thumbnails_vtt: str
    tile_width: int
    tile_height: int
    interval_seconds: float
