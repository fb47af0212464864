"""The DASH MPD: one static manifest merged from per-rendition facts, with CENC and DRM signalling.

ffmpeg's dash muxer packages each rendition on its own (see package.py) and writes a one-rendition MPD we
only read the SegmentTimeline from; the real manifest is built here, because ffmpeg's has no
ContentProtection, no subtitles, no trick mode and cannot grow as rungs are added later.
"""

from __future__ import annotations

import base64
import posixpath
import struct
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from shared.transcoding.pipeline.langtags import bcp47
from shared.transcoding.pipeline.model import ContentKeys, PackagedRendition, SubtitleTrack

MPD_NS = "urn:mpeg:dash:schema:mpd:2011"
CENC_NS = "urn:mpeg:cenc:2013"
MSPR_NS = "urn:microsoft:playready"
PROFILE = "urn:mpeg:dash:profile:isoff-live:2011"
MP4_PROTECTION = "urn:mpeg:dash:mp4protection:2011"
TRICK_MODE = "http://dashif.org/guidelines/trickmode"
ROLE = "urn:mpeg:dash:role:2011"
CHANNELS = "urn:mpeg:dash:23003:3:audio_channel_configuration:2011"
HARD_OF_HEARING = "urn:tva:metadata:cs:AudioPurposeCS:2007"  # value 2: for the hard of hearing

CLEARKEY = uuid.UUID("e2719d58-a985-b3c9-781a-b030af78d30e")
WIDEVINE = uuid.UUID("edef8ba9-79d6-4ace-a3c8-27dcd51d21ed")
PLAYREADY = uuid.UUID("9a04f079-9840-4286-ab92-e65be0885f95")
FAIRPLAY = uuid.UUID("94ce86fb-07ff-4f43-adb8-93d2fa968ca2")
SYSTEMS = {"clearkey": CLEARKEY, "widevine": WIDEVINE, "playready": PLAYREADY, "fairplay": FAIRPLAY}
SEGMENT_NAME = "seg-$Number%05d$.m4s"
SUBTITLE_BANDWIDTH = 256  # nominal: a sidecar WebVTT file is fetched once


@dataclass(frozen=True)
class Timeline:
    """A representation's segments: start and durations in timescale units."""

    timescale: int
    start: int
    durations: list[int]


def read_timeline(mpd_text: str) -> Timeline:
    """The SegmentTimeline of the first Representation of an MPD (ffmpeg's one-rendition manifest)."""
    root = ET.fromstring(mpd_text)  # noqa: S314 - our own ffmpeg's output, not a third party's
    template = root.find(f".//{{{MPD_NS}}}SegmentTemplate")
    timeline = template.find(f"{{{MPD_NS}}}SegmentTimeline") if template is not None else None
    if template is None or timeline is None:
        raise ValueError("the MPD has no SegmentTemplate with a SegmentTimeline")
    durations: list[int] = []
    start = None
    for entry in timeline:
        if start is None:
            start = int(entry.get("t", "0"))
        repeat = int(entry.get("r", "0"))
        if repeat < 0:
            raise ValueError("open-ended SegmentTimeline repeat in a static MPD")
        durations += [int(entry.attrib["d"])] * (repeat + 1)
    return Timeline(int(template.get("timescale", "1")), start or 0, durations)


