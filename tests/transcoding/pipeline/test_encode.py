"""encode_renditions with the real ffmpeg: one process, aligned keyframes, declared profiles and levels."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import av
import pytest

from shared.infra.media import ffmpeg_binary, ffmpeg_command
from shared.settings import Settings, get_settings
from shared.transcoding.pipeline.encode import (
    encode_renditions,
    filter_graph,
    plan_encode,
    thread_shares,
)
from shared.transcoding.pipeline.ladder import build_ladder, hevc_level, trickplay_rung
from shared.transcoding.pipeline.model import PipelineError, Rung, SourceInfo
from shared.transcoding.pipeline.probing import inspect_source
from shared.transcoding.pipeline.progress import ProgressState, failure, run_with_progress
from shared.transcoding.pipeline.testclips import generate_clip


def fast(preset: str = "ultrafast") -> Settings:
    return get_settings().model_copy(update={"media_x264_preset": preset})


@pytest.fixture(scope="module")
async def source(tmp_path_factory: pytest.TempPathFactory) -> SourceInfo:
    """6 s of 640x360 at 25 fps with English and French audio."""
    path = generate_clip(
        ffmpeg_binary(get_settings()),
        tmp_path_factory.mktemp("encode") / "source.mp4",
        seconds=6,
        width=640,
        height=360,
        audio_languages=("eng", "fra"),
    )
    return await inspect_source(path, settings=get_settings())


@pytest.fixture(scope="module")
async def long_source(tmp_path_factory: pytest.TempPathFactory) -> SourceInfo:
    """10 s of 640x360: long enough to be caught mid-encode at a slow preset."""
    path = generate_clip(
        ffmpeg_binary(get_settings()),
        tmp_path_factory.mktemp("encode-long") / "long.mp4",
        seconds=10,
        width=640,
        height=360,
        audio_languages=("eng",),
    )
    return await inspect_source(path, settings=get_settings())


def keyframe_times(path: Path) -> tuple[list[float], int]:
    """Times of the keyframes of a file's only stream, and its packet count."""
    with av.open(str(path)) as container:
        stream = container.streams[0]
        packets = [packet for packet in container.demux(stream) if packet.pts is not None]
        keys = sorted(
            round(float(packet.pts * stream.time_base), 3) for packet in packets if packet.is_keyframe
        )
        return keys, len(packets)


def stream_facts(path: Path) -> Any:
    container = av.open(str(path))
    return container, container.streams[0]


