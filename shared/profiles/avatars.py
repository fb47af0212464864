"""Profile avatars: direct browser uploads to object storage (default) or Cloudinary, verified afterwards.

The bytes never pass through a function on the way up (Vercel caps bodies at 4.5 MB): the API hands out
an upload ticket, the browser uploads, and a confirm call checks what arrived before the profile uses it.
With storage the checked bytes are then copied to a key the browser was never allowed to write, so the
still-valid upload URL cannot swap the image afterwards; Cloudinary uploads are signed with
overwrite=false for the same reason.
"""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
import time
import uuid
from types import ModuleType
from typing import Any
from urllib.parse import unquote, urlsplit

from shared.errors import BadRequest, ServiceUnavailable, ValidationFailed
from shared.infra import ratelimit
from shared.infra.ratelimit import Limit
from shared.profiles import repository
from shared.profiles.schemas import (
    AVATAR_CONTENT_TYPES,
    AVATAR_MAX_BYTES,
    AvatarConfirm,
    AvatarUploadTicket,
)
from shared.settings import Settings

logger = logging.getLogger("cinema.profiles")

FOLDER = "avatars"
# Formats by their Cloudinary / file-extension name, with the content type they are served as.
FORMATS = {"png": "image/png", "jpg": "image/jpeg", "webp": "image/webp"}
_EXTENSIONS = {content_type: extension for extension, content_type in FORMATS.items()}
_STORAGE_TICKET_SECONDS = 600
_CLOUDINARY_TICKET_SECONDS = 3600  # Cloudinary refuses signed uploads whose timestamp is older than 1 h
_CLOUDINARY_TIMEOUT = 10
# Each ticket may leave an unconfirmed object behind: a person changes an avatar a few times an hour.
_TICKETS = Limit(20, 3600)


class InvalidImage(ValidationFailed):
    """What was uploaded is not a PNG, JPEG or WebP image of at most AVATAR_MAX_BYTES."""

    code = "invalid_image"


