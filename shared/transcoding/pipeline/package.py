"""Packaging one encoded rendition into CMAF fMP4 segments: AES-128 HLS and CENC DASH, with its facts.

How (checked on FFmpeg 9.0.2): ONE ffmpeg process per rendition (`-c copy`, no re-encode) with two
`dash` muxer outputs over the same input, so both cut at the same keyframes:
- a clear one, whose segments we encrypt whole with AES-128-CBC for HLS (the hls muxer refuses encrypted
  fMP4, and whole-segment AES-128 is what every HLS client decrypts); the clear copies never leave the
  scratch folder;
- a CENC one (`-format_options encryption_scheme=cenc-aes-ctr:encryption_key=..:encryption_kid=..`, the
  mp4 muxer options the dash muxer forwards; H.264/HEVC get subsample encryption) for DASH.
Both use `movflags=+negative_cts_offsets` so a stream with B-frames starts presenting at 0 without an edit
list (CMAF style). The dash muxer rather than the hls muxer for the clear set: it is the same segmenter as
the CENC set (identical boundaries) and reports exact durations in timescale units in its MPD, which we
read (dash.read_timeline) and then discard: playlists and the real MPD are written by hls.py / dash.py.
Kind 'iframe' (the all-intra trickplay stream) is cut at every frame, so each segment is one I-frame: the
I-frames-only playlist then needs no byte ranges, which whole-segment AES-128 would not allow.
The keys appear on ffmpeg's command line (it has no key-file option); the worker host runs only our code.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from shared.infra.media import MediaToolError, ffmpeg_binary, ffmpeg_command, run_ffmpeg
from shared.settings import Settings
from shared.transcoding.pipeline import hls
from shared.transcoding.pipeline.boxes import BoxError, sample_count
from shared.transcoding.pipeline.codecs import TrackFacts, read_init
from shared.transcoding.pipeline.dash import Timeline, read_timeline
from shared.transcoding.pipeline.encryption import encrypt_file
from shared.transcoding.pipeline.manifests import write_manifests
from shared.transcoding.pipeline.model import ContentKeys, EncodedOutput, PackagedRendition, PipelineError

__all__ = ["package_rendition", "write_manifests"]  # write_manifests lives in manifests.py

INIT_NAME = "init.mp4"
PLAYLIST_NAME = "playlist.m3u8"
WORK_DIR = ".work"  # scratch inside the asset folder (same filesystem: moves are renames); never published
_EVERY_FRAME = "0.001"  # a segment duration shorter than any frame: each keyframe starts a segment


def segment_name(number: int) -> str:
    """The file name ffmpeg's '$Number%05d$' template gives segment `number` (1-based)."""
    return f"seg-{number:05d}.m4s"


async def package_rendition(
    encoded: EncodedOutput, *, asset_dir: Path, keys: ContentKeys, settings: Settings
) -> PackagedRendition:
    """Package an encoded MP4 (-c copy) into asset_dir/hls/<name>/ (AES-128) and dash/<name>/ (CENC)."""
    work = asset_dir / WORK_DIR / encoded.name
    shutil.rmtree(work, ignore_errors=True)  # a redelivered job starts clean
    try:
        (work / "clear").mkdir(parents=True)
        (work / "cenc").mkdir()
        seconds = _EVERY_FRAME if encoded.kind == "iframe" else str(settings.media_segment_seconds)
        argv = ffmpeg_command(
            ffmpeg_binary(settings),
            input_path=encoded.path,
            input_format="mov",  # our own encode's MP4
            output_args=[
                *_dash_output(encoded, work / "clear", seconds, _CLEAR_OPTIONS),
                *_dash_output(encoded, work / "cenc", seconds, _CLEAR_OPTIONS + _cenc_options(keys)),
            ],
        )
        # -c copy is disk-bound: a generous allowance per byte, never unbounded.
        timeout = 120.0 + encoded.path.stat().st_size / 5e6
        try:
            await run_ffmpeg(argv, timeout=timeout)
        except MediaToolError as error:
            raise PipelineError(
                f"packaging {encoded.name} failed: {error}",
                code="packaging_failed",
                transient="longer than" in str(error),
            ) from error
        return await asyncio.to_thread(_finish, encoded, work, asset_dir, keys)
    except (OSError, BoxError, ValueError, struct.error) as error:
        # Disk trouble may pass on a retry; a malformed output of our own tools will not.
        raise PipelineError(
            f"packaging {encoded.name} failed: {error}",
            code="packaging_failed",
            transient=isinstance(error, OSError),
        ) from error
    finally:
        shutil.rmtree(work, ignore_errors=True)  # the clear segments must not outlive this call
        with contextlib.suppress(OSError):  # still in use when renditions are packaged concurrently
            work.parent.rmdir()


_CLEAR_OPTIONS = "movflags=+negative_cts_offsets"


def _cenc_options(keys: ContentKeys) -> str:
    return (
        f":encryption_scheme=cenc-aes-ctr:encryption_key={keys.cenc_key.hex()}"
        f":encryption_kid={keys.key_id.hex()}"
    )


def _dash_output(encoded: EncodedOutput, folder: Path, seconds: str, format_options: str) -> list[str]:
    stream = "0:a:0" if encoded.kind == "audio" else "0:v:0"
    # Apple wants 'hvc1' sample entries (parameter sets out of band) for HEVC in HLS.
    tag = ["-tag:v", "hvc1"] if encoded.rung is not None and encoded.rung.codec == "hevc" else []
    return [
        "-map", stream, "-c", "copy", *tag,
        "-f", "dash", "-seg_duration", seconds, "-use_template", "1", "-use_timeline", "1",
        "-init_seg_name", INIT_NAME, "-media_seg_name", "seg-$Number%05d$.m4s",
        "-format_options", format_options,
        str(folder / "manifest.mpd"),
    ]  # fmt: skip


