"""Images of an asset: poster-frame candidates and a storyboard sprite with its WebVTT thumbnails track.

The storyboard reads the encoded low rung (small frames, cheap to decode) and decodes its keyframes only
(`-skip_frame nokey`): our encodes put a keyframe every GOP (2 s), so a 2 h film costs a few thousand
decoded 240p frames instead of 180,000. Posters come from the source itself (full quality) with one fast
input seek per candidate. Every run goes through ffmpeg_command (explicit demuxer, local files only) and
is bounded in time.
"""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass
from pathlib import Path

from shared.infra.media import MediaToolError, ffmpeg_binary, ffmpeg_command, run_ffmpeg
from shared.settings import Settings
from shared.transcoding.pipeline.model import ImageSet, PipelineError, SourceInfo

TILE_WIDTH = 160
MAX_COLUMNS = 10
MAX_ROWS = 10
MIN_TILES = 10  # short videos get a finer interval so scrubbing still shows several frames
POSTER_MAX_WIDTH = 1280
POSTER_MARGIN = 0.05  # skip the first and last 5 % (logos, black, credits)
STORYBOARD_NAME = "storyboard-{}.jpg"
POSTER_NAME = "poster-{}.jpg"
THUMBNAILS_VTT = "thumbnails.vtt"


@dataclass(frozen=True)
class StoryboardLayout:
    """How the tiles of a storyboard are cut and laid out."""

    interval: float
    count: int
    columns: int
    rows: int
    tile_width: int
    tile_height: int

    @property
    def per_sheet(self) -> int:
        """Tiles on one sprite sheet."""
        return self.columns * self.rows

    @property
    def sheets(self) -> int:
        """Number of sprite sheets."""
        return math.ceil(self.count / self.per_sheet)


def storyboard_layout(duration: float, width: int, height: int, *, interval: float) -> StoryboardLayout:
    """Tiles every `interval` s (finer for short videos, never under 1 s), sheets of up to 10x10."""
    interval = round(max(1.0, min(interval, duration / MIN_TILES)), 3)
    count = max(1, math.ceil(duration / interval - 1e-6))
    columns = min(MAX_COLUMNS, count)
    rows = min(MAX_ROWS, math.ceil(count / columns))
    tile_height = max(2, round(TILE_WIDTH * height / width / 2) * 2)
    return StoryboardLayout(interval, count, columns, rows, TILE_WIDTH, tile_height)


def poster_times(duration: float, count: int) -> list[float]:
    """`count` instants spread evenly over the duration without its first and last 5 %."""
    span = duration * (1 - 2 * POSTER_MARGIN)
    return [duration * POSTER_MARGIN + span * (index + 0.5) / count for index in range(count)]


def _clock(seconds: float) -> str:
    millis = round(seconds * 1000)
    whole, ms = divmod(millis, 1000)
    minutes, secs = divmod(whole, 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}.{ms:03d}"


