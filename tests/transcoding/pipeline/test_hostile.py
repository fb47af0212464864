"""Hostile sources fail closed with a stable code and a reason, and nothing ever dials out."""

from __future__ import annotations

import socket
import struct
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from shared.infra.media import SAFE_GLOBAL_ARGS, MediaToolError, ffmpeg_binary, ffmpeg_command
from shared.settings import get_settings
from shared.transcoding.pipeline.encode import encode_renditions
from shared.transcoding.pipeline.ladder import build_ladder
from shared.transcoding.pipeline.model import AudioTrack, PipelineError, SourceInfo
from shared.transcoding.pipeline.probing import inspect_source
from shared.transcoding.pipeline.testclips import generate_clip


class Listener:
    """A TCP socket on 127.0.0.1 that records every connection attempt (accepting in a thread)."""

    def __init__(self) -> None:
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.socket.bind(("127.0.0.1", 0))
        self.socket.listen(16)
        self.socket.settimeout(0.2)
        self.port = self.socket.getsockname()[1]
        self.connections = 0
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self.accept, name="hostile-listener", daemon=True)
        self.thread.start()

    def accept(self) -> None:
        while not self.stopping.is_set():
            try:
                conn, _ = self.socket.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.connections += 1
            conn.close()

    def close(self) -> None:
        self.stopping.set()
        self.thread.join(timeout=5)
        self.socket.close()


@pytest.fixture
def listener() -> Iterator[Listener]:
    opened = Listener()
    yield opened
    opened.close()


@pytest.fixture(scope="module")
def binary() -> str:
    return ffmpeg_binary(get_settings())


@pytest.fixture(scope="module")
def good(tmp_path_factory: pytest.TempPathFactory, binary: str) -> Path:
    """A real 2 s clip (moov at the end, as ffmpeg writes it by default)."""
    return generate_clip(
        binary, tmp_path_factory.mktemp("hostile") / "good.mp4", seconds=2, width=160, height=90
    )


def playlist(port: int) -> str:
    return (
        "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:0\n"
        f'#EXT-X-KEY:METHOD=AES-128,URI="http://127.0.0.1:{port}/key"\n'
        f"#EXTINF:2.0,\nhttp://127.0.0.1:{port}/segment.ts\n"
        "#EXTINF:2.0,\nfile:///etc/passwd\n"
        "#EXTINF:2.0,\n/etc/passwd\n#EXT-X-ENDLIST\n"
    )


def concat_list(port: int) -> str:
    return f"ffconcat version 1.0\nfile 'http://127.0.0.1:{port}/movie.mp4'\nfile '/etc/passwd'\n"


async def refused(path: Path, code: str) -> PipelineError:
    with pytest.raises(PipelineError) as caught:
        await inspect_source(path, settings=get_settings())
    assert caught.value.code == code, str(caught.value)
    assert caught.value.transient is False
    assert len(str(caught.value)) > 20
    return caught.value


def claimed_source(path: Path, demuxer: str) -> SourceInfo:
    """What an encode would be given if a hostile file had slipped through as `demuxer`."""
    return SourceInfo(
        path=path,
        demuxer=demuxer,
        duration_seconds=4.0,
        size_bytes=path.stat().st_size,
        width=320,
        height=180,
        frame_rate=25.0,
        video_stream_index=0,
        audio=[AudioTrack(1, "audio_eng", "eng", "English", 2, True)],
    )


async def attempt_encodes(path: Path, tmp_path: Path) -> None:
    """Every allowed demuxer an uploader could claim: the encode fails, and opens nothing else."""
    settings = get_settings().model_copy(update={"media_x264_preset": "ultrafast"})
    for demuxer in ("mov", "mpegts", "matroska", "avi"):
        source = claimed_source(path, demuxer)
        with pytest.raises(PipelineError) as caught:
            await encode_renditions(
                source,
                rungs=build_ladder(source, hevc=False),
                audio=source.audio,
                trickplay=True,
                out_dir=tmp_path / demuxer,
                settings=settings,
            )
        assert caught.value.code == "encode_failed" and caught.value.transient is False
    for demuxer in ("hls", "concat", "image2", "lavfi", "tty"):
        with pytest.raises(MediaToolError, match="not allowed"):
            ffmpeg_command("ffmpeg", input_path=path, input_format=demuxer, output_args=[])


