"""The per-title encoding ladder: Apple HLS authoring spec rungs, never above the source, levels fitted."""

from __future__ import annotations

import math
from dataclasses import dataclass

from shared.transcoding.pipeline.model import Rung, SourceInfo

H264_CRF = 23
HEVC_CRF = 25  # x265's scale runs ~2 points higher than x264's for the same look
BUFFER_SECONDS = 2.0  # bufsize = 2 s of maxrate: peaks stay within a segment's worth of data
HIGH_FRAME_RATE_FACTOR = 1.5  # more pictures per second need more bits at the same quality
MAX_LADDER_FRAME_RATE = 60.0
TRICKPLAY_WIDTH = 320
TRICKPLAY_MAXRATE = 200_000


@dataclass(frozen=True)
class Step:
    """One rung of the reference ladder for 16:9 landscape video at up to 30 fps."""

    label: str  # '720p'
    width: int
    height: int
    h264_kbps: int
    hevc_kbps: int | None  # HEVC rungs only from 1080p up


# Apple's HLS authoring specification (16:9, SDR, <= 30 fps), one rung per height.
STEPS = (
    Step("240p", 416, 234, 145, None),
    Step("360p", 640, 360, 365, None),
    Step("432p", 768, 432, 730, None),
    Step("540p", 960, 540, 2000, None),
    Step("720p", 1280, 720, 3000, None),
    Step("1080p", 1920, 1080, 6000, 4500),
    Step("1440p", 2560, 1440, 10000, 8100),
    Step("2160p", 3840, 2160, 16000, 11600),
)

# H.264 levels (Annex A table A-1): name, MaxMBPS, MaxFS (macroblocks), MaxBR and MaxCPB (kbit/s, kbit;
# the High profile allows 1.25x of both).
H264_LEVELS = (
    ("1.0", 1485, 99, 64, 175),
    ("1.1", 3000, 396, 192, 500),
    ("1.2", 6000, 396, 384, 1000),
    ("1.3", 11880, 396, 768, 2000),
    ("2.0", 11880, 396, 2000, 2000),
    ("2.1", 19800, 792, 4000, 4000),
    ("2.2", 20250, 1620, 4000, 4000),
    ("3.0", 40500, 1620, 10000, 10000),
    ("3.1", 108000, 3600, 14000, 14000),
    ("3.2", 216000, 5120, 20000, 20000),
    ("4.0", 245760, 8192, 20000, 25000),
    ("4.1", 245760, 8192, 50000, 62500),
    ("4.2", 522240, 8704, 50000, 62500),
    ("5.0", 589824, 22080, 135000, 135000),
    ("5.1", 983040, 36864, 240000, 240000),
    ("5.2", 2073600, 36864, 240000, 240000),
    ("6.0", 4177920, 139264, 240000, 240000),
    ("6.1", 8355840, 139264, 480000, 480000),
    ("6.2", 16711680, 139264, 800000, 800000),
)
H264_HIGH_FACTOR = 1.25

# HEVC levels, Main tier (table A.8): name, MaxLumaPs, MaxLumaSr (samples/s), MaxBR, MaxCPB (kbit/s, kbit).
HEVC_LEVELS = (
    ("1.0", 36864, 552960, 128, 350),
    ("2.0", 122880, 3686400, 1500, 1500),
    ("2.1", 245760, 7372800, 3000, 3000),
    ("3.0", 552960, 16588800, 6000, 6000),
    ("3.1", 983040, 33177600, 10000, 10000),
    ("4.0", 2228224, 66846720, 12000, 12000),
    ("4.1", 2228224, 133693440, 20000, 20000),
    ("5.0", 8912896, 267386880, 25000, 25000),
    ("5.1", 8912896, 534773760, 40000, 40000),
    ("5.2", 8912896, 1069547520, 60000, 60000),
    ("6.0", 35651584, 1069547520, 60000, 60000),
    ("6.1", 35651584, 2139095040, 120000, 120000),
    ("6.2", 35651584, 4278190080, 240000, 240000),
)


def build_ladder(source: SourceInfo, *, hevc: bool, max_height: int | None = None) -> list[Rung]:
    """The rungs for this source, lowest first: H.264 always, HEVC from 1080p up when enabled."""
    if not source.width or not source.height or not source.frame_rate:
        return []  # audio only
    frame_rate = ladder_frame_rate(source.frame_rate)
    portrait = source.height > source.width
    short_side = min(source.width, source.height)
    # A step is used when the source fills its box in at least one dimension (so nothing is upscaled).
    steps = [step for step in STEPS if _reaches(source.width, source.height, step, portrait)]
    if max_height is not None:
        capped = [step for step in steps if step.height <= max_height]
        steps = capped or steps[:1]
    rungs: list[Rung] = []
    if not steps:
        # Smaller than the lowest step: one rung at the source's own size, with the lowest step's rate.
        low = STEPS[0]
        size = (_even_floor(source.width), _even_floor(source.height))
        steps_sized = [(Step(f"{short_side}p", *size, low.h264_kbps, None), size)]
    else:
        steps_sized = [(step, _fit(source.width, source.height, step, portrait)) for step in steps]
    for step, (width, height) in steps_sized:
        rungs.append(_rung("h264", step.label, width, height, frame_rate, step.h264_kbps))
    if hevc:
        for step, (width, height) in steps_sized:
            if step.hevc_kbps is not None:
                rungs.append(_rung("hevc", step.label, width, height, frame_rate, step.hevc_kbps))
    return rungs


