"""Transcoding cost on a generated mezzanine: one decode for the whole ladder vs one process per rendition.

Generates a clip with the pipeline's own generator (default 60 s, 1920x1080, 25 fps, H.264 at 20 Mbit/s,
AAC stereo), probes it with inspect_source, builds the ladder (build_ladder, HEVC as MEDIA_HEVC_ENABLED)
and measures, on this machine, with the encoder settings of the environment (MEDIA_X264_PRESET ...):

  one decode     encode_renditions: every rung + trick play + audio in ONE ffmpeg process (the full ladder)
  per rendition  the same outputs, one ffmpeg process each (every process decodes the source itself)
  first playable the lowest MEDIA_FIRST_RUNGS rungs + audio encoded, packaged (HLS AES-128 + DASH CENC)
                 and the manifests written: phase 1 of the worker, what makes a title playable
  chunked        encode_chunked of every rung + trick play with 1 and with 2 workers (chunks of
                 --chunk-seconds)

CPU seconds are the children's user + system time (resource.getrusage(RUSAGE_CHILDREN) deltas: ffmpeg
runs as a child); wall seconds from time.perf_counter(). Goals: one-decode CPU <= 0.8x the per-rendition
CPU; first playable within 0.25x of the clip's duration (wall; upload to storage not included).

    .venv/bin/python bench/transcode.py [--seconds 60] [--height 1080] [--bitrate 20M] [--chunk-seconds 12]
                                        [--runs 1]
    .venv/bin/python bench/transcode.py --seconds 8 --height 360       # a quick run
"""

import argparse
import asyncio
import os
import platform
import resource
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
CPU_RATIO_TARGET = 0.8
FIRST_PLAYABLE_TARGET = 0.25


@dataclass(frozen=True)
class Measure:
    """Wall and children's CPU seconds of one step."""

    wall: float
    cpu: float


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


async def measure(step: Callable[[], Awaitable[Any]]) -> Measure:
    """Run one step, timing its wall clock and the CPU its ffmpeg children used."""
    cpu, wall = _children_cpu(), time.perf_counter()
    await step()
    return Measure(wall=time.perf_counter() - wall, cpu=_children_cpu() - cpu)


def _median(values: list[Measure]) -> Measure:
    return Measure(
        wall=statistics.median(value.wall for value in values),
        cpu=statistics.median(value.cpu for value in values),
    )


