"""The image formats uploads may have, recognised by their first bytes (never by a declared type)."""

from __future__ import annotations

# Formats by their Cloudinary / file-extension name, with the content type they are served as.
FORMATS: dict[str, str] = {"png": "image/png", "jpg": "image/jpeg", "webp": "image/webp"}
EXTENSIONS: dict[str, str] = {content_type: extension for extension, content_type in FORMATS.items()}
CONTENT_TYPES: tuple[str, ...] = tuple(FORMATS.values())
# What sniff needs to see: the WebP signature ends at byte 12.
SNIFF_BYTES = 16


def sniff(data: bytes) -> str | None:
    """The image format from the file's first bytes ("png", "jpg", "webp"), or None for anything else."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if data.startswith(b"\xff\xd8\xff"):
        return "jpg"
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    return None
