"""Media tools: the ffmpeg binary (run only on local files, bounded in time) and PyAV probing."""

from __future__ import annotations

import asyncio
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shared.settings import Settings

# Every ffmpeg run starts with these: no stdin and no protocol but local files, so a hostile input
# can never make ffmpeg open a URL; the demuxer allowlist keeps out playlists and concat lists, which
# would open other files.
SAFE_GLOBAL_ARGS = ("-nostdin", "-hide_banner", "-nostats", "-loglevel", "error")
SAFE_INPUT_ARGS = ("-protocol_whitelist", "file")
ALLOWED_DEMUXERS = (
    "mov",
    "mp4",
    "matroska",
    "webm",
    "mpegts",
    "avi",
    "mxf",
    "flv",
    "wav",
    "mp3",
    "flac",
    "ogg",
)

# 8K plus the padding codecs add to coded sizes (macroblock/CTU alignment).
MAX_DECODE_PIXELS = (7680 + 64) * (4320 + 64)


class MediaToolError(Exception):
    """ffmpeg failed, timed out, or a file could not be probed."""


def ffmpeg_binary(settings: Settings) -> str:
    """FFMPEG_BINARY when set, else the binary shipped in the imageio-ffmpeg wheel, else one on PATH."""
    if settings.ffmpeg_binary:
        if not settings.ffmpeg_binary.is_file():
            raise MediaToolError(f"FFMPEG_BINARY {settings.ffmpeg_binary} does not exist")
        return str(settings.ffmpeg_binary)
    try:
        import imageio_ffmpeg

        return str(imageio_ffmpeg.get_ffmpeg_exe())
    except (ImportError, RuntimeError):
        found = shutil.which("ffmpeg")
        if not found:
            raise MediaToolError("no ffmpeg: set FFMPEG_BINARY or install imageio-ffmpeg") from None
        return found


def allowed_demuxer(format_name: str) -> str:
    """The ffmpeg -f name for a probed format ('mov,mp4,m4a,...' -> 'mov'), refusing others."""
    first = format_name.split(",")[0].strip()
    if first not in ALLOWED_DEMUXERS:
        raise MediaToolError(f"demuxer {first!r} is not allowed (allowed: {', '.join(ALLOWED_DEMUXERS)})")
    return first


def ffmpeg_command(
    binary: str,
    *,
    input_path: Path,
    input_format: str,
    output_args: list[str],
    input_options: tuple[str, ...] = (),
    max_pixels: int = MAX_DECODE_PIXELS,
) -> list[str]:
    """An ffmpeg argv reading one local file with an explicit, allowed demuxer (never guessed)."""
    demuxer = allowed_demuxer(input_format)
    return [
        binary,
        *SAFE_GLOBAL_ARGS,
        *SAFE_INPUT_ARGS,
        # Decoders refuse frames above this, even when a stream changes size after the probed header.
        "-max_pixels",
        str(max_pixels),
        *input_options,
        "-f",
        demuxer,
        "-i",
        f"file:{input_path.resolve()}",  # 'file:' so a name like 'http:...' is still a local path
        *output_args,
    ]


@dataclass(frozen=True)
class FfmpegResult:
    """What an ffmpeg run printed."""

    returncode: int
    stdout: str
    stderr: str


async def run_ffmpeg(argv: list[str], *, timeout: float) -> FfmpegResult:  # noqa: ASYNC109
    """Run ffmpeg, killing it when it outlives the timeout; a non-zero exit raises with its stderr."""
    # An explicit timeout, not asyncio.timeout(): on expiry the child process must be killed, not orphaned.
    process = await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        stdout, stderr = await asyncio.wait_for(process.communicate(), timeout)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise MediaToolError(f"ffmpeg took longer than {timeout:g} s and was stopped") from None
    except asyncio.CancelledError:
        # A cancelled job must not leave ffmpeg running (and writing) behind it.
        process.kill()
        await asyncio.shield(process.wait())
        raise
    result = FfmpegResult(
        process.returncode or 0, stdout.decode(errors="replace"), stderr.decode(errors="replace")
    )
    if result.returncode != 0:
        raise MediaToolError(f"ffmpeg failed ({result.returncode}): {result.stderr.strip()[-500:]}")
    return result


def ffmpeg_version(binary: str) -> str:
    """The version ffmpeg reports (e.g. '9.0.2' or a git describe)."""
    import subprocess

    output = subprocess.run(
        [binary, "-hide_banner", "-version"], capture_output=True, text=True, timeout=30
    ).stdout
    match = re.match(r"ffmpeg version (\S+)", output)
    return match[1] if match else "unknown"


@dataclass(frozen=True)
class StreamInfo:
    """One stream of a probed file."""

    index: int
    kind: str
    codec: str
    width: int | None = None
    height: int | None = None
    frame_rate: float | None = None
    channels: int | None = None
    sample_rate: int | None = None
    language: str | None = None


@dataclass(frozen=True)
class ProbeResult:
    """Container and streams of a media file, as PyAV's demuxer sees them."""

    format_name: str
    duration_seconds: float | None
    bit_rate: int | None
    size_bytes: int
    streams: list[StreamInfo] = field(default_factory=list)

    def first(self, kind: str) -> StreamInfo | None:
        """The first stream of a kind ('video', 'audio', 'subtitle')."""
        return next((stream for stream in self.streams if stream.kind == kind), None)


def probe(path: Path) -> ProbeResult:
    """Read a local file's container and stream facts with PyAV (blocking; run it in a thread)."""
    import av

    options: dict[str, Any] = {"protocol_whitelist": "file", "format_whitelist": ",".join(ALLOWED_DEMUXERS)}
    try:
        container = av.open(str(path.resolve()), mode="r", options=options, timeout=30)
    except (av.FFmpegError, OSError) as error:
        raise MediaToolError(f"not a readable media file: {error}") from error
    with container:
        streams = []
        for stream in container.streams:
            context: Any = stream.codec_context
            rate = getattr(stream, "average_rate", None)
            streams.append(
                StreamInfo(
                    index=stream.index,
                    kind=stream.type,
                    codec=getattr(context, "name", None) or "unknown",
                    width=getattr(context, "width", None) if stream.type == "video" else None,
                    height=getattr(context, "height", None) if stream.type == "video" else None,
                    frame_rate=float(rate) if rate else None,
                    channels=getattr(context, "channels", None) if stream.type == "audio" else None,
                    sample_rate=getattr(context, "sample_rate", None) if stream.type == "audio" else None,
                    language=stream.metadata.get("language"),
                )
            )
        duration = container.duration / 1_000_000 if container.duration else None
        return ProbeResult(
            format_name=container.format.name,
            duration_seconds=duration,
            bit_rate=container.bit_rate or None,
            size_bytes=path.stat().st_size,
            streams=streams,
        )
