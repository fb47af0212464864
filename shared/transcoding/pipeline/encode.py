"""One ffmpeg process, one decode: every rung, each audio track and the trick-play stream, one MP4 each."""

from __future__ import annotations

import asyncio
import math
import os
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from shared.infra.media import ffmpeg_binary, ffmpeg_command
from shared.settings import Settings
from shared.transcoding.pipeline.ladder import trickplay_rung
from shared.transcoding.pipeline.model import AudioTrack, EncodedOutput, ProgressCallback, Rung, SourceInfo
from shared.transcoding.pipeline.progress import run_with_progress

AUDIO_BITRATE = "128k"
AUDIO_SAMPLE_RATE = "48000"
MIN_TIMEOUT_SECONDS = 30.0
HEVC_COST = 4.0  # x265 costs about this many times x264 per pixel at comparable presets
THREAD_HEADROOM = 1.5
TRICKPLAY_CRF = 26  # small stills; CRF alone (VBV is meaningless for one picture every GOP)
# Strip everything the source says about itself (titles, comments, chapters): untrusted text never
# travels into our outputs; languages are set explicitly.
CLEAN_OUTPUT = ("-map_metadata", "-1", "-map_chapters", "-1", "-sn", "-dn")


@dataclass(frozen=True)
class EncodePlan:
    """The output half of an ffmpeg argv and the files it writes."""

    output_args: list[str]
    outputs: list[EncodedOutput]


def encode_timeout(duration: float, settings: Settings) -> float:
    """How long an encode of `duration` seconds of source may run before it is stopped."""
    return max(MIN_TIMEOUT_SECONDS, settings.media_encode_timeout_factor * duration)


async def encode_renditions(
    source: SourceInfo,
    *,
    rungs: list[Rung],
    audio: list[AudioTrack],
    trickplay: bool,
    out_dir: Path,
    settings: Settings,
    on_progress: ProgressCallback | None = None,
) -> list[EncodedOutput]:
    """Encode rungs + audio tracks (+ trick play) in one ffmpeg process with a single decode of the source."""
    plan = plan_encode(
        source, rungs=rungs, audio=audio, trickplay=trickplay, out_dir=out_dir, settings=settings
    )
    if not plan.outputs:
        return []
    await asyncio.to_thread(out_dir.mkdir, parents=True, exist_ok=True)
    argv = ffmpeg_command(
        ffmpeg_binary(settings),
        input_path=source.path,
        input_format=source.demuxer,
        output_args=plan.output_args,
    )
    await run_with_progress(
        argv,
        duration=source.duration_seconds,
        timeout=encode_timeout(source.duration_seconds, settings),
        on_progress=on_progress,
        what=f"encoding {', '.join(output.name for output in plan.outputs)}",
    )
    return plan.outputs


def plan_encode(
    source: SourceInfo,
    *,
    rungs: list[Rung],
    audio: list[AudioTrack],
    trickplay: bool,
    out_dir: Path,
    settings: Settings,
    cores: int | None = None,
) -> EncodePlan:
    """The filter graph and per-output options for the given rungs, audio tracks and trick play."""
    if (rungs or trickplay) and (source.video_stream_index is None or not source.frame_rate):
        raise ValueError("video rungs need a source with a video stream")
    trick = trickplay_rung(source, gop_seconds=settings.media_gop_seconds) if trickplay else None
    video = [*rungs, *([trick] if trick else [])]
    args: list[str] = ["-y"]
    outputs: list[EncodedOutput] = []
    if video:
        graph, labels = filter_graph(
            source, rungs=rungs, trickplay=trick, gop_seconds=settings.media_gop_seconds
        )
        args += ["-filter_complex", graph]
        threads = thread_shares(video, cores=cores)
        for rung in rungs:
            path = out_dir / f"{rung.name}.mp4"
            args += ["-map", labels[rung.name], *_video_codec_args(rung, settings, threads[rung.name])]
            args += [*CLEAN_OUTPUT, "-an", "-f", "mp4", f"file:{path}"]
            outputs.append(EncodedOutput(name=rung.name, kind="video", path=path, rung=rung))
        if trick:
            path = out_dir / f"{trick.name}.mp4"
            args += ["-map", labels[trick.name], *_trickplay_codec_args(trick, settings, threads[trick.name])]
            args += [*CLEAN_OUTPUT, "-an", "-f", "mp4", f"file:{path}"]
            outputs.append(EncodedOutput(name=trick.name, kind="iframe", path=path, rung=trick))
    for track in audio:
        path = out_dir / f"{track.name}.mp4"
        args += ["-map", f"0:{track.stream_index}", *audio_codec_args(track)]
        args += [*CLEAN_OUTPUT, "-vn", "-f", "mp4", f"file:{path}"]
        outputs.append(EncodedOutput(name=track.name, kind="audio", path=path, audio=track))
    return EncodePlan(output_args=args, outputs=outputs)


