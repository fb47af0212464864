"""RFC 6381 CODECS strings from decoder configuration records, and the box walker under them."""

from __future__ import annotations

import struct

import pytest

from shared.transcoding.pipeline.boxes import BoxError, find, iter_boxes, sample_count
from shared.transcoding.pipeline.codecs import avc_codecs, esds_codecs, hevc_codecs, read_init


def box(kind: str, payload: bytes) -> bytes:
    return struct.pack(">I4s", 8 + len(payload), kind.encode()) + payload


def test_avc_codecs_are_profile_constraints_level_in_hex() -> None:
    assert avc_codecs(bytes([1, 0x64, 0x00, 0x1F, 0xFF])) == "avc1.64001f"
    assert avc_codecs(bytes([1, 0x42, 0xC0, 0x1E]), "avc3") == "avc3.42c01e"
    with pytest.raises(BoxError):
        avc_codecs(b"\x01\x64")


def hvcc(profile_byte: int, compat: int, constraints: bytes, level: int) -> bytes:
    return bytes([1, profile_byte]) + struct.pack(">I", compat) + constraints + bytes([level]) + b"\x00" * 10


def test_hevc_codecs_follow_iso_14496_15_annex_e() -> None:
    # Main: compatibility flags 0x60000000 reversed -> 6; progressive+frame-only constraint byte 0x90.
    assert hevc_codecs(hvcc(0x01, 0x60000000, b"\x90" + b"\x00" * 5, 93)) == "hvc1.1.6.L93.90"
    # Main 10, high tier, and the trailing zero constraint bytes dropped but inner zeros kept.
    assert hevc_codecs(hvcc(0x22, 0x20000000, b"\xb0\x00\x01" + b"\x00" * 3, 120)) == "hvc1.2.4.H120.B0.0.1"
    assert hevc_codecs(hvcc(0x41, 0x40000000, b"\x00" * 6, 60), "hev1") == "hev1.A1.2.L60"


def esds(object_type: int, audio_specific: bytes, *, long_sizes: bool = False) -> bytes:
    def descriptor(tag: int, body: bytes) -> bytes:
        size = bytes([0x80, 0x80, 0x80, len(body)]) if long_sizes else bytes([len(body)])
        return bytes([tag]) + size + body

    config = bytes([object_type, 0x15]) + b"\x00" * 11 + descriptor(0x05, audio_specific)
    return descriptor(0x03, b"\x00\x01\x00" + descriptor(0x04, config) + descriptor(0x06, b"\x02"))


def test_esds_codecs_read_the_audio_object_type() -> None:
    assert esds_codecs(esds(0x40, b"\x11\x90")) == "mp4a.40.2"  # AAC-LC, 48 kHz stereo
    assert (
        esds_codecs(esds(0x40, b"\x2b\x92\x08", long_sizes=True)) == "mp4a.40.5"
    )  # HE-AAC, as ffmpeg sizes it
    assert esds_codecs(esds(0x40, b"\xf9\x40\x00")) == "mp4a.40.42"  # escaped object type (USAC)
    assert esds_codecs(esds(0x6B, b"")) == "mp4a.6b"  # MP3: the object type indication alone
    with pytest.raises(BoxError):
        esds_codecs(b"\x04\x00")


def test_box_walker_reads_sizes_and_refuses_overruns() -> None:
    large = struct.pack(">I4sQ", 1, b"free", 16 + 3) + b"abc"
    data = box("ftyp", b"isom") + large + box("moov", box("trak", b""))
    assert [(b.type, b.end - b.start) for b in iter_boxes(data)] == [("ftyp", 12), ("free", 19), ("moov", 16)]
    assert find(data, "moov", "trak") is not None and find(data, "moov", "mdia") is None
    with pytest.raises(BoxError):
        list(iter_boxes(struct.pack(">I4s", 64, b"moov") + b"short"))
    with pytest.raises(BoxError):
        read_init(box("ftyp", b"isom"))


def test_sample_count_adds_every_track_run() -> None:
    trun = box("trun", struct.pack(">II", 0x000001, 7) + b"\x00" * 4)
    segment = box("moof", box("traf", trun + trun)) + box("mdat", b"")
    assert sample_count(segment) == 14
