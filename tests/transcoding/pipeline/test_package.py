"""Packaging with real ffmpeg: CMAF segments, AES-128 HLS, CENC DASH and manifests, checked with m3u8/PyAV."""

from __future__ import annotations

import dataclasses
import hashlib
import subprocess
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import accumulate
from pathlib import Path

import av
import av.logging
import m3u8
import pytest

from shared.infra.media import SAFE_GLOBAL_ARGS, ffmpeg_binary
from shared.settings import get_settings
from shared.transcoding.pipeline.codecs import read_init
from shared.transcoding.pipeline.dash import MPD_NS, kid_uuid
from shared.transcoding.pipeline.encryption import decrypt_segment
from shared.transcoding.pipeline.model import (
    AudioTrack,
    ContentKeys,
    EncodedOutput,
    PackagedRendition,
    PipelineError,
    Rung,
    SubtitleTrack,
)
from shared.transcoding.pipeline.package import (
    package_rendition,
    rendition_label,
    segment_name,
    write_manifests,
)
from shared.transcoding.pipeline.testclips import generate_clip
from shared.transcoding.publish import is_manifest, local_files, publish_order

pytestmark = pytest.mark.slow

SECONDS = 10
SEGMENT = 6  # the default media_segment_seconds
KEYS = ContentKeys(
    key_id=bytes.fromhex("00112233445566778899aabbccddeeff"), cenc_key=b"C" * 16, hls_key=b"H" * 16
)
NS = {"d": MPD_NS, "cenc": "urn:mpeg:cenc:2013"}
KEY_FRAMES = ["-force_key_frames", "expr:gte(t,n_forced*2)", "-sc_threshold", "0"]
H264_PROFILES = {"Baseline": 66, "Constrained Baseline": 66, "Main": 77, "High": 100}


@dataclass
class Packaged:
    asset_dir: Path
    outputs: dict[str, EncodedOutput]
    renditions: dict[str, PackagedRendition]
    subtitles: list[SubtitleTrack]
    written: list[str]


def _rung(name: str, codec: str, width: int, height: int, frame_rate: float = 25.0) -> Rung:
    return Rung(name, codec, width, height, frame_rate, 23, 1_000_000, 2_000_000, "high", "3.0")  # type: ignore[arg-type]


def _encode(binary: str, folder: Path) -> dict[str, EncodedOutput]:
    """What the encode step hands over: video-only rungs, audio-only tracks and an all-intra trickplay."""
    source = generate_clip(
        binary, folder / "source.mp4", seconds=SECONDS, width=640, height=360, audio_languages=("eng", "fra")
    )
    x264 = ["-c:v", "libx264", "-preset", "superfast", *KEY_FRAMES]
    argv = [
        binary, *SAFE_GLOBAL_ARGS, "-y", "-i", str(source), "-filter_complex",
        "[0:v]split=4[a][b][c][d];[a]scale=320:180[v1];[b]scale=640:360[v2];[c]scale=320:180[v3];"
        "[d]fps=0.5,scale=320:180[v4]",
        "-map", "[v1]", *x264, "-profile:v", "high", str(folder / "h264_180p.mp4"),
        "-map", "[v2]", *x264, "-profile:v", "main", str(folder / "h264_360p.mp4"),
        "-map", "[v3]", "-c:v", "libx265", "-preset", "ultrafast", *KEY_FRAMES, "-tag:v", "hvc1",
        "-x265-params", "keyint=50:min-keyint=50:scenecut=0:open-gop=0:log-level=error",
        str(folder / "hevc_180p.mp4"),
        "-map", "[v4]", "-c:v", "libx264", "-preset", "superfast", "-g", "1", str(folder / "trickplay.mp4"),
        "-map", "0:a:0", "-c:a", "aac", "-b:a", "64k", "-ac", "2", str(folder / "audio_eng.mp4"),
        "-map", "0:a:1", "-c:a", "aac", "-b:a", "64k", "-ac", "2", str(folder / "audio_fra.mp4"),
    ]  # fmt: skip
    subprocess.run(argv, check=True, timeout=120, capture_output=True)
    eng = AudioTrack(1, "audio_eng", "eng", "English", 2, True)
    fra = AudioTrack(2, "audio_fra", "fra", "Français", 2, False)
    video = [
        ("h264_180p", "h264", 320, 180),
        ("h264_360p", "h264", 640, 360),
        ("hevc_180p", "hevc", 320, 180),
    ]
    outputs = [
        EncodedOutput(name, "video", folder / f"{name}.mp4", rung=_rung(name, codec, width, height))
        for name, codec, width, height in video
    ]
    trick = _rung("trickplay", "h264", 320, 180, 0.5)
    outputs += [
        EncodedOutput("trickplay", "iframe", folder / "trickplay.mp4", rung=trick),
        EncodedOutput("audio_eng", "audio", folder / "audio_eng.mp4", audio=eng),
        EncodedOutput("audio_fra", "audio", folder / "audio_fra.mp4", audio=fra),
    ]
    return {output.name: output for output in outputs}