def ffmpeg_children(marker: str) -> list[int]:
    """ffmpeg processes started by this test process whose command line mentions `marker`."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\x00", b" ").decode(errors="replace")
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        if parent == os.getpid() and "ffmpeg" in cmdline and marker in cmdline:
            found.append(int(entry.name))
    return found


def small_hevc_rung() -> Rung:
    return Rung(
        name="hevc_180p",
        codec="hevc",
        width=320,
        height=180,
        frame_rate=25.0,
        crf=28,
        maxrate=300_000,
        bufsize=600_000,
        profile="main",
        level=hevc_level(320, 180, 25.0, 300_000, 600_000),
    )


@pytest.mark.slow
async def test_one_process_encodes_every_rung_audio_and_trickplay(source: SourceInfo, tmp_path: Path) -> None:
    rungs = [*build_ladder(source, hevc=False), small_hevc_rung()]
    assert [rung.name for rung in rungs] == ["h264_240p", "h264_360p", "hevc_180p"]
    outputs = await encode_renditions(
        source, rungs=rungs, audio=source.audio, trickplay=True, out_dir=tmp_path / "out", settings=fast()
    )
    assert [(output.name, output.kind) for output in outputs] == [
        ("h264_240p", "video"),
        ("h264_360p", "video"),
        ("hevc_180p", "video"),
        ("trickplay", "iframe"),
        ("audio_eng", "audio"),
        ("audio_fra", "audio"),
    ]
    assert all(output.path.is_file() and output.path.parent == tmp_path / "out" for output in outputs)
    grid = [0.0, 2.0, 4.0]  # keyframes every media_gop_seconds (2 s), nothing in between
    for output in outputs[:3]:
        rung = output.rung
        assert rung is not None
        container, stream = stream_facts(output.path)
        with container:
            context = stream.codec_context
            assert len(container.streams) == 1 and stream.type == "video"
            assert (context.width, context.height) == (rung.width, rung.height)
            assert rung.width <= (source.width or 0) and rung.height <= (source.height or 0)
            assert stream.average_rate == 25
            assert float(stream.duration * stream.time_base) == pytest.approx(6.0, abs=0.05)
            if rung.codec == "h264":
                assert (context.name, context.profile) == ("h264", "High")
                assert context.level == round(float(rung.level) * 10)
            else:
                assert (context.name, context.profile, stream.codec_tag) == ("hevc", "Main", "hvc1")
                assert context.level == round(float(rung.level) * 30)
        keys, _ = keyframe_times(output.path)
        assert keys == grid, output.name
    trick_keys, trick_packets = keyframe_times(outputs[3].path)
    assert trick_keys == grid and trick_packets == 3  # one I-frame per GOP, on the rungs' keyframes
    container, stream = stream_facts(outputs[3].path)
    with container:
        assert (stream.codec_context.width, stream.codec_context.height) == (320, 180)
        assert float(stream.duration * stream.time_base) == pytest.approx(6.0, abs=0.05)
    for output, language in zip(outputs[4:], ("eng", "fra"), strict=True):
        assert output.audio is not None and output.audio.language == language
        container, stream = stream_facts(output.path)
        with container:
            context = stream.codec_context
            assert len(container.streams) == 1 and stream.type == "audio"
            assert (context.name, context.channels, context.sample_rate) == ("aac", 2, 48000)
            assert stream.metadata.get("language") == language
            assert float(stream.duration * stream.time_base) == pytest.approx(6.0, abs=0.1)


@pytest.mark.slow
async def test_audio_only_and_nothing(source: SourceInfo, tmp_path: Path) -> None:
    outputs = await encode_renditions(
        source, rungs=[], audio=source.audio[1:], trickplay=False, out_dir=tmp_path, settings=fast()
    )
    assert [(output.name, output.kind) for output in outputs] == [("audio_fra", "audio")]
    assert (
        await encode_renditions(
            source, rungs=[], audio=[], trickplay=False, out_dir=tmp_path, settings=fast()
        )
        == []
    )


@pytest.mark.slow
async def test_progress_rises_and_cancellation_kills_ffmpeg(long_source: SourceInfo, tmp_path: Path) -> None:
    out_dir = tmp_path / "cancelled"
    seen: list[tuple[float, float | None]] = []
    two_reports = asyncio.Event()

    async def on_progress(fraction: float, eta: float | None) -> None:
        seen.append((fraction, eta))
        if len(seen) >= 2:
            two_reports.set()

    task = asyncio.create_task(
        encode_renditions(
            long_source,
            rungs=build_ladder(long_source, hevc=False),
            audio=long_source.audio,
            trickplay=True,
            out_dir=out_dir,
            settings=fast("slower"),
            on_progress=on_progress,
        )
    )
    await asyncio.wait_for(two_reports.wait(), 30)
    assert ffmpeg_children(str(out_dir)), "ffmpeg should be running"
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert ffmpeg_children(str(out_dir)) == []
    fractions = [fraction for fraction, _ in seen]
    assert fractions == sorted(fractions) and 0 < fractions[0] < fractions[-1] < 1
    assert all(eta is None or eta > 0 for _, eta in seen)


@pytest.mark.slow
async def test_a_failing_progress_callback_stops_ffmpeg(long_source: SourceInfo, tmp_path: Path) -> None:
    async def cancel_requested(fraction: float, eta: float | None) -> None:
        raise RuntimeError("the job was cancelled")

    with pytest.raises(RuntimeError, match="cancelled"):
        await encode_renditions(
            long_source,
            rungs=build_ladder(long_source, hevc=False),
            audio=[],
            trickplay=False,
            out_dir=tmp_path,
            settings=fast("slower"),
            on_progress=cancel_requested,
        )
    assert ffmpeg_children(str(tmp_path)) == []


@pytest.mark.slow
async def test_timeout_kills_ffmpeg(long_source: SourceInfo, tmp_path: Path) -> None:
    settings = fast("slower")
    plan = plan_encode(
        long_source,
        rungs=build_ladder(long_source, hevc=False),
        audio=[],
        trickplay=False,
        out_dir=tmp_path,
        settings=settings,
    )
    argv = ffmpeg_command(
        ffmpeg_binary(settings),
        input_path=long_source.path,
        input_format=long_source.demuxer,
        output_args=plan.output_args,
    )
    with pytest.raises(PipelineError) as caught:
        await run_with_progress(argv, duration=long_source.duration_seconds, timeout=0.5)
    assert caught.value.code == "encode_timeout" and caught.value.transient is False
    assert ffmpeg_children(str(tmp_path)) == []


def test_failures_say_whether_a_retry_can_help() -> None:
    killed = failure(-9, "")
    assert (killed.code, killed.transient) == ("encode_failed", True) and "SIGKILL" in str(killed)
    bad = failure(1, "[h264 @ 0x1] Invalid data found when processing input\n")
    assert (bad.code, bad.transient) == ("encode_failed", False) and "Invalid data" in str(bad)
    assert failure(1, "av_interleaved_write_frame(): No space left on device").transient is True
    assert len(str(failure(1, "x" * 50_000))) < 1000  # only the tail of stderr


def test_progress_blocks_become_fraction_and_eta() -> None:
    state = ProgressState(duration=10.0, started=0.0)
    state.update({"out_time_us": "N/A", "speed": "N/A", "progress": "continue"})
    assert (state.fraction, state.eta(1.0)) == (0.0, None)
    state.update({"out_time_us": "2500000", "speed": "2.5x", "progress": "continue"})
    assert state.fraction == 0.25 and state.eta(1.0) == pytest.approx(3.0)
    state.update({"out_time_us": "2000000", "speed": "N/A", "progress": "continue"})
    assert state.fraction == 0.25  # never goes back
    state.update({"out_time_us": "9000000", "speed": "3x", "progress": "end"})
    assert (state.fraction, state.eta(5.0)) == (1.0, 0.0)


def test_the_filter_graph_decodes_once_and_cascades_scalers() -> None:
    source = SourceInfo(Path("/x.mp4"), "mov", 60.0, 1, 1920, 1080, 25.0, 0)
    rungs = build_ladder(source, hevc=True)
    graph, labels = filter_graph(
        source, rungs=rungs, trickplay=trickplay_rung(source, gop_seconds=2), gop_seconds=2
    )
    assert graph.count("[0:0]") == 1 and graph.startswith(
        "[0:0]bwdif=mode=send_frame:deint=interlaced,fps=25/1,format=yuv420p[base]"
    )
    # One scaler per distinct size (h264_1080p and hevc_1080p share one), each fed by the next larger.
    assert graph.count("scale=") == 7 and graph.count("scale=1920:1080") == 1
    assert graph.index("scale=1920:1080") < graph.index("scale=1280:720") < graph.index("scale=416:234")
    assert "select='gte(t\\,selected_n*2)'" in graph
    assert set(labels) == {rung.name for rung in rungs} | {"trickplay"}
    threads = thread_shares(rungs)
    assert all(1 <= count <= (os.cpu_count() or 1) for count in threads.values())
    assert threads["hevc_1080p"] >= threads["h264_240p"]