def build_mpd(
    renditions: Sequence[PackagedRendition],
    subtitles: Sequence[tuple[SubtitleTrack, str]],
    keys: ContentKeys,
) -> str:
    """The static MPD text over packaged renditions and subtitle files (track, href relative to dash/)."""
    duration = presentation_duration(renditions)
    longest = max(
        (max(r.dash_segment_durations) / r.dash_timescale for r in renditions if r.dash_segment_durations),
        default=duration,
    )
    # A player must buffer this much before starting: about one segment (at least 2 s), not more,
    # so playback starts after the first segment rather than waiting for a second one.
    nominal = max(
        (
            r.dash_segment_durations[0] / r.dash_timescale
            for r in renditions
            if r.dash_segment_durations and r.kind != "iframe"
        ),
        default=longest,
    )
    min_buffer = min(longest, max(2.0, nominal))
    mpd = ET.Element(
        "MPD",
        {
            "xmlns": MPD_NS,
            "xmlns:cenc": CENC_NS,
            "xmlns:mspr": MSPR_NS,
            "profiles": PROFILE,
            "type": "static",
            "mediaPresentationDuration": _duration(duration),
            "maxSegmentDuration": _duration(longest),
            "minBufferTime": _duration(min_buffer),
        },
    )
    period = ET.SubElement(mpd, "Period", {"id": "0", "start": "PT0S"})
    ids = iter(range(1, 10_000))
    video_set_ids: list[str] = []
    main_frame_rate = 0.0
    for family in ("avc", "hvc"):  # one set per codec family: players switch within a set only
        video = sorted(
            (r for r in renditions if r.kind == "video" and _family(r.codecs) == family),
            key=lambda r: (r.bandwidth, r.name),
        )
        if not video:
            continue
        set_id = str(next(ids))
        video_set_ids.append(set_id)
        main_frame_rate = max(main_frame_rate, *(r.frame_rate or 0.0 for r in video))
        adaptation = _video_set(period, set_id, video)
        _protection(adaptation, keys)
        ET.SubElement(adaptation, "Role", {"schemeIdUri": ROLE, "value": "main"})
        for rendition in video:
            _representation(adaptation, rendition)
    for trick in (r for r in renditions if r.kind == "iframe"):
        adaptation = _video_set(period, str(next(ids)), [trick])
        _protection(adaptation, keys)
        if video_set_ids:
            # The trick-mode set names the set(s) it speeds through; regular players skip it.
            ET.SubElement(
                adaptation, "EssentialProperty", {"schemeIdUri": TRICK_MODE, "value": " ".join(video_set_ids)}
            )
        representation = _representation(adaptation, trick)
        representation.set("codingDependency", "false")
        if trick.frame_rate and main_frame_rate:
            representation.set("maxPlayoutRate", str(max(1, round(main_frame_rate / trick.frame_rate))))
    for rendition in (r for r in renditions if r.kind == "audio"):
        adaptation = ET.SubElement(
            period,
            "AdaptationSet",
            {
                "id": str(next(ids)),
                "contentType": "audio",
                "mimeType": "audio/mp4",
                "lang": bcp47(rendition.language),
                "segmentAlignment": "true",
                "startWithSAP": "1",
            },
        )
        ET.SubElement(adaptation, "AudioChannelConfiguration", {"schemeIdUri": CHANNELS, "value": "2"})
        _protection(adaptation, keys)
        if rendition.label:
            ET.SubElement(adaptation, "Label").text = rendition.label
        role = "main" if rendition.is_default else "alternate"
        ET.SubElement(adaptation, "Role", {"schemeIdUri": ROLE, "value": role})
        _representation(adaptation, rendition)
    for track, href in subtitles:
        adaptation = ET.SubElement(
            period,
            "AdaptationSet",
            {
                "id": str(next(ids)),
                "contentType": "text",
                "mimeType": "text/vtt",
                "lang": bcp47(track.language),
            },
        )
        ET.SubElement(adaptation, "Label").text = track.label
        if track.sdh:
            ET.SubElement(adaptation, "Accessibility", {"schemeIdUri": HARD_OF_HEARING, "value": "2"})
        role = "forced-subtitle" if track.forced else "caption" if track.sdh else "subtitle"
        ET.SubElement(adaptation, "Role", {"schemeIdUri": ROLE, "value": role})
        representation = ET.SubElement(
            adaptation,
            "Representation",
            {
                "id": "text_" + posixpath.splitext(posixpath.basename(href))[0],
                "bandwidth": str(SUBTITLE_BANDWIDTH),
            },
        )
        ET.SubElement(representation, "BaseURL").text = href
    ET.indent(mpd)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(mpd, encoding="unicode") + "\n"


def presentation_duration(renditions: Sequence[PackagedRendition]) -> float:
    """The longest audio or video rendition (the trickplay track may run past the end by one frame)."""
    main = [r.duration_seconds for r in renditions if r.kind != "iframe"]
    return max(main or [r.duration_seconds for r in renditions])


def _video_set(period: ET.Element, set_id: str, renditions: list[PackagedRendition]) -> ET.Element:
    attributes = {
        "id": set_id,
        "contentType": "video",
        "mimeType": "video/mp4",
        "segmentAlignment": "true",
        "startWithSAP": "1",
        "maxWidth": str(max(r.width or 0 for r in renditions)),
        "maxHeight": str(max(r.height or 0 for r in renditions)),
    }
    rates = [r.frame_rate for r in renditions if r.frame_rate]
    if rates:
        attributes["maxFrameRate"] = _frame_rate(max(rates))
    return ET.SubElement(period, "AdaptationSet", attributes)


def _representation(adaptation: ET.Element, rendition: PackagedRendition) -> ET.Element:
    attributes = {"id": rendition.name, "codecs": rendition.codecs, "bandwidth": str(rendition.bandwidth)}
    if rendition.width and rendition.height:
        attributes |= {"width": str(rendition.width), "height": str(rendition.height)}
    if rendition.frame_rate:
        attributes["frameRate"] = _frame_rate(rendition.frame_rate)
    representation = ET.SubElement(adaptation, "Representation", attributes)
    folder = posixpath.relpath(rendition.dash_dir, "dash")  # paths relative to dash/manifest.mpd
    template = ET.SubElement(
        representation,
        "SegmentTemplate",
        {
            "timescale": str(rendition.dash_timescale),
            "initialization": f"{folder}/init.mp4",
            "media": f"{folder}/{SEGMENT_NAME}",
            "startNumber": "1",
        },
    )
    timeline = ET.SubElement(template, "SegmentTimeline")
    for index, (duration, repeat) in enumerate(_runs(rendition.dash_segment_durations)):
        entry = {"t": "0"} if index == 0 else {}
        entry["d"] = str(duration)
        if repeat:
            entry["r"] = str(repeat)
        ET.SubElement(timeline, "S", entry)
    return representation