async def test_playlist_renamed_mp4_is_refused_and_dials_nothing(listener: Listener, tmp_path: Path) -> None:
    evil = tmp_path / "holiday.mp4"
    evil.write_text(playlist(listener.port))
    error = await refused(evil, "not_media")
    assert "HLS playlist" in str(error)
    # Even named .m3u8 (where libav's HLS probe would recognise it) and with a NUL byte that defeats
    # the text sniffing, the demuxer allow-list refuses it.
    sneaky = tmp_path / "holiday.m3u8"
    sneaky.write_bytes(playlist(listener.port).encode() + b"\x00")
    await refused(sneaky, "unsupported_container")
    sneaky_mp4 = tmp_path / "sneaky.mp4"
    sneaky_mp4.write_bytes(playlist(listener.port).encode() + b"\x00")
    await refused(sneaky_mp4, "not_media")
    await attempt_encodes(evil, tmp_path / "encodes")
    await attempt_encodes(sneaky, tmp_path / "encodes-m3u8")
    assert listener.connections == 0


async def test_concat_list_is_refused_and_dials_nothing(listener: Listener, tmp_path: Path) -> None:
    evil = tmp_path / "movie.mp4"
    evil.write_text(concat_list(listener.port))
    error = await refused(evil, "not_media")
    assert "concat list" in str(error)
    sneaky = tmp_path / "movie.ffconcat"
    sneaky.write_bytes(concat_list(listener.port).encode() + b"\x00")
    await refused(sneaky, "unsupported_container")
    await attempt_encodes(evil, tmp_path / "encodes")
    assert listener.connections == 0


def test_the_listener_would_see_an_unguarded_ffmpeg(listener: Listener, tmp_path: Path, binary: str) -> None:
    """Control: ffmpeg without our guards (guessed demuxer, network protocols allowed) does dial out."""
    evil = tmp_path / "movie.ffconcat"
    evil.write_text(f"ffconcat version 1.0\nfile 'http://127.0.0.1:{listener.port}/movie.mp4'\n")
    subprocess.run(
        [
            binary,
            *SAFE_GLOBAL_ARGS,
            "-safe",
            "0",
            "-protocol_whitelist",
            "file,http,tcp",
            "-i",
            str(evil),
            "-f",
            "null",
            "-",
        ],
        timeout=30,
        capture_output=True,
    )
    assert listener.connections >= 1


def make(binary: str, *args: str) -> None:
    """Run ffmpeg on trusted test inputs (blocking; these are tiny)."""
    subprocess.run([binary, *SAFE_GLOBAL_ARGS, "-y", *args], check=True, timeout=60, capture_output=True)


def cut(source: Path, target: Path, fraction: float) -> Path:
    """The first `fraction` of a file's bytes, as an interrupted upload or copy leaves it."""
    data = source.read_bytes()
    target.write_bytes(data[: int(len(data) * fraction)])
    return target


async def test_empty_file(tmp_path: Path) -> None:
    empty = tmp_path / "empty.mp4"
    empty.touch()
    await refused(empty, "empty_file")


