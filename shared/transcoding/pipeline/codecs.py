"""RFC 6381 CODECS strings and track facts read from an fMP4 init segment (avcC / hvcC / esds)."""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Literal

from shared.transcoding.pipeline.boxes import AUDIO_ENTRIES, VISUAL_ENTRIES, Box, BoxError, children, find


@dataclass(frozen=True)
class TrackFacts:
    """The one track of an init segment: what a manifest says about it."""

    kind: Literal["video", "audio"]
    sample_entry: str  # the original format ('avc1', 'hvc1', 'mp4a'), also behind 'encv'/'enca'
    codecs: str
    timescale: int
    width: int | None = None
    height: int | None = None
    channels: int | None = None
    default_kid: bytes | None = None  # from 'tenc' when the track is CENC-protected


def read_init(data: bytes) -> TrackFacts:
    """Facts of the first track of an init segment; raises BoxError when it is not one we understand."""
    mdia = find(data, "moov", "trak", "mdia")
    stsd = find(data, "moov", "trak", "mdia", "minf", "stbl", "stsd")
    if mdia is None or stsd is None:
        raise BoxError("no moov/trak/mdia/minf/stbl/stsd: not an init segment")
    mdhd = next((box for box in children(data, mdia) if box.type == "mdhd"), None)
    if mdhd is None:
        raise BoxError("no mdhd")
    version = data[mdhd.payload_start]
    # mdhd: version/flags, creation and modification times (4 or 8 bytes each), then the timescale.
    (timescale,) = struct.unpack_from(">I", data, mdhd.payload_start + (20 if version == 1 else 12))
    entry = next(children(data, stsd), None)
    if entry is None:
        raise BoxError("empty sample description")
    inner = {box.type: box for box in children(data, entry)}
    original = entry.type
    default_kid = None
    if entry.type in ("encv", "enca"):
        sinf = inner.get("sinf")
        frma = next((box for box in children(data, sinf) if box.type == "frma"), None) if sinf else None
        if frma is None:
            raise BoxError("protected sample entry without sinf/frma")
        original = frma.payload(data)[:4].decode("latin-1")
        default_kid = _default_kid(data, sinf) if sinf else None
    if entry.type in VISUAL_ENTRIES:
        width, height = struct.unpack_from(">HH", data, entry.payload_start + 24)
        return TrackFacts(
            kind="video",
            sample_entry=original,
            codecs=_video_codecs(data, original, inner),
            timescale=timescale,
            width=width,
            height=height,
            default_kid=default_kid,
        )
    if entry.type in AUDIO_ENTRIES:
        (channels,) = struct.unpack_from(">H", data, entry.payload_start + 16)
        esds = inner.get("esds")
        if esds is None:
            raise BoxError(f"{original} without esds")
        return TrackFacts(
            kind="audio",
            sample_entry=original,
            codecs=esds_codecs(esds.payload(data)[4:], original),  # skip the full-box header
            timescale=timescale,
            channels=channels,
            default_kid=default_kid,
        )
    raise BoxError(f"unsupported sample entry {entry.type!r}")


def _default_kid(data: bytes, sinf: Box) -> bytes | None:
    schi = next((box for box in children(data, sinf) if box.type == "schi"), None)
    tenc = next((box for box in children(data, schi) if box.type == "tenc"), None) if schi else None
    # tenc: version/flags(4), reserved/pattern(2), isProtected(1), Per_Sample_IV_Size(1), default_KID(16)
    return tenc.payload(data)[8:24] if tenc else None


def _video_codecs(data: bytes, original: str, inner: dict[str, Box]) -> str:
    if original in ("avc1", "avc3") and "avcC" in inner:
        return avc_codecs(inner["avcC"].payload(data), original)
    if original in ("hvc1", "hev1") and "hvcC" in inner:
        return hevc_codecs(inner["hvcC"].payload(data), original)
    raise BoxError(f"no decoder configuration for {original!r}")


def avc_codecs(avcc: bytes, entry: str = "avc1") -> str:
    """'avc1.PPCCLL' from an AVCDecoderConfigurationRecord: profile, constraint flags, level in hex."""
    if len(avcc) < 4:
        raise BoxError("avcC too short")
    return f"{entry}.{avcc[1]:02x}{avcc[2]:02x}{avcc[3]:02x}"


def hevc_codecs(hvcc: bytes, entry: str = "hvc1") -> str:
    """'hvc1.<space><profile>.<compat>.<tier><level>.<constraints>' per ISO/IEC 14496-15 annex E."""
    if len(hvcc) < 13:
        raise BoxError("hvcC too short")
    space = "" if hvcc[1] >> 6 == 0 else "ABC"[(hvcc[1] >> 6) - 1]
    tier = "H" if hvcc[1] & 0x20 else "L"
    profile = hvcc[1] & 0x1F
    (compat,) = struct.unpack_from(">I", hvcc, 2)
    reversed_compat = int(f"{compat:032b}"[::-1], 2)  # the flags are written in reverse bit order
    constraints = list(hvcc[6:12])
    while constraints and constraints[-1] == 0:  # trailing zero bytes are omitted
        constraints.pop()
    parts = [entry, f"{space}{profile}", f"{reversed_compat:X}", f"{tier}{hvcc[12]}"]
    parts += [f"{byte:X}" for byte in constraints]
    return ".".join(parts)


def esds_codecs(descriptors: bytes, entry: str = "mp4a") -> str:
    """'mp4a.40.2' from an ES_Descriptor: object type indication and (MPEG-4 audio) the audio object type."""
    es = _descriptor(descriptors, 0, 0x03)
    if es is None:
        raise BoxError("esds without ES_Descriptor")
    start, end = es
    flags = descriptors[start + 2]
    offset = start + 3
    if flags & 0x80:  # streamDependenceFlag
        offset += 2
    if flags & 0x40:  # URL_Flag
        offset += 1 + descriptors[offset]
    if flags & 0x20:  # OCRstreamFlag
        offset += 2
    config = _descriptor(descriptors[:end], offset, 0x04)
    if config is None:
        raise BoxError("esds without DecoderConfigDescriptor")
    config_start, config_end = config
    object_type = descriptors[config_start]
    if object_type != 0x40:  # not MPEG-4 audio: the OTI alone (e.g. 'mp4a.6b' for MP3)
        return f"{entry}.{object_type:02x}"
    specific = _descriptor(descriptors[:config_end], config_start + 13, 0x05)
    if specific is None:
        raise BoxError("MPEG-4 audio without AudioSpecificConfig")
    asc = descriptors[specific[0] : specific[1]]
    audio_object_type = asc[0] >> 3
    if audio_object_type == 31 and len(asc) >= 2:  # escape: 6 more bits, plus 32
        audio_object_type = 32 + (((asc[0] & 0x07) << 3) | (asc[1] >> 5))
    return f"{entry}.40.{audio_object_type}"


def _descriptor(data: bytes, offset: int, tag: int) -> tuple[int, int] | None:
    """(payload start, end) of the descriptor with this tag at offset, None when another tag is there."""
    if offset >= len(data) or data[offset] != tag:
        return None
    offset += 1
    size = 0
    for _ in range(4):  # expandable size: 7 bits per byte, high bit = more
        byte = data[offset]
        offset += 1
        size = (size << 7) | (byte & 0x7F)
        if not byte & 0x80:
            break
    return offset, min(offset + size, len(data))
