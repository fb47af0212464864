"""Resized WebP variants of an uploaded image, made where no image service resizes by URL (object storage).

Each variant is what Cloudinary's fill would deliver: the image cropped (centred) to the kind's aspect
ratio, then scaled to one of the kind's widths; an image without a fixed ratio (a logo) is only scaled,
keeping its transparency. Only widths smaller than the cropped original get a variant: scaling up adds
bytes, not detail, so those sizes fall back to the original.

Pillow is imported inside the functions (cold start). Decoding is guarded: the header is read first and
an image of more than MAX_PIXELS is refused before its pixels are decoded.
"""

from __future__ import annotations

import asyncio
import io
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from shared.images.policy import InvalidImage

if TYPE_CHECKING:
    from PIL import Image

MAX_PIXELS = 40_000_000
MIN_SIDE = 100
WEBP_QUALITY = 80
_PILLOW_FORMATS = ("PNG", "JPEG", "WEBP")


@dataclass(frozen=True)
class Planned:
    """One variant to make: its size name ("w342") and pixel size."""

    name: str
    width: int
    height: int


@dataclass(frozen=True)
class Variant:
    """One encoded WebP variant."""

    name: str
    width: int
    height: int
    data: bytes


@dataclass(frozen=True)
class Rendered:
    """The decoded original's size (as displayed, EXIF orientation applied) and its variants."""

    width: int
    height: int
    variants: tuple[Variant, ...]

    def sizes(self, key: str) -> dict[str, str]:
        """{size name: storage key} of the variants of the original stored under `key`."""
        return {variant.name: variant_key(key, variant.name) for variant in self.variants}


def variant_key(key: str, name: str) -> str:
    """Where a variant of the original `key` is stored: ".../abc.png" -> ".../abc-w342.webp"."""
    stem = key.rsplit(".", 1)[0] if "." in key.rsplit("/", 1)[-1] else key
    return f"{stem}-{name}.webp"


def _ratio(aspect_ratio: str) -> tuple[int, int]:
    across, down = aspect_ratio.split(":")
    return int(across), int(down)


def crop_box(width: int, height: int, aspect_ratio: str | None) -> tuple[int, int, int, int]:
    """The centred region of a width x height image that has the aspect ratio (all of it for None)."""
    if aspect_ratio is None:
        return 0, 0, width, height
    across, down = _ratio(aspect_ratio)
    if width * down > height * across:  # too wide: trim the sides
        cropped = max(1, round(height * across / down))
        left = (width - cropped) // 2
        return left, 0, left + cropped, height
    cropped = max(1, round(width * down / across))
    top = (height - cropped) // 2
    return 0, top, width, top + cropped


def plan(width: int, height: int, *, aspect_ratio: str | None, widths: Sequence[int]) -> list[Planned]:
    """The variants an image of this size gets: one per width smaller than its cropped width."""
    left, top, right, bottom = crop_box(width, height, aspect_ratio)
    box_width, box_height = right - left, bottom - top
    planned = []
    for target in sorted(widths):
        if target >= box_width:
            continue
        if aspect_ratio is None:
            target_height = max(1, round(target * box_height / box_width))
        else:
            across, down = _ratio(aspect_ratio)
            target_height = round(target * down / across)
        planned.append(Planned(f"w{target}", target, target_height))
    return planned


def render(
    data: bytes,
    *,
    aspect_ratio: str | None,
    widths: Sequence[int],
    max_pixels: int = MAX_PIXELS,
    min_side: int = MIN_SIDE,
) -> Rendered:
    """Decode a PNG, JPEG or WebP and encode its variants; InvalidImage when it is not usable (blocking)."""
    from PIL import Image, ImageOps

    bombs = (Image.DecompressionBombError, Image.DecompressionBombWarning)
    with warnings.catch_warnings():
        # Pillow's own bomb guard warns before it raises; a warning must not let a bomb through.
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            opened = Image.open(io.BytesIO(data), formats=_PILLOW_FORMATS)  # reads the header only
        except (*bombs, OSError, ValueError, SyntaxError):
            # UnidentifiedImageError is an OSError; SyntaxError is what some of Pillow's parsers raise.
            raise InvalidImage("The file is not a PNG, JPEG or WebP image that can be read.") from None
        if opened.width * opened.height > max_pixels:
            raise InvalidImage(f"Images may have at most {max_pixels // 1_000_000} megapixels.")
        if min(opened.size) < min_side:  # orientation swaps the sides, never changes the shorter one
            raise InvalidImage(f"Images must be at least {min_side} pixels on each side.")
        try:
            opened.load()
            image = _normalised(ImageOps.exif_transpose(opened))
        except (*bombs, OSError, ValueError, SyntaxError):
            raise InvalidImage("The image could not be decoded (truncated or corrupt).") from None
    width, height = image.size
    planned = plan(width, height, aspect_ratio=aspect_ratio, widths=widths)
    cropped = image.crop(crop_box(width, height, aspect_ratio)) if planned else image
    variants = []
    for item in sorted(planned, key=lambda planned_item: -planned_item.width):  # largest first
        resized = cropped.resize((item.width, item.height), Image.Resampling.LANCZOS, reducing_gap=3.0)
        buffer = io.BytesIO()
        resized.save(buffer, "WEBP", quality=WEBP_QUALITY)
        variants.append(Variant(item.name, item.width, item.height, buffer.getvalue()))
    variants.sort(key=lambda variant: variant.width)
    return Rendered(width, height, tuple(variants))


def _normalised(image: Image.Image) -> Image.Image:
    """RGB, or RGBA when the image has transparency (a logo's alpha survives into its WebP variants)."""
    transparent = image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (
        image.mode == "P" and "transparency" in image.info
    )
    wanted = "RGBA" if transparent else "RGB"
    return image if image.mode == wanted else image.convert(wanted)


async def make(data: bytes, *, aspect_ratio: str | None, widths: Sequence[int]) -> Rendered:
    """render() with the default limits on a worker thread, so the event loop serves while Pillow works."""
    return await asyncio.to_thread(render, data, aspect_ratio=aspect_ratio, widths=widths)
