"""Profile avatars: direct browser uploads to object storage (default) or Cloudinary, verified afterwards.

The bytes never pass through a function on the way up (Vercel caps bodies at 4.5 MB): the API hands out
an upload ticket, the browser uploads, and a confirm call checks what arrived before the profile uses it.
With storage the checked image is then re-encoded (upright, no metadata such as a photo's GPS) to a key
the browser was never allowed to write, so the still-valid upload URL cannot swap the image afterwards;
Cloudinary uploads are signed with overwrite=false for the same reason. The upload mechanics are
shared.images'; this module decides the avatar's folder, limits and error codes, and keeps the profile
row in step.

Storage uploads are staged under avatar-uploads/, never in the avatars/ folder itself, so the daily sweep
of unconfirmed uploads (sweep_staging) cannot take a profile's avatar; staging names carry their issue time.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from shared.images import cloudinary, direct_upload, variants
from shared.images.policy import UploadPolicy, check_request
from shared.images.schemas import ImageUploadTicket
from shared.infra import ratelimit
from shared.infra.ratelimit import Limit
from shared.profiles import repository
from shared.profiles.schemas import AVATAR_MAX_BYTES, AvatarConfirm
from shared.settings import Settings

logger = logging.getLogger("cinema.profiles")

FOLDER = "avatars/"
STAGING = "avatar-uploads/"  # storage uploads before the confirm (Cloudinary's land at their final id)
POLICY = UploadPolicy(
    noun="Avatars",
    owner="this profile",
    max_bytes=AVATAR_MAX_BYTES,
    key_code="invalid_avatar_key",
    signature_code="invalid_avatar_signature",
    not_uploaded_code="avatar_not_uploaded",
)
# Each ticket may leave an unconfirmed object behind: a person changes an avatar a few times an hour.
_TICKETS = Limit(20, 3600)


def _prefix(user_id: uuid.UUID, profile_id: uuid.UUID) -> str:
    """The profile's avatar folder (checked storage copies, Cloudinary uploads)."""
    return f"{FOLDER}{user_id}/{profile_id}/"


def _staging(user_id: uuid.UUID, profile_id: uuid.UUID) -> str:
    """Where the browser PUTs a storage upload for the profile before the confirm."""
    return f"{STAGING}{user_id}/{profile_id}/"


# --- the profile's avatar ----------------------------------------------------------------------------


async def upload_ticket(
    *, settings: Settings, user_id: uuid.UUID, profile_id: uuid.UUID, content_type: str, size: int
) -> ImageUploadTicket:
    """Where and how the browser uploads a new avatar for the profile (the caller checked ownership)."""
    extension = check_request(POLICY, content_type, size)
    await ratelimit.enforce(rules=[_TICKETS.rule(f"avatar_ticket:{user_id}")])
    name = direct_upload.new_name()
    if settings.images_backend == "cloudinary":
        public_id = _prefix(user_id, profile_id) + name
        return cloudinary.upload_ticket(settings, policy=POLICY, public_id=public_id)
    return await direct_upload.storage_ticket(
        policy=POLICY,
        key=f"{_staging(user_id, profile_id)}{name}.{extension}",
        content_type=content_type,
        size=size,
    )


async def confirm(
    conn: Any, *, settings: Settings, profile: dict[str, Any], body: AvatarConfirm
) -> dict[str, Any]:
    """Verify the uploaded image and make it the profile's avatar; return the updated row."""
    prefix = _prefix(profile["user_id"], profile["id"])
    if settings.images_backend == "cloudinary":
        resource = await cloudinary.confirm_upload(settings, policy=POLICY, prefix=prefix, upload=body)
        key = str(resource["public_id"])
        url: str = (
            cloudinary.sdk(settings)
            .CloudinaryImage(key)
            .build_url(version=resource["version"], width=320, height=320, crop="fill", secure=True)
        )
        fields: dict[str, Any] = {"avatar_key": key, "avatar_url": url}
    else:
        staging = _staging(profile["user_id"], profile["id"])
        received = await direct_upload.receive(policy=POLICY, prefix=staging, key=body.key or "")
        # Stored re-encoded, never as uploaded: a phone photo's EXIF says where it was taken.
        rendered = await variants.make(received.data, aspect_ratio=None, widths=(), min_side=1)
        clean = direct_upload.Received(rendered.original, rendered.format)
        fields = {"avatar_key": await direct_upload.keep(clean, folder=prefix), "avatar_url": None}
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
                await cloudinary.destroy(settings, key)
            else:
                logger.warning("cannot delete Cloudinary avatar %s: IMAGES_BACKEND is not cloudinary", key)
        else:
            from shared.infra.storage import get_storage

            await (await get_storage()).delete(key)
    except Exception:
        logger.warning("could not delete avatar %s", key, exc_info=True)


async def sweep_staging(*, now: float | None = None) -> int:
    """Delete storage uploads never confirmed, once no upload URL for them is valid; return how many."""
    return await direct_upload.sweep_staging(STAGING, now=now)


async def avatar_url(row: dict[str, Any]) -> str | None:
    """The URL a browser loads the avatar from: Cloudinary's delivery URL, or a presigned storage GET."""
    if row.get("avatar_url"):
        return str(row["avatar_url"])
    if not row.get("avatar_key"):
        return None
    from shared.infra.storage import get_storage

    return (await (await get_storage()).presign_download(row["avatar_key"])).url
