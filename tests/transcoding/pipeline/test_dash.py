"""The DASH MPD builder: timelines, DRM signalling boxes and merging renditions into one manifest."""

from __future__ import annotations

import base64
import json
import struct
import uuid
import xml.etree.ElementTree as ET
from pathlib import Path

from shared.transcoding.pipeline.dash import (
    MPD_NS,
    PLAYREADY,
    WIDEVINE,
    build_mpd,
    drm_signalling,
    playready_object,
    pssh_box,
    read_timeline,
    widevine_data,
)
from shared.transcoding.pipeline.model import ContentKeys, PackagedRendition, SubtitleTrack

KEYS = ContentKeys(
    key_id=bytes.fromhex("0123456789abcdef0123456789abcdef"), cenc_key=b"K" * 16, hls_key=b"H" * 16
)
NS = {"d": MPD_NS, "cenc": "urn:mpeg:cenc:2013", "mspr": "urn:microsoft:playready"}

FFMPEG_MPD = """<?xml version="1.0" encoding="utf-8"?>
<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" type="static"><Period><AdaptationSet><Representation id="0">
<SegmentTemplate timescale="12800" initialization="init.mp4" media="seg-$Number%05d$.m4s" startNumber="1">
<SegmentTimeline><S t="0" d="76800" r="2" /><S d="12800" /></SegmentTimeline></SegmentTemplate>
</Representation></AdaptationSet></Period></MPD>"""


def rendition(name: str, kind: str = "video", **facts: object) -> PackagedRendition:
    defaults: dict[str, object] = {
        "codecs": "mp4a.40.2" if kind == "audio" else "avc1.64001f",
        "bandwidth": 1000,
        "average_bandwidth": 900,
        "duration_seconds": 19.0,
        "segment_count": 4,
        "dash_dir": f"dash/{name}",
        "dash_timescale": 12800,
        "dash_segment_durations": [76800, 76800, 76800, 12800],
    }
    if kind != "audio":
        defaults |= {"width": 1280, "height": 720, "frame_rate": 30000 / 1001}
    return PackagedRendition(name=name, kind=kind, **(defaults | facts))  # type: ignore[arg-type]


def test_read_timeline_expands_repeats() -> None:
    timeline = read_timeline(FFMPEG_MPD)
    assert (timeline.timescale, timeline.start) == (12800, 0)
    assert timeline.durations == [76800, 76800, 76800, 12800]


def test_build_mpd_merges_renditions() -> None:
    renditions = [
        rendition("h264_720p"),
        rendition("h264_360p", width=640, height=360, bandwidth=400),
        rendition("trickplay", "iframe", frame_rate=0.5, duration_seconds=20.0, dash_timescale=16384,
                  dash_segment_durations=[32768] * 10),
        rendition("audio_eng", "audio", language="eng", label="English", is_default=True,
                  dash_timescale=48000, dash_segment_durations=[288768, 287744, 288768, 46720]),
    ]  # fmt: skip
    subtitles = [
        (SubtitleTrack("de", "Deutsch", forced=True, sdh=False, vtt_path=Path("x.vtt")), "subtitles/de.vtt")
    ]
    root = ET.fromstring(build_mpd(renditions, subtitles, KEYS))
    assert root.get("mediaPresentationDuration") == "PT19.000S"  # the trick track's last frame does not count
    # Start after about one segment (the audio's first is 6.016 s), not after two of the longest.
    assert (root.get("maxSegmentDuration"), root.get("minBufferTime")) == ("PT6.016S", "PT6.016S")
    sets = root.findall("d:Period/d:AdaptationSet", NS)
    assert [(s.get("contentType"), s.get("lang")) for s in sets] == [
        ("video", None),
        ("video", None),
        ("audio", "en"),
        ("text", "de"),
    ]
    video = sets[0]
    assert [r.get("id") for r in video.findall("d:Representation", NS)] == ["h264_360p", "h264_720p"]
    representation = video.find("d:Representation[@id='h264_720p']", NS)
    assert representation is not None and representation.get("frameRate") == "30000/1001"
    template = representation.find("d:SegmentTemplate", NS)
    assert template is not None
    assert template.get("initialization") == "h264_720p/init.mp4"
    assert template.get("media") == "h264_720p/seg-$Number%05d$.m4s"
    entries = [dict(s.attrib) for s in template.findall("d:SegmentTimeline/d:S", NS)]
    assert entries == [{"t": "0", "d": "76800", "r": "2"}, {"d": "12800"}]
    trick = sets[1]
    prop = trick.find("d:EssentialProperty", NS)
    assert prop is not None and prop.attrib == {
        "schemeIdUri": "http://dashif.org/guidelines/trickmode",
        "value": video.get("id"),
    }
    trick_representation = trick.find("d:Representation", NS)
    assert trick_representation is not None
    assert (
        trick_representation.get("frameRate") == "1/2"
        and trick_representation.get("codingDependency") == "false"
    )
    text = sets[3]
    assert text.get("mimeType") == "text/vtt"
    assert text.find("d:Role", NS).get("value") == "forced-subtitle"  # type: ignore[union-attr]
    assert text.findtext("d:Representation/d:BaseURL", namespaces=NS) == "subtitles/de.vtt"
    assert text.find("d:ContentProtection", NS) is None
    for adaptation in sets[:3]:
        schemes = [cp.get("schemeIdUri") for cp in adaptation.findall("d:ContentProtection", NS)]
        assert schemes[0] == "urn:mpeg:dash:mp4protection:2011"
        assert len(schemes) == 5
        playready = adaptation.find(f"d:ContentProtection[@schemeIdUri='{PLAYREADY.urn}']", NS)
        assert playready is not None and playready.find("mspr:pro", NS) is not None


def parse_pssh(box: bytes) -> tuple[int, uuid.UUID, bytes]:
    size, kind, version_flags = struct.unpack_from(">I4sI", box)
    assert (size, kind) == (len(box), b"pssh")
    system = uuid.UUID(bytes=box[12:28])
    (length,) = struct.unpack_from(">I", box, 28)
    assert 32 + length == len(box)
    return version_flags >> 24, system, box[32:]


def test_widevine_pssh_names_the_kid() -> None:
    version, system, data = parse_pssh(pssh_box(WIDEVINE, widevine_data(KEYS.key_id)))
    assert (version, system) == (0, WIDEVINE)
    assert data[:18] == b"\x12\x10" + KEYS.key_id  # protobuf field 2 (key_ids), 16 bytes
    assert data[18] == 0x48  # field 9 (protection_scheme), varint


def test_playready_object_names_the_kid_as_a_little_endian_guid() -> None:
    pro = playready_object(KEYS.key_id)
    length, count, record_type, record_length = struct.unpack_from("<IHHH", pro)
    assert (length, count, record_type, record_length) == (len(pro), 1, 1, len(pro) - 10)
    header = pro[10:].decode("utf-16-le")
    kid = base64.b64encode(uuid.UUID(bytes=KEYS.key_id).bytes_le).decode()
    assert header.startswith("<WRMHEADER") and f"<KID>{kid}</KID>" in header
    assert parse_pssh(pssh_box(PLAYREADY, pro))[2] == pro


def test_drm_signalling_holds_no_key_material() -> None:
    facts = drm_signalling(KEYS)
    text = json.dumps(facts)
    assert facts["key_id"] == KEYS.key_id.hex()
    assert KEYS.cenc_key.hex() not in text and KEYS.hls_key.hex() not in text
    assert set(facts["systems"]) == {"clearkey", "widevine", "playready", "fairplay"}