async def test_truncated_files(tmp_path: Path, good: Path, binary: str) -> None:
    # moov at the end: the index is gone.
    assert "truncated" in str(await refused(cut(good, tmp_path / "cut.mp4", 0.5), "corrupt_media"))
    # moov first: the index promises data that is not there.
    faststart = tmp_path / "faststart.mp4"
    make(binary, "-i", str(good), "-c", "copy", "-movflags", "+faststart", str(faststart))
    cut_faststart = cut(faststart, tmp_path / "cut-faststart.mp4", 0.5)
    assert "truncated" in str(await refused(cut_faststart, "corrupt_media"))
    matroska = tmp_path / "clip.mkv"
    make(binary, "-i", str(good), "-c", "copy", str(matroska))
    assert "truncated" in str(await refused(cut(matroska, tmp_path / "cut.mkv", 0.5), "corrupt_media"))


async def test_images_text_and_other_things(tmp_path: Path, binary: str) -> None:
    for name in ("poster.png", "poster.jpg"):
        image = tmp_path / name
        make(binary, "-f", "lavfi", "-i", "testsrc2=size=64x64", "-frames:v", "1", str(image))
        renamed = image.rename(tmp_path / f"{name}.mp4")
        assert "image" in str(await refused(renamed, "not_media"))
    text = tmp_path / "notes.mkv"
    text.write_text("This is not a video, just some notes.\n" * 50)
    assert "text file" in str(await refused(text, "not_media"))
    subtitles = tmp_path / "subtitles.mp4"
    subtitles.write_text("1\n00:00:01,000 --> 00:00:02,000\nHello\n")
    await refused(subtitles, "not_media")
    noise = tmp_path / "noise.mp4"
    noise.write_bytes(bytes(range(256)) * 64)
    await refused(noise, "not_media")


async def test_unsupported_container_and_no_streams(tmp_path: Path, binary: str) -> None:
    nut = tmp_path / "clip.mp4"  # a real video, in a container outside the allow-list (NUT)
    make(
        binary, "-f", "lavfi", "-i", "testsrc2=size=64x64:duration=1", "-c:v", "mpeg4", "-f", "nut", str(nut)
    )
    assert "not accepted" in str(await refused(nut, "unsupported_container"))
    srt = tmp_path / "in.srt"
    srt.write_text("1\n00:00:00,000 --> 00:00:01,000\nHello\n")
    only_subtitles = tmp_path / "subtitles.mkv"
    make(binary, "-i", str(srt), "-c:s", "srt", str(only_subtitles))
    await refused(only_subtitles, "no_video_or_audio")


def patched_avi(binary: str, folder: Path, width: int, height: int) -> Path:
    """A tiny raw-video AVI whose headers (avih and the strf BITMAPINFOHEADER) announce width x height."""
    raw = folder / "raw.avi"
    make(
        binary,
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=64x64:rate=1:duration=1",
        "-c:v",
        "rawvideo",
        "-pix_fmt",
        "yuv420p",
        str(raw),
    )
    data = bytearray(raw.read_bytes())
    struct.pack_into("<ii", data, data.find(b"strf") + 12, width, height)
    struct.pack_into("<II", data, data.find(b"avih") + 8 + 32, width, height)
    patched = folder / f"claims-{width}x{height}.avi"
    patched.write_bytes(bytes(data))
    return patched


async def test_header_claiming_a_huge_resolution(tmp_path: Path, binary: str) -> None:
    claimed = patched_avi(binary, tmp_path, 9000, 5000)
    assert "9000x5000" in str(await refused(claimed, "resolution_too_high"))
    # Absurd sizes (beyond what libav accepts at all) fail closed too.
    absurd = patched_avi(binary, tmp_path, 40000, 30000)
    with pytest.raises(PipelineError) as caught:
        await inspect_source(absurd, settings=get_settings())
    assert caught.value.code in {"resolution_too_high", "corrupt_media"}


async def test_a_real_8k_plus_picture_is_refused(tmp_path: Path, binary: str) -> None:
    huge = tmp_path / "huge.mp4"
    make(
        binary,
        *("-f", "lavfi", "-i", "color=c=gray:size=8192x4352:rate=1:duration=1"),
        *("-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", str(huge)),
    )
    assert "8192x4352" in str(await refused(huge, "resolution_too_high"))
