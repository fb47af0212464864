"""inspect_source on good generated clips, and the media_* limits refusing with their codes."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from shared.infra.media import SAFE_GLOBAL_ARGS, ffmpeg_binary
from shared.settings import Settings, get_settings
from shared.transcoding.pipeline.model import PipelineError
from shared.transcoding.pipeline.probing import inspect_source
from shared.transcoding.pipeline.testclips import generate_clip


@pytest.fixture(scope="module")
def binary() -> str:
    return ffmpeg_binary(get_settings())


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory, binary: str) -> dict[str, Path]:
    """Small real clips: mp4 with two languages, matroska, 50 fps, audio only, rotated."""
    folder = tmp_path_factory.mktemp("probing")
    made = {
        "mp4": generate_clip(
            binary, folder / "two.mp4", seconds=3, width=320, height=180, audio_languages=("eng", "fra")
        ),
        "mkv": generate_clip(
            binary, folder / "clip.mkv", seconds=3, width=256, height=144, container="matroska"
        ),
        "fast": generate_clip(binary, folder / "fast.mp4", seconds=2, width=160, height=90, frame_rate=50),
        # MPEG-TS starts at 1.4 s, and x264's default GOP (250 frames) leaves no keyframe near the end.
        "ts": generate_clip(binary, folder / "clip.ts", seconds=5, width=160, height=90, container="mpegts"),
        "webm": generate_clip(
            binary,
            folder / "clip.webm",
            seconds=2,
            width=160,
            height=90,
            container="webm",
            video_codec="libvpx-vp9",
            audio_languages=(),
        ),
    }
    audio = folder / "audio.wav"
    subprocess.run(
        [binary, *SAFE_GLOBAL_ARGS, "-y", "-f", "lavfi", "-i", "sine=duration=2", str(audio)],
        check=True,
        timeout=60,
    )
    made["wav"] = audio
    rotated = folder / "rotated.mp4"
    subprocess.run(
        [
            binary,
            *SAFE_GLOBAL_ARGS,
            "-y",
            "-display_rotation",
            "90",
            "-i",
            str(made["mp4"]),
            "-c",
            "copy",
            str(rotated),
        ],
        check=True,
        timeout=60,
    )
    made["rotated"] = rotated
    return made


def limited(**changes: object) -> Settings:
    return get_settings().model_copy(update=changes)


async def refused(path: Path, settings: Settings | None = None) -> PipelineError:
    with pytest.raises(PipelineError) as caught:
        await inspect_source(path, settings=settings or get_settings())
    assert caught.value.transient is False
    assert str(caught.value)[0].isupper() and str(caught.value).endswith(".")  # a sentence for people
    return caught.value


async def test_mp4_with_two_audio_languages(clips: dict[str, Path]) -> None:
    info = await inspect_source(clips["mp4"], settings=get_settings())
    assert info.path == clips["mp4"] and info.demuxer == "mov"
    assert (info.width, info.height, info.frame_rate) == (320, 180, 25.0)
    assert info.duration_seconds == pytest.approx(3.0, abs=0.1)
    assert info.size_bytes == clips["mp4"].stat().st_size
    assert info.video_stream_index == 0
    assert [(track.name, track.language, track.label) for track in info.audio] == [
        ("audio_eng", "eng", "English"),
        ("audio_fra", "fra", "French"),
    ]
    assert [track.stream_index for track in info.audio] == [1, 2]
    assert [track.is_default for track in info.audio] == [True, False]
    assert all(track.channels == 2 for track in info.audio)


async def test_matroska_and_frame_rate(clips: dict[str, Path]) -> None:
    info = await inspect_source(clips["mkv"], settings=get_settings())
    assert info.demuxer == "matroska" and (info.width, info.height) == (256, 144)
    assert [track.name for track in info.audio] == ["audio_eng"]
    fast = await inspect_source(clips["fast"], settings=get_settings())
    assert fast.frame_rate == 50.0


async def test_mpegts_with_a_long_gop_and_webm(clips: dict[str, Path]) -> None:
    info = await inspect_source(clips["ts"], settings=get_settings())
    assert info.demuxer == "mpegts" and info.duration_seconds == pytest.approx(5.0, abs=0.1)
    assert [track.name for track in info.audio] == ["audio_eng"]
    webm = await inspect_source(clips["webm"], settings=get_settings())
    assert webm.demuxer == "matroska" and webm.audio == [] and webm.width == 160


async def test_audio_only_source(clips: dict[str, Path]) -> None:
    info = await inspect_source(clips["wav"], settings=get_settings())
    assert info.demuxer == "wav" and info.width is None and info.video_stream_index is None
    assert [(track.name, track.label) for track in info.audio] == [("audio_und", "Unknown language")]


async def test_rotated_video_reports_the_displayed_size(clips: dict[str, Path]) -> None:
    info = await inspect_source(clips["rotated"], settings=get_settings())
    assert (info.width, info.height) == (180, 320)


async def test_limits_come_from_settings(clips: dict[str, Path]) -> None:
    mp4 = clips["mp4"]
    error = await refused(mp4, limited(media_max_duration_seconds=2.0))
    assert error.code == "too_long" and "0:00:02" in str(error)
    error = await refused(clips["fast"], limited(media_max_frame_rate=30.0))
    assert error.code == "frame_rate_too_high" and "50" in str(error)
    error = await refused(mp4, limited(media_max_streams=2))
    assert error.code == "too_many_streams" and "3 streams" in str(error)
    error = await refused(mp4, limited(media_max_width=256, media_max_height=144))
    assert error.code == "resolution_too_high" and "320x180" in str(error)
    error = await refused(mp4, limited(media_max_upload_bytes=1024))
    assert error.code == "file_too_large"
    # Orientation does not matter: the rotated (portrait) clip fits a landscape limit of the same size.
    assert (
        await inspect_source(clips["rotated"], settings=limited(media_max_width=320, media_max_height=180))
    ).height == 320


async def test_limits_from_the_environment(clips: dict[str, Path], settings_env) -> None:
    settings_env(MEDIA_MAX_DURATION_SECONDS="1.5")
    assert (await refused(clips["mkv"], get_settings())).code == "too_long"


async def test_a_missing_file_is_not_blamed_on_the_upload(tmp_path: Path) -> None:
    with pytest.raises(PipelineError) as caught:
        await inspect_source(tmp_path / "gone.mp4", settings=get_settings())
    assert caught.value.code == "source_missing" and caught.value.transient is True
