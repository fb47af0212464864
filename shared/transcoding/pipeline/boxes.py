"""A minimal ISO-BMFF (MP4) box walker: just enough to read our own init and media segments."""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass

# Boxes that only hold other boxes (the ones on the paths we read).
CONTAINERS = frozenset(
    {"moov", "trak", "mdia", "minf", "stbl", "mvex", "moof", "traf", "edts", "dinf", "sinf", "schi"}
)
# Sample entries: fixed fields before their child boxes (SampleEntry 8 bytes + Visual 70 / Audio v0 20).
VISUAL_ENTRIES = frozenset({"avc1", "avc3", "hvc1", "hev1", "encv"})
AUDIO_ENTRIES = frozenset({"mp4a", "enca"})
_VISUAL_FIELDS = 78
_AUDIO_FIELDS = 28


class BoxError(ValueError):
    """The bytes are not the box structure we expect."""


@dataclass(frozen=True)
class Box:
    """One box inside a buffer: its type and where its payload lies."""

    type: str
    start: int  # offset of the box header
    payload_start: int
    end: int

    def payload(self, data: bytes) -> bytes:
        """The bytes after the header."""
        return data[self.payload_start : self.end]


def iter_boxes(data: bytes, start: int = 0, end: int | None = None) -> Iterator[Box]:
    """The boxes laid end to end in data[start:end] (one level, no descent)."""
    end = len(data) if end is None else end
    offset = start
    while offset + 8 <= end:
        size, raw_type = struct.unpack_from(">I4s", data, offset)
        header = 8
        if size == 1:
            if offset + 16 > end:
                raise BoxError("truncated 64-bit box size")
            (size,) = struct.unpack_from(">Q", data, offset + 8)
            header = 16
        elif size == 0:
            size = end - offset
        if size < header or offset + size > end:
            raise BoxError(f"box {raw_type!r} at {offset} overruns its parent")
        yield Box(raw_type.decode("latin-1"), offset, offset + header, offset + size)
        offset += size


def children(data: bytes, box: Box) -> Iterator[Box]:
    """The child boxes of a container, a sample description or a sample entry."""
    if box.type in CONTAINERS:
        return iter_boxes(data, box.payload_start, box.end)
    if box.type == "stsd":  # full box header + entry count
        return iter_boxes(data, box.payload_start + 8, box.end)
    if box.type in VISUAL_ENTRIES:
        return iter_boxes(data, box.start + _VISUAL_FIELDS + 8, box.end)
    if box.type in AUDIO_ENTRIES:
        return iter_boxes(data, box.start + _AUDIO_FIELDS + 8, box.end)
    return iter(())


def walk(data: bytes, start: int = 0, end: int | None = None) -> Iterator[Box]:
    """Every box, depth first, descending into the containers and sample entries we know."""
    for box in iter_boxes(data, start, end):
        yield box
        yield from _descend(data, box)


def _descend(data: bytes, box: Box) -> Iterator[Box]:
    for child in children(data, box):
        yield child
        yield from _descend(data, child)


def find(data: bytes, *path: str) -> Box | None:
    """The first box at a path of box types from the top level ('moov', 'trak', 'mdia' ...)."""
    boxes: Iterator[Box] = iter_boxes(data)
    found: Box | None = None
    for wanted in path:
        found = next((box for box in boxes if box.type == wanted), None)
        if found is None:
            return None
        boxes = children(data, found)
    return found


def first(data: bytes, box_type: str) -> Box | None:
    """The first box of a type anywhere in the walk."""
    return next((box for box in walk(data) if box.type == box_type), None)


def sample_count(data: bytes) -> int:
    """How many samples the media segment's track runs ('trun') hold."""
    total = 0
    for box in walk(data):
        if box.type == "trun":
            total += struct.unpack_from(">I", data, box.payload_start + 4)[0]
    return total
