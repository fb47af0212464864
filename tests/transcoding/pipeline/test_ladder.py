"""The encoding ladder: Apple-style rungs, never above the source, levels fitted (no ffmpeg)."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.transcoding.pipeline.ladder import (
    build_ladder,
    h264_level,
    hevc_level,
    ladder_frame_rate,
    trickplay_rung,
)
from shared.transcoding.pipeline.model import SourceInfo


def source(width: int | None, height: int | None, frame_rate: float | None = 25.0) -> SourceInfo:
    return SourceInfo(
        path=Path("/nonexistent/source.mp4"),
        demuxer="mov",
        duration_seconds=60.0,
        size_bytes=1,
        width=width,
        height=height,
        frame_rate=frame_rate,
        video_stream_index=0 if width else None,
    )


def test_1080p_source_gets_the_h264_ladder_lowest_first() -> None:
    rungs = build_ladder(source(1920, 1080), hevc=False)
    assert [rung.name for rung in rungs] == [
        "h264_240p",
        "h264_360p",
        "h264_432p",
        "h264_540p",
        "h264_720p",
        "h264_1080p",
    ]
    assert [(rung.width, rung.height) for rung in rungs] == [
        (416, 234),
        (640, 360),
        (768, 432),
        (960, 540),
        (1280, 720),
        (1920, 1080),
    ]
    assert [rung.maxrate for rung in rungs] == [145_000, 365_000, 730_000, 2_000_000, 3_000_000, 6_000_000]
    for rung in rungs:
        assert rung.codec == "h264" and rung.profile == "high"
        assert rung.frame_rate == 25.0
        assert rung.bufsize == 2 * rung.maxrate
        assert 18 <= rung.crf <= 28
        assert rung.width % 2 == 0 and rung.height % 2 == 0
    assert [rung.level for rung in rungs] == ["1.3", "3.0", "3.0", "3.1", "3.1", "4.0"]


def test_hevc_rungs_only_from_1080p_up_and_h264_always_present() -> None:
    rungs = build_ladder(source(3840, 2160, 30.0), hevc=True)
    hevc = [rung for rung in rungs if rung.codec == "hevc"]
    h264 = [rung for rung in rungs if rung.codec == "h264"]
    assert [rung.name for rung in hevc] == ["hevc_1080p", "hevc_1440p", "hevc_2160p"]
    assert all(rung.profile == "main" and rung.height >= 1080 for rung in hevc)
    assert h264[0].name == "h264_240p" and h264[-1].name == "h264_2160p"
    assert h264[-1].maxrate == 16_000_000 and h264[-1].level == "5.1"
    assert rungs[: len(h264)] == h264  # the H.264 rungs come first, lowest first
    assert [rung.level for rung in hevc] == ["4.0", "5.0", "5.0"]
    # Below 1080p the HEVC switch changes nothing.
    assert build_ladder(source(1280, 720), hevc=True) == build_ladder(source(1280, 720), hevc=False)


@pytest.mark.parametrize(
    ("width", "height", "top"),
    [(1280, 720, (1280, 720)), (1000, 562, (960, 540)), (1920, 800, (1920, 800)), (1440, 1080, (1440, 1080))],
)
def test_never_above_the_source_and_aspect_kept(width: int, height: int, top: tuple[int, int]) -> None:
    rungs = build_ladder(source(width, height), hevc=True)
    assert (rungs[-1].width, rungs[-1].height) == top
    for rung in rungs:
        assert rung.width <= width and rung.height <= height
        assert rung.width % 2 == 0 and rung.height % 2 == 0
        assert rung.width / rung.height == pytest.approx(width / height, rel=0.02)


def test_a_source_below_the_lowest_rung_gets_one_rung_at_its_own_size() -> None:
    rungs = build_ladder(source(320, 180), hevc=True)
    assert [(rung.name, rung.width, rung.height) for rung in rungs] == [("h264_180p", 320, 180)]
    odd = build_ladder(source(321, 181), hevc=False)
    assert [(rung.width, rung.height) for rung in odd] == [(320, 180)]


def test_portrait_sources_are_laddered_by_their_short_side() -> None:
    rungs = build_ladder(source(1080, 1920, 30.0), hevc=False)
    assert rungs[-1].name == "h264_1080p" and (rungs[-1].width, rungs[-1].height) == (1080, 1920)
    assert (rungs[0].width, rungs[0].height) == (234, 416)


def test_frame_rate_never_above_the_source_and_high_rates_halved() -> None:
    assert {rung.frame_rate for rung in build_ladder(source(1920, 1080, 23.976), hevc=False)} == {23.976}
    high = build_ladder(source(1920, 1080, 120.0), hevc=False)
    assert {rung.frame_rate for rung in high} == {60.0}
    assert ladder_frame_rate(100.0) == 50.0 and ladder_frame_rate(59.94) == 59.94
    # More pictures per second: a higher cap and a level that allows the macroblock rate.
    assert high[-1].maxrate == 9_000_000 and high[-1].level == "4.2"


def test_max_height_caps_the_ladder() -> None:
    rungs = build_ladder(source(3840, 2160), hevc=True, max_height=720)
    assert rungs[-1].name == "h264_720p" and all(rung.codec == "h264" for rung in rungs)
    assert [rung.name for rung in build_ladder(source(1920, 1080), hevc=False, max_height=100)] == [
        "h264_240p"
    ]


def test_audio_only_source_has_no_video_rungs() -> None:
    assert build_ladder(source(None, None, None), hevc=True) == []
    with pytest.raises(ValueError, match="video"):
        trickplay_rung(source(None, None, None), gop_seconds=2)


def test_levels_fit_size_rate_and_bitrate() -> None:
    assert h264_level(416, 234, 30, 145_000, 290_000) == "1.3"
    assert h264_level(640, 360, 30, 365_000, 730_000) == "3.0"
    assert h264_level(1280, 720, 30, 3_000_000, 6_000_000) == "3.1"
    assert h264_level(1280, 720, 60, 4_500_000, 9_000_000) == "3.2"
    assert h264_level(1920, 1080, 30, 6_000_000, 12_000_000) == "4.0"
    assert h264_level(1920, 1080, 30, 30_000_000, 60_000_000) == "4.1"  # the bitrate alone lifts the level
    assert h264_level(3840, 2160, 60, 24_000_000, 48_000_000) == "5.2"
    assert hevc_level(1920, 1080, 30, 4_500_000, 9_000_000) == "4.0"
    assert hevc_level(1920, 1080, 60, 6_750_000, 13_500_000) == "4.1"
    assert hevc_level(3840, 2160, 30, 11_600_000, 23_200_000) == "5.0"


def test_trickplay_rung_is_small_and_one_picture_per_gop() -> None:
    rung = trickplay_rung(source(1920, 1080), gop_seconds=2)
    assert (rung.name, rung.codec, rung.width, rung.height) == ("trickplay", "h264", 320, 180)
    assert rung.frame_rate == 0.5 and rung.profile == "high"
    portrait = trickplay_rung(source(1080, 1920), gop_seconds=4)
    assert (portrait.width, portrait.height, portrait.frame_rate) == (180, 320, 0.25)
    tiny = trickplay_rung(source(200, 112), gop_seconds=2)
    assert (tiny.width, tiny.height) == (200, 112)