def _subtitles(folder: Path) -> list[SubtitleTrack]:
    vtt = folder / "en.vtt"
    vtt.write_text("WEBVTT\n\n00:00:01.000 --> 00:00:03.000\nHello\n")
    return [
        SubtitleTrack("en", "English", forced=False, sdh=False, vtt_path=vtt),
        SubtitleTrack("en", "English", forced=True, sdh=False, vtt_path=vtt),
        SubtitleTrack("fr", "Français", forced=False, sdh=True, vtt_path=vtt),
    ]


@pytest.fixture(scope="module")
async def packaged(tmp_path_factory: pytest.TempPathFactory) -> Packaged:
    settings = get_settings()
    folder = tmp_path_factory.mktemp("packaging")
    outputs = _encode(ffmpeg_binary(settings), folder)
    asset_dir = folder / "asset"
    asset_dir.mkdir()
    renditions = {}
    for output in outputs.values():
        renditions[output.name] = await package_rendition(
            output, asset_dir=asset_dir, keys=KEYS, settings=settings
        )
    subtitles = _subtitles(folder)
    written = write_manifests(
        asset_dir, renditions=list(renditions.values()), subtitles=subtitles, keys=KEYS, settings=settings
    )
    return Packaged(asset_dir, outputs, renditions, subtitles, written)


@contextmanager
def quiet_av() -> Iterator[None]:
    """Decoding garbage on purpose: keep libav's error flood out of the output."""
    previous = av.logging.get_level()
    av.logging.set_level(None)
    try:
        yield
    finally:
        av.logging.set_level(previous)


def decode(path: Path, options: dict[str, str] | None = None) -> list[str]:
    """Hashes of every decoded frame; decode errors and unreadable files yield fewer (or no) frames."""
    hashes: list[str] = []
    with quiet_av():
        try:
            container = av.open(str(path), options=options or {})
        except av.FFmpegError:
            return hashes
        with container:
            stream = container.streams[0]
            try:
                for packet in container.demux(stream):
                    try:
                        frames = packet.decode()
                    except av.FFmpegError:
                        continue
                    for frame in frames:
                        digest = hashlib.md5(usedforsecurity=False)
                        for plane in frame.planes:
                            digest.update(bytes(plane))
                        hashes.append(digest.hexdigest())
            except av.FFmpegError:
                pass
    return hashes


def joined(folder: Path, *parts: bytes) -> Path:
    path = folder / f"joined-{uuid.uuid4().hex}.mp4"
    path.write_bytes(b"".join(parts))
    return path


def hls_clear(packaged: Packaged, name: str, number: int, tmp_path: Path) -> Path:
    """init + decrypted segment `number` of an HLS rendition, as one playable file."""
    folder = packaged.asset_dir / "hls" / name
    segment = decrypt_segment((folder / segment_name(number)).read_bytes(), key=KEYS.hls_key, sequence=number)
    return joined(tmp_path, (folder / "init.mp4").read_bytes(), segment)


def media_playlist(packaged: Packaged, name: str) -> m3u8.M3U8:
    return m3u8.loads((packaged.asset_dir / packaged.renditions[name].hls_playlist).read_text())


def mpd_root(packaged: Packaged) -> ET.Element:
    return ET.fromstring((packaged.asset_dir / "dash" / "manifest.mpd").read_text())