def filter_graph(
    source: SourceInfo, *, rungs: list[Rung], trickplay: Rung | None, gop_seconds: int
) -> tuple[str, dict[str, str]]:
    """One decode, then a cascade of scalers (each size scaled from the next larger one), split per output."""
    assert source.video_stream_index is not None and source.frame_rate
    rate = max([rung.frame_rate for rung in rungs] or [source.frame_rate])
    consumers: dict[tuple[int, int], list[Rung]] = {}
    for rung in sorted([*rungs, *([trickplay] if trickplay else [])], key=lambda r: -r.width * r.height):
        consumers.setdefault((rung.width, rung.height), []).append(rung)
    # Interlaced pictures deinterlaced (progressive ones pass untouched), a constant frame rate (also for
    # variable-rate sources) and 8-bit 4:2:0 for H.264 High / HEVC Main.
    chains = [
        f"[0:{source.video_stream_index}]bwdif=mode=send_frame:deint=interlaced,"
        f"fps={_rational(rate)},format=yuv420p[base]"
    ]
    labels: dict[str, str] = {}
    previous = "base"
    sizes = list(consumers)
    for number, (width, height) in enumerate(sizes):
        users = consumers[(width, height)]
        outs = [f"v{number}_{index}" for index in range(len(users))]
        after = f"s{number}" if number + 1 < len(sizes) else None
        pads = outs + ([after] if after else [])
        chain = f"[{previous}]scale={width}:{height}:flags=bicubic,setsar=1"
        chain += f",split={len(pads)}" if len(pads) > 1 else ""
        chains.append(chain + "".join(f"[{pad}]" for pad in pads))
        for rung, pad in zip(users, outs, strict=True):
            if rung is trickplay:
                # Exactly the pictures the rungs make keyframes of (the first at or after every GOP boundary),
                # then retimed onto the GOP grid so every picture lasts one GOP.
                chains.append(
                    f"[{pad}]select='gte(t\\,selected_n*{gop_seconds})',fps=1/{gop_seconds}:round=down[trick]"
                )
                labels[rung.name] = "[trick]"
            elif rung.frame_rate < rate - 1e-6:
                chains.append(f"[{pad}]fps={_rational(rung.frame_rate)}[r{number}_{rung.name}]")
                labels[rung.name] = f"[r{number}_{rung.name}]"
            else:
                labels[rung.name] = f"[{pad}]"
        previous = after or previous
    return ";".join(chains), labels


def _rational(rate: float) -> str:
    fraction = Fraction(rate).limit_denominator(1001)
    return f"{fraction.numerator}/{fraction.denominator}"


def thread_shares(rungs: list[Rung], *, cores: int | None = None) -> dict[str, int]:
    """Encoder threads per output in proportion to its work, so several encoders do not swamp the cores."""
    cores = cores or os.cpu_count() or 1
    weights = {rung.name: rung.width * rung.height * min(rung.frame_rate, 60) for rung in rungs}
    for rung in rungs:
        if rung.codec == "hevc":
            weights[rung.name] *= HEVC_COST
    total = sum(weights.values()) or 1.0
    # Rounded up with headroom: the largest rung is the critical path (on 2 cores it gets 2 threads while
    # the small ones share the rest; measured 12 % less wall time than 1 thread each, same CPU).
    return {
        name: max(1, min(cores, math.ceil(cores * weight / total * THREAD_HEADROOM)))
        for name, weight in weights.items()
    }


def keyframe_args(gop_seconds: int) -> list[str]:
    """IDR frames forced on the first picture at or after each GOP boundary (the same ones on all rungs)."""
    return [
        "-force_key_frames",
        f"expr:gte(t,n_forced*{gop_seconds})",
        "-forced-idr",
        "1",
        "-sc_threshold",
        "0",
    ]


def gop_frames(rung: Rung, gop_seconds: int) -> int:
    """The encoder's own keyframe interval: one picture more than a GOP (the forced keyframe comes first)."""
    # Scene cuts are off too, so the encoder never adds a keyframe of its own between the forced ones.
    return math.ceil(rung.frame_rate * gop_seconds) + 1


def _video_codec_args(rung: Rung, settings: Settings, threads: int) -> list[str]:
    gop = settings.media_gop_seconds
    keyint = gop_frames(rung, gop)
    rate = [
        "-crf",
        str(rung.crf),
        "-maxrate",
        str(rung.maxrate),
        "-bufsize",
        str(rung.bufsize),
        "-g",
        str(keyint),
    ]
    if rung.codec == "hevc":
        params = (
            f"keyint={keyint}:scenecut=0:open-gop=0:level-idc={rung.level}:"
            f"pools={threads}:frame-threads={min(threads, 2)}:log-level=error"
        )
        return [
            "-c:v",
            "libx265",
            "-preset",
            settings.media_x264_preset,
            "-profile:v",
            rung.profile,
            *rate,
            *keyframe_args(gop),
            "-x265-params",
            params,
            "-tag:v",
            "hvc1",
        ]
    return [
        "-c:v",
        "libx264",
        "-preset",
        settings.media_x264_preset,
        "-profile:v",
        rung.profile,
        "-level:v",
        rung.level,
        *rate,
        *keyframe_args(gop),
        # 8x8dct: the High profile's tool, kept on even by the fastest presets so the stream is High.
        "-x264-params",
        "scenecut=0:open-gop=0:8x8dct=1",
        "-threads",
        str(threads),
    ]


def _trickplay_codec_args(rung: Rung, settings: Settings, threads: int) -> list[str]:
    return [
        "-c:v",
        "libx264",
        "-preset",
        settings.media_x264_preset,
        "-profile:v",
        rung.profile,
        "-level:v",
        rung.level,
        "-crf",
        str(TRICKPLAY_CRF),
        "-x264-params",
        "keyint=1:scenecut=0:8x8dct=1",  # every picture an IDR frame
        "-threads",
        str(threads),
    ]


def audio_codec_args(track: AudioTrack) -> list[str]:
    """AAC-LC stereo 128 kbit/s 48 kHz with the track's language."""
    return [
        "-c:a",
        "aac",
        "-b:a",
        AUDIO_BITRATE,
        "-ac",
        "2",
        "-ar",
        AUDIO_SAMPLE_RATE,
        "-metadata:s:a:0",
        f"language={track.language}",
    ]
