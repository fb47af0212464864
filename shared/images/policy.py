"""What one kind of upload allows and how its refusals are named (avatars and catalog images differ)."""

from __future__ import annotations

from dataclasses import dataclass

from shared.errors import ValidationFailed
from shared.images.formats import CONTENT_TYPES, EXTENSIONS


class InvalidImage(ValidationFailed):
    """What was uploaded is not an image the policy accepts (format, bytes, pixels)."""

    code = "invalid_image"


@dataclass(frozen=True)
class UploadPolicy:
    """Limits and stable error codes of one upload flow.

    `noun` starts the messages ("Avatars must be ..."); `owner` ends the one about a foreign key ("...
    was not uploaded for this profile"). `min_side` and `max_pixels` bound the dimensions where they are
    known (decoded by shared.images.variants, or reported by Cloudinary). Storage tickets always bind the
    body to the announced size.
    """

    noun: str
    owner: str
    max_bytes: int
    key_code: str
    signature_code: str
    not_uploaded_code: str
    min_side: int | None = None
    max_pixels: int | None = None

    @property
    def megabytes(self) -> int:
        """The size limit in whole MB, for messages."""
        return self.max_bytes // (1024 * 1024)

    def invalid(self) -> InvalidImage:
        """The refusal of an upload that is not an acceptable image (format or bytes)."""
        return InvalidImage(f"{self.noun} must be PNG, JPEG or WebP images of at most {self.megabytes} MB.")


def too_many_pixels(max_pixels: int) -> InvalidImage:
    """The refusal of an image over `max_pixels` (decoding it would take too much memory)."""
    return InvalidImage(f"Images may have at most {max_pixels / 1_000_000:g} megapixels.")


def too_small(min_side: int) -> InvalidImage:
    """The refusal of an image under `min_side` pixels on a side."""
    return InvalidImage(f"Images must be at least {min_side} pixels on each side.")


def check_dimensions(width: int, height: int, *, max_pixels: int | None, min_side: int | None) -> None:
    """Refuse (InvalidImage) an image over `max_pixels` or under `min_side` a side; None bounds nothing."""
    if max_pixels is not None and width * height > max_pixels:
        raise too_many_pixels(max_pixels)
    if min_side is not None and min(width, height) < min_side:
        raise too_small(min_side)


def check_request(policy: UploadPolicy, content_type: str, size: int) -> str:
    """The file extension of an announced upload; refuses unsupported_image_type and image_too_large."""
    if content_type not in CONTENT_TYPES:
        raise ValidationFailed(
            f"{policy.noun} must be one of {', '.join(CONTENT_TYPES)}.", code="unsupported_image_type"
        )
    if size > policy.max_bytes:
        raise ValidationFailed(f"{policy.noun} may be at most {policy.megabytes} MB.", code="image_too_large")
    return EXTENSIONS[content_type]
