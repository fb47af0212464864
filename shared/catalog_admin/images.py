"""Catalog artwork uploaded from the browser: ticket -> direct upload -> confirm (checked, resized).

As with avatars, the bytes never pass through a function on the way up. With object storage the browser
PUTs to a staging key of its own (outside catalog/, so no title can point at unchecked bytes); the confirm
call decodes the image (bounded in pixels), stores the original re-encoded upright and without metadata
(EXIF, GPS) as catalog/images/<name>.<ext> and writes one WebP variant per width of the kind
(shared.images.variants), since storage cannot resize by URL.
Names carry their issue time (shared.images.direct_upload.new_name), which the daily sweep
(shared.catalog_admin.image_sweep) reads to drop abandoned staging uploads and images no row refers to.
With Cloudinary the upload lands at its final public_id (signed, never overwriting) and Cloudinary
resizes by URL. Either way the answer is an `entry` to put into images[kind] with the usual PATCH/POST
routes: nothing is attached here, so nothing is audited yet.
"""

from __future__ import annotations

import uuid
from typing import Any

from shared.catalog.images import KINDS, image_urls
from shared.catalog_admin.schemas import (
    IMAGE_MAX_BYTES,
    IMAGE_MAX_SIDE,
    ImageConfirm,
    ImageUploaded,
    ImageUploadRequest,
)
from shared.images import cloudinary, direct_upload, variants
from shared.images.policy import UploadPolicy, check_request
from shared.images.schemas import ImageUploadTicket
from shared.infra import ratelimit
from shared.infra.ratelimit import Limit
from shared.settings import Settings

FOLDER = "catalog/images/"
STAGING = "catalog-uploads/"
POLICY = UploadPolicy(
    noun="Catalog images",
    owner="you",
    max_bytes=IMAGE_MAX_BYTES,
    key_code="invalid_image_key",
    signature_code="invalid_image_signature",
    not_uploaded_code="image_not_uploaded",
    min_side=variants.MIN_SIDE,
    max_pixels=variants.MAX_PIXELS,
)
# A content manager dresses a whole series in one sitting (poster, backdrop, a still per episode):
# generous, but each ticket may leave an unconfirmed object behind.
_TICKETS = Limit(120, 3600)


def _staging(user_id: uuid.UUID) -> str:
    return f"{STAGING}{user_id}/"


async def upload_ticket(
    *, settings: Settings, user_id: uuid.UUID, data: ImageUploadRequest
) -> ImageUploadTicket:
    """Where and how the browser uploads a new image (storage PUT or signed Cloudinary POST)."""
    extension = check_request(POLICY, data.content_type, data.size)
    await ratelimit.enforce(rules=[_TICKETS.rule(f"catalog_image_ticket:{user_id}")])
    name = direct_upload.new_name()
    if settings.images_backend == "cloudinary":
        return cloudinary.upload_ticket(settings, policy=POLICY, public_id=FOLDER + name)
    return await direct_upload.storage_ticket(
        policy=POLICY,
        key=f"{_staging(user_id)}{name}.{extension}",
        content_type=data.content_type,
        size=data.size,
    )


async def confirm(*, settings: Settings, user_id: uuid.UUID, data: ImageConfirm) -> ImageUploaded:
    """Check the uploaded image; answer the entry for images[kind] and preview URLs."""
    if settings.images_backend == "cloudinary":
        resource = await cloudinary.confirm_upload(settings, policy=POLICY, prefix=FOLDER, upload=data)
        entry: dict[str, Any] = {
            "public_id": resource["public_id"],
            "version": int(resource["version"]),
            **_dimensions(resource["width"], resource["height"]),
        }
    else:
        entry = await _store(
            data.kind,
            await direct_upload.receive(policy=POLICY, prefix=_staging(user_id), key=data.key or ""),
        )
    urls = await image_urls({data.kind: entry}, settings=settings)
    return ImageUploaded(kind=data.kind, entry=entry, urls=urls.get(data.kind, {}))


async def _store(kind: str, received: direct_upload.Received) -> dict[str, Any]:
    """Decode and resize (refused before anything is stored), then store the clean original and variants."""
    from shared.infra.storage import get_storage

    spec = KINDS[kind]
    rendered = await variants.make(received.data, aspect_ratio=spec.aspect_ratio, widths=spec.widths)
    # The re-encoded original, never the uploaded bytes: those may carry EXIF (where a photo was taken).
    key = await direct_upload.keep(direct_upload.Received(rendered.original, rendered.format), folder=FOLDER)
    sizes = await variants.store_variants(await get_storage(), key, rendered)
    return {"key": key, "sizes": sizes, **_dimensions(rendered.width, rendered.height)}


def _dimensions(width: int, height: int) -> dict[str, int]:
    """The entry's width and height, left out past what ImageRef accepts (a 40 MP panorama may be wider)."""
    if max(width, height) > IMAGE_MAX_SIDE:
        return {}
    return {"width": width, "height": height}
