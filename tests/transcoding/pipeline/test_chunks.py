"""Chunked encoding: boundaries on the segment grid, and a joined result identical in structure."""

from __future__ import annotations

import dataclasses
import itertools
from pathlib import Path

import av
import pytest

from shared.infra.media import ffmpeg_binary
from shared.settings import get_settings
from shared.transcoding.pipeline.chunks import encode_chunk, encode_chunked, plan_chunks
from shared.transcoding.pipeline.encode import encode_renditions
from shared.transcoding.pipeline.ladder import build_ladder
from shared.transcoding.pipeline.model import PipelineError, SourceInfo
from shared.transcoding.pipeline.probing import inspect_source
from shared.transcoding.pipeline.testclips import generate_clip


def test_plan_chunks_on_segment_boundaries() -> None:
    assert plan_chunks(26.0, chunk_seconds=12, segment_seconds=6) == [(0.0, 12.0), (12.0, 14.0)]
    assert plan_chunks(30.0, chunk_seconds=12, segment_seconds=6) == [(0.0, 12.0), (12.0, 12.0), (24.0, 6.0)]
    assert plan_chunks(24.0, chunk_seconds=12, segment_seconds=6) == [(0.0, 12.0), (12.0, 12.0)]
    # A chunk length that is not a multiple of the segment is rounded down to one.
    assert plan_chunks(40.0, chunk_seconds=20, segment_seconds=6) == [(0.0, 18.0), (18.0, 22.0)]
    assert plan_chunks(5.0, chunk_seconds=60, segment_seconds=6) == [(0.0, 5.0)]
    assert plan_chunks(0.0, chunk_seconds=60, segment_seconds=6) == []
    long = plan_chunks(3600.5, chunk_seconds=60, segment_seconds=6)
    assert len(long) == 60 and all(start % 6 == 0 for start, _ in long)
    assert sum(length for _, length in long) == pytest.approx(3600.5)


@pytest.fixture(scope="module")
async def source(tmp_path_factory: pytest.TempPathFactory) -> SourceInfo:
    """26 s of 320x180 with one audio track."""
    path = generate_clip(
        ffmpeg_binary(get_settings()),
        tmp_path_factory.mktemp("chunks") / "source.mp4",
        seconds=26,
        width=320,
        height=180,
        audio_languages=("eng",),
    )
    return await inspect_source(path, settings=get_settings())


def structure(path: Path) -> dict[str, object]:
    with av.open(str(path)) as container:
        stream = container.streams[0]
        packets = [packet for packet in container.demux(stream) if packet.pts is not None]
        pts = [packet.pts for packet in packets]
        return {
            "streams": len(container.streams),
            "codec": stream.codec_context.name,
            "size": (
                getattr(stream.codec_context, "width", None),
                getattr(stream.codec_context, "height", None),
            ),
            "packets": len(packets),
            "keyframes": sorted(round(float(p.pts * stream.time_base), 3) for p in packets if p.is_keyframe),
            "first_pts": float(min(pts) * stream.time_base),
            "duration": round(float(stream.duration * stream.time_base), 2),
            "decode_order_ok": all(b.dts > a.dts for a, b in itertools.pairwise(packets)),
        }


@pytest.mark.slow
async def test_chunked_equals_single_in_structure(source: SourceInfo, tmp_path: Path, settings_env) -> None:
    settings_env(MEDIA_CHUNK_SECONDS="12", MEDIA_X264_PRESET="veryfast")  # veryfast: B-frames across joins
    settings = get_settings()
    rungs = build_ladder(source, hevc=False)
    single = await encode_renditions(
        source,
        rungs=rungs,
        audio=source.audio,
        trickplay=True,
        out_dir=tmp_path / "single",
        settings=settings,
    )
    reports: list[float] = []

    async def on_progress(fraction: float, eta: float | None) -> None:
        reports.append(fraction)

    chunked = await encode_chunked(
        source,
        rungs=rungs,
        audio=source.audio,
        trickplay=True,
        out_dir=tmp_path / "chunked",
        settings=settings,
        workers=2,
        on_progress=on_progress,
    )
    assert [(o.name, o.kind, o.rung, o.audio) for o in chunked] == [
        (o.name, o.kind, o.rung, o.audio) for o in single
    ]
    assert sorted(path.name for path in (tmp_path / "chunked").iterdir()) == sorted(
        o.path.name for o in single
    )
    for one, joined in zip(single, chunked, strict=True):
        assert structure(joined.path) == structure(one.path), one.name
    video = structure(chunked[0].path)
    assert video["keyframes"] == [float(t) for t in range(0, 26, 2)] and video["packets"] == 26 * 25
    assert reports and reports[-1] == 1.0 and reports == sorted(reports)


@pytest.mark.slow
async def test_a_chunk_starts_with_a_keyframe_at_zero(source: SourceInfo, tmp_path: Path) -> None:
    settings = get_settings().model_copy(update={"media_x264_preset": "ultrafast"})
    outputs = await encode_chunk(
        source,
        rungs=build_ladder(source, hevc=False),
        trickplay=True,
        start=12.0,
        duration=6.0,
        out_dir=tmp_path,
        settings=settings,
    )
    assert [(o.name, o.kind) for o in outputs] == [("h264_180p", "video"), ("trickplay", "iframe")]
    facts = structure(outputs[0].path)
    assert facts["first_pts"] == 0.0 and facts["keyframes"] == [0.0, 2.0, 4.0] and facts["packets"] == 150
    assert structure(outputs[1].path)["keyframes"] == [0.0, 2.0, 4.0]


@pytest.mark.slow
async def test_a_failing_chunk_fails_the_whole_with_its_own_error(source: SourceInfo, tmp_path: Path) -> None:
    settings = get_settings().model_copy(update={"media_chunk_seconds": 12})
    wrong = dataclasses.replace(source, demuxer="mpegts")  # every chunk fails to read the input
    with pytest.raises(PipelineError) as caught:
        await encode_chunked(
            wrong,
            rungs=build_ladder(source, hevc=False),
            audio=source.audio,
            trickplay=True,
            out_dir=tmp_path,
            settings=settings,
            workers=2,
        )
    assert caught.value.code == "encode_failed" and caught.value.transient is False
    assert not (tmp_path / ".chunks").exists()
