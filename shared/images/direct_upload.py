"""Direct uploads to object storage: a presigned PUT to a staging key, then verify-and-copy.

The checked bytes are copied to a key the browser was never allowed to write, and the staging object is
deleted whatever the outcome, so the still-valid upload URL cannot swap the image afterwards.

Every name handed out starts with its issue time (`<unix seconds>-<32 hex>`): storage lists keys without
dates, so the name is what lets the daily sweep tell an abandoned upload from one still in flight.
"""

from __future__ import annotations

import asyncio
import re
import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass

from shared.errors import BadRequest
from shared.images.formats import FORMATS, SNIFF_BYTES, sniff
from shared.images.policy import UploadPolicy
from shared.images.schemas import ImageUploadTicket

TICKET_SECONDS = 600
# Unconfirmed staging objects older than this are swept: every URL that could still write one has expired.
STAGING_MAX_AGE = 2 * TICKET_SECONDS
# The name part of every key or public_id handed out: issue time, "-", 32 random hex digits. DATED_NAME
# captures the time as group "at" (sweeps); NAME is the same pattern without the group (confirm checks).
DATED_NAME = r"(?P<at>[1-9][0-9]{0,11})-[0-9a-f]{32}"
NAME = DATED_NAME.replace("?P<at>", "?:")
EXTENSION = "(?:" + "|".join(FORMATS) + ")"
_STAGED = re.compile(DATED_NAME + r"\." + EXTENSION)
_DELETE_CONCURRENCY = 16


@dataclass(frozen=True)
class Received:
    """An upload that passed the checks: its bytes and format ("png", "jpg", "webp")."""

    data: bytes
    format: str


def new_name(*, at: float | None = None) -> str:
    """A new name for an upload's key or public_id: "<unix seconds>-<32 hex digits>" (issued `at`, or now)."""
    return f"{int(time.time() if at is None else at)}-{secrets.token_hex(16)}"


async def storage_ticket(
    *, policy: UploadPolicy, key: str, content_type: str, size: int
) -> ImageUploadTicket:
    """A presigned PUT of one object under `key`, bound to exactly `size` bytes (the announced file)."""
    from shared.infra.storage import get_storage

    request = await (await get_storage()).presign_upload(
        key,
        content_type=content_type,
        expires_in=TICKET_SECONDS,
        content_length=size,
    )
    return ImageUploadTicket(
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
    from shared.infra.storage.rules import ObjectNotFound

    if not re.fullmatch(re.escape(prefix) + NAME + r"\." + EXTENSION, key):
        raise BadRequest(f"That object was not uploaded for {policy.owner}.", code=policy.key_code)
    storage = await get_storage()
    head = await storage.head(key)
    if head is None:
        raise BadRequest("Nothing was uploaded under that key yet.", code=policy.not_uploaded_code)
    try:
        if head.size > policy.max_bytes:
            raise policy.invalid()
        try:
            data = await storage.get_bytes(key)
        except ObjectNotFound:  # swept (or confirmed by a parallel request) since the head
            raise BadRequest("Nothing was uploaded under that key.", code=policy.not_uploaded_code) from None
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


async def sweep_staging(prefix: str, *, now: float | None = None) -> int:
    """Delete staging uploads under `prefix` issued more than STAGING_MAX_AGE ago; return how many.

    Only names this module hands out are touched: an object without an issue time is left alone.
    """
    from shared.infra.storage import get_storage

    storage = await get_storage()
    cutoff = (time.time() if now is None else now) - STAGING_MAX_AGE
    stale = []
    for key in await storage.list_keys(prefix):
        match = _STAGED.fullmatch(key.rsplit("/", 1)[-1])
        if match and int(match["at"]) < cutoff:
            stale.append(key)
    await delete_keys(stale)
    return len(stale)


async def delete_keys(keys: Iterable[str]) -> None:
    """Delete objects, a few at a time (S3 deletes one per request; a sweep may meet thousands)."""
    from shared.infra.storage import get_storage

    storage = await get_storage()
    gate = asyncio.Semaphore(_DELETE_CONCURRENCY)

    async def one(key: str) -> None:
        async with gate:
            await storage.delete(key)

    await asyncio.gather(*(one(key) for key in keys))