def trickplay_rung(source: SourceInfo, *, gop_seconds: int | None = None) -> Rung:
    """A small I-frame-only rendition (one picture per GOP) for scrubbing previews and trick play."""
    if not source.width or not source.height or not source.frame_rate:
        raise ValueError("trick play needs a video source")
    if gop_seconds is None:
        from shared.settings import get_settings

        gop_seconds = get_settings().media_gop_seconds
    # Fits a TRICKPLAY_WIDTH square: 320 wide for landscape, 320 high for portrait.
    scale = min(TRICKPLAY_WIDTH / max(source.width, source.height), 1.0)
    width = min(_even(source.width * scale), _even_floor(source.width))
    height = min(_even(source.height * scale), _even_floor(source.height))
    # The level is fitted at the source's frame rate: the encoder is told that rate, only every GOP'th
    # picture is kept.
    rate = ladder_frame_rate(source.frame_rate)
    level = h264_level(width, height, rate, TRICKPLAY_MAXRATE, TRICKPLAY_MAXRATE * 2)
    return Rung(
        name="trickplay",
        codec="h264",
        width=width,
        height=height,
        frame_rate=1.0 / gop_seconds,
        crf=H264_CRF,
        maxrate=TRICKPLAY_MAXRATE,
        bufsize=TRICKPLAY_MAXRATE * 2,
        profile="high",
        level=level,
    )


def ladder_frame_rate(source_rate: float) -> float:
    """The ladder's frame rate: the source's, halved while above 60 fps (120 -> 60, 100 -> 50)."""
    rate = source_rate
    while rate > MAX_LADDER_FRAME_RATE:
        rate /= 2
    return rate


def _reaches(width: int, height: int, step: Step, portrait: bool) -> bool:
    box_width, box_height = (step.height, step.width) if portrait else (step.width, step.height)
    return width >= box_width or height >= box_height


def _fit(width: int, height: int, step: Step, portrait: bool) -> tuple[int, int]:
    """The source's size scaled to fit the step's box (its aspect kept), even, never above the source."""
    box_width, box_height = (step.height, step.width) if portrait else (step.width, step.height)
    scale = min(box_width / width, box_height / height, 1.0)
    return min(_even(width * scale), _even_floor(width)), min(_even(height * scale), _even_floor(height))


def _even(value: float) -> int:
    return max(2, round(value / 2) * 2)


def _even_floor(value: int) -> int:
    return max(2, value - value % 2)


def _rung(codec: str, label: str, width: int, height: int, frame_rate: float, kbps: int) -> Rung:
    maxrate = kbps * 1000
    if frame_rate > 31:
        maxrate = int(maxrate * HIGH_FRAME_RATE_FACTOR)
    bufsize = int(maxrate * BUFFER_SECONDS)
    if codec == "hevc":
        return Rung(
            name=f"hevc_{label}",
            codec="hevc",
            width=width,
            height=height,
            frame_rate=frame_rate,
            crf=HEVC_CRF,
            maxrate=maxrate,
            bufsize=bufsize,
            profile="main",
            level=hevc_level(width, height, frame_rate, maxrate, bufsize),
        )
    return Rung(
        name=f"h264_{label}",
        codec="h264",
        width=width,
        height=height,
        frame_rate=frame_rate,
        crf=H264_CRF,
        maxrate=maxrate,
        bufsize=bufsize,
        profile="high",
        level=h264_level(width, height, frame_rate, maxrate, bufsize),
    )


def h264_level(width: int, height: int, frame_rate: float, maxrate: int, bufsize: int) -> str:
    """The lowest H.264 High profile level whose frame size, macroblock rate, bitrate and buffer fit."""
    mb_width, mb_height = math.ceil(width / 16), math.ceil(height / 16)
    frame_mbs = mb_width * mb_height
    for name, max_mbps, max_fs, max_br, max_cpb in H264_LEVELS:
        side_limit = math.sqrt(max_fs * 8)  # no frame dimension above sqrt(8 * MaxFS) macroblocks
        if (
            frame_mbs <= max_fs
            and mb_width <= side_limit
            and mb_height <= side_limit
            and frame_mbs * frame_rate <= max_mbps
            and maxrate <= max_br * 1000 * H264_HIGH_FACTOR
            and bufsize <= max_cpb * 1000 * H264_HIGH_FACTOR
        ):
            return name
    return H264_LEVELS[-1][0]


def hevc_level(width: int, height: int, frame_rate: float, maxrate: int, bufsize: int) -> str:
    """The lowest HEVC Main tier level whose picture size, sample rate, bitrate and buffer fit."""
    samples = width * height
    for name, max_ps, max_sr, max_br, max_cpb in HEVC_LEVELS:
        side_limit = math.sqrt(max_ps * 8)
        if (
            samples <= max_ps
            and width <= side_limit
            and height <= side_limit
            and samples * frame_rate <= max_sr
            and maxrate <= max_br * 1000
            and bufsize <= max_cpb * 1000
        ):
            return name
    return HEVC_LEVELS[-1][0]
