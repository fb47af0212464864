"""Direct uploads to object storage: a presigned PUT to a staging key, then verify-and-copy.

The checked bytes are copied to a key the browser was never allowed to write, and the staging object is
deleted whatever the outcome, so the still-valid upload URL cannot swap the image afterwards.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass

from shared.errors import BadRequest
from shared.images.formats import FORMATS, SNIFF_BYTES, sniff
from shared.images.policy import UploadPolicy
from shared.images.schemas import UploadTicket

TICKET_SECONDS = 600


@dataclass(frozen=True)
class Received:
    """An upload that passed the checks: its bytes and format ("png", "jpg", "webp")."""

    data: bytes
    format: str


def new_name() -> str:
    """The random part of an upload's key or public_id (32 hex digits)."""
    return secrets.token_hex(16)


async def storage_ticket(*, policy: UploadPolicy, key: str, content_type: str, size: int) -> UploadTicket:
    """A presigned PUT of one object under `key` (bound to `size` bytes when the policy says so)."""
    from shared.infra.storage import get_storage

    request = await (await get_storage()).presign_upload(
        key,
        content_type=content_type,
        expires_in=TICKET_SECONDS,
        content_length=size if policy.bind_length else None,
    )
    return UploadTicket(
        backend="storage",
        upload_url=request.url,
        method="PUT",
        headers=request.headers,
        key=key,
        max_bytes=policy.max_bytes,
        expires_in=request.expires_in,
    )


async def receive(*, policy: UploadPolicy, prefix: str, key: str) -> Received:
    """Check the object uploaded under `key` (a name of ours under `prefix`); it is deleted either way."""
    from shared.infra.storage import get_storage

    extensions = "|".join(FORMATS)
    if not re.fullmatch(re.escape(prefix) + rf"[0-9a-f]{{32}}\.({extensions})", key):
        raise BadRequest(f"That object was not uploaded for {policy.owner}.", code=policy.key_code)
    storage = await get_storage()
    head = await storage.head(key)
    if head is None:
        raise BadRequest("Nothing was uploaded under that key yet.", code=policy.not_uploaded_code)
    try:
        if head.size > policy.max_bytes:
            raise policy.invalid()
        data = await storage.get_bytes(key)
        image_format = sniff(data[:SNIFF_BYTES])
        # Checked again on the bytes read: the upload URL stays valid and may have replaced the object.
        if len(data) > policy.max_bytes or image_format is None:
            raise policy.invalid()
    finally:
        await storage.delete(key)
    return Received(data, image_format)


async def keep(received: Received, *, folder: str) -> str:
    """Store checked bytes under a new name in `folder` (ending in "/"); return the key."""
    from shared.infra.storage import get_storage

    key = f"{folder}{new_name()}.{received.format}"
    await (await get_storage()).put_bytes(key, received.data, content_type=FORMATS[received.format])
    return key
