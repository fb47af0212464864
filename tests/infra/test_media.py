"""ffmpeg and PyAV on real generated clips."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from shared.infra.media import (
    MediaToolError,
    ffmpeg_binary,
    ffmpeg_command,
    ffmpeg_version,
    probe,
    run_ffmpeg,
)
from shared.settings import get_settings


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two seconds of 320x240 H.264 + AAC made by the real ffmpeg."""
    out = tmp_path_factory.mktemp("media") / "clip.mp4"
    binary = ffmpeg_binary(get_settings())
    # Generated sources come from lavfi graphs, not a file, so this argv is built by hand.
    argv = [
        binary,
        "-nostdin",
        "-hide_banner",
        "-loglevel",
        "error",
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=320x240:rate=25:duration=2",
        "-f",
        "lavfi",
        "-i",
        "sine=frequency=440:duration=2",
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-c:a",
        "aac",
        "-shortest",
        str(out),
    ]
    asyncio.run(run_ffmpeg(argv, timeout=120))
    return out


def test_binary_is_resolved_and_recent() -> None:
    binary = ffmpeg_binary(get_settings())
    assert Path(binary).is_file()
    major = ffmpeg_version(binary).lstrip("n").split(".")[0]
    assert major.isdigit() and int(major) >= 8


def test_ffmpeg_binary_setting_wins(settings_env, tmp_path: Path) -> None:
    settings_env(FFMPEG_BINARY=str(tmp_path / "missing-ffmpeg"))
    with pytest.raises(MediaToolError, match="does not exist"):
        ffmpeg_binary(get_settings())


def test_probe_reports_streams(clip: Path) -> None:
    result = probe(clip)
    assert "mp4" in result.format_name
    assert result.duration_seconds == pytest.approx(2.0, abs=0.2)
    video, audio = result.first("video"), result.first("audio")
    assert video and video.codec == "h264" and (video.width, video.height) == (320, 240)
    assert video.frame_rate == pytest.approx(25)
    assert audio and audio.codec == "aac" and audio.sample_rate
    assert result.size_bytes == clip.stat().st_size


def test_probe_refuses_non_media(tmp_path: Path) -> None:
    text = tmp_path / "notes.mp4"
    text.write_text("just some text pretending to be a video\n" * 20)
    with pytest.raises(MediaToolError):
        probe(text)


async def test_transcode_through_the_safe_command(clip: Path, tmp_path: Path) -> None:
    out = tmp_path / "small.mp4"
    argv = ffmpeg_command(
        ffmpeg_binary(get_settings()),
        input_path=clip,
        input_format=probe(clip).format_name,
        output_args=["-vf", "scale=160:-2", "-c:v", "libx264", "-preset", "ultrafast", "-an", str(out)],
    )
    assert "-protocol_whitelist" in argv and argv[argv.index("-protocol_whitelist") + 1] == "file"
    await run_ffmpeg(argv, timeout=60)
    assert probe(out).first("video").width == 160  # type: ignore[union-attr]


def test_playlists_and_concat_lists_are_refused(clip: Path, tmp_path: Path) -> None:
    playlist = tmp_path / "evil.m3u8"
    playlist.write_text(f"#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2,\n{clip}\n#EXT-X-ENDLIST\n")
    with pytest.raises(MediaToolError):
        probe(playlist)  # would otherwise read another local file through the playlist
    for demuxer in ("hls", "concat", "image2", "lavfi"):
        with pytest.raises(MediaToolError, match=f"demuxer '{demuxer}' is not allowed"):
            ffmpeg_command("ffmpeg", input_path=playlist, input_format=demuxer, output_args=[])


async def test_ffmpeg_opens_no_protocol_but_file(clip: Path) -> None:
    argv = ffmpeg_command(
        ffmpeg_binary(get_settings()), input_path=clip, input_format="mov", output_args=["-f", "null", "-"]
    )
    argv[argv.index("-i") + 1] = "http://127.0.0.1:9/secret.mp4"  # what a hostile reference would ask for
    with pytest.raises(MediaToolError, match="not on whitelist 'file'"):
        await run_ffmpeg(argv, timeout=30)


async def test_runaway_ffmpeg_is_stopped(tmp_path: Path) -> None:
    argv = [
        ffmpeg_binary(get_settings()),
        "-nostdin",
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=1280x720:rate=25",  # endless source
        "-f",
        "null",
        "-",
    ]
    with pytest.raises(MediaToolError, match="longer than"):
        await run_ffmpeg(argv, timeout=1)
