"""Poster candidates and storyboard sprites from real ffmpeg runs on tiny generated clips."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import webvtt
from PIL import Image

from shared.infra.media import SAFE_GLOBAL_ARGS, ffmpeg_binary
from shared.settings import get_settings
from shared.transcoding.pipeline import images
from shared.transcoding.pipeline.images import make_images, poster_times, storyboard_layout
from shared.transcoding.pipeline.model import SourceInfo
from shared.transcoding.pipeline.testclips import generate_clip

XYWH = re.compile(r"(storyboard-(\d+)\.jpg)#xywh=(\d+),(\d+),(\d+),(\d+)")


def low_rung(binary: str, path: Path, *, seconds: float) -> Path:
    """A 240p video-only MP4 with a keyframe every 2 s, like the encoder's lowest rung."""
    pattern = f"testsrc2=size=426x240:rate=25:duration={seconds}"
    argv = [binary, *SAFE_GLOBAL_ARGS, "-y", "-f", "lavfi", "-i", pattern,
            "-c:v", "libx264", "-preset", "ultrafast", "-g", "50", "-keyint_min", "50", "-sc_threshold", "0",
            "-pix_fmt", "yuv420p", str(path)]  # fmt: skip
    subprocess.run(argv, check=True, capture_output=True, timeout=60)
    return path


def source_info(path: Path, *, seconds: float, demuxer: str = "mov") -> SourceInfo:
    return SourceInfo(
        path=path,
        demuxer=demuxer,
        duration_seconds=seconds,
        size_bytes=path.stat().st_size,
        width=640,
        height=360,
        frame_rate=25.0,
        video_stream_index=0,
    )


def test_layout_and_poster_times() -> None:
    film = storyboard_layout(7200.0, 1920, 1080, interval=10.0)
    assert (film.interval, film.count, film.columns, film.rows, film.sheets) == (10.0, 720, 10, 10, 8)
    assert (film.tile_width, film.tile_height) == (160, 90)
    short = storyboard_layout(6.0, 640, 480, interval=10.0)
    assert (short.interval, short.count, short.columns, short.rows, short.tile_height) == (1.0, 6, 6, 1, 120)
    times = poster_times(100.0, 5)
    assert times == pytest.approx([14.0, 32.0, 50.0, 68.0, 86.0])


@pytest.mark.slow
async def test_images_of_a_clip(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = get_settings()
    binary = ffmpeg_binary(settings)
    seconds = 8.0
    source = generate_clip(
        binary, tmp_path / "source.mkv", seconds=seconds, width=640, height=360, container="matroska"
    )
    video = low_rung(binary, tmp_path / "low.mp4", seconds=seconds)
    # Small sheets (3 x 2) so an 8 s clip (a tile a second) spans two of them.
    monkeypatch.setattr(images, "MAX_COLUMNS", 3)
    monkeypatch.setattr(images, "MAX_ROWS", 2)
    out_dir = tmp_path / "asset" / "images"
    out_dir.mkdir(parents=True)
    (out_dir / "storyboard-9.jpg").write_bytes(b"stale")  # from an earlier attempt: must go

    result = await make_images(
        video=video,
        source=source_info(source, seconds=seconds, demuxer="matroska"),
        out_dir=out_dir,
        settings=settings,
    )

    assert result.interval_seconds == 1.0 and (result.tile_width, result.tile_height) == (160, 90)
    assert result.storyboards == ["images/storyboard-1.jpg", "images/storyboard-2.jpg"]
    assert result.thumbnails_vtt == "images/thumbnails.vtt"
    assert result.posters == [
        f"images/poster-{n}.jpg" for n in range(1, settings.media_poster_candidates + 1)
    ]
    root = out_dir.parent
    assert not (out_dir / "storyboard-9.jpg").exists()
    for sheet in result.storyboards:
        with Image.open(root / sheet) as image:
            assert image.format == "JPEG" and image.size == (3 * 160, 2 * 90)
    for poster in result.posters:
        with Image.open(root / poster) as image:
            assert image.format == "JPEG" and image.size == (640, 360)
    # Taken at different instants of a moving test pattern: all different pictures.
    assert len({(root / poster).read_bytes() for poster in result.posters}) == len(result.posters)

    track = webvtt.read(str(root / result.thumbnails_vtt))
    assert len(track.captions) == 8
    assert track.captions[0].start == "00:00:00.000" and track.captions[-1].end == "00:00:08.000"
    sheets_used = set()
    for caption in track.captions:
        match = XYWH.fullmatch(caption.text.strip())
        assert match, caption.text
        name, _, x, y, w, h = match.groups()
        sheets_used.add(name)
        assert (int(w), int(h)) == (160, 90)
        assert int(x) + int(w) <= 3 * 160 and int(y) + int(h) <= 2 * 90
    assert sheets_used == {"storyboard-1.jpg", "storyboard-2.jpg"}


async def test_audio_only_has_no_images(tmp_path: Path) -> None:
    source = SourceInfo(
        path=tmp_path / "a.wav", demuxer="wav", duration_seconds=3.0, size_bytes=1, width=None, height=None,
        frame_rate=None, video_stream_index=None,
    )  # fmt: skip
    result = await make_images(
        video=tmp_path / "none.mp4", source=source, out_dir=tmp_path / "images", settings=get_settings()
    )
    assert result.posters == [] and result.storyboards == [] and result.thumbnails_vtt == ""
