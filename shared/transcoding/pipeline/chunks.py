"""Chunked parallel encoding: split on GOP/segment boundaries, encode chunks concurrently, join (-c copy)."""

from __future__ import annotations

import asyncio
import math
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

from shared.infra.media import SAFE_GLOBAL_ARGS, ffmpeg_binary, ffmpeg_command
from shared.settings import Settings
from shared.transcoding.pipeline.encode import CLEAN_OUTPUT, encode_renditions, encode_timeout, plan_encode
from shared.transcoding.pipeline.model import (
    AudioTrack,
    EncodedOutput,
    PipelineError,
    ProgressCallback,
    Rung,
    SourceInfo,
)
from shared.transcoding.pipeline.progress import run_with_progress

JOIN_TIMEOUT_SECONDS = 60.0
JOIN_BYTES_PER_SECOND = 20 * 1024 * 1024  # a -c copy join is bound by disk speed; very conservative
PROGRESS_INTERVAL = 1.0


def plan_chunks(duration: float, *, chunk_seconds: int, segment_seconds: int) -> list[tuple[float, float]]:
    """(start, duration) of each chunk; every boundary on a multiple of segment_seconds, no tiny tail."""
    if duration <= 0:
        return []
    step = max(segment_seconds, chunk_seconds // segment_seconds * segment_seconds)
    count = max(1, math.ceil(duration / step - 1e-9))
    chunks = [(float(index * step), float(min(step, duration - index * step))) for index in range(count)]
    if len(chunks) > 1 and chunks[-1][1] < segment_seconds:
        # A tail shorter than a segment rides with the previous chunk instead of paying a process start.
        (start, length), (_, tail) = chunks[-2], chunks[-1]
        chunks[-2:] = [(start, length + tail)]
    return chunks


def chunk_grid(settings: Settings) -> int:
    """Chunk boundaries must fall on both a segment boundary and a GOP boundary."""
    return math.lcm(settings.media_segment_seconds, settings.media_gop_seconds)


async def encode_chunk(
    source: SourceInfo,
    *,
    rungs: list[Rung],
    trickplay: bool,
    start: float,
    duration: float,
    out_dir: Path,
    settings: Settings,
    on_progress: ProgressCallback | None = None,
    cores: int | None = None,
) -> list[EncodedOutput]:
    """Encode [start, start + duration) of the source's video for every rung (+ trick play), one decode."""
    plan = plan_encode(
        source, rungs=rungs, audio=[], trickplay=trickplay, out_dir=out_dir, settings=settings, cores=cores
    )
    if not plan.outputs:
        return []
    await asyncio.to_thread(out_dir.mkdir, parents=True, exist_ok=True)
    # Input options: a fast, frame-accurate seek; output timestamps start at 0, and the first picture is a
    # keyframe. start is on the GOP grid, so the forced keyframes fall where the single encode puts them.
    argv = ffmpeg_command(
        ffmpeg_binary(settings),
        input_path=source.path,
        input_format=source.demuxer,
        input_options=(
            "-ss",
            f"{start:.6f}",
            "-t",
            f"{duration:.6f}",
            *(("-threads", str(cores)) if cores else ()),  # the decoder's threads, too
        ),
        output_args=plan.output_args,
    )
    length = max(min(duration, source.duration_seconds - start), 0.001)
    await run_with_progress(
        argv,
        duration=length,
        timeout=encode_timeout(length, settings),
        on_progress=on_progress,
        what=f"encoding the chunk at {start:g} s",
    )
    return plan.outputs


async def join_chunks(
    chunks: list[list[EncodedOutput]], *, out_dir: Path, settings: Settings
) -> list[EncodedOutput]:
    """Concatenate each rendition's chunk files in order (concat demuxer on our own list, -c copy)."""
    if not chunks:
        return []
    await asyncio.to_thread(out_dir.mkdir, parents=True, exist_ok=True)
    binary = ffmpeg_binary(settings)
    joined: list[EncodedOutput] = []
    for first in chunks[0]:
        parts = [_named(chunk, first.name) for chunk in chunks]
        listing = out_dir / f".{first.name}.ffconcat"
        listing.write_text(
            "ffconcat version 1.0\n" + "".join(f"file '{_quote(part.path.resolve())}'\n" for part in parts)
        )
        path = out_dir / f"{first.name}.mp4"
        # Our own list of our own files: -safe 0 for absolute paths, and still nothing but local files.
        argv = [
            binary,
            *SAFE_GLOBAL_ARGS,
            "-y",
            "-f",
            "concat",
            "-safe",
            "0",
            "-protocol_whitelist",
            "file",
            # Each listed file is opened as MP4 only (defence in depth: the list is ours, so are the files).
            "-format_whitelist",
            "concat,mov",
            "-i",
            f"file:{listing.resolve()}",
            "-map",
            "0",
            "-c",
            "copy",
            *CLEAN_OUTPUT,
            "-f",
            "mp4",
            f"file:{path}",
        ]
        size = sum(part.path.stat().st_size for part in parts)
        try:
            await run_with_progress(
                argv,
                duration=0.0,
                timeout=JOIN_TIMEOUT_SECONDS + size / JOIN_BYTES_PER_SECOND,
                what=f"joining {first.name}",
            )
        finally:
            listing.unlink(missing_ok=True)
        joined.append(
            EncodedOutput(name=first.name, kind=first.kind, path=path, rung=first.rung, audio=first.audio)
        )
    return joined


def _named(chunk: list[EncodedOutput], name: str) -> EncodedOutput:
    for output in chunk:
        if output.name == name:
            return output
    raise ValueError(f"a chunk has no output named {name!r}")


def _quote(path: Path) -> str:
    return str(path).replace("'", "'\\''")


async def encode_chunked(
    source: SourceInfo,
    *,
    rungs: list[Rung],
    audio: list[AudioTrack],
    trickplay: bool,
    out_dir: Path,
    settings: Settings,
    workers: int,
    on_progress: ProgressCallback | None = None,
) -> list[EncodedOutput]:
    """Encode the video in chunks on `workers` concurrent ffmpeg processes, audio once; the same outputs."""
    plan = plan_chunks(
        source.duration_seconds,
        chunk_seconds=settings.media_chunk_seconds,
        segment_seconds=chunk_grid(settings),
    )
    if len(plan) <= 1 or not (rungs or trickplay):
        return await encode_renditions(
            source,
            rungs=rungs,
            audio=audio,
            trickplay=trickplay,
            out_dir=out_dir,
            settings=settings,
            on_progress=on_progress,
        )
    work = out_dir / ".chunks"
    workers = max(1, min(workers, len(plan)))
    slots = asyncio.Semaphore(workers)
    # Each process gets its share of the machine's cores, so concurrent chunks do not oversubscribe it.
    cores = max(1, (os.cpu_count() or 1) // workers)
    progress = _Aggregate([length for _, length in plan], on_progress)

    async def chunk(index: int, start: float, length: float) -> list[EncodedOutput]:
        async with slots:
            return await encode_chunk(
                source,
                rungs=rungs,
                trickplay=trickplay,
                start=start,
                duration=length,
                out_dir=work / f"{index:05d}",
                settings=settings,
                on_progress=progress.part(index),
                cores=cores,
            )

    async def audio_pass() -> list[EncodedOutput]:
        async with slots:
            return await encode_renditions(
                source, rungs=[], audio=audio, trickplay=False, out_dir=out_dir, settings=settings
            )

    try:
        try:
            async with asyncio.TaskGroup() as group:
                audio_task = group.create_task(audio_pass()) if audio else None
                tasks = [
                    group.create_task(chunk(index, start, length))
                    for index, (start, length) in enumerate(plan)
                ]
        except BaseExceptionGroup as failed:
            # The first failure, as a single encode would raise it (the other chunks were cancelled).
            raise _first_error(failed) from None
        video = await join_chunks([task.result() for task in tasks], out_dir=out_dir, settings=settings)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    await progress.finish()
    return [*video, *(audio_task.result() if audio_task else [])]


def _first_error(group: BaseExceptionGroup[BaseException]) -> BaseException:
    # A permanent failure wins over a transient one: a chunk killed or cut off while the group was being
    # torn down (signal, broken pipe) must not turn a bad input into a retried job.
    errors = list(_leaves(group))
    for error in errors:
        if isinstance(error, PipelineError) and not error.transient:
            return error
    return next((error for error in errors if not isinstance(error, asyncio.CancelledError)), errors[0])


def _leaves(group: BaseExceptionGroup[BaseException]) -> Iterator[BaseException]:
    for error in group.exceptions:
        if isinstance(error, BaseExceptionGroup):
            yield from _leaves(error)
        else:
            yield error


class _Aggregate:
    """Combines the chunks' progress into one fraction of the whole (weighted by length) with an ETA."""

    def __init__(self, lengths: list[float], callback: ProgressCallback | None) -> None:
        self.lengths = lengths
        self.total = sum(lengths) or 1.0
        self.done = [0.0] * len(lengths)
        self.callback = callback
        self.started = time.monotonic()
        self.reported = 0.0

    def part(self, index: int) -> ProgressCallback:
        """The progress callback for one chunk."""

        async def report(fraction: float, eta: float | None) -> None:
            self.done[index] = max(self.done[index], fraction)
            now = time.monotonic()
            if self.callback is not None and now - self.reported >= PROGRESS_INTERVAL:
                self.reported = now
                whole = (
                    sum(d * length for d, length in zip(self.done, self.lengths, strict=True)) / self.total
                )
                elapsed = now - self.started
                left = elapsed * (1 - whole) / whole if whole > 0.01 else None
                await self.callback(min(whole, 0.99), left)

        return report

    async def finish(self) -> None:
        """Report completion."""
        if self.callback is not None:
            await self.callback(1.0, 0.0)