async def test_master_playlist_has_every_attribute(packaged: Packaged) -> None:
    master = m3u8.loads((packaged.asset_dir / "hls" / "master.m3u8").read_text())
    variants = {playlist.uri: playlist.stream_info for playlist in master.playlists}
    assert list(variants) == ["h264_180p/playlist.m3u8", "h264_360p/playlist.m3u8", "hevc_180p/playlist.m3u8"]
    audio_peak = max(packaged.renditions[name].bandwidth for name in ("audio_eng", "audio_fra"))
    for uri, info in variants.items():
        rendition = packaged.renditions[uri.split("/")[0]]
        assert info.codecs == f"{rendition.codecs},mp4a.40.2"
        assert info.resolution == (rendition.width, rendition.height)
        assert info.bandwidth == rendition.bandwidth + audio_peak
        assert 0 < info.average_bandwidth <= info.bandwidth
        assert info.frame_rate == 25.0
        assert (info.audio, info.subtitles) == ("audio", "subs")
    audio = [media for media in master.media if media.type == "AUDIO"]
    assert [(m.language, m.name, m.default, m.uri) for m in audio] == [
        ("en", "English", "YES", "audio_eng/playlist.m3u8"),
        ("fr", "Français", "NO", "audio_fra/playlist.m3u8"),
    ]
    subtitles = [media for media in master.media if media.type == "SUBTITLES"]
    assert [(m.language, m.forced, m.uri) for m in subtitles] == [
        ("en", "NO", "subtitles/en.m3u8"),
        ("en", "YES", "subtitles/en_forced.m3u8"),
        ("fr", "NO", "subtitles/fr_sdh.m3u8"),
    ]
    assert len({m.name for m in subtitles}) == 3
    assert "transcribes-spoken-dialog" in subtitles[2].characteristics
    (iframe,) = master.iframe_playlists
    assert iframe.uri == "trickplay/playlist.m3u8"
    assert iframe.iframe_stream_info.codecs == packaged.renditions["trickplay"].codecs
    assert iframe.iframe_stream_info.resolution == (320, 180)
    assert iframe.iframe_stream_info.bandwidth > 0


async def test_media_playlists_segments_keys_and_alignment(packaged: Packaged) -> None:
    boundaries = {}
    for name in ("h264_180p", "h264_360p", "hevc_180p", "audio_eng"):
        text = (packaged.asset_dir / packaged.renditions[name].hls_playlist).read_text()
        assert text.index("#EXT-X-MAP:") < text.index("#EXT-X-KEY:")  # the init segment stays clear
        playlist = m3u8.loads(text)
        assert playlist.is_endlist and playlist.playlist_type == "vod" and playlist.media_sequence == 1
        assert playlist.target_duration == SEGMENT
        assert {(s.key.method, s.key.uri, s.key.iv) for s in playlist.segments} == {
            ("AES-128", "../keys/hls.key", None)
        }
        assert {s.init_section.uri for s in playlist.segments} == {"init.mp4"}
        durations = [segment.duration for segment in playlist.segments]
        assert durations[:-1] == pytest.approx([SEGMENT] * (len(durations) - 1), abs=0.05)
        assert 0 < durations[-1] <= SEGMENT + 0.05
        assert sum(durations) == pytest.approx(SECONDS, abs=0.05)
        assert len(durations) == packaged.renditions[name].segment_count
        boundaries[name] = list(accumulate(durations))
    # Keyframes every 2 s on every rung: the video segments start at the same instants.
    assert boundaries["h264_180p"] == boundaries["h264_360p"] == boundaries["hevc_180p"]
    assert boundaries["audio_eng"] == pytest.approx(boundaries["h264_180p"], abs=0.05)