def thumbnails_vtt(layout: StoryboardLayout, duration: float) -> str:
    """The WebVTT thumbnails track: one cue per tile pointing at `storyboard-N.jpg#xywh=x,y,w,h`."""
    lines = ["WEBVTT", ""]
    for index in range(layout.count):
        start = index * layout.interval
        end = duration if index == layout.count - 1 else min((index + 1) * layout.interval, duration)
        sheet, position = divmod(index, layout.per_sheet)
        x = (position % layout.columns) * layout.tile_width
        y = (position // layout.columns) * layout.tile_height
        lines += [
            f"{_clock(start)} --> {_clock(max(end, start + 0.001))}",
            f"{STORYBOARD_NAME.format(sheet + 1)}#xywh={x},{y},{layout.tile_width},{layout.tile_height}",
            "",
        ]
    return "\n".join(lines)


def _timed_out(error: MediaToolError) -> bool:
    return "longer than" in str(error)  # run_ffmpeg's wording when it stopped a run at its time limit


def _written(path: Path) -> bool:
    return path.is_file() and path.stat().st_size > 0


def _prepare(out_dir: Path) -> None:
    """Create the folder and remove images of an earlier attempt (a retry never keeps a stale sheet)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    for pattern in ("storyboard-*.jpg", "poster-*.jpg", THUMBNAILS_VTT):
        for path in out_dir.glob(pattern):
            path.unlink()


async def _storyboard(
    binary: str, video: Path, layout: StoryboardLayout, out_dir: Path, *, gop: int, limit: float
) -> list[str]:
    # fps picks the newest keyframe at or before each tick; tpad clones the last one so the ticks after
    # the final keyframe exist; trim keeps exactly `count` tiles; tile packs them into sheets (the last
    # one padded in black). JPEG wants full-range YUV.
    pad = 2 * layout.interval + 2 * gop + 1
    filters = (
        f"tpad=stop_mode=clone:stop_duration={pad:g},"
        f"fps=1/{layout.interval:g}:round=down,"
        f"trim=end_frame={layout.count},"
        f"scale={layout.tile_width}:{layout.tile_height}:out_range=full,setsar=1,format=yuv420p,"
        f"tile={layout.columns}x{layout.rows}"
    )
    argv = ffmpeg_command(
        binary,
        input_path=video,
        input_format="mov",  # our own encoded MP4
        input_options=("-skip_frame", "nokey"),
        output_args=["-map", "0:v:0", "-an", "-sn", "-dn", "-vf", filters, "-q:v", "5", "-f", "image2",
                     "-y", str(out_dir / "storyboard-%d.jpg")],
    )  # fmt: skip
    await run_ffmpeg(argv, timeout=limit)
    names = [STORYBOARD_NAME.format(sheet) for sheet in range(1, layout.sheets + 1)]
    missing = [name for name in names if not await asyncio.to_thread(_written, out_dir / name)]
    if missing:
        raise PipelineError(
            f"ffmpeg wrote {len(names) - len(missing)} of {len(names)} storyboard sheets",
            code="images_failed",
        )
    return names


async def _poster(binary: str, source: SourceInfo, at: float, path: Path, *, limit: float) -> bool:
    """One poster candidate at `at` seconds; False when ffmpeg found no frame there."""
    scale = (
        f"scale=w='trunc(min({POSTER_MAX_WIDTH},iw*sar)/2)*2':h='trunc(ow*ih/(iw*sar)/2)*2':out_range=full,"
        "setsar=1,format=yuv420p"
    )
    argv = ffmpeg_command(
        binary,
        input_path=source.path,
        input_format=source.demuxer,
        input_options=("-ss", f"{at:.3f}"),  # before -i: a fast seek to the keyframe, then decode to `at`
        output_args=["-map", f"0:{source.video_stream_index}", "-an", "-sn", "-dn", "-frames:v", "1",
                     "-vf", scale, "-q:v", "3", "-f", "image2", "-update", "1", "-y", str(path)],
    )  # fmt: skip
    try:
        await run_ffmpeg(argv, timeout=limit)
    except MediaToolError as error:
        if _timed_out(error):
            raise
        return False  # e.g. the seek landed past the last frame: no candidate there
    return await asyncio.to_thread(_written, path)


async def _posters(binary: str, source: SourceInfo, out_dir: Path, *, count: int, limit: float) -> list[str]:
    names: list[str] = []
    # Sequential: each is a seek and a few decoded frames; the storyboard runs beside them.
    for at in poster_times(source.duration_seconds, count):
        name = POSTER_NAME.format(len(names) + 1)
        if await _poster(binary, source, at, out_dir / name, limit=limit):
            names.append(name)
    if not names and await _poster(binary, source, 0.0, out_dir / POSTER_NAME.format(1), limit=limit):
        names.append(POSTER_NAME.format(1))  # a very short or oddly cut source: its first frame
    if not names:
        raise PipelineError(
            "ffmpeg could not take a single poster frame from the source", code="images_failed"
        )
    return names


async def make_images(*, video: Path, source: SourceInfo, out_dir: Path, settings: Settings) -> ImageSet:
    """Poster candidates from the source; storyboard sheets and thumbnails.vtt from the low rung `video`."""
    interval = settings.media_storyboard_interval_seconds
    if source.video_stream_index is None or not source.width or not source.height:
        # Audio only: nothing to look at.
        return ImageSet(
            posters=[],
            storyboards=[],
            thumbnails_vtt="",
            tile_width=0,
            tile_height=0,
            interval_seconds=interval,
        )
    await asyncio.to_thread(_prepare, out_dir)
    binary = ffmpeg_binary(settings)
    duration = max(source.duration_seconds, 0.04)
    layout = storyboard_layout(duration, source.width, source.height, interval=interval)
    step_timeout = settings.media_probe_timeout_seconds
    # One ffmpeg at a time: each already uses every core, and a failure leaves no sibling process behind.
    try:
        sheets = await _storyboard(
            binary,
            video,
            layout,
            out_dir,
            gop=settings.media_gop_seconds,
            limit=step_timeout + duration / 10,
        )
        posters = await _posters(
            binary, source, out_dir, count=settings.media_poster_candidates, limit=step_timeout
        )
    except MediaToolError as error:
        # A timeout may pass on a calmer machine; a failing ffmpeg on our own file will not.
        raise PipelineError(f"images: {error}", code="images_failed", transient=_timed_out(error)) from error
    await asyncio.to_thread((out_dir / THUMBNAILS_VTT).write_text, thumbnails_vtt(layout, duration), "utf-8")
    prefix = out_dir.name
    return ImageSet(
        posters=[f"{prefix}/{name}" for name in posters],
        storyboards=[f"{prefix}/{name}" for name in sheets],
        thumbnails_vtt=f"{prefix}/{THUMBNAILS_VTT}",
        tile_width=layout.tile_width,
        tile_height=layout.tile_height,
        interval_seconds=layout.interval,
    )
