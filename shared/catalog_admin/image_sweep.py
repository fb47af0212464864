"""The daily sweep of catalog artwork: abandoned uploads, and images no row refers to (storage, Cloudinary).

Storage lists keys without dates, so both rules read the issue time every name handed out since
shared.images.direct_upload.new_name starts with. Objects named otherwise (uploads from before names were
dated, the demo catalog under catalog/demo/) are never touched.
- Staging uploads (catalog-uploads/) never confirmed: gone once every upload URL for them has expired.
- Confirmed images (catalog/images/: the original and its -wNNN.webp variants, as one image) that no
  title, season, episode or person refers to in `images`, issued more than UNUSED_AFTER ago: a manager
  uploaded and never saved, or replaced or removed the image later. The week leaves room for a form that
  stays open for a while; soft-deleted rows still count as referring (they can be restored).
- Cloudinary images (public_id catalog/images/<dated name>, no variants: Cloudinary resizes by URL) by the
  same rule, only with CLOUDINARY_SWEEP_UNUSED on: a Cloudinary account is often shared by production,
  staging and developers, all uploading under catalog/images/, and each database knows only its own
  images. When on, it runs whatever IMAGES_BACKEND says now (entries saved while it was "cloudinary" still
  live there). Undated public_ids are never touched (the catalog API accepts no other name under the
  folder, so a stored entry always names an image as the Admin API lists it). Cloudinary being away
  sweeps nothing (logged); the rest of the housekeeping goes on.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Sequence
from datetime import timedelta

from shared.catalog_admin import repository
from shared.catalog_admin.images import FOLDER, STAGING
from shared.catalog_admin.repository import Conn
from shared.images import cloudinary, direct_upload, variants
from shared.settings import Settings

logger = logging.getLogger("cinema.images")

UNUSED_AFTER = timedelta(days=7)

# Original "<stem>.<ext>" or variant "<stem>-w342.webp" (shared.images.variants.variant_key), stem dated.
_IMAGE = re.compile(
    re.escape(FOLDER)
    + rf"(?P<stem>{direct_upload.DATED_NAME})"
    + rf"(?:\.{direct_upload.EXTENSION}|{variants.VARIANT_SUFFIX})"
)

# A Cloudinary public_id as images.upload_ticket hands it out.
_PUBLIC_ID = re.compile(re.escape(FOLDER) + direct_upload.DATED_NAME)


async def sweep_staging(*, now: float | None = None) -> int:
    """Delete catalog uploads never confirmed, once no upload URL for them is valid; return how many."""
    return await direct_upload.sweep_staging(STAGING, now=now)


async def sweep_unused(conn: Conn, *, now: float | None = None) -> int:
    """Delete dated catalog images (originals and variants) unreferenced and older than UNUSED_AFTER.

    Returns how many objects went. The listing comes first: an image confirmed after it is not a
    candidate, and one saved into a row before the query below is seen as referenced.
    """
    from shared.infra.storage import get_storage

    listed = await (await get_storage()).list_keys(FOLDER)
    cutoff = (time.time() if now is None else now) - UNUSED_AFTER.total_seconds()
    candidates: list[tuple[str, str]] = []  # (key, stem)
    for key in listed:
        match = _IMAGE.fullmatch(key)
        if match and int(match["at"]) < cutoff:
            candidates.append((key, match["stem"]))
    if not candidates:
        return 0
    # A reference to any key of an image (its original or one variant) keeps all of its objects.
    referenced = await repository.referenced_image_keys(conn, FOLDER)
    in_use = {match["stem"] for key in referenced if (match := _IMAGE.fullmatch(key))}
    unused = [key for key, stem in candidates if stem not in in_use]
    await direct_upload.delete_keys(unused)
    return len(unused)


async def cloudinary_candidates(
    *, settings: Settings, now: float | None = None, page_size: int = cloudinary.LIST_PAGE
) -> list[str]:
    """Dated Cloudinary public_ids under FOLDER issued more than UNUSED_AFTER ago, as Cloudinary lists them.

    [] unless CLOUDINARY_SWEEP_UNUSED is on (with CLOUDINARY_URL), and when Cloudinary fails (logged): no
    Admin API call is made while the sweep is off. No connection: the listing may take a while.
    """
    if not (settings.cloudinary_sweep_unused and settings.cloudinary_url):
        return []
    try:
        listed = await cloudinary.list_public_ids(settings, prefix=FOLDER, page_size=page_size)
    except Exception:  # the SDK raises its own Error tree and urllib3 errors
        logger.warning("could not list Cloudinary images; none swept", exc_info=True)
        return []
    cutoff = (time.time() if now is None else now) - UNUSED_AFTER.total_seconds()
    return [
        public_id
        for public_id in listed
        if (match := _PUBLIC_ID.fullmatch(public_id)) and int(match["at"]) < cutoff
    ]


async def sweep_cloudinary(conn: Conn, *, settings: Settings, candidates: Sequence[str]) -> int:
    """Delete the `candidates` (from cloudinary_candidates) no row refers to; how many Cloudinary deleted.

    Listed before this query, as in sweep_unused: an image saved into a row since is seen as referenced.
    Never raises for Cloudinary's sake (delete_resources logs a failure and stops).
    """
    if not candidates:
        return 0
    referenced = await repository.referenced_image_public_ids(conn, FOLDER)
    return await cloudinary.delete_resources(
        settings, [item for item in candidates if item not in referenced]
    )
