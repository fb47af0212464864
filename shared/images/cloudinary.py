"""Signed direct uploads to Cloudinary: the SDK's configuration, the ticket, the confirm check, deletion.

The Admin API listing and batch deletion at the end serve the daily sweep of unused catalog images.
Everything the browser sends except file, api_key, resource_type and cloud_name is signed, so it cannot
change the name, the accepted formats, or overwrite an existing image (overwrite=false): a still-valid
ticket cannot swap an image after it was checked.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Sequence
from types import ModuleType
from typing import Any
from urllib.parse import unquote, urlsplit

from shared.errors import BadRequest, ServiceUnavailable
from shared.images.direct_upload import NAME
from shared.images.formats import FORMATS
from shared.images.policy import InvalidImage, UploadPolicy, check_dimensions
from shared.images.schemas import ImageUploadTicket, UploadConfirm
from shared.settings import Settings

logger = logging.getLogger("cinema.images")

TICKET_SECONDS = 3600  # Cloudinary refuses signed uploads whose timestamp is older than 1 h
TIMEOUT = 10
LIST_PAGE = 500  # the Admin API's largest page of resources
DELETE_BATCH = 100  # the most public_ids one Admin API delete takes


def sdk(settings: Settings) -> ModuleType:
    """The cloudinary package, configured from CLOUDINARY_URL (and CLOUDINARY_UPLOAD_PREFIX)."""
    import cloudinary
    import cloudinary.api
    import cloudinary.exceptions
    import cloudinary.uploader
    import cloudinary.utils

    if not settings.cloudinary_url:
        raise ServiceUnavailable("Cloudinary is not configured.")
    # config(cloudinary_url=...) only stores the string; the SDK parses the URL only from the
    # environment at import, so the parts are set explicitly (same parsing as the SDK's).
    parsed = urlsplit(settings.cloudinary_url)
    prefix = str(settings.cloudinary_upload_prefix).rstrip("/") if settings.cloudinary_upload_prefix else None
    cloudinary.config(
        cloud_name=parsed.hostname,
        api_key=unquote(parsed.username or ""),
        api_secret=unquote(parsed.password or ""),
        upload_prefix=prefix,
        secure=True,
        timeout=TIMEOUT,  # the Admin API calls; the SDK waits forever by default
    )
    module: ModuleType = cloudinary
    return module


def upload_ticket(settings: Settings, *, policy: UploadPolicy, public_id: str) -> ImageUploadTicket:
    """A signed upload of one image under `public_id` (PNG, JPEG or WebP, never replacing one)."""
    cloudinary = sdk(settings)
    config = cloudinary.config()
    params = {
        "timestamp": str(int(time.time())),
        "public_id": public_id,
        "allowed_formats": ",".join(FORMATS),
        "overwrite": "false",
    }
    signature = cloudinary.utils.api_sign_request(
        params, config.api_secret, config.signature_algorithm, config.signature_version
    )
    return ImageUploadTicket(
        backend="cloudinary",
        upload_url=cloudinary.utils.cloudinary_api_url("upload", resource_type="image"),
        method="POST",
        fields={**params, "signature": signature, "api_key": config.api_key},
        key=public_id,
        max_bytes=policy.max_bytes,
        expires_in=TICKET_SECONDS,
    )


async def confirm_upload(
    settings: Settings,
    *,
    policy: UploadPolicy,
    prefix: str,
    upload: UploadConfirm,
) -> dict[str, Any]:
    """Check a finished upload under `prefix` (signature, existence, format, size); return its resource.

    An upload that is not an acceptable image is deleted at Cloudinary before the refusal.
    """
    public_id, version, signature = upload.public_id or "", upload.version, upload.signature
    if not re.fullmatch(re.escape(prefix) + NAME, public_id):
        raise BadRequest(f"That image was not uploaded for {policy.owner}.", code=policy.key_code)
    if version is None or not signature:
        raise BadRequest("Send the version and signature Cloudinary returned.", code=policy.signature_code)
    cloudinary = sdk(settings)
    if not cloudinary.utils.verify_api_response_signature(public_id, version, signature):
        raise BadRequest("The upload's signature does not match.", code=policy.signature_code)
    try:
        resource: dict[str, Any] = await asyncio.to_thread(cloudinary.api.resource, public_id)
    except cloudinary.exceptions.NotFound:
        raise BadRequest("No image was uploaded under that id.", code=policy.not_uploaded_code) from None
    except Exception as error:  # the SDK raises its own Error tree and urllib3 errors
        logger.warning("cloudinary resource lookup failed: %s", error)
        raise ServiceUnavailable("The image service did not answer; try again shortly.") from error
    if str(resource.get("version")) != str(version):
        raise BadRequest("The upload's version does not match.", code=policy.signature_code)
    try:
        _check(policy, resource)
    except InvalidImage:
        await destroy(settings, public_id)
        raise
    return resource


def _check(policy: UploadPolicy, resource: dict[str, Any]) -> None:
    """Refuse (InvalidImage, saying why) what Cloudinary reports as not acceptable under the policy."""
    size, width, height = resource.get("bytes"), resource.get("width"), resource.get("height")
    if resource.get("format") not in FORMATS or not isinstance(size, int) or size > policy.max_bytes:
        raise policy.invalid()
    if policy.min_side is None and policy.max_pixels is None:
        return
    if not isinstance(width, int) or not isinstance(height, int):
        raise policy.invalid()
    # The same limits and messages as a decoded storage upload (shared.images.variants.render).
    check_dimensions(width, height, max_pixels=policy.max_pixels, min_side=policy.min_side)


async def destroy(settings: Settings, public_id: str) -> None:
    """Delete an image at Cloudinary, best effort (an orphan costs storage, a failed request costs more)."""
    try:
        cloudinary = sdk(settings)
        await asyncio.to_thread(cloudinary.uploader.destroy, public_id, invalidate=True, timeout=TIMEOUT)
    except Exception:
        logger.warning("could not delete Cloudinary image %s", public_id, exc_info=True)


async def list_public_ids(settings: Settings, *, prefix: str, page_size: int = LIST_PAGE) -> list[str]:
    """Every uploaded image's public_id under `prefix`, all pages; raises whatever the SDK raises."""
    cloudinary = sdk(settings)
    found: list[str] = []
    cursors: set[str] = set()
    cursor: str | None = None
    while True:
        options: dict[str, Any] = {"type": "upload", "prefix": prefix, "max_results": page_size}
        if cursor:
            options["next_cursor"] = cursor
        page = await asyncio.to_thread(cloudinary.api.resources, timeout=TIMEOUT, **options)
        found.extend(str(resource["public_id"]) for resource in page.get("resources", []))
        cursor = page.get("next_cursor")
        if not cursor or cursor in cursors:  # a cursor seen before would page forever
            return found
        cursors.add(cursor)


async def delete_resources(settings: Settings, public_ids: Sequence[str]) -> int:
    """Delete uploaded images, DELETE_BATCH per call, best effort; how many Cloudinary reports deleted.

    A failing call ends the run (logged): the next batches wait for the next sweep.
    """
    deleted = 0
    try:
        cloudinary = sdk(settings)
        for start in range(0, len(public_ids), DELETE_BATCH):
            batch = list(public_ids[start : start + DELETE_BATCH])
            answer = await asyncio.to_thread(
                cloudinary.api.delete_resources, batch, type="upload", invalidate=True, timeout=TIMEOUT
            )
            outcome = answer.get("deleted") or {}
            deleted += sum(1 for public_id in batch if outcome.get(public_id) == "deleted")
    except Exception:  # the SDK raises its own Error tree and urllib3 errors
        logger.warning(
            "could not delete Cloudinary images (%d of %d deleted)", deleted, len(public_ids), exc_info=True
        )
    return deleted