def _protection(adaptation: ET.Element, keys: ContentKeys) -> None:
    """mp4protection (cenc + default_KID), then ClearKey, Widevine, PlayReady and FairPlay."""
    ET.SubElement(
        adaptation,
        "ContentProtection",
        {"schemeIdUri": MP4_PROTECTION, "value": "cenc", "cenc:default_KID": kid_uuid(keys.key_id)},
    )
    ET.SubElement(adaptation, "ContentProtection", {"schemeIdUri": CLEARKEY.urn, "value": "ClearKey1.0"})
    widevine = ET.SubElement(
        adaptation, "ContentProtection", {"schemeIdUri": WIDEVINE.urn, "value": "Widevine"}
    )
    ET.SubElement(widevine, "cenc:pssh").text = _b64(pssh_box(WIDEVINE, widevine_data(keys.key_id)))
    playready = ET.SubElement(
        adaptation, "ContentProtection", {"schemeIdUri": PLAYREADY.urn, "value": "MSPR 2.0"}
    )
    pro = playready_object(keys.key_id)
    ET.SubElement(playready, "cenc:pssh").text = _b64(pssh_box(PLAYREADY, pro))
    ET.SubElement(playready, "mspr:pro").text = _b64(pro)
    # FairPlay only signalled: its licence service is configured later (and it needs cbcs, not cenc).
    ET.SubElement(adaptation, "ContentProtection", {"schemeIdUri": FAIRPLAY.urn, "value": "FairPlay"})


def kid_uuid(key_id: bytes) -> str:
    """A KID in the MPD's cenc:default_KID form (8-4-4-4-12 hex)."""
    return str(uuid.UUID(bytes=key_id))


def pssh_box(system: uuid.UUID, data: bytes) -> bytes:
    """A version 0 'pssh' box (the widest supported) carrying a system's data."""
    body = struct.pack(">I", 0) + system.bytes + struct.pack(">I", len(data)) + data
    return struct.pack(">I4s", 8 + len(body), b"pssh") + body


def widevine_data(key_id: bytes) -> bytes:
    """WidevinePsshData protobuf: key_ids (field 2) and protection_scheme 'cenc' (field 9)."""
    return b"\x12" + bytes([len(key_id)]) + key_id + b"\x48" + _varint(int.from_bytes(b"cenc", "big"))


def playready_object(key_id: bytes) -> bytes:
    """A PlayReady Object with one WRM header (v4.0.0.0) naming the KID (little-endian GUID, base64)."""
    kid = base64.b64encode(uuid.UUID(bytes=key_id).bytes_le).decode()
    header = (
        '<WRMHEADER xmlns="http://schemas.microsoft.com/DRM/2007/03/PlayReadyHeader" version="4.0.0.0">'
        f"<DATA><PROTECTINFO><KEYLEN>16</KEYLEN><ALGID>AESCTR</ALGID></PROTECTINFO><KID>{kid}</KID>"
        "</DATA></WRMHEADER>"
    ).encode("utf-16-le")
    record = struct.pack("<HH", 1, len(header)) + header  # type 1: rights management header
    return struct.pack("<IH", 6 + len(record), 1) + record


def drm_signalling(keys: ContentKeys) -> dict[str, Any]:
    """What media_assets.drm records: the schemes and signalled systems with the key id (no key material)."""
    return {
        "key_id": keys.key_id.hex(),
        "hls": {"method": "AES-128", "key_uri": "hls/keys/hls.key"},
        "dash": {"scheme": "cenc", "default_kid": kid_uuid(keys.key_id)},
        "systems": {name: str(system) for name, system in SYSTEMS.items()},
    }


def _runs(durations: Sequence[int]) -> list[tuple[int, int]]:
    """Consecutive equal durations as (duration, repeat count) for S@d/S@r."""
    runs: list[tuple[int, int]] = []
    for duration in durations:
        if runs and runs[-1][0] == duration:
            runs[-1] = (duration, runs[-1][1] + 1)
        else:
            runs.append((duration, 0))
    return runs


def _family(codecs: str) -> str:
    return "hvc" if codecs.startswith(("hvc1", "hev1")) else "avc"


def _frame_rate(value: float) -> str:
    fraction = Fraction(value).limit_denominator(1001)
    return (
        str(fraction.numerator)
        if fraction.denominator == 1
        else f"{fraction.numerator}/{fraction.denominator}"
    )


def _duration(seconds: float) -> str:
    return f"PT{seconds:.3f}S"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)
