"""Resized WebP variants of an uploaded image, made where no image service resizes by URL (object storage).

Each variant is what Cloudinary's fill would deliver: the image cropped (centred) to the kind's aspect
ratio, then scaled to one of the kind's widths; an image without a fixed ratio (a logo) is only scaled,
keeping its transparency. Only widths smaller than the cropped original get a variant: scaling up adds
bytes, not detail, so those sizes fall back to the original.

The original itself is re-encoded from the decoded pixels, upright (EXIF orientation applied) and without
metadata: uploads are published to everyone, and a phone photo's EXIF carries where it was taken.

Pillow is imported inside the functions (cold start). Decoding is guarded: the header is read first and
an image of more than MAX_PIXELS is refused before its pixels are decoded.
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from shared.images.formats import FORMATS
from shared.images.policy import InvalidImage, check_dimensions, too_many_pixels

if TYPE_CHECKING:
    from PIL import Image

    from shared.infra.storage import Storage

MAX_PIXELS = 40_000_000
MIN_SIDE = 100
WEBP_QUALITY = 80
ORIGINAL_QUALITY = 90  # JPEG and WebP originals: re-encoded once, close to what was uploaded
# A variant's size name ("w342"), and what variant_key appends to the original's stem ("-w342.webp").
SIZE_NAME = r"w[1-9][0-9]{0,4}"
VARIANT_SUFFIX = rf"-{SIZE_NAME}\.webp"
# Pillow's format name -> ours (shared.images.formats), and the modes each re-encodes as they are.
_OURS = {"PNG": "png", "JPEG": "jpg", "WEBP": "webp"}
_KEEPS_MODE = {"PNG": {"1", "L", "LA", "P", "RGB", "RGBA", "I", "I;16"}, "JPEG": {"L", "RGB", "CMYK"}}
# Kept on the re-encoded original: how to draw it, nothing about who, where or with what it was taken.
_KEPT_INFO = ("transparency", "icc_profile")


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
    """The upright original (re-encoded without metadata, in its own format) and its variants.

    `width` and `height` are the original's as displayed; `format` is "png", "jpg" or "webp".
    """

    width: int
    height: int
    format: str
    original: bytes
    variants: tuple[Variant, ...]


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
    """The variants an image of this size gets, smallest first: one per width under its cropped width."""
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
    """Decode a PNG, JPEG or WebP, re-encode it upright and encode its variants (blocking).

    InvalidImage when it is not usable. A JPEG is decoded at full size (no draft): the original is
    re-encoded from its pixels, and the largest variants need most of them anyway.
    """
    from PIL import Image, ImageOps

    try:
        opened = Image.open(io.BytesIO(data), formats=tuple(_OURS))  # reads the header only
    except Image.DecompressionBombError:  # Pillow's own guard, far above ours: refused the same way
        raise too_many_pixels(max_pixels) from None
    except (OSError, ValueError, SyntaxError):
        # UnidentifiedImageError is an OSError; SyntaxError is what some of Pillow's parsers raise.
        raise InvalidImage("The file is not a PNG, JPEG or WebP image that can be read.") from None
    # Orientation swaps the sides, never changes the pixel count or the shorter side: checked as stored.
    check_dimensions(opened.width, opened.height, max_pixels=max_pixels, min_side=min_side)
    image_format = "JPEG" if opened.format == "MPO" else str(opened.format)  # a camera's JPEG + previews
    try:
        opened.load()
        ImageOps.exif_transpose(opened, in_place=True)
        image = _normalised(opened)
    except (Image.DecompressionBombError, OSError, ValueError, SyntaxError):
        raise InvalidImage("The image could not be decoded (truncated or corrupt).") from None
    width, height = image.size
    planned = plan(width, height, aspect_ratio=aspect_ratio, widths=widths)
    cropped = image.crop(crop_box(width, height, aspect_ratio)) if planned else image
    variants = []
    for item in planned:
        resized = cropped.resize((item.width, item.height), Image.Resampling.LANCZOS, reducing_gap=3.0)
        variants.append(Variant(item.name, item.width, item.height, _encoded(resized, "WEBP", WEBP_QUALITY)))
    kept = opened if opened.mode in _KEEPS_MODE.get(image_format, ()) else image
    original = _encoded(kept, image_format, ORIGINAL_QUALITY)
    return Rendered(width, height, _OURS[image_format], original, tuple(variants))


def _encoded(image: Image.Image, image_format: str, quality: int) -> bytes:
    """The image in `image_format`, carrying none of the metadata the upload had (EXIF, XMP, comments)."""
    info = {name: image.info[name] for name in _KEPT_INFO if name in image.info}
    image.info = {"transparency": info["transparency"]} if "transparency" in info else {}
    buffer = io.BytesIO()
    if image_format == "PNG":
        image.save(buffer, "PNG", optimize=True, icc_profile=info.get("icc_profile"))
    else:
        image.save(buffer, image_format, quality=quality, icc_profile=info.get("icc_profile"))
    return buffer.getvalue()


def _normalised(image: Image.Image) -> Image.Image:
    """RGB, or RGBA when the image has transparency (a logo's alpha survives into its WebP variants)."""
    transparent = image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (
        image.mode == "P" and "transparency" in image.info
    )
    wanted = "RGBA" if transparent else "RGB"
    return image if image.mode == wanted else image.convert(wanted)


async def make(
    data: bytes, *, aspect_ratio: str | None, widths: Sequence[int], min_side: int = MIN_SIDE
) -> Rendered:
    """render() on a worker thread (default pixel limit), so the event loop serves while Pillow works."""
    return await asyncio.to_thread(render, data, aspect_ratio=aspect_ratio, widths=widths, min_side=min_side)


async def store_variants(storage: Storage, key: str, rendered: Rendered) -> dict[str, str]:
    """Store the variants of the original stored under `key` (in parallel); return {size name: key}."""
    sizes = {variant.name: variant_key(key, variant.name) for variant in rendered.variants}
    await asyncio.gather(
        *(
            storage.put_bytes(sizes[variant.name], variant.data, content_type=FORMATS["webp"])
            for variant in rendered.variants
        )
    )
    return sizes