async def test_iframe_playlist_lists_one_intra_frame_per_segment(packaged: Packaged, tmp_path: Path) -> None:
    playlist = media_playlist(packaged, "trickplay")
    assert playlist.is_i_frames_only
    assert [segment.duration for segment in playlist.segments] == pytest.approx([2.0] * (SECONDS // 2))
    assert all(segment.key.method == "AES-128" for segment in playlist.segments)
    assert len(decode(hls_clear(packaged, "trickplay", 3, tmp_path))) == 1


async def test_codecs_strings_match_the_streams(packaged: Packaged, tmp_path: Path) -> None:
    for name, rendition in packaged.renditions.items():
        with av.open(str(hls_clear(packaged, name, 1, tmp_path))) as container:
            stream = container.streams[0]
            context = stream.codec_context
            if context.name == "h264":
                profile, level = H264_PROFILES[context.profile], context.level
                assert rendition.codecs[:7] == f"avc1.{profile:02x}"
                assert int(rendition.codecs[9:11], 16) == level
            elif context.name == "hevc":
                assert context.profile == "Main"
                assert rendition.codecs.startswith(f"hvc1.1.6.L{context.level}.")
            else:
                assert (context.name, context.profile, rendition.codecs) == ("aac", "LC", "mp4a.40.2")
            if stream.type == "video":
                assert (rendition.width, rendition.height) == (context.width, context.height)
    assert packaged.renditions["h264_180p"].codecs.startswith("avc1.64")  # High
    assert packaged.renditions["h264_360p"].codecs.startswith("avc1.4d")  # Main
    assert packaged.renditions["hevc_180p"].codecs.startswith("hvc1.")
    assert packaged.renditions["trickplay"].frame_rate == pytest.approx(0.5)
    assert packaged.renditions["h264_360p"].frame_rate == pytest.approx(25.0)


async def test_hls_segments_decode_only_with_the_key(packaged: Packaged, tmp_path: Path) -> None:
    for name in ("h264_180p", "hevc_180p", "audio_fra"):
        rendition = packaged.renditions[name]
        folder = packaged.asset_dir / "hls" / name
        for number in range(1, rendition.segment_count + 1):
            # Each segment decodes on its own (starts with a keyframe) with IV = its sequence number.
            assert decode(hls_clear(packaged, name, number, tmp_path)), (name, number)
        raw = joined(tmp_path, (folder / "init.mp4").read_bytes(), (folder / segment_name(1)).read_bytes())
        assert decode(raw) == []
        wrong_iv = decrypt_segment((folder / segment_name(2)).read_bytes(), key=KEYS.hls_key, sequence=2)
        assert (folder / segment_name(1)).read_bytes() != wrong_iv


async def test_dash_segments_are_cenc_encrypted(packaged: Packaged, tmp_path: Path) -> None:
    for name in ("h264_360p", "audio_eng"):
        folder = packaged.asset_dir / "dash" / name
        init = (folder / "init.mp4").read_bytes()
        assert read_init(init).default_kid == KEYS.key_id
        protected = joined(tmp_path, init, (folder / segment_name(1)).read_bytes())
        clear = decode(hls_clear(packaged, name, 1, tmp_path))
        assert clear
        assert decode(protected, {"decryption_key": KEYS.cenc_key.hex()}) == clear
        without_key = decode(protected)
        assert without_key != clear
        assert not set(without_key) & set(clear[1:])  # nothing beyond perhaps an all-clear first frame


async def test_mpd_signals_protection_timelines_trick_mode_and_subtitles(packaged: Packaged) -> None:
    root = mpd_root(packaged)
    assert root.get("type") == "static"
    assert root.get("mediaPresentationDuration") == f"PT{SECONDS:.3f}S"
    sets = root.findall("d:Period/d:AdaptationSet", NS)
    media_sets = [s for s in sets if s.get("contentType") in ("video", "audio")]
    assert len(media_sets) == 5  # H.264, HEVC, trick mode, two languages
    for adaptation in media_sets:
        protections = {cp.get("schemeIdUri"): cp for cp in adaptation.findall("d:ContentProtection", NS)}
        cenc = protections["urn:mpeg:dash:mp4protection:2011"]
        assert cenc.get("value") == "cenc"
        assert (
            cenc.get(f"{{{NS['cenc']}}}default_KID")
            == "00112233-4455-6677-8899-aabbccddeeff"
            == kid_uuid(KEYS.key_id)
        )
        for system in (
            "e2719d58-a985-b3c9-781a-b030af78d30e",
            "edef8ba9-79d6-4ace-a3c8-27dcd51d21ed",
            "9a04f079-9840-4286-ab92-e65be0885f95",
            "94ce86fb-07ff-4f43-adb8-93d2fa968ca2",
        ):
            assert f"urn:uuid:{system}" in protections
        for representation in adaptation.findall("d:Representation", NS):
            rendition = packaged.renditions[representation.attrib["id"]]
            assert representation.get("codecs") == rendition.codecs
            template = representation.find("d:SegmentTemplate", NS)
            assert template is not None
            timescale = int(template.attrib["timescale"])
            durations = []
            for entry in template.findall("d:SegmentTimeline/d:S", NS):
                durations += [int(entry.attrib["d"])] * (int(entry.get("r", "0")) + 1)
            files = sorted((packaged.asset_dir / rendition.dash_dir).glob("seg-*.m4s"))
            assert len(files) == len(durations) == rendition.segment_count
            assert sum(durations) / timescale == pytest.approx(rendition.duration_seconds, abs=1e-6)
            if rendition.kind != "iframe":
                assert sum(durations) / timescale == pytest.approx(SECONDS, abs=0.05)
    trick = [s for s in sets if s.find("d:EssentialProperty", NS) is not None]
    assert len(trick) == 1
    prop = trick[0].find("d:EssentialProperty", NS)
    assert prop is not None and prop.get("schemeIdUri") == "http://dashif.org/guidelines/trickmode"
    video_ids = {s.get("id") for s in media_sets if s.get("contentType") == "video"} - {trick[0].get("id")}
    assert set((prop.get("value") or "").split()) == video_ids
    text = [s for s in sets if s.get("contentType") == "text"]
    roles = [(s.get("lang"), s.get("mimeType"), s.find("d:Role", NS).get("value")) for s in text]  # type: ignore[union-attr]
    assert roles == [
        ("en", "text/vtt", "subtitle"),
        ("en", "text/vtt", "forced-subtitle"),
        ("fr", "text/vtt", "caption"),
    ]
    for adaptation in text:
        href = adaptation.findtext("d:Representation/d:BaseURL", namespaces=NS)
        assert href and (packaged.asset_dir / "dash" / href).read_text().startswith("WEBVTT")


async def test_labels_come_from_the_rung_name_not_the_output_height(packaged: Packaged) -> None:
    labels = {name: rendition.label for name, rendition in packaged.renditions.items()}
    assert labels == {
        "h264_180p": "180p",
        "h264_360p": "360p",
        "hevc_180p": "180p HEVC",
        "trickplay": None,
        "audio_eng": "English",
        "audio_fra": "Français",
    }
    # A 2.39:1 film: its 1080p rung is 1920x800, and still called 1080p.
    scope = EncodedOutput("h264_1080p", "video", Path("x.mp4"), rung=_rung("h264_1080p", "h264", 1920, 800))
    assert rendition_label(scope) == "1080p"


async def test_write_manifests_with_a_subset_then_every_rung(packaged: Packaged, tmp_path: Path) -> None:
    settings = get_settings()
    asset_dir = tmp_path / "refresh"  # like a manifest refresh job: no media files needed
    first = [packaged.renditions[name] for name in ("h264_180p", "audio_eng", "audio_fra")]
    written = write_manifests(asset_dir, renditions=first, subtitles=[], keys=KEYS, settings=settings)
    assert written == ["hls/master.m3u8", "dash/manifest.mpd"]
    master = m3u8.loads((asset_dir / "hls/master.m3u8").read_text())
    assert [p.uri for p in master.playlists] == ["h264_180p/playlist.m3u8"]
    assert master.playlists[0].stream_info.subtitles is None and not master.iframe_playlists
    root = ET.fromstring((asset_dir / "dash/manifest.mpd").read_text())
    assert [r.get("id") for r in root.iter(f"{{{MPD_NS}}}Representation")] == [
        "h264_180p",
        "audio_eng",
        "audio_fra",
    ]

    written = write_manifests(
        asset_dir,
        renditions=list(packaged.renditions.values()),
        subtitles=packaged.subtitles[:1],
        keys=KEYS,
        settings=settings,
    )
    # The WebVTT files are named by content: cached as immutable, a changed track gets a new name.
    digest = hashlib.sha256(packaged.subtitles[0].vtt_path.read_bytes()).hexdigest()[:8]
    assert written == [
        f"hls/subtitles/en-{digest}.vtt",
        f"dash/subtitles/en-{digest}.vtt",
        "hls/subtitles/en.m3u8",
        "hls/master.m3u8",
        "dash/manifest.mpd",
    ]
    assert all((asset_dir / path).is_file() for path in written)
    master = m3u8.loads((asset_dir / "hls/master.m3u8").read_text())
    assert len(master.playlists) == 3 and len(master.iframe_playlists) == 1
    subtitle_playlist = m3u8.loads((asset_dir / "hls/subtitles/en.m3u8").read_text())
    assert [s.uri for s in subtitle_playlist.segments] == [f"en-{digest}.vtt"]
    assert subtitle_playlist.segments[0].duration == pytest.approx(SECONDS, abs=0.05)
    root = ET.fromstring((asset_dir / "dash/manifest.mpd").read_text())
    assert len(list(root.iter(f"{{{MPD_NS}}}Representation"))) == 7  # six renditions + one subtitle

    changed = tmp_path / "en-changed.vtt"
    changed.write_text(packaged.subtitles[0].vtt_path.read_text() + "\n00:01.000 --> 00:01.500\nMore.\n")
    rewritten = write_manifests(
        asset_dir,
        renditions=list(packaged.renditions.values()),
        subtitles=[dataclasses.replace(packaged.subtitles[0], vtt_path=changed)],
        keys=KEYS,
        settings=settings,
    )
    assert rewritten[0].startswith("hls/subtitles/en-") and rewritten[0] != written[0]
    mpd_text = (asset_dir / "dash/manifest.mpd").read_text()
    assert rewritten[1].removeprefix("dash/") in mpd_text and written[1].removeprefix("dash/") not in mpd_text

    write_manifests(asset_dir, renditions=first, subtitles=[], keys=KEYS, settings=settings)
    assert not (asset_dir / "hls/subtitles").exists()  # a removed track does not linger


async def test_no_clear_copies_are_left_and_files_are_ordered(packaged: Packaged) -> None:
    assert not (packaged.asset_dir / ".work").exists()
    # In the order the worker publishes them (shared.transcoding.publish): media, playlists, masters last.
    files = [path for wave in publish_order(local_files(packaged.asset_dir)) for path in wave]
    assert files[-2:] == ["dash/manifest.mpd", "hls/master.m3u8"]
    first_manifest = next(index for index, path in enumerate(files) if is_manifest(path))
    assert all(is_manifest(path) for path in files[first_manifest:])
    assert set(packaged.written) <= set(files)
    # Every HLS media segment is ciphertext: none is a readable box stream.
    for path in (packaged.asset_dir / "hls").glob("*/seg-*.m4s"):
        assert path.read_bytes()[4:8] != b"styp"
        assert path.stat().st_size % 16 == 0


async def test_repackaging_replaces_the_previous_output(packaged: Packaged) -> None:
    settings = get_settings()
    stale = packaged.asset_dir / "dash" / "audio_fra" / "seg-99999.m4s"
    stale.write_bytes(b"old")
    again = await package_rendition(
        packaged.outputs["audio_fra"], asset_dir=packaged.asset_dir, keys=KEYS, settings=settings
    )
    assert again.segment_count == packaged.renditions["audio_fra"].segment_count
    assert again.dash_segment_durations == packaged.renditions["audio_fra"].dash_segment_durations
    assert not stale.exists()
    assert not (packaged.asset_dir / ".work").exists()


async def test_a_file_that_is_not_media_fails_cleanly(tmp_path: Path) -> None:
    bogus = tmp_path / "bogus.mp4"
    bogus.write_text("#EXTM3U\nhttp://example.invalid/x.ts\n")
    output = EncodedOutput("h264_240p", "video", bogus, rung=_rung("h264_240p", "h264", 426, 240))
    asset_dir = tmp_path / "asset"
    with pytest.raises(PipelineError) as caught:
        await package_rendition(output, asset_dir=asset_dir, keys=KEYS, settings=get_settings())
    assert caught.value.code == "packaging_failed" and not caught.value.transient
    assert not (asset_dir / "hls").exists() and not (asset_dir / ".work" / "h264_240p").exists()