@dataclass(frozen=True)
class _Output:
    timeline: Timeline
    facts: TrackFacts
    segments: list[Path]


def _read_output(folder: Path) -> _Output:
    timeline = read_timeline((folder / "manifest.mpd").read_text())
    if timeline.start != 0 or not timeline.durations:
        raise ValueError(f"unexpected timeline (start {timeline.start}, {len(timeline.durations)} segments)")
    segments = [folder / segment_name(number) for number in range(1, len(timeline.durations) + 1)]
    missing = [segment.name for segment in segments if not segment.is_file()]
    if missing or (folder / segment_name(len(segments) + 1)).exists():
        raise ValueError(f"segment files do not match the timeline (missing: {missing[:3]})")
    return _Output(timeline, read_init((folder / INIT_NAME).read_bytes()), segments)


def _finish(encoded: EncodedOutput, work: Path, asset_dir: Path, keys: ContentKeys) -> PackagedRendition:
    """Check both outputs, encrypt the HLS segments, write the media playlist and move both into place."""
    clear, cenc = _read_output(work / "clear"), _read_output(work / "cenc")
    if clear.timeline != cenc.timeline:
        raise ValueError("the clear and CENC outputs were cut differently")
    if cenc.facts.default_kid != keys.key_id:
        raise ValueError("the CENC init segment does not carry the asset's key id")
    timeline = clear.timeline
    durations = [duration / timeline.timescale for duration in timeline.durations]
    samples = [sample_count(segment.read_bytes()) for segment in clear.segments]
    if encoded.kind == "iframe" and any(count != 1 for count in samples):
        raise ValueError("the trickplay stream is not all I-frames (a segment holds more than one frame)")

    hls_new = work / "hls"
    hls_new.mkdir()
    os.replace(work / "clear" / INIT_NAME, hls_new / INIT_NAME)
    hls_sizes = []
    for number, segment in enumerate(clear.segments, start=1):  # sequence number = segment number = IV
        hls_sizes.append(encrypt_file(segment, hls_new / segment.name, key=keys.hls_key, sequence=number))
        segment.unlink()
    playlist = hls.media_playlist(
        [
            hls.Segment(segment.name, duration)
            for segment, duration in zip(clear.segments, durations, strict=True)
        ],
        iframes_only=encoded.kind == "iframe",
    )
    (hls_new / PLAYLIST_NAME).write_text(playlist)
    dash_new = work / "cenc"
    (dash_new / "manifest.mpd").unlink()  # the real MPD is dash/manifest.mpd, written by write_manifests
    dash_sizes = [segment.stat().st_size for segment in cenc.segments]

    _replace(hls_new, asset_dir / "hls" / encoded.name)
    _replace(dash_new, asset_dir / "dash" / encoded.name)
    sizes = [max(pair) for pair in zip(hls_sizes, dash_sizes, strict=True)]
    peak, average = measure_bandwidth(sizes, durations)
    duration = sum(durations)
    audio = encoded.audio
    kind: Literal["video", "audio", "iframe"] = encoded.kind
    return PackagedRendition(
        name=encoded.name,
        kind=kind,
        codecs=clear.facts.codecs,
        bandwidth=peak,
        average_bandwidth=average,
        duration_seconds=duration,
        segment_count=len(durations),
        width=clear.facts.width,
        height=clear.facts.height,
        frame_rate=sum(samples) / duration if clear.facts.kind == "video" and duration else None,
        language=audio.language if audio else None,
        label=rendition_label(encoded),
        is_default=audio.is_default if audio else False,
        hls_playlist=f"hls/{encoded.name}/{PLAYLIST_NAME}",
        dash_dir=f"dash/{encoded.name}",
        dash_segment_durations=list(timeline.durations),
        dash_timescale=timeline.timescale,
    )


def rendition_label(encoded: EncodedOutput) -> str | None:
    """What a quality menu shows: the rung's name ('h264_1080p' -> '1080p', HEVC marked), the audio label.

    From the rung, not the output's height: a 2.39:1 film's 1080p rung is 1920x800, still '1080p'.
    """
    if encoded.audio is not None:
        return encoded.audio.label
    if encoded.kind != "video" or encoded.rung is None:
        return None
    label = encoded.rung.name.split("_", 1)[-1]
    return f"{label} HEVC" if encoded.rung.codec == "hevc" else label


def measure_bandwidth(sizes: list[int], durations: list[float]) -> tuple[int, int]:
    """(peak, average) bits/s over segments; a short tail (< half the longest) is left out of the peak.

    The tail starts with a keyframe, so over a fraction of a second its rate says nothing about what a
    player must sustain (Apple's validator and players measure over whole target durations too).
    """
    total = sum(durations)
    average = round(sum(sizes) * 8 / total) if total else 0
    rates = [size * 8 / duration for size, duration in zip(sizes, durations, strict=True) if duration > 0]
    if len(rates) > 1 and durations[-1] < max(durations) / 2:
        rates = rates[:-1]
    return max(round(max(rates, default=0)), average), average


def _replace(source: Path, target: Path) -> None:
    """Put a finished folder in place of an older one (a re-package replaces, never mixes)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.exists():
        shutil.rmtree(target)
    os.replace(source, target)