def sniff_image(data: bytes) -> str | None:
    """The image format from the file's first bytes ("png", "jpg", "webp"), or None for anything else."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if data.startswith(b"\xff\xd8\xff"):
        return "jpg"
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    return None


def _prefix(user_id: uuid.UUID, profile_id: uuid.UUID) -> str:
    return f"{FOLDER}/{user_id}/{profile_id}/"


def _check_request(content_type: str, size: int) -> str:
    if content_type not in AVATAR_CONTENT_TYPES:
        raise ValidationFailed(
            f"Avatars must be one of {', '.join(AVATAR_CONTENT_TYPES)}.", code="unsupported_image_type"
        )
    if size > AVATAR_MAX_BYTES:
        raise ValidationFailed(
            f"Avatars may be at most {AVATAR_MAX_BYTES // (1024 * 1024)} MB.", code="image_too_large"
        )
    return _EXTENSIONS[content_type]


# --- Cloudinary --------------------------------------------------------------------------------------


def cloudinary_sdk(settings: Settings) -> ModuleType:
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
        timeout=_CLOUDINARY_TIMEOUT,  # the Admin API calls; the SDK waits forever by default
    )
    module: ModuleType = cloudinary
    return module


def _cloudinary_ticket(settings: Settings, public_id: str) -> AvatarUploadTicket:
    cloudinary = cloudinary_sdk(settings)
    config = cloudinary.config()
    # Everything the browser sends except file, api_key, resource_type and cloud_name is signed, so it
    # cannot change the name, the accepted formats, or overwrite an existing image.
    params = {
        "timestamp": str(int(time.time())),
        "public_id": public_id,
        "allowed_formats": ",".join(FORMATS),
        "overwrite": "false",
    }
    signature = cloudinary.utils.api_sign_request(
        params, config.api_secret, config.signature_algorithm, config.signature_version
    )
    return AvatarUploadTicket(
        backend="cloudinary",
        upload_url=cloudinary.utils.cloudinary_api_url("upload", resource_type="image"),
        method="POST",
        fields={**params, "signature": signature, "api_key": config.api_key},
        key=public_id,
        expires_in=_CLOUDINARY_TICKET_SECONDS,
    )


async def _cloudinary_confirm(settings: Settings, prefix: str, body: AvatarConfirm) -> tuple[str, str]:
    """Check a finished Cloudinary upload; return its public_id and delivery URL."""
    public_id = body.public_id or ""
    if not re.fullmatch(re.escape(prefix) + r"[0-9a-f]{32}", public_id):
        raise BadRequest("That image was not uploaded for this profile.", code="invalid_avatar_key")
    if body.version is None or not body.signature:
        raise BadRequest(
            "Send the version and signature Cloudinary returned.", code="invalid_avatar_signature"
        )
    cloudinary = cloudinary_sdk(settings)
    if not cloudinary.utils.verify_api_response_signature(public_id, body.version, body.signature):
        raise BadRequest("The upload's signature does not match.", code="invalid_avatar_signature")
    try:
        resource: dict[str, Any] = await asyncio.to_thread(cloudinary.api.resource, public_id)
    except cloudinary.exceptions.NotFound:
        raise BadRequest("No image was uploaded under that id.", code="avatar_not_uploaded") from None
    except Exception as error:  # the SDK raises its own Error tree and urllib3 errors
        logger.warning("cloudinary resource lookup failed: %s", error)
        raise ServiceUnavailable("The image service did not answer; try again shortly.") from error
    if str(resource.get("version")) != str(body.version):
        raise BadRequest("The upload's version does not match.", code="invalid_avatar_signature")
    size = resource.get("bytes")
    if resource.get("format") not in FORMATS or not isinstance(size, int) or size > AVATAR_MAX_BYTES:
        await _cloudinary_destroy(settings, public_id)
        raise InvalidImage("Avatars must be PNG, JPEG or WebP images of at most 2 MB.")
    url: str = cloudinary.CloudinaryImage(public_id).build_url(
        version=resource["version"], width=320, height=320, crop="fill", secure=True
    )
    return public_id, url


async def _cloudinary_destroy(settings: Settings, public_id: str) -> None:
    """Delete an image at Cloudinary, best effort (an orphan costs storage, a failed request costs more)."""
    try:
        cloudinary = cloudinary_sdk(settings)
        await asyncio.to_thread(
            cloudinary.uploader.destroy, public_id, invalidate=True, timeout=_CLOUDINARY_TIMEOUT
        )
    except Exception:
        logger.warning("could not delete Cloudinary image %s", public_id, exc_info=True)


# --- object storage ----------------------------------------------------------------------------------


async def _storage_confirm(prefix: str, key: str) -> str:
    """Check an uploaded object; copy it to a key the browser cannot write; return that key."""
    from shared.infra.storage import get_storage

    extensions = "|".join(FORMATS)
    if not re.fullmatch(re.escape(prefix) + rf"[0-9a-f]{{32}}\.({extensions})", key):
        raise BadRequest("That object was not uploaded for this profile.", code="invalid_avatar_key")
    storage = await get_storage()
    head = await storage.head(key)
    if head is None:
        raise BadRequest("Nothing was uploaded under that key yet.", code="avatar_not_uploaded")
    try:
        if head.size > AVATAR_MAX_BYTES:
            raise InvalidImage("Avatars may be at most 2 MB.")
        data = await storage.get_bytes(key)
        image_format = sniff_image(data[:16])
        # Checked again on the bytes read: the upload URL stays valid and may have replaced the object.
        if len(data) > AVATAR_MAX_BYTES or image_format is None:
            raise InvalidImage("Avatars must be PNG, JPEG or WebP images of at most 2 MB.")
        final = f"{prefix}{secrets.token_hex(16)}.{image_format}"
        await storage.put_bytes(final, data, content_type=FORMATS[image_format])
    finally:
        await storage.delete(key)
    return final


# --- the profile's avatar ----------------------------------------------------------------------------


async def upload_ticket(
    *, settings: Settings, user_id: uuid.UUID, profile_id: uuid.UUID, content_type: str, size: int
) -> AvatarUploadTicket:
    """Where and how the browser uploads a new avatar for the profile (the caller checked ownership)."""
    extension = _check_request(content_type, size)
    await ratelimit.enforce(rules=[_TICKETS.rule(f"avatar_ticket:{user_id}")])
    name = secrets.token_hex(16)
    if settings.images_backend == "cloudinary":
        return _cloudinary_ticket(settings, _prefix(user_id, profile_id) + name)
    from shared.infra.storage import get_storage

    key = f"{_prefix(user_id, profile_id)}{name}.{extension}"
    request = await (await get_storage()).presign_upload(
        key, content_type=content_type, expires_in=_STORAGE_TICKET_SECONDS
    )
    return AvatarUploadTicket(
        backend="storage",
        upload_url=request.url,
        method="PUT",
        headers=request.headers,
        key=key,
        expires_in=request.expires_in,
    )


async def confirm(
    conn: Any, *, settings: Settings, profile: dict[str, Any], body: AvatarConfirm
) -> dict[str, Any]:
    """Verify the uploaded image and make it the profile's avatar; return the updated row."""
    prefix = _prefix(profile["user_id"], profile["id"])
    if settings.images_backend == "cloudinary":
        key, url = await _cloudinary_confirm(settings, prefix, body)
        fields: dict[str, Any] = {"avatar_key": key, "avatar_url": url}
    else:
        fields = {"avatar_key": await _storage_confirm(prefix, body.key or ""), "avatar_url": None}
    row = await repository.update_profile(conn, profile["id"], fields)
    assert row is not None  # the caller holds the profile's row lock
    from shared.infra.db import after_commit

    # Only once the new avatar is saved: a failed commit must leave the old image in place.
    await after_commit(lambda: discard(settings, key=profile["avatar_key"], url=profile["avatar_url"]))
    return row


async def remove(conn: Any, *, settings: Settings, profile: dict[str, Any]) -> dict[str, Any]:
    """Take the avatar off the profile and delete the image; return the updated row."""
    row = await repository.update_profile(conn, profile["id"], {"avatar_key": None, "avatar_url": None})
    assert row is not None
    from shared.infra.db import after_commit

    # Only once the removal is saved: a failed commit must not leave the profile pointing at nothing.
    await after_commit(lambda: discard(settings, key=profile["avatar_key"], url=profile["avatar_url"]))
    return row


async def discard(settings: Settings, *, key: str | None, url: str | None) -> None:
    """Delete a stored avatar image, best effort: an orphaned image must not fail the request."""
    if not key:
        return
    try:
        if url:  # a Cloudinary image (storage avatars keep no URL)
            if settings.images_backend == "cloudinary":
                await _cloudinary_destroy(settings, key)
            else:
                logger.warning("cannot delete Cloudinary avatar %s: IMAGES_BACKEND is not cloudinary", key)
        else:
            from shared.infra.storage import get_storage

            await (await get_storage()).delete(key)
    except Exception:
        logger.warning("could not delete avatar %s", key, exc_info=True)


async def avatar_url(row: dict[str, Any]) -> str | None:
    """The URL a browser loads the avatar from: Cloudinary's delivery URL, or a presigned storage GET."""
    if row.get("avatar_url"):
        return str(row["avatar_url"])
    if not row.get("avatar_key"):
        return None
    from shared.infra.storage import get_storage

    return (await (await get_storage()).presign_download(row["avatar_key"])).url