async def run(args: argparse.Namespace, scratch: Path) -> None:
    """Generate, then measure every step and print the table."""
    from shared.infra.media import ffmpeg_binary, ffmpeg_version
    from shared.settings import get_settings
    from shared.transcoding.keys import new_content_keys
    from shared.transcoding.pipeline.chunks import encode_chunked
    from shared.transcoding.pipeline.encode import encode_renditions
    from shared.transcoding.pipeline.ladder import build_ladder
    from shared.transcoding.pipeline.package import package_rendition, write_manifests
    from shared.transcoding.pipeline.probing import inspect_source
    from shared.transcoding.pipeline.testclips import generate_clip

    settings = get_settings().model_copy(update={"media_chunk_seconds": args.chunk_seconds})
    binary = ffmpeg_binary(settings)
    width = round(args.height * 16 / 9 / 2) * 2
    print(f"generating {args.seconds} s {width}x{args.height} {args.fps:g} fps at {args.bitrate}", flush=True)
    started = time.perf_counter()
    clip = await asyncio.to_thread(
        generate_clip,
        binary,
        scratch / "mezzanine.mp4",
        seconds=args.seconds,
        width=width,
        height=args.height,
        frame_rate=args.fps,
        audio_languages=("eng",),
        video_bitrate=args.bitrate,
        timeout=3600,
    )
    print(f"  generated in {time.perf_counter() - started:.0f} s", flush=True)
    source = await inspect_source(clip, settings=settings)
    ladder = build_ladder(source, hevc=settings.media_hevc_enabled)
    first = ladder[: settings.media_first_rungs]
    duration = source.duration_seconds

    async def encode(name: str, **kwargs: Any) -> None:
        out = scratch / name
        await encode_renditions(source, out_dir=out, settings=settings, **kwargs)
        shutil.rmtree(out, ignore_errors=True)

    async def first_playable() -> None:
        # Phase 1 as the worker runs it: encode the lowest rungs + audio, package them, write the manifests.
        out = scratch / "first"
        encoded = await encode_renditions(
            source,
            rungs=first,
            audio=source.audio,
            trickplay=False,
            out_dir=out / "encoded",
            settings=settings,
        )
        keys = new_content_keys()
        packaged = [
            await package_rendition(output, asset_dir=out / "asset", keys=keys, settings=settings)
            for output in encoded
        ]
        write_manifests(out / "asset", renditions=packaged, subtitles=[], keys=keys, settings=settings)
        shutil.rmtree(out, ignore_errors=True)

    async def per_rendition() -> None:
        for rung in ladder:
            await encode(f"per-{rung.name}", rungs=[rung], audio=[], trickplay=False)
        await encode("per-trickplay", rungs=[], audio=[], trickplay=True)
        for track in source.audio:
            await encode(f"per-{track.name}", rungs=[], audio=[track], trickplay=False)

    async def chunked(workers: int) -> None:
        out = scratch / f"chunked-{workers}"
        await encode_chunked(
            source, rungs=ladder, audio=[], trickplay=True, out_dir=out, settings=settings, workers=workers
        )
        shutil.rmtree(out, ignore_errors=True)

    print(
        f"ladder: {', '.join(rung.name for rung in ladder)} + trickplay + {len(source.audio)} audio",
        flush=True,
    )
    steps: dict[str, Callable[[], Awaitable[Any]]] = {
        "one decode": lambda: encode("single", rungs=ladder, audio=source.audio, trickplay=True),
        "one process per rendition": per_rendition,
        "first playable": first_playable,
        "chunked, 1 worker": lambda: chunked(1),
        "chunked, 2 workers": lambda: chunked(2),
    }
    runs: dict[str, list[Measure]] = {name: [] for name in steps}
    for number in range(1, args.runs + 1):
        for name, step in steps.items():  # interleaved, so machine noise hits every step alike
            print(f"run {number}/{args.runs}: {name} ...", flush=True)
            runs[name].append(await measure(step))
    single, separate, playable, one_worker, two_workers = (_median(values) for values in runs.values())

    cpu_ratio = single.cpu / separate.cpu
    first_fraction = playable.wall / duration
    print(
        f"\n{duration:.0f} s {width}x{args.height} {args.fps:g} fps H.264 {args.bitrate} mezzanine, "
        f"ffmpeg {ffmpeg_version(binary)}, preset {settings.media_x264_preset}, {os.cpu_count()} cores "
        f"({platform.machine()}), ladder {len(ladder)} rungs ({ladder[0].name}..{ladder[-1].name}) "
        f"+ trick play + {len(source.audio)} audio, median of {args.runs} run(s)"
    )
    print("| step | wall s | CPU s | ratio | verdict |")
    print("|---|---:|---:|---:|---|")
    verdict = "PASS" if cpu_ratio <= CPU_RATIO_TARGET else "FAIL"
    print(
        f"| full ladder, one process per rendition | {separate.wall:.1f} | {separate.cpu:.1f} | 1.00 "
        "| baseline |"
    )
    print(
        f"| full ladder, one decode (encode_renditions) | {single.wall:.1f} | {single.cpu:.1f} | "
        f"{cpu_ratio:.2f} CPU, {single.wall / separate.wall:.2f} wall | "
        f"{verdict} (CPU <= {CPU_RATIO_TARGET:g}x) |"
    )
    verdict = "PASS" if first_fraction <= FIRST_PLAYABLE_TARGET else "FAIL"
    names = ", ".join(rung.name for rung in first)
    print(
        f"| first playable: {len(first)} rungs + audio ({names}) encoded, packaged, manifests | "
        f"{playable.wall:.1f} | {playable.cpu:.1f} | "
        f"{first_fraction:.3f}x clip duration | {verdict} (<= {FIRST_PLAYABLE_TARGET:g}x) |"
    )
    chunks = -(-int(duration) // args.chunk_seconds)
    print(
        f"| chunked ({args.chunk_seconds} s chunks, ~{chunks}), 1 worker | {one_worker.wall:.1f} | "
        f"{one_worker.cpu:.1f} | 1.00 | baseline |"
    )
    print(
        f"| chunked, 2 workers | {two_workers.wall:.1f} | {two_workers.cpu:.1f} | "
        f"{two_workers.wall / one_worker.wall:.2f} wall | - |"
    )


def main() -> int:
    """Parse the options, run in a scratch folder, print the table."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=60.0, help="clip length")
    parser.add_argument("--height", type=int, default=1080, help="clip height (16:9)")
    parser.add_argument("--fps", type=float, default=25.0)
    parser.add_argument("--bitrate", default="20M", help="mezzanine video bitrate")
    parser.add_argument("--chunk-seconds", type=int, default=12, help="chunk length (>= 12)")
    parser.add_argument("--runs", type=int, default=1, help="measurements per step (medians are shown)")
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder (its path is printed)")
    args = parser.parse_args()
    if args.chunk_seconds < 12:
        parser.error("--chunk-seconds must be at least 12 (MEDIA_CHUNK_SECONDS)")
    scratch = Path(tempfile.mkdtemp(prefix="cinema-bench-transcode-"))
    try:
        asyncio.run(run(args, scratch))
    finally:
        if args.keep:
            print(f"kept: {scratch}")
        else:
            shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
